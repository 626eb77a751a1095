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


def test_migration_0003_reidentifies_standards_from_their_stored_bytes(db_url):
    import hashlib
    import json

    import rfc8785

    from qc.standards import parse_standard
    from service.storage import repository as repo
    from service.storage.db import downgrade_database, make_engine, open_database, upgrade_database
    from service.storage.orm import Product, StandardRow
    from tests.integration.support import TEST_STANDARD

    engine = make_engine(db_url)
    try:
        downgrade_database(engine, "base")
        upgrade_database(engine, "0002")
        # What Kipimo wrote before 0003: the parsed model re-serialised with every default, hashed.
        legacy = parse_standard(TEST_STANDARD).model_dump(mode="json")
        old_bytes = rfc8785.dumps(legacy)
        old_sha = hashlib.sha256(old_bytes).hexdigest()
        pretty = json.dumps(dict(legacy, version=2), indent=2)  # stored bytes that are not the bytes it hashed
        pretty_old_sha = hashlib.sha256(rfc8785.dumps(dict(legacy, version=2))).hexdigest()
        with engine.begin() as conn:
            conn.execute(Product.__table__.insert().values(id=1, slug="test-widget", name="Test widget",
                                                           created_at=TEST_NOW))
            for version, content, sha in ((1, old_bytes.decode(), old_sha), (2, pretty, pretty_old_sha)):
                conn.execute(StandardRow.__table__.insert().values(
                    product_id=1, version=version, status="released", name="Test widget", content=content,
                    sha256=sha, released_at=TEST_NOW, released_by="cli:someone"))
        upgrade_database(engine)

        db = open_database(db_url)
        try:
            with db.session() as session:
                rows = {r.version: r for r in repo.list_standards(session, product="test-widget")}
                new_pretty = hashlib.sha256(pretty.encode()).hexdigest()
                assert (rows[1].sha256, rows[2].sha256) == (old_sha, new_pretty)
                assert rows[2].content == pretty  # the bytes themselves are never touched
                (event,) = [e for e in repo.audit_events(session, subject_type="standard")
                            if e.action == "standard.reidentify"]
                assert event.actor == "migration 0003" and event.detail["changed"] == 1
                assert event.detail["mapping"] == {"test-widget@1": {"old": old_sha, "new": old_sha},
                                                   "test-widget@2": {"old": pretty_old_sha, "new": new_pretty}}
                assert repo.standard_from_row(rows[2]).sha256 == new_pretty  # verifies and parses
            # The shipped file against its legacy row: the same rules, so already published (no new row).
            with db.write_session() as session:
                row, created = repo.publish_standard(session, standard=parse_standard(TEST_STANDARD), by="test",
                                                     now=TEST_NOW)
                assert (created, row.sha256) == (False, old_sha)
                assert parse_standard(TEST_STANDARD).sha256 != old_sha  # though the input document hashes apart
        finally:
            db.dispose()
        with pytest.raises(DBAPIError, match="kipimo"):  # the guard is back after the migration
            with engine.begin() as conn:
                conn.execute(text("UPDATE standards SET sha256 = 'x'"))
    finally:
        engine.dispose()


def test_migration_0003_leaves_a_new_database_without_an_event(ctx):
    from service.storage.repository import audit_events

    with ctx.db.session() as session:
        assert [e for e in audit_events(session) if e.action == "standard.reidentify"] == []
