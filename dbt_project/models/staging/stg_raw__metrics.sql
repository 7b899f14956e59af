select
    -- the time as microseconds since 1970, not as text: the same id on every engine
    md5(
        concat_ws(
            '|',
            name,
            cast({{ epoch_microseconds('time') }} as {{ string_type() }}),
            coalesce(cast(labels as {{ string_type() }}), '')
        )
    ) as metric_id,
    name,
    value,
    time,
    metric_kind,
    unit,
    labels,
    agent_id,
    agent_version,
    load_id
from {{ source('raw', 'metrics') }}
