select
    model,
    provider,
    input_usd_per_mtok,
    cached_input_usd_per_mtok,
    cache_write_usd_per_mtok,
    output_usd_per_mtok,
    effective_from,
    source
from {{ source('raw', 'model_prices') }}
