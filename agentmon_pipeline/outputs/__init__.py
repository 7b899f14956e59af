"""What agentmon writes for others to read: table exports, the dashboards' snapshot, the Prometheus textfile."""
