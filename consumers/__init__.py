"""The consumer runtime (commit, retry, dead letters, shutdown) and one module per consumer."""
