"""The transcript store: per-deployment event logs, compaction and the history.json projection."""
