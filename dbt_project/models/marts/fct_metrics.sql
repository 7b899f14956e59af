{{
    config(
        materialized='incremental',
        unique_key='metric_id',
        incremental_strategy='delete+insert',
    )
}}
-- One row per metric point (grain: metric_id = name, time, labels): system metrics (CPU,
-- memory, disk, network, processes) and business metrics (task completion, satisfaction, ...).
select *
from {{ ref('stg_raw__metrics') }}
{% if is_incremental() %}
where
    load_id > (select coalesce(max(load_id), 0) from {{ this }})
    or {{ in_reload_window('time') }}
{% endif %}
