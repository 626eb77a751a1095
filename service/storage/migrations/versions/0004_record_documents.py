"""record documents: the whole record under its hash

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01

``submissions.document`` holds the exact document ``record_sha256`` covers (``qc.records``), so the
API can serve it and anyone can recompute the hash. It replaces ``submissions.record`` (the client's
normalised record, one part of the old hashed document). Existing rows get their legacy document
(``kipimo.record/1``, no ``schema`` key) rebuilt exactly as it was hashed: the record, the standard's
hash at the time, the photo hashes and the results. The standard's hash is taken from the candidates
this database holds (the row's identity, the hash of its stored content, hashes named by standard audit
events, which is where a re-identification records the old ones) and only the one that reproduces the
stored ``record_sha256`` is used; a row that matches none was altered before this migration and keeps
its stored identity, so a later check still reports it.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Callable, Iterable
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from qc.records import document_schema, document_sha256, legacy_record_document

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

log = logging.getLogger("alembic.runtime.migration")

_HEX64 = re.compile(r"^[0-9a-f]{64}$")

_submissions = sa.table("submissions", sa.column("seq", sa.Integer), sa.column("standard_id", sa.Integer),
                        sa.column("record", JSON), sa.column("document", JSON),
                        sa.column("record_sha256", sa.String))
_photos = sa.table("photos", sa.column("submission_seq", sa.Integer), sa.column("slot", sa.String),
                   sa.column("sha256", sa.String))
_results = sa.table("check_results", sa.column("submission_seq", sa.Integer), sa.column("position", sa.Integer),
                    sa.column("detail", JSON))
_standards = sa.table("standards", sa.column("id", sa.Integer), sa.column("content", sa.Text),
                      sa.column("sha256", sa.String))
_audit = sa.table("audit_events", sa.column("subject_type", sa.String), sa.column("detail", JSON))


def _is_postgres() -> bool:
    return op.get_context().dialect.name == "postgresql"


def _without_append_only_guard(work: Callable[[sa.Connection], None]) -> None:
    """Run ``work`` with the submissions UPDATE guard lifted (0001's triggers), then restore it."""
    conn = op.get_bind()
    if _is_postgres():
        op.execute("ALTER TABLE submissions DISABLE TRIGGER submissions_append_only")
        work(conn)
        op.execute("ALTER TABLE submissions ENABLE TRIGGER submissions_append_only")
        return
    op.execute("DROP TRIGGER IF EXISTS submissions_no_update")
    work(conn)
    op.execute("CREATE TRIGGER submissions_no_update BEFORE UPDATE ON submissions "
               "BEGIN SELECT RAISE(ABORT, 'kipimo: UPDATE on submissions refused: rows are append-only'); END")


def _add_json_column(name: str, fill: Callable[[sa.Connection], None]) -> None:
    # SQLite adds a NOT NULL column only with a default; changing it afterwards would mean rebuilding the
    # table (and its triggers and foreign keys), so the default stays there; every insert gives the value.
    if _is_postgres():
        op.add_column("submissions", sa.Column(name, JSON, nullable=True))
        _without_append_only_guard(fill)
        op.alter_column("submissions", name, nullable=False)
    else:
        op.add_column("submissions", sa.Column(name, JSON, nullable=False, server_default=sa.text("'{}'")))
        _without_append_only_guard(fill)


def _hashes_in(value: Any) -> Iterable[str]:
    if isinstance(value, str) and _HEX64.match(value):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _hashes_in(v)
    elif isinstance(value, list):
        for v in value:
            yield from _hashes_in(v)


def _standard_candidates(conn: sa.Connection) -> dict[int, list[str]]:
    audited = [h for (detail,) in conn.execute(sa.select(_audit.c.detail).where(_audit.c.subject_type == "standard"))
               for h in _hashes_in(detail)]
    out: dict[int, list[str]] = {}
    for sid, content, sha in conn.execute(sa.select(_standards.c.id, _standards.c.content, _standards.c.sha256)):
        own = [sha, hashlib.sha256(content.encode("utf-8")).hexdigest()]
        out[sid] = list(dict.fromkeys(own + audited))
    return out


def _fill_documents(conn: sa.Connection) -> None:
    candidates = _standard_candidates(conn)
    rows = conn.execute(sa.select(_submissions.c.seq, _submissions.c.standard_id, _submissions.c.record,
                                  _submissions.c.record_sha256)).all()
    for seq, standard_id, record, stored_hash in rows:
        photos = dict(conn.execute(sa.select(_photos.c.slot, _photos.c.sha256)
                                   .where(_photos.c.submission_seq == seq)).all())
        results = list(conn.scalars(sa.select(_results.c.detail).where(_results.c.submission_seq == seq)
                                    .order_by(_results.c.position)))
        options = candidates.get(standard_id, [])

        def legacy(standard_sha256: str, record: Any = record, photos: Any = photos, results: Any = results) -> Any:
            return legacy_record_document(record=record or {}, standard_sha256=standard_sha256, photos=photos,
                                          results=results)

        document = next((legacy(h) for h in options if document_sha256(legacy(h)) == stored_hash), None)
        if document is None:
            log.warning("submission seq %s: its stored rows do not reproduce its record hash", seq)
            document = legacy(options[0] if options else "")
        conn.execute(sa.update(_submissions).where(_submissions.c.seq == seq).values(document=document))


def _fill_records(conn: sa.Connection) -> None:
    """Downgrade: the old ``record`` column back from the documents (a v2 document's record fields)."""
    for seq, document in conn.execute(sa.select(_submissions.c.seq, _submissions.c.document)).all():
        if document_schema(document) != "kipimo.record/2":
            record = document.get("record", {})
        else:
            record = {
                "id": document["id"], "node": document["node"], "product": document["product"],
                "standard_version": document["standard"]["version"], "lot": document["lot"],
                "unit": document["unit"], "technician": document["entered_as"] or document["person"]["name"],
                "captured_at": document["captured_at"], "answers": document["answers"],
                "notes": document["notes"], "location": document["location"], "corrects": document["corrects"],
            }
        conn.execute(sa.update(_submissions).where(_submissions.c.seq == seq).values(record=record))


def upgrade() -> None:
    _add_json_column("document", _fill_documents)
    op.drop_column("submissions", "record")


def downgrade() -> None:
    _add_json_column("record", _fill_records)
    op.drop_column("submissions", "document")
