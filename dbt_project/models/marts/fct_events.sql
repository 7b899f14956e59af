{{
    config(
        materialized='incremental',
        unique_key='event_id',
        incremental_strategy='delete+insert',
    )
}}
-- One row per event (grain: event_id): user feedback, deployments, rollbacks, ...
select *
from {{ ref('stg_raw__events') }}
{% if is_incremental() %}
where
    load_id > (select coalesce(max(load_id), 0) from {{ this }})
    or {{ in_reload_window('time') }}
{% endif %}
