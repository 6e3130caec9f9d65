"""Alembic migrations of the store (run by `raksha.store.migrate`)."""
