"""Schema and storage guarantees: migrations match the models, records are append-only."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from service.storage.db import current_revision
from service.storage.orm import Base
from tests.clock import TEST_NOW
from tests.integration.support import record, upload


def test_migrations_match_the_orm_models(ctx):
    with ctx.db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []
    assert current_revision(ctx.db.engine) is not None


def test_sqlite_runs_wal_with_full_sync_and_foreign_keys(ctx):
    if ctx.db.backend != "sqlite":
        pytest.skip("SQLite pragmas")
    with ctx.db.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


@pytest.mark.parametrize("statement", [
    "UPDATE audit_events SET actor = 'someone else'",
    "DELETE FROM audit_events",
    "UPDATE submissions SET verdict = 'pass'",
    "DELETE FROM check_results",
    "UPDATE photos SET sha256 = 'x'",
    "UPDATE standards SET content = '{}'",
    "DELETE FROM standards",
])
def test_records_audit_log_and_standards_cannot_be_altered(client, seed, ctx, statement):
    failing = record(answers={"diameter": 11, "clean": True, "colour": "red"})
    assert upload(client, seed.tech_a, failing).status_code == 201
    with pytest.raises(DBAPIError, match="kipimo"):
        with ctx.db.engine.begin() as conn:
            conn.execute(text(statement))


def test_every_write_leaves_an_audit_event(client, seed, ctx):
    from service.storage.repository import audit_events

    rec = record()
    upload(client, seed.tech_a, rec)
    with ctx.db.session() as session:
        events = audit_events(session, subject_type="submission", subject_id=rec["id"])
        assert [(e.action, e.role, e.actor.endswith("Amina")) for e in events] == [
            ("submission.create", "technician", True)]
        assert events[0].detail["verdict"] == "pass"
        published = audit_events(session, subject_type="standard")
        assert [e.subject_id for e in published] == ["test-widget@1"]


def test_foreign_key_is_enforced(ctx):

    from sqlalchemy.exc import IntegrityError

    from service.storage.orm import AccessToken

    with pytest.raises(IntegrityError):
        with ctx.db.write_session() as session:
            session.add(AccessToken(token_sha256="0" * 64, role="technician", name="x", node_id=999,
                                    created_at=TEST_NOW))


def test_stored_rows_reproduce_the_record_hash(client, seed, ctx):
    from service.core.submissions import recompute_record_sha256
    from service.storage.repository import get_submission

    rec = record(answers={"diameter": 10.25, "clean": True, "colour": "blue", "note": "ünïcødé ✓ \"quoted\""},
                 notes="line one\nline two", location={"lat": -1.2921, "lon": 36.8219})
    body = upload(client, seed.tech_a, rec).json()
    with ctx.db.session() as session:
        sub = get_submission(session, id=rec["id"])
        assert recompute_record_sha256(sub) == body["record_sha256"]


def test_migrations_downgrade_to_empty_and_upgrade_again(db_url):
    from sqlalchemy import inspect

    from service.storage.db import downgrade_database, make_engine, upgrade_database

    engine = make_engine(db_url)
    try:
        downgrade_database(engine, "base")
        assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
        upgrade_database(engine)
        assert {"submissions", "photos", "audit_events", "standards"} <= set(inspect(engine).get_table_names())
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
        assert diff == []
    finally:
        engine.dispose()
