"""Model prices from `genai-prices` (Pydantic's maintained price database, bundled snapshot).

Each distinct model name seen in telemetry is resolved once to USD per million tokens for input,
cached input, cache writes and output. The result lives in `raw.model_prices`; dbt's
`model_prices` mart unions it with the user's overrides seed (which wins) and the cost of a call
is computed in SQL from the price in effect at the call's time.

Prices are derived by asking genai-prices for the price of 1,000 tokens of one kind, so tiered
prices (for example a higher rate above 200k context tokens) resolve to the base tier, which is
what an ordinary call pays. Where genai-prices knows of price changes (conditional prices with a
start date), each change becomes a row with its own `effective_from`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from genai_prices import Usage, calc_price

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_PROBE = 1000


@dataclass(frozen=True)
class ModelPrice:
    model: str
    provider: str | None
    matched_model_id: str
    input_usd_per_mtok: float
    cached_input_usd_per_mtok: float
    cache_write_usd_per_mtok: float
    output_usd_per_mtok: float
    effective_from: datetime


def _per_mtok(value: Decimal) -> float:
    return float(value * Decimal(1_000_000) / Decimal(_PROBE))


def _change_dates(model_info) -> list[datetime]:
    dates = [EPOCH]
    prices = getattr(model_info, "prices", None)
    if isinstance(prices, list):
        for conditional in prices:
            constraint = getattr(conditional, "constraint", None)
            start = getattr(constraint, "start_date", None)
            if start is not None:
                start_dt = datetime(start.year, start.month, start.day, tzinfo=UTC)
                dates.append(start_dt)
    return sorted(set(dates))


def _price_at(model: str, provider: str | None, when: datetime):
    def total(**usage: int) -> Decimal:
        calc = calc_price(Usage(**usage), model_ref=model, provider_id=provider, genai_request_timestamp=when)
        return calc.total_price

    return (
        _per_mtok(total(input_tokens=_PROBE)),
        _per_mtok(total(input_tokens=_PROBE, cache_read_tokens=_PROBE)),
        _per_mtok(total(input_tokens=_PROBE, cache_write_tokens=_PROBE)),
        _per_mtok(total(output_tokens=_PROBE)),
    )


def resolve_model(model: str, provider: str | None = None) -> list[ModelPrice]:
    """Price rows for one model name as seen in telemetry; [] when genai-prices does not know it."""
    try:
        probe = calc_price(Usage(input_tokens=_PROBE), model_ref=model, provider_id=provider)
    except (LookupError, ValueError):
        if provider is None:
            return []
        return resolve_model(model, None)
    rows: list[ModelPrice] = []
    for when in _change_dates(probe.model):
        try:
            inp, cached_total, write_total, out = _price_at(model, provider, when)
        except (LookupError, ValueError):
            continue
        row = ModelPrice(
            model=model,
            provider=probe.provider.id,
            matched_model_id=probe.model.id,
            input_usd_per_mtok=inp,
            # genai-prices counts cache reads and writes inside input_tokens, as we do: 1,000 input
            # tokens that are all cache reads cost exactly the cached price.
            cached_input_usd_per_mtok=cached_total,
            cache_write_usd_per_mtok=write_total,
            output_usd_per_mtok=out,
            effective_from=when,
        )
        if rows and (rows[-1].input_usd_per_mtok, rows[-1].output_usd_per_mtok,
                     rows[-1].cached_input_usd_per_mtok, rows[-1].cache_write_usd_per_mtok) == (
            row.input_usd_per_mtok, row.output_usd_per_mtok, row.cached_input_usd_per_mtok,
            row.cache_write_usd_per_mtok,
        ):  # fmt: skip
            continue
        rows.append(row)
    return rows
