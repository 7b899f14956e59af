"""The warehouse's schemas and tables, as migrations: one list for DuckDB and PostgreSQL, written in
the types both read (`double precision`, `json` kept as text as it came), one schema version for both."""

from __future__ import annotations

SCHEMAS = ("raw", "staging", "intermediate", "marts", "evals", "analytics", "alerts", "registry")

# Each migration moves the warehouse from version N-1 to N. Never edit a released one: add one.
MIGRATIONS: list[list[str]] = [
    [
        *(f"create schema if not exists {name}" for name in SCHEMAS),
        "create sequence if not exists raw.load_id_seq start 1",
        """
        create table if not exists raw.ingested_files (
            load_id bigint primary key,
            file_path varchar not null,
            file_name varchar not null,
            sha256 varchar not null,
            bytes bigint not null,
            mtime_ns bigint,
            format varchar,
            status varchar not null,      -- loaded | partial | quarantined | duplicate | empty | refused
            lines bigint not null,        -- records found: non-blank lines of a JSONL file
            loaded bigint not null,
            quarantined bigint not null,
            reason varchar,
            duplicate_of bigint,
            ingested_at timestamptz not null
        )
        """,
        """
        create table if not exists raw.quarantine (
            load_id bigint not null,
            file_path varchar not null,
            sha256 varchar not null,
            line_number bigint,           -- null when the whole file is quarantined
            reason varchar not null,
            raw_line varchar,
            quarantined_at timestamptz not null
        )
        """,
        """
        create table if not exists raw.spans (
            trace_id varchar not null,
            span_id varchar not null,
            parent_span_id varchar,
            name varchar not null,
            kind varchar not null,
            start_time timestamptz not null,
            end_time timestamptz not null,
            duration_ms double precision not null,
            status varchar not null,
            error_type varchar,
            error_message varchar,
            agent_id varchar,
            agent_name varchar,
            agent_version varchar,
            session_id varchar,
            user_id varchar,
            model varchar,
            provider varchar,
            input_tokens bigint,
            output_tokens bigint,
            total_tokens bigint,
            cached_input_tokens bigint,
            cache_creation_input_tokens bigint,
            reasoning_tokens bigint,
            cost_usd double precision,
            tool_name varchar,
            retry_count integer,
            input varchar,
            output varchar,
            attributes json,
            resource json,
            source_format varchar not null,
            load_id bigint not null,
            line_number bigint
        )
        """,
        """
        create table if not exists raw.metrics (
            name varchar not null,
            value double precision not null,
            time timestamptz not null,
            metric_kind varchar not null,
            unit varchar,
            labels json,
            agent_id varchar,
            agent_version varchar,
            load_id bigint not null,
            line_number bigint
        )
        """,
        """
        create table if not exists raw.events (
            event_id varchar not null,
            name varchar not null,
            time timestamptz not null,
            trace_id varchar,
            span_id varchar,
            agent_id varchar,
            agent_version varchar,
            attributes json,
            load_id bigint not null,
            line_number bigint
        )
        """,
        """
        create table if not exists raw.model_prices (
            model varchar not null,
            provider varchar,
            matched_model_id varchar,
            input_usd_per_mtok double precision,
            cached_input_usd_per_mtok double precision,
            cache_write_usd_per_mtok double precision,
            output_usd_per_mtok double precision,
            effective_from timestamptz not null,
            source varchar not null,
            resolved_at timestamptz not null
        )
        """,
    ],
    [
        # the dbt models the marts were last built with (see defs/transform/assets.py)
        "create table if not exists raw.dbt_build_state (models_sha256 varchar not null, built_at timestamptz not null)",
    ],
    [
        # benchmarks (evaluation/): one row per suite run, one per call and evaluator
        """
        create table if not exists evals.runs (
            run_id varchar primary key,
            suite varchar not null,
            suite_path varchar,
            mode varchar not null,          -- agent | replay
            versions varchar[] not null,
            baseline varchar not null,
            repeats integer not null,
            cases integer not null,
            calls integer not null,
            failed_calls integer not null,
            started_at timestamptz not null,
            finished_at timestamptz not null
        )
        """,
        """
        create table if not exists evals.results (
            run_id varchar not null,
            suite varchar not null,
            case_id varchar not null,
            version varchar not null,
            repeat integer not null,
            evaluator varchar not null,
            score double precision,
            passed boolean,
            latency_ms double precision,
            error varchar,
            input_tokens bigint,
            output_tokens bigint,
            cost_usd double precision
        )
        """,
        # the latest verdicts of each suite: one row per suite x candidate x metric
        """
        create table if not exists analytics.eval_regressions (
            suite varchar not null,
            run_id varchar not null,
            baseline varchar not null,
            candidate varchar not null,
            metric varchar not null,
            evaluator varchar not null,
            statistic varchar not null,
            test varchar not null,
            higher_is_better boolean not null,
            relative boolean not null,
            baseline_value double precision,
            candidate_value double precision,
            n integer not null,
            effect double precision,
            ci_low double precision,
            ci_high double precision,
            p_value double precision,
            p_adjusted double precision,
            verdict varchar not null,
            computed_at timestamptz not null
        )
        """,
    ],
    [
        # production analytics (analytics/): each table is recomputed whole by its asset
        """
        create table if not exists analytics.anomalies (
            bucket_start timestamptz not null,
            agent_id varchar,               -- null: all agents together
            metric varchar not null,
            value double precision,
            expected double precision,
            score double precision not null,
            direction varchar not null,     -- up | down
            n bigint,                       -- runs (or points) in the bucket
            method varchar not null,
            note varchar,
            detected_at timestamptz not null
        )
        """,
        """
        create table if not exists analytics.forecasts (
            agent_id varchar,               -- null: all agents together
            metric varchar not null,
            target_date date not null,
            yhat double precision,
            yhat_lower_80 double precision,
            yhat_upper_80 double precision,
            yhat_lower_95 double precision,
            yhat_upper_95 double precision,
            model varchar not null,
            model_reason varchar,
            history_days integer,
            backtest_mase double precision,
            backtest_mase_seasonal_naive double precision,
            generated_at timestamptz not null
        )
        """,
        """
        create table if not exists analytics.budget_burn (
            agent_id varchar,               -- null: the total budget
            month date not null,
            budget_usd double precision not null,
            spend_to_date double precision not null,
            projected_month_end double precision,
            projected_lower_80 double precision,
            projected_upper_80 double precision,
            projected_lower_95 double precision,
            projected_upper_95 double precision,
            runs_out_on date,
            status varchar not null,        -- ok | at_risk | over
            as_of date not null,
            forecast_model varchar,
            computed_at timestamptz not null
        )
        """,
        """
        create table if not exists analytics.version_comparisons (
            agent_id varchar not null,
            baseline_version varchar not null,
            candidate_version varchar not null,
            switched_at timestamptz,
            window_hours double precision,
            metric varchar not null,
            n_baseline integer not null,
            n_candidate integer not null,
            baseline_value double precision,
            candidate_value double precision,
            effect double precision,
            ci_low double precision,
            ci_high double precision,
            p_value double precision,
            p_adjusted double precision,
            verdict varchar not null,
            test varchar,
            computed_at timestamptz not null
        )
        """,
        """
        create table if not exists analytics.correlations (
            agent_id varchar,
            granularity varchar not null,
            metric_a varchar not null,
            metric_b varchar not null,
            method varchar not null,
            r double precision,
            p_value double precision,
            n integer not null,
            computed_at timestamptz not null
        )
        """,
    ],
    [
        # alerting (alerting/): alerts with their state, the delivery outbox, the audit log
        """
        create table if not exists alerts.alerts (
            alert_id varchar primary key,
            fingerprint varchar not null,   -- rule | agent | metric
            rule varchar not null,
            kind varchar not null,
            severity varchar not null,
            state varchar not null,         -- firing | acknowledged | resolved
            agent_id varchar,
            metric varchar,
            value double precision,
            threshold double precision,
            condition varchar,
            message varchar,
            first_seen_at timestamptz not null,
            last_seen_at timestamptz not null,
            fire_count integer not null,
            escalation_level integer not null,
            notified boolean not null,
            acknowledged_by varchar,
            acknowledged_at timestamptz,
            ack_note varchar,
            resolved_at timestamptz
        )
        """,
        """
        create table if not exists alerts.deliveries (
            delivery_id varchar primary key,
            alert_id varchar not null,
            channel varchar not null,
            event varchar not null,         -- firing | resolved | escalated
            payload json not null,          -- what is sent, without secrets
            state varchar not null,         -- pending | sent
            attempts integer not null,
            last_error varchar,
            next_attempt_at timestamptz not null,
            created_at timestamptz not null,
            sent_at timestamptz
        )
        """,
        """
        create table if not exists alerts.audit_log (
            logged_at timestamptz not null,
            alert_id varchar,
            action varchar not null,
            actor varchar,
            detail varchar
        )
        """,
    ],
    [
        # agent registry (registry.py): agents, their versions, and every change to them
        """
        create table if not exists registry.agents (
            agent_id varchar primary key,
            name varchar,
            description varchar,
            owner varchar,
            capabilities json,              -- a list of strings
            registered_at timestamptz not null,
            updated_at timestamptz not null
        )
        """,
        """
        create table if not exists registry.agent_versions (
            agent_id varchar not null,
            agent_version varchar not null,
            description varchar,
            config json,                    -- an object; a version's config never changes
            status varchar not null,        -- registered | active | inactive | rolled_back
            registered_at timestamptz not null,
            deployed_at timestamptz,        -- when it last became active
            primary key (agent_id, agent_version)
        )
        """,
        "create sequence if not exists registry.audit_seq start 1",
        """
        create table if not exists registry.audit_log (
            seq bigint primary key,
            logged_at timestamptz not null,     -- when the change was recorded
            effective_at timestamptz not null,  -- when it took effect (an activation may be backdated)
            actor varchar,
            action varchar not null,    -- register_agent | update_agent | register_version | activate | rollback
            agent_id varchar not null,
            agent_version varchar,
            previous_version varchar,   -- the version that was active before an activation or rollback
            detail json
        )
        """,
    ],
    [
        # which analyses could judge which scope, and how much history the others wait for
        """
        create table if not exists analytics.readiness (
            analysis varchar not null,      -- anomalies | forecasts | budget_burn | version_comparisons | correlations
            agent_id varchar,               -- null: all agents together
            status varchar not null,        -- ready | waiting
            has bigint not null,
            needs bigint not null,
            unit varchar not null,          -- complete hours | complete days | versions
            reason varchar,                 -- why it waits, e.g. "forecasts need 3 complete days of history, ..."
            computed_at timestamptz not null
        )
        """,
    ],
    [
        # what a benchmark run measured (suite, dataset, agent code): suites rerun only when it changes
        "alter table evals.runs add column if not exists fingerprint varchar",
        # retention: what pruning removed, per file of the ledger and per pass
        "alter table raw.ingested_files add column if not exists pruned bigint default 0",
        "alter table raw.ingested_files add column if not exists pruned_at timestamptz",
        """
        create table if not exists raw.retention_log (
            pruned_at timestamptz not null,
            retention_days integer not null,
            cutoff timestamptz not null,
            table_name varchar not null,
            rows_removed bigint not null
        )
        """,
    ],
    [
        # every benchmark verdict with the change its suite could have found (80% power), and the
        # clusters it was judged over when the dataset has them
        "alter table analytics.eval_regressions add column if not exists mde double precision",
        "alter table analytics.eval_regressions add column if not exists clusters integer",
    ],
    [
        # forecasts: how the backtest's folds judged the intervals, and what that did to them
        "alter table analytics.forecasts add column if not exists backtest_folds integer",
        # share of the backtest's held-out days inside the model's own intervals (before widening)
        "alter table analytics.forecasts add column if not exists backtest_coverage_80 double precision",
        "alter table analytics.forecasts add column if not exists backtest_coverage_95 double precision",
        # the factor the issued intervals were widened (or, by a tenth at most, narrowed) by
        "alter table analytics.forecasts add column if not exists interval_widening_80 double precision",
        "alter table analytics.forecasts add column if not exists interval_widening_95 double precision",
    ],
]

SCHEMA_VERSION = len(MIGRATIONS)
