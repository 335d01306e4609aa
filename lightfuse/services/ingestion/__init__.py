"""Ingestion: batch and OTLP events validated, merged and committed (see README.md)."""
