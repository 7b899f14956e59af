-- USD per million tokens per model name as seen in telemetry, with effective_from. A model in the
-- overrides seed takes its prices from the seed only; other models from genai-prices.
with overrides as (
    select
        model,
        provider,
        input_usd_per_mtok,
        cached_input_usd_per_mtok,
        cache_write_usd_per_mtok,
        output_usd_per_mtok,
        effective_from,
        'override' as source
    from {{ ref('model_price_overrides') }}
),

resolved as (
    select *
    from {{ ref('stg_raw__model_prices') }}
    where model not in (select model from overrides)
)

select * from overrides
union all
select * from resolved
