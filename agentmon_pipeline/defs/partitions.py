"""Daily partitions (UTC): ingestion is partitioned by the day files say they are of
(`ingest.landing.file_day`), so history can be reloaded a day at a time from the UI (a backfill)
or `agentmon backfill --from --to`."""

import json
from datetime import date, timedelta

import dagster as dg

from agentmon_pipeline.ingest.landing import first_day

# end_offset=1: today is a partition too (Dagster's last daily partition is otherwise yesterday);
# a run over several days is one run (single_run), as the ledger and the loader work by file
DAILY = dg.DailyPartitionsDefinition(start_date=first_day().isoformat(), end_offset=1, timezone="UTC")
SINGLE_RUN = dg.BackfillPolicy.single_run()
RANGE_START, RANGE_END = "dagster/asset_partition_range_start", "dagster/asset_partition_range_end"
# a run that reloads its days (`agentmon backfill`): the marts rebuild those days' rows
RELOAD = "agentmon/reload"


def range_tags(first: date, last: date) -> dict[str, str]:
    """The tags of a run over the daily partitions first..last (what a single-run backfill sets)."""
    return {RANGE_START: first.isoformat(), RANGE_END: last.isoformat()}


def reload_days(context: dg.AssetExecutionContext) -> tuple[date, date] | None:
    """The days a run reloads, if it does: those of `agentmon backfill` (its range and RELOAD
    tags), of a backfill's run over a range of days, of a day materialized in the UI, else those
    of raw/* in the Dagster backfill the run belongs to (a backfill of assets launched in the UI
    runs the marts, which are not partitioned, in a run of their own). A run the sensor or
    `agentmon run` started reloads nothing: it loads the new files' days, and the marts take the
    new rows incrementally."""
    tags = context.run.tags
    if RANGE_START in tags and (tags.get(RELOAD) == "true" or "dagster/backfill" in tags):
        return date.fromisoformat(tags[RANGE_START]), date.fromisoformat(tags[RANGE_END])
    if "dagster/partition" in tags:
        day = date.fromisoformat(tags["dagster/partition"])
        return day, day
    backfill = context.instance.get_backfill(tags["dagster/backfill"]) if "dagster/backfill" in tags else None
    data = backfill.asset_backfill_data if backfill is not None else None
    if data is None:
        return None
    days = sorted({item.partition_key for item in data.target_subset.iterate_asset_partitions()
                   if item.partition_key and item.asset_key.path[0] == "raw"})  # fmt: skip
    return (date.fromisoformat(days[0]), date.fromisoformat(days[-1])) if days else None


def reload_vars(days: tuple[date, date]) -> str:
    """dbt's --vars for a reload of the days first..last (dbt_project/macros/reload.sql)."""
    first, last = days
    return json.dumps({"reload_from": f"{first.isoformat()} 00:00:00+00",
                       "reload_to": f"{(last + timedelta(days=1)).isoformat()} 00:00:00+00"})  # fmt: skip
