"""Shared kernel of the service domains: row shapes, request errors, the clock (see README.md)."""
