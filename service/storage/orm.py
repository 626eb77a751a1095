"""Database tables as typed SQLAlchemy 2.0 models.

The schema is owned by Alembic (``service/migrations``); these classes must
match it (``tests/integration/test_migrations.py`` compares them). Times are
stored as UTC and always come back timezone-aware (``UTCDateTime``), so SQLite
and PostgreSQL answer the same.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

__all__ = [
    "AccessToken",
    "Alert",
    "AuditEvent",
    "Base",
    "CheckResultRow",
    "DashboardSession",
    "Lot",
    "ModelRow",
    "Node",
    "Outbox",
    "PhotoRow",
    "Product",
    "ReviewDecision",
    "StandardRow",
    "Submission",
    "UTCDateTime",
]

JSONType = JSON().with_variant(JSONB(), "postgresql")


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Aware datetimes in, aware UTC datetimes out, on every backend."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime; pass a timezone-aware value (UTC)")
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


class Base(DeclarativeBase):
    pass


class Node(Base):
    """A workshop (or the hub) that makes and inspects products."""

    __tablename__ = "nodes"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    title: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class AccessToken(Base):
    """A bearer token; only the SHA-256 of the secret is kept."""

    __tablename__ = "access_tokens"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(200))
    node_id: Mapped[int | None] = mapped_column(ForeignKey("nodes.id"), nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)

    node: Mapped[Node | None] = relationship(lazy="joined")


class Product(Base):
    __tablename__ = "products"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class StandardRow(Base):
    """One published version of a product's standard; content and hash never change once stored.

    ``status`` is the lifecycle state (draft, released, retired) and the one column that may change.
    """

    __tablename__ = "standards"
    __table_args__ = (UniqueConstraint("product_id", "version", name="uq_standards_product_version"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"))
    version: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(200))
    # RFC 8785 canonical bytes (UTF-8) of the resolved input document, before defaults; sha256 is their hash
    content: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))
    released_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    released_by: Mapped[str] = mapped_column(String(200))

    product: Mapped[Product] = relationship(lazy="joined")


class ModelRow(Base):
    """A registered ONNX model (from its card)."""

    __tablename__ = "models"
    __table_args__ = (UniqueConstraint("name", "version", name="uq_models_name_version"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    version: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    task: Mapped[str] = mapped_column(String(32))
    registered_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class Lot(Base):
    """A production lot of one product at one node."""

    __tablename__ = "lots"
    __table_args__ = (UniqueConstraint("node_id", "product_id", "code", name="uq_lots_node_product_code"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    node_id: Mapped[int] = mapped_column(ForeignKey("nodes.id"))
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"))
    code: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class Submission(Base):
    """One inspection record: answers, photos, the standard applied, the results."""

    __tablename__ = "submissions"
    __table_args__ = (
        Index("ix_submissions_node_seq", "node_id", "seq"),
        Index("ix_submissions_product_seq", "product_id", "seq"),
        Index("ix_submissions_received_at", "received_at"),
    )
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(36), unique=True)  # client UUID
    node_id: Mapped[int] = mapped_column(ForeignKey("nodes.id"))
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"))
    standard_id: Mapped[int] = mapped_column(ForeignKey("standards.id"))
    lot_id: Mapped[int | None] = mapped_column(ForeignKey("lots.id"), nullable=True)
    unit: Mapped[str | None] = mapped_column(String(100), nullable=True)
    technician: Mapped[str] = mapped_column(String(200))
    token_id: Mapped[int | None] = mapped_column(ForeignKey("access_tokens.id"), nullable=True)
    captured_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    verdict: Mapped[str] = mapped_column(String(16))
    minor_defects: Mapped[int] = mapped_column(Integer, default=0)
    answers: Mapped[dict[str, Any]] = mapped_column(JSONType)
    # What record_sha256 covers, exactly as hashed (qc.records: "kipimo.record/2"; older rows keep their
    # "kipimo.record/1" document, rebuilt by migration 0004). `technician` is the token holder's name.
    document: Mapped[dict[str, Any]] = mapped_column(JSONType)
    request_sha256: Mapped[str] = mapped_column(String(64))  # the request as sent (idempotency)
    record_sha256: Mapped[str] = mapped_column(String(64))

    node: Mapped[Node] = relationship(lazy="joined")
    product: Mapped[Product] = relationship(lazy="joined")
    standard: Mapped[StandardRow] = relationship(lazy="joined")
    lot: Mapped[Lot | None] = relationship(lazy="joined")
    photos: Mapped[list[PhotoRow]] = relationship(
        lazy="selectin", order_by="PhotoRow.id", back_populates="submission"
    )
    results: Mapped[list[CheckResultRow]] = relationship(
        lazy="selectin", order_by="CheckResultRow.position", back_populates="submission"
    )


class PhotoRow(Base):
    """A photo of a submission; the bytes live in the content-addressed store."""

    __tablename__ = "photos"
    __table_args__ = (
        UniqueConstraint("submission_seq", "slot", name="uq_photos_submission_slot"),
        Index("ix_photos_sha256", "sha256"),
        Index("ix_photos_overlay_sha256", "overlay_sha256"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    submission_seq: Mapped[int] = mapped_column(ForeignKey("submissions.seq"))
    slot: Mapped[str] = mapped_column(String(64))
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer)
    media_type: Mapped[str] = mapped_column(String(32))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    overlay_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    findings: Mapped[dict[str, Any]] = mapped_column(JSONType)

    submission: Mapped[Submission] = relationship(back_populates="photos")


class CheckResultRow(Base):
    """One check's result (item, dimension or model), in the standard's order."""

    __tablename__ = "check_results"
    __table_args__ = (UniqueConstraint("submission_seq", "position", name="uq_results_submission_position"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    submission_seq: Mapped[int] = mapped_column(ForeignKey("submissions.seq"))
    position: Mapped[int] = mapped_column(Integer)
    check_id: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))
    slot: Mapped[str | None] = mapped_column(String(64), nullable=True)
    status: Mapped[str] = mapped_column(String(16))
    severity: Mapped[str] = mapped_column(String(16))
    value: Mapped[float | None] = mapped_column(Float, nullable=True)  # numeric value, for SPC
    passed: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    detail: Mapped[dict[str, Any]] = mapped_column(JSONType)  # CheckResult.to_dict(), as hashed

    submission: Mapped[Submission] = relationship(back_populates="results")


class ReviewDecision(Base):
    """A person's decision on a ``review`` record (``service/core/reviews.py``, migration 0007): pass or fail, why,
    who and when. Append-only like the record it references, which keeps its automatic verdict: a later decision
    on the same record is a new row with the next ``revision`` (the highest is the disposition; all are kept).
    ``document`` is exactly what ``sha256`` covers (RFC 8785), naming the original's ``record_sha256``."""

    __tablename__ = "review_decisions"
    __table_args__ = (UniqueConstraint("submission_seq", "revision", name="uq_review_decisions_submission_revision"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    submission_seq: Mapped[int] = mapped_column(ForeignKey("submissions.seq"))
    revision: Mapped[int] = mapped_column(Integer)  # 1 for the first decision; each later one supersedes
    decision: Mapped[str] = mapped_column(String(16))  # pass | fail
    reason: Mapped[str] = mapped_column(Text)
    decided_by: Mapped[str] = mapped_column(String(200))  # the token holder's name
    role: Mapped[str] = mapped_column(String(16))
    token_id: Mapped[int | None] = mapped_column(ForeignKey("access_tokens.id"), nullable=True)
    decided_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    document: Mapped[dict[str, Any]] = mapped_column(JSONType)
    sha256: Mapped[str] = mapped_column(String(64))


class AuditEvent(Base):
    """Append-only log of who did what, when (database triggers refuse UPDATE/DELETE)."""

    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_events_subject", "subject_type", "subject_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    actor: Mapped[str] = mapped_column(String(200))  # "token:<id> <name>" or "cli:<user>"
    role: Mapped[str | None] = mapped_column(String(16), nullable=True)
    node_id: Mapped[int | None] = mapped_column(ForeignKey("nodes.id"), nullable=True)
    action: Mapped[str] = mapped_column(String(64))  # submission.create, standard.publish, ...
    subject_type: Mapped[str] = mapped_column(String(32))
    subject_id: Mapped[str] = mapped_column(String(100))
    detail: Mapped[dict[str, Any]] = mapped_column(JSONType)


class Alert(Base):
    """A signal for the quality manager: a control-chart rule broken or a node outside the funnel limits.

    ``key`` names the signal (kind, product, node, check, rule, subgroup) so evaluating the same data
    again never makes a second alert; acknowledging keeps the row and records who, when and why.
    """

    __tablename__ = "alerts"
    __table_args__ = (
        UniqueConstraint("key", name="uq_alerts_key"),
        Index("ix_alerts_status_created", "status", "created_at"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(255))
    kind: Mapped[str] = mapped_column(String(16))  # "rule" (a chart rule broken) | "funnel" (outside the limits)
    rule: Mapped[str] = mapped_column(String(64))
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"))
    node_id: Mapped[int] = mapped_column(ForeignKey("nodes.id"))
    check_id: Mapped[str | None] = mapped_column(String(64), nullable=True)  # None: the defect rate
    period_start: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    message: Mapped[str] = mapped_column(Text)
    detail: Mapped[dict[str, Any]] = mapped_column(JSONType)
    status: Mapped[str] = mapped_column(String(16), default="open")  # open | acknowledged
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    acknowledged_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    acknowledged_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    comment: Mapped[str | None] = mapped_column(Text, nullable=True)

    node: Mapped[Node] = relationship(lazy="joined")
    product: Mapped[Product] = relationship(lazy="joined")


class Outbox(Base):
    """Post-commit work (``service/core/outbox.py``), written in the transaction of the change that calls for it.

    ``pending`` rows are due at ``next_attempt_at``; a drain claims a row by moving that time past a lease,
    then marks it ``done`` or records ``last_error`` and schedules a retry; after the last attempt the row
    stays ``failed`` (listed by ``qc outbox list``, never dropped).
    """

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_status_due", "status", "next_attempt_at"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(64))  # alerts.evaluate | webhook.submission | webhook.alerts
    payload: Mapped[dict[str, Any]] = mapped_column(JSONType)
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending | done | failed
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    done_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)


class DashboardSession(Base):
    """A browser signed in to the dashboard (``service/core/dashboard_sessions.py``, migration 0006).

    The cookie holds a random session id; this row keeps only its SHA-256, so a copy of the database signs
    no one in. The session stands for one token and ends at ``ended_at`` (``end_reason``: logout, idle,
    expired, revoked); an ended row stays, the record of that sign-in.
    """

    __tablename__ = "dashboard_sessions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    session_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    token_id: Mapped[int] = mapped_column(ForeignKey("access_tokens.id"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    last_seen_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())  # idle expiry counts from here
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())  # absolute expiry, however busy
    ended_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    end_reason: Mapped[str | None] = mapped_column(String(16), nullable=True)

    token: Mapped[AccessToken] = relationship(lazy="joined")


# Indexes for the dashboard's aggregates (migration 0002). Declared here, not in the classes above, so the
# analytics queries own them: product + time range first, then the grouped columns, so the rate queries
# read the index alone.
Index("ix_submissions_product_captured", Submission.product_id, Submission.captured_at, Submission.node_id,
      Submission.verdict)
Index("ix_submissions_product_node_captured", Submission.product_id, Submission.node_id, Submission.captured_at,
      Submission.verdict)
Index("ix_submissions_lot_captured", Submission.lot_id, Submission.captured_at)
Index("ix_check_results_check_seq", CheckResultRow.check_id, CheckResultRow.submission_seq, CheckResultRow.value)
Index("ix_check_results_passed_seq", CheckResultRow.passed, CheckResultRow.submission_seq, CheckResultRow.check_id)
