"""Ingest: every settled, new file in the landing folder into the raw tables, then validate."""

from datetime import date

import dagster as dg

from agentmon_pipeline.config import settings
from agentmon_pipeline.defs.partitions import DAILY, SINGLE_RUN
from agentmon_pipeline.ingest.batch import ingest_landing, refresh_model_prices, validate_loads
from agentmon_pipeline.storage import connect

RAW_TABLES = {
    "spans": "Spans of agent runs, LLM calls and tool calls; one row per (trace_id, span_id).",
    "metrics": "System and business metric points.",
    "events": "User feedback, deployments and other events.",
    "ingested_files": "The ledger: per file, lines = loaded + quarantined.",
    "quarantine": "Lines and files that could not be loaded, with their reason.",
}
CHECKED = ("spans", "metrics", "events")


class IngestConfig(dg.Config):
    """Which files to ingest; empty means every new file in the landing folder."""

    files: list[str] = []  # noqa: RUF012 -- a pydantic model: each instance gets its own copy
    # the landing sensor's hashes of the files it found new (path -> [size, mtime_ns, sha256]),
    # not computed again; a file changed since (size or mtime) is hashed again
    hashes: dict[str, list] = {}  # noqa: RUF012


@dg.multi_asset(
    name="raw_telemetry",
    partitions_def=DAILY,
    backfill_policy=SINGLE_RUN,
    specs=[
        dg.AssetSpec(["raw", table], description=text, group_name="ingest", kinds={"duckdb"})
        for table, text in RAW_TABLES.items()
    ],
    check_specs=[
        dg.AssetCheckSpec(
            "great_expectations_batch",
            asset=["raw", table],
            blocking=True,
            description="great-expectations suite over the rows loaded by this run.",
        )
        for table in CHECKED
    ],
)
def raw_telemetry(context: dg.AssetExecutionContext, config: IngestConfig):
    """A run over days (a partition range: a backfill, the sensor's run, `agentmon run`) loads the
    files of those days; a run with no partition, every new file."""
    s = settings()
    days = None
    if context.has_partition_key_range:
        window = context.partition_key_range
        days = (date.fromisoformat(window.start), date.fromisoformat(window.end))
    with connect(s) as con:
        batch = ingest_landing(con, s, only=config.files or None, hashes=config.hashes, days=days)
        validations = validate_loads(con, batch.load_ids)
        counts = {
            table: con.execute(f"select count(*) from raw.{table}").fetchone()[0] for table in RAW_TABLES
        }
    for line in batch.log_lines():
        context.log.info(line)
    per_table = {
        "spans": {"loaded_now": batch.total("spans"), "outside_retention_window": batch.outside_retention},
        "metrics": {"loaded_now": batch.total("metrics")},
        "events": {"loaded_now": batch.total("events")},
        "ingested_files": {"files_now": len(batch.files), "preview": dg.MetadataValue.md(batch.markdown())},
        "quarantine": {"quarantined_now": batch.total("quarantined")},
    }
    for table in RAW_TABLES:
        yield dg.MaterializeResult(
            asset_key=["raw", table],
            metadata={"row_count": dg.MetadataValue.int(int(counts[table])), **per_table[table]},
        )
    for result in validations:
        yield dg.AssetCheckResult(
            asset_key=["raw", result.name],
            check_name="great_expectations_batch",
            passed=result.success,
            severity=dg.AssetCheckSeverity.ERROR,
            metadata={
                "rows_validated": result.rows,
                "expectations": result.evaluated,
                "failures": dg.MetadataValue.md("\n".join(f"- {f}" for f in result.failures) or "none"),
            },
        )


@dg.asset(
    key=["raw", "model_prices"],
    deps=[["raw", "spans"]],
    group_name="ingest",
    kinds={"duckdb"},
    description="Prices per million tokens from genai-prices for every model name seen in spans.",
)
def raw_model_prices(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    s = settings()
    with connect(s) as con:
        resolved, unknown = refresh_model_prices(con)
        total = con.execute("select count(distinct model) from raw.model_prices").fetchone()[0]
    if unknown:  # a warning when a model is new to the list, a line of the log after that
        said = _models_without_price_before(context)
        log = context.log.warning if set(unknown) - said else context.log.info
        log(
            f"no price for {len(unknown)} model(s): {', '.join(unknown[:10])}; "
            "their calls get cost_source = 'unknown_model' (add them to dbt_project/seeds/model_price_overrides.csv)"
        )
    return dg.MaterializeResult(
        metadata={
            "models_priced": dg.MetadataValue.int(int(total)),
            "newly_resolved": dg.MetadataValue.int(len(resolved)),
            "models_without_price": dg.MetadataValue.text(", ".join(unknown) or "none"),
        }
    )


def _models_without_price_before(context: dg.AssetExecutionContext) -> set[str]:
    """The unpriced models the previous materialization of raw/model_prices listed."""
    event = context.instance.get_latest_materialization_event(dg.AssetKey(["raw", "model_prices"]))
    entry = event.asset_materialization.metadata.get("models_without_price") if event else None
    return set(entry.value.split(", ")) - {"none"} if entry is not None else set()
