"""Persistence: engines, ORM, repository functions, the photo store, Alembic migrations."""
