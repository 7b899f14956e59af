-- Per suite, version and evaluator, on each suite's latest run (grain suite, version, evaluator).
-- The case is the unit: a case's repeats are averaged first. 95% CIs: the mean's is the normal
-- approximation over the case means (mean ± 1.96 · sd / √n); the pass rate's is Wilson's score
-- interval over the cases when each case ran once, else the normal one over the case pass fractions.
-- Pass-rate bounds are clipped to [0, 1]; bounds are rounded to 6 decimals.
with per_case as (
    select
        suite,
        run_id,
        version,
        is_baseline,
        evaluator,
        case_id,
        avg(score) as score,
        avg(cast(cast(passed as integer) as {{ double_type() }})) as passed,
        count(*) as calls,
        count(*) filter (where is_error) as errors
    from {{ ref('fct_eval_results') }}
    where is_latest_run
    group by 1, 2, 3, 4, 5, 6
),

stats as (
    select
        suite,
        run_id,
        version,
        is_baseline,
        evaluator,
        count(*) as cases,
        sum(calls) as calls,
        sum(errors) as errors,
        max(calls) as repeats,
        count(score) as n_scored,
        avg(score) as mean_score,
        stddev_samp(score) as sd_score,
        count(passed) as n_judged,
        avg(passed) as pass_rate,
        stddev_samp(passed) as sd_passed
    from per_case
    group by 1, 2, 3, 4, 5
)

select
    suite,
    run_id,
    version,
    is_baseline,
    evaluator,
    cases,
    calls,
    errors,
    mean_score,
    {{ round_double(normal_bound('mean_score', 'sd_score', 'n_scored', '-'), 6) }} as mean_ci_low,
    {{ round_double(normal_bound('mean_score', 'sd_score', 'n_scored', '+'), 6) }} as mean_ci_high,
    pass_rate,
{%- for bound, sign, clip in [('low', '-', 'greatest(0.0, '), ('high', '+', 'least(1.0, ')] %}
    {%- set interval_bound -%}
    case
        when n_judged = 0 then null
        when repeats = 1 then {{ wilson_bound('pass_rate', 'n_judged', sign) }}
        else {{ clip }}{{ normal_bound('pass_rate', 'sd_passed', 'n_judged', sign) }})
    end
    {%- endset %}
    {{ round_double(interval_bound, 6) }} as pass_rate_ci_{{ bound }}{{ ',' if bound == 'low' }} -- noqa: LT02
{%- endfor %}
from stats
