"""Users, organisations, projects, memberships and the purge of deleted projects (see README.md)."""
