"""The registry as assets: syncs agents.yaml (when there is one) into the registry tables, which
the marts join (dim_agents, dim_agent_versions, fct_deployments)."""

import dagster as dg

from agentmon_pipeline.config import settings
from agentmon_pipeline.registry import AgentRegistry, sync_agents_file
from agentmon_pipeline.storage import connect

REGISTRY_TABLES = {
    "agents": "Registered agents: name, description, owner, capabilities.",
    "agent_versions": "Registered versions with their config and status; one active per agent.",
    "audit_log": "Every registry change: registrations, activations, rollbacks, with actor and time.",
}


@dg.multi_asset(
    name="agent_registry",
    specs=[
        dg.AssetSpec(["registry", table], description=text, group_name="registry", kinds={"duckdb"})
        for table, text in REGISTRY_TABLES.items()
    ],
)
def agent_registry(context: dg.AssetExecutionContext):
    s = settings()
    with connect(s) as con:
        registry = AgentRegistry(con, actor="agents.yaml")
        changes = sync_agents_file(registry, s.agents_file) if s.agents_file else []
        agents = registry.agents()
        counts = {t: con.execute(f"select count(*) from registry.{t}").fetchone()[0] for t in REGISTRY_TABLES}
    source = str(s.agents_file) if s.agents_file else "none (set AGENTMON_AGENTS_FILE or add agents.yaml)"
    for change in changes:
        context.log.info(f"registry: {change.line()}")
    lines = ["| agent | owner | active version | versions |", "|---|---|---|---|"]
    lines += [
        f"| {a['agent_id']} | {a['owner'] or '-'} | {a['active_version'] or '-'} | {a['versions']} |"
        for a in agents
    ]
    extra = {
        "agents": {
            "agents_file": source,
            "changes_now": len(changes),
            "registry": dg.MetadataValue.md("\n".join(lines)),
        },
        "agent_versions": {"active_versions": sum(1 for a in agents if a["active_version"])},
        "audit_log": {"changes_now": len(changes)},
    }
    for table in REGISTRY_TABLES:
        yield dg.MaterializeResult(
            asset_key=["registry", table], metadata={"dagster/row_count": counts[table], **extra[table]}
        )
