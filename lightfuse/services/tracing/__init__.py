"""Tracing reads: traces, observations, sessions, scores and dashboards (see README.md)."""
