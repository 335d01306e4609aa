"""Operating the server: Prometheus metrics, health, self-tracing (see README.md)."""
