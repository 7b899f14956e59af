select
    md5(
        concat_ws('|', run_id, case_id, version, cast(repeat as {{ string_type() }}), evaluator)
    ) as result_id,
    run_id,
    suite,
    case_id,
    version,
    repeat,
    evaluator,
    score,
    passed,
    latency_ms,
    error,
    error is not null as is_error,
    input_tokens,
    output_tokens,
    cost_usd
from {{ source('evals', 'results') }}
