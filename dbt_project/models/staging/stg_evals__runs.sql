select
    run_id,
    suite,
    suite_path,
    mode,
    versions,
    baseline,
    repeats,
    cases,
    calls,
    failed_calls,
    started_at,
    finished_at,
    {{ milliseconds_between('started_at', 'finished_at') }} as duration_ms
from {{ source('evals', 'runs') }}
