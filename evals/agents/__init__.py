"""Reference agents: offline, deterministic, no LLM calls. Each has versions that regress on part
of the cases and a version that is slower, so the demo's benchmarks show real verdicts."""
