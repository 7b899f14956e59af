"""Create the dbt sources (raw.*, evals.*, registry.*) in a local Spark warehouse, with a few rows.

The tables are those of agentmon_pipeline/storage/schema.py in Spark types: timestamptz -> timestamp
(an instant, shown in spark.sql.session.timeZone), json -> string, varchar[] -> array<string>.
Run it with the same warehouse dir and metastore as the dbt `spark` target, and not while dbt
runs (the embedded Derby metastore takes one JVM at a time):

    python dbt_project/spark/create_sources.py [--empty] [--reset]

--empty creates the tables without rows; --reset also drops dbt's databases (staging,
intermediate, marts) for a build from nothing.
"""

from __future__ import annotations

import os
import sys

from pyspark.sql import SparkSession

WAREHOUSE = os.environ.get("AGENTMON_SPARK_WAREHOUSE", "/tmp/spark-wh")
METASTORE = os.environ.get("AGENTMON_SPARK_METASTORE", "/tmp/spark-metastore")

TABLES = {
    "raw.spans": """
        trace_id string, span_id string, parent_span_id string, name string, kind string,
        start_time timestamp, end_time timestamp, duration_ms double, status string,
        error_type string, error_message string, agent_id string, agent_name string,
        agent_version string, session_id string, user_id string, model string, provider string,
        input_tokens bigint, output_tokens bigint, total_tokens bigint, cached_input_tokens bigint,
        cache_creation_input_tokens bigint, reasoning_tokens bigint, cost_usd double,
        tool_name string, retry_count int, input string, output string, attributes string,
        resource string, source_format string, load_id bigint, line_number bigint""",
    "raw.metrics": """
        name string, value double, time timestamp, metric_kind string, unit string, labels string,
        agent_id string, agent_version string, load_id bigint, line_number bigint""",
    "raw.events": """
        event_id string, name string, time timestamp, trace_id string, span_id string,
        agent_id string, agent_version string, attributes string, load_id bigint, line_number bigint""",
    "raw.model_prices": """
        model string, provider string, matched_model_id string, input_usd_per_mtok double,
        cached_input_usd_per_mtok double, cache_write_usd_per_mtok double,
        output_usd_per_mtok double, effective_from timestamp, source string, resolved_at timestamp""",
    "evals.runs": """
        run_id string, suite string, suite_path string, mode string, versions array<string>,
        baseline string, repeats int, cases int, calls int, failed_calls int,
        started_at timestamp, finished_at timestamp, fingerprint string""",
    "evals.results": """
        run_id string, suite string, case_id string, version string, repeat int, evaluator string,
        score double, passed boolean, latency_ms double, error string, input_tokens bigint,
        output_tokens bigint, cost_usd double""",
    "registry.agents": """
        agent_id string, name string, description string, owner string, capabilities string,
        registered_at timestamp, updated_at timestamp""",
    "registry.agent_versions": """
        agent_id string, agent_version string, description string, config string, status string,
        registered_at timestamp, deployed_at timestamp""",
    "registry.audit_log": """
        seq bigint, logged_at timestamp, effective_at timestamp, actor string, action string,
        agent_id string, agent_version string, previous_version string, detail string""",
}

T = "timestamp'2026-01-05 10:00:00'"
ROWS = {
    # one trace: agent a1 -> llm wrapper -> llm call, agent -> tool; one trace without agent span
    "raw.spans": [
        f"('t1','s1',null,'run','agent',{T},{T} + interval 5 seconds,5000,'ok',null,null,'a1','Agent One','v1','sess1','u1',null,null,null,null,null,null,null,null,null,null,0,null,null,'{{}}','{{}}','otlp',1,1)",
        f"('t1','s2','s1','wrap','llm',{T},{T} + interval 2 seconds,2000,'ok',null,null,null,null,null,null,null,'gpt-4o','openai',100,20,120,null,null,null,null,null,null,null,null,'{{}}','{{}}','otlp',1,2)",
        f"('t1','s3','s2','chat','llm',{T},{T} + interval 2 seconds,2000,'ok',null,null,null,null,null,null,null,'gpt-4o','openai',100,20,130,10,null,null,null,null,1,null,null,'{{\"agentmon.source\":\"telemetry\"}}','{{}}','otlp',1,3)",
        f"('t1','s4','s1','search','tool',{T},{T} + interval 1 seconds,1000,'error','Timeout','slow',null,null,null,null,null,null,null,null,null,null,null,null,null,null,'search',null,null,null,'{{}}','{{}}','otlp',1,4)",
        f"('t2','r1',null,'root','chain',{T},{T} + interval 3 seconds,3000,'ok',null,null,'a2',null,'v9',null,null,null,null,null,null,null,null,null,null,null,null,null,null,null,'{{}}','{{}}','otlp',1,5)",
        f"('t2','r2','r1','chat','llm',{T},{T} + interval 1 seconds,1000,'ok',null,null,null,null,null,null,null,'acme-internal-7b','acme',1000,100,null,null,null,null,null,null,null,null,null,'{{}}','{{}}','otlp',1,6)",
    ],
    "raw.metrics": [
        f"('cpu',0.5,{T},'system','ratio','{{\"host\":\"h1\"}}',null,null,1,1)",
        f"('task_completion',1.0,{T},'business',null,null,'a1','v1',1,2)",
    ],
    "raw.events": [
        f"('e1','deployment',{T} - interval 1 hours,null,null,'a1','v1','{{}}',1,1)",
        f"('e2','feedback',{T},'t1','s1',null,null,'{{\"agent_id\":\"a1\",\"version\":\"v1\"}}',1,2)",
    ],
    "raw.model_prices": [
        f"('gpt-4o','openai','gpt-4o',2.5,1.25,null,10.0,timestamp'2024-01-01 00:00:00','genai-prices',{T})",
    ],
    "evals.runs": [
        f"('er1','suite1','evals/suite1.yaml','replay',array('v1','v2'),'v1',1,2,4,0,{T},{T} + interval 1 minutes,'fp')",
    ],
    "evals.results": [
        "('er1','suite1','c1','v1',0,'exact',1.0,true,100,null,10,5,0.001)",
        "('er1','suite1','c2','v1',0,'exact',0.0,false,120,null,10,5,0.001)",
        "('er1','suite1','c1','v2',0,'exact',1.0,true,90,null,10,5,0.001)",
        "('er1','suite1','c2','v2',0,'exact',1.0,true,95,null,10,5,0.001)",
    ],
    "registry.agents": [
        f"('a1','Agent One','first','team','[\"search\"]',{T} - interval 1 days,{T} - interval 1 days)",
    ],
    "registry.agent_versions": [
        f"('a1','v1','first version','{{}}','active',{T} - interval 1 days,{T} - interval 1 hours)",
    ],
    "registry.audit_log": [
        f"(1,{T} - interval 1 days,{T} - interval 1 days,'me','register_agent','a1',null,null,'{{}}')",
        f"(2,{T} - interval 1 hours,{T} - interval 1 hours,'me','activate','a1','v1',null,'{{}}')",
    ],
}


def main() -> None:
    empty = "--empty" in sys.argv[1:]
    spark = (
        SparkSession.builder.master("local[2]")
        .config("spark.sql.warehouse.dir", WAREHOUSE)
        .config(
            "spark.hadoop.javax.jdo.option.ConnectionURL",
            f"jdbc:derby:;databaseName={METASTORE}/metastore_db;create=true",
        )
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.ui.enabled", "false")
        .enableHiveSupport()
        .getOrCreate()
    )
    if "--reset" in sys.argv[1:]:
        for schema in ("staging", "intermediate", "marts"):
            spark.sql(f"drop database if exists {schema} cascade")
    for schema in ("raw", "evals", "registry"):
        spark.sql(f"create database if not exists {schema}")
    for table, columns in TABLES.items():
        spark.sql(f"drop table if exists {table}")
        spark.sql(f"create table {table} ({columns}) using parquet")
        if not empty and ROWS.get(table):
            spark.sql(f"insert into {table} values {', '.join(ROWS[table])}")
        print(table, spark.table(table).count(), "rows")
    spark.stop()


if __name__ == "__main__":
    main()
