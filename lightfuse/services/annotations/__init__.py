"""Comments and annotation queues (see README.md)."""
