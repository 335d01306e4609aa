"""API keys, request authentication and role-based access (see README.md)."""
