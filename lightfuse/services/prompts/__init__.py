"""Prompt management: versions, labels, dependencies and the read cache (see README.md)."""
