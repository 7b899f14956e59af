select
    md5(
        concat_ws(
            '|', name, cast(time as {{ string_type() }}), coalesce(cast(labels as {{ string_type() }}), '')
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
