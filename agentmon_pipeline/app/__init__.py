"""The command line: `agentmon` (cli), its runs and their summary (runner), and the ledger's answer to
"is a run needed?" (runstate)."""
