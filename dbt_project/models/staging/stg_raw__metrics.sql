select
    md5(concat_ws('|', name, time::varchar, coalesce(labels::varchar, ''))) as metric_id,
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
