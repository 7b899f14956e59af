-- One row per benchmark call and evaluator (grain result_id), with its run: when it ran, whether
-- the version is the suite's baseline, and whether the run is the suite's latest.
with runs as (
    select
        *,
        row_number() over (partition by suite order by finished_at desc) = 1 as is_latest_run
    from {{ ref('stg_evals__runs') }}
)

select
    results.result_id,
    results.run_id,
    results.suite,
    results.case_id,
    results.version,
    results.version = runs.baseline as is_baseline,
    results.repeat,
    results.evaluator,
    results.score,
    results.passed,
    results.latency_ms,
    results.error,
    results.is_error,
    results.input_tokens,
    results.output_tokens,
    results.cost_usd,
    runs.mode,
    runs.started_at as run_started_at,
    runs.finished_at as run_finished_at,
    runs.is_latest_run
from {{ ref('stg_evals__results') }} as results
inner join runs using (run_id)
