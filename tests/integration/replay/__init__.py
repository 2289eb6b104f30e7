"""Replay, rebuild and re-score on the real broker and PostgreSQL."""
