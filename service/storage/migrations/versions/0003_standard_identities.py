"""standard identities from their stored bytes

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01

A standard is now identified by the SHA-256 of the bytes stored for it (the RFC
8785 canonical form of its resolved input document), verified as bytes on every
load. Rows written before hashed a re-serialisation of the parsed model; this
re-identifies each from its stored content, sha256(content), and records the old
→ new mapping as one audit event (also when nothing changed, so the audit log
shows the migration ran). The content itself is never touched.
"""

from __future__ import annotations

import hashlib

import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None

# As created in 0001: the guard that refuses changes to a published standard's identity and content.
_STANDARD_FIELDS = ("product_id", "version", "content", "sha256", "released_at", "released_by")
_ACTOR = "migration 0003"


def _drop_guard(dialect: str) -> None:
    op.execute("DROP TRIGGER standards_immutable ON standards" if dialect == "postgresql"
               else "DROP TRIGGER standards_immutable")


def _create_guard(dialect: str) -> None:
    if dialect == "postgresql":
        op.execute(
            f"CREATE TRIGGER standards_immutable BEFORE UPDATE OF {', '.join(_STANDARD_FIELDS)} OR DELETE "
            "ON standards FOR EACH ROW EXECUTE FUNCTION kipimo_refuse_change()"
        )
    else:
        op.execute(
            f"CREATE TRIGGER standards_immutable BEFORE UPDATE OF {', '.join(_STANDARD_FIELDS)} ON standards "
            "BEGIN SELECT RAISE(ABORT, 'kipimo: a published standard cannot change'); END"
        )


def upgrade() -> None:
    conn = op.get_bind()
    rows = conn.execute(sa.text(
        "SELECT s.id, p.slug, s.version, s.sha256, s.content FROM standards s "
        "JOIN products p ON p.id = s.product_id ORDER BY p.slug, s.version"
    )).all()
    if not rows:
        return  # a new database: nothing to re-identify, nothing to report
    mapping = {f"{slug}@{version}": {"old": old, "new": hashlib.sha256(content.encode("utf-8")).hexdigest()}
               for _, slug, version, old, content in rows}
    changed = [(row_id, mapping[f"{slug}@{version}"]["new"]) for row_id, slug, version, *_ in rows
               if mapping[f"{slug}@{version}"]["old"] != mapping[f"{slug}@{version}"]["new"]]
    if changed:
        dialect = conn.dialect.name
        _drop_guard(dialect)
        for row_id, new in changed:
            conn.execute(sa.text("UPDATE standards SET sha256 = :new WHERE id = :id"), {"new": new, "id": row_id})
        _create_guard(dialect)
    audit = sa.table("audit_events", sa.column("at", sa.DateTime(timezone=True)), sa.column("actor"),
                     sa.column("action"), sa.column("subject_type"), sa.column("subject_id"),
                     sa.column("detail", sa.JSON()))
    # The database's own clock: a migration runs outside any ServiceContext.
    conn.execute(audit.insert().values(
        at=sa.func.current_timestamp(), actor=_ACTOR, action="standard.reidentify", subject_type="standard",
        subject_id="*", detail={"scheme": "sha256 of the stored RFC 8785 bytes", "changed": len(changed),
                                "mapping": mapping},
    ))


def downgrade() -> None:
    # Identities stay as they are: the bytes they hash are unchanged, and the old -> new mapping is in the audit log.
    pass
