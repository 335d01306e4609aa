"""Media uploads and downloads on either blob store (see README.md)."""
