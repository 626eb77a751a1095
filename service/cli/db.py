"""``qc db``: database schema (Alembic migrations). Also the helpers other command modules share."""

from __future__ import annotations

import datetime as dt
import getpass
from collections.abc import Iterator
from contextlib import contextmanager

import click

from qc.errors import KipimoError
from service.core.context import ServiceContext, clock_for, open_context
from service.settings import Settings
from service.storage.db import current_revision, open_database, upgrade_database

from .base import cli

__all__ = ["cli_actor", "cli_errors", "migrated_context", "now_utc"]

HEAD = "head"


def now_utc(settings: Settings) -> dt.datetime:
    """Now, from the settings' clock (``KIPIMO_FROZEN_TIME`` freezes it), for commands without a context."""
    return clock_for(settings).now()


def cli_actor() -> str:
    """How the audit log names a person at the console."""
    try:
        return f"cli:{getpass.getuser()}"
    except Exception:  # noqa: BLE001 - no user name in some containers
        return "cli"


@contextmanager
def cli_errors() -> Iterator[None]:
    """Show Kipimo errors as a readable message and exit status 1, not a traceback."""
    try:
        yield
    except KipimoError as exc:
        raise click.ClickException(str(exc)) from None


def head_revision() -> str:
    from alembic.script import ScriptDirectory  # noqa: PLC0415

    from service.storage.db import MIGRATIONS_DIR  # noqa: PLC0415

    head = ScriptDirectory(str(MIGRATIONS_DIR)).get_current_head()
    assert head is not None
    return head


@contextmanager
def migrated_context(settings: Settings) -> Iterator[ServiceContext]:
    """Open the data folder and database; refuse (with advice) if the schema is not current."""
    ctx = open_context(settings)
    try:
        revision = current_revision(ctx.db.engine)
        if revision != head_revision():
            raise click.ClickException(
                f"the database at {_safe_url(settings)} is at schema {revision or 'none'}, not {head_revision()}; "
                "run `qc init` (new installation) or `qc db upgrade`"
            )
        with cli_errors():
            yield ctx
    finally:
        ctx.close()


def _safe_url(settings: Settings) -> str:
    from sqlalchemy.engine import make_url  # noqa: PLC0415

    return make_url(settings.resolved_database_url).render_as_string(hide_password=True)


@cli.group("db")
def db_group() -> None:
    """Database schema: create and upgrade it with the shipped Alembic migrations.

    The database is SQLite in KIPIMO_DATA_DIR unless KIPIMO_DATABASE_URL names
    another (e.g. postgresql+psycopg://user@host/kipimo).
    """


@db_group.command("upgrade")
@click.option("--revision", default=HEAD, show_default=True, help="Target Alembic revision.")
@click.pass_obj
def db_upgrade(settings: Settings, revision: str) -> None:
    """Create or upgrade the database schema to the newest (or given) revision."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade_database(settings.resolved_database_url, revision)
    db = open_database(settings.resolved_database_url)
    try:
        click.echo(f"database {_safe_url(settings)} at revision {current_revision(db.engine)}")
    finally:
        db.dispose()


@db_group.command("current")
@click.pass_obj
def db_current(settings: Settings) -> None:
    """Show the schema revision the database is at, and the newest one shipped."""
    db = open_database(settings.resolved_database_url)
    try:
        click.echo(f"database {_safe_url(settings)}: {current_revision(db.engine) or 'empty'} "
                   f"(newest: {head_revision()})")
    finally:
        db.dispose()
