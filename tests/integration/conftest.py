"""Fixtures for service tests; every test using ``db_url`` runs on SQLite and on PostgreSQL.

Fixtures (reuse them in any test under tests/integration or tests/e2e):

- ``db_url``: a migrated, empty database. Parametrised: ``sqlite`` (a fresh file per test, copied from
  a migrated template) and ``postgresql`` (when KIPIMO_TEST_POSTGRES_URL is set: one database per test
  session, created with a unique name and dropped afterwards; tables are emptied before each test).
  Without the URL the PostgreSQL case skips, unless KIPIMO_REQUIRE_POSTGRES=1, where it fails
  (as it does when the server is unreachable).
- ``settings``: ``Settings`` on ``db_url`` with a data folder in ``tmp_path``, vision off (fast, no
  dependence on the vision stack; tests that want vision use ``settings.model_copy(update=...)``).
- ``ctx``: an open ``ServiceContext`` (database + photo store) on ``settings``, its clock frozen at
  ``tests.clock.TEST_NOW`` (``ctx.clock.advance`` moves it).
- ``app`` / ``client``: ``create_app(settings)`` and a ``TestClient`` on it.
- ``seed``: nodes ``node-a`` and ``node-b``, tokens (``seed.tech_a``, ``seed.tech_b``, ``seed.manager``,
  ``seed.auditor``, ``seed.admin``) and the test standard (``support.TEST_STANDARD``) published.
- ``make_client(**settings_overrides)``: a client on the same database with other settings
  (e.g. ``max_pixels=1_000_000``).
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from qc.standards import parse_standard
from service.core.auth import create_token
from service.core.clock import FrozenClock
from service.core.context import ServiceContext, open_context
from service.http.app import create_app
from service.settings import Settings
from service.storage import repository as repo
from service.storage.db import upgrade_database
from service.storage.orm import Base
from tests.clock import TEST_NOW
from tests.integration.support import TEST_STANDARD

REPO_ROOT = Path(__file__).resolve().parents[2]


def _require_postgres() -> bool:
    return os.environ.get("KIPIMO_REQUIRE_POSTGRES", "") not in ("", "0", "false", "no")


@pytest.fixture(scope="session")
def _sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sqlite-template") / "kipimo.sqlite3"
    upgrade_database(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def _postgres_database() -> Iterator[str]:
    base = os.environ.get("KIPIMO_TEST_POSTGRES_URL")
    if not base:
        if _require_postgres():
            pytest.fail("KIPIMO_REQUIRE_POSTGRES=1 but KIPIMO_TEST_POSTGRES_URL is not set")
        pytest.skip("PostgreSQL tests need KIPIMO_TEST_POSTGRES_URL")
    url = make_url(base)
    if url.drivername == "postgresql":
        url = url.set(drivername="postgresql+psycopg")
    name = f"kipimo_test_{os.getpid()}_{uuid.uuid4().hex[:10]}"  # unique: engineers share one server
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # noqa: BLE001 - unreachable server, bad credentials, ...
        admin.dispose()
        if _require_postgres():
            pytest.fail(f"KIPIMO_REQUIRE_POSTGRES=1 but PostgreSQL at {url.render_as_string()} failed: {exc}")
        pytest.skip(f"PostgreSQL unreachable: {exc}")
    test_url = url.set(database=name).render_as_string(hide_password=False)
    try:
        upgrade_database(test_url)
        yield test_url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _empty_postgres(url: str) -> None:
    """Delete every row (fast on tiny tables); TRUNCATE when we may not bypass the append-only triggers."""
    tables = [t.name for t in reversed(Base.metadata.sorted_tables)]
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(text("SET LOCAL lock_timeout = '20s'"))
            try:
                with conn.begin_nested():
                    conn.execute(text("SET LOCAL session_replication_role = replica"))  # superuser only
            except DBAPIError:
                conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
                return
            for table in tables:
                conn.execute(text(f'DELETE FROM "{table}"'))
    finally:
        engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        path = tmp_path / "db" / "kipimo.sqlite3"
        path.parent.mkdir()
        shutil.copyfile(request.getfixturevalue("_sqlite_template"), path)
        return f"sqlite:///{path}"
    url = request.getfixturevalue("_postgres_database")
    _empty_postgres(url)
    return url


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        database_url=db_url,
        checklists_dir=REPO_ROOT / "checklists",
        models_dir=REPO_ROOT / "models",
        vision=False,
    )


@pytest.fixture
def ctx(settings: Settings) -> Iterator[ServiceContext]:
    context = open_context(settings, clock=FrozenClock(TEST_NOW))
    yield context
    context.close()


@pytest.fixture
def app(settings: Settings, ctx: ServiceContext) -> Any:
    return create_app(settings, context=ctx)


@pytest.fixture
def client(app: Any) -> Iterator[TestClient]:
    with TestClient(app) as c:
        yield c


@pytest.fixture
def make_client(settings: Settings, ctx: ServiceContext) -> Iterator[Callable[..., TestClient]]:
    clients: list[TestClient] = []

    def make(**overrides: Any) -> TestClient:
        other = settings.model_copy(update=overrides)
        c = TestClient(create_app(other, context=ServiceContext(other, ctx.db, ctx.store, ctx.clock)))
        clients.append(c)
        return c

    yield make
    for c in clients:
        c.close()


@dataclass(frozen=True)
class Seed:
    tech_a: str
    tech_b: str
    manager: str
    auditor: str
    admin: str


@pytest.fixture
def seed(ctx: ServiceContext) -> Seed:
    now = ctx.now() - dt.timedelta(days=3)
    with ctx.db.write_session() as session:
        for node in ("node-a", "node-b"):
            repo.create_node(session, name=node, now=now)
        tokens = {
            "tech_a": create_token(session, actor="tests", role="technician", node="node-a", name="Amina", now=now)[0],
            "tech_b": create_token(session, actor="tests", role="technician", node="node-b", name="Baraka", now=now)[0],
            "manager": create_token(session, actor="tests", role="manager", name="Quality manager", now=now)[0],
            "auditor": create_token(session, actor="tests", role="auditor", name="Auditor", now=now)[0],
            "admin": create_token(session, actor="tests", role="admin", name="Admin", now=now)[0],
        }
        repo.publish_standard(session, standard=parse_standard(TEST_STANDARD, source="test"), by="test", now=now)
    return Seed(**tokens)
