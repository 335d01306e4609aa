"""SQL of the trace store: writes of the ingestion writer, reads, analytics (see store/README.md)."""
