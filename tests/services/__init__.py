"""Service tests: the coordinator's rules over a real store, on SQLite and PostgreSQL."""
