"""Tools for developing agentmon: the benchmarks (`make bench`) and the demo data generator (`agentmon demo`)."""
