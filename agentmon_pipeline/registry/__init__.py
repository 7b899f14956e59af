"""The agent registry: agents, versions, activations and rollbacks, audited (plain Python)."""

from agentmon_pipeline.registry.agents_file import parse_agents_file, sync_agents_file
from agentmon_pipeline.registry.store import AgentRegistry, Change

__all__ = ["AgentRegistry", "Change", "parse_agents_file", "sync_agents_file"]
