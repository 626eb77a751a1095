"""Alembic environment: migrations run on the engine handed in by ``service.storage.db``."""

from __future__ import annotations

from alembic import context

from service.storage.orm import Base

target_metadata = Base.metadata


def run_migrations() -> None:
    engine = context.config.attributes.get("engine")
    if engine is None:  # plain `alembic` command line: use sqlalchemy.url / KIPIMO_* settings
        from service.settings import Settings
        from service.storage.db import make_engine

        url = context.config.get_main_option("sqlalchemy.url") or Settings().resolved_database_url
        engine = make_engine(url)
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()


run_migrations()
