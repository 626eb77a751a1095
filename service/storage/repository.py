"""Database reads and writes, as keyword-only functions on a session.

Functions here flush but never commit: the caller owns the transaction (one
request, one transaction). Standards parsed from the database are cached by
content hash, which is safe because a published version never changes.
"""

from __future__ import annotations

import base64
import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from qc.bounds import MAX_INT, text_problem
from qc.errors import Conflict, InvalidInput, NotFound, Problem, StandardInvalid
from qc.standards import ModelCheck, Standard, Status, parse_stored_standard
from service.storage.orm import AuditEvent, Lot, ModelRow, Node, PhotoRow, Product, StandardRow, Submission

__all__ = [
    "SubmissionFilter",
    "add_audit_event",
    "audit_events",
    "create_node",
    "current_standard",
    "decode_cursor",
    "encode_cursor",
    "find_node",
    "get_or_create_lot",
    "get_standard",
    "get_submission",
    "list_nodes",
    "list_standards",
    "list_submissions",
    "photo_visible",
    "publish_standard",
    "referenced_blobs",
    "register_model",
    "retire_standard",
    "standard_from_row",
]

log = logging.getLogger(__name__)


# --- nodes -------------------------------------------------------------------------------------


def create_node(session: Session, *, name: str, title: str = "", now: dt.datetime, actor: str = "cli") -> Node:
    if not name or len(name) > 64 or not all(c.isalnum() or c in "-_." for c in name):
        raise InvalidInput(f"invalid node name {name!r}", [Problem("name", "1-64 letters, digits, '-', '_' or '.'")])
    if reason := text_problem(title):
        raise InvalidInput("invalid node title", [Problem("title", reason)])
    if find_node(session, name=name) is not None:
        raise Conflict(f"a node named {name!r} already exists")
    node = Node(name=name, title=title, created_at=now)
    session.add(node)
    session.flush()
    add_audit_event(session, actor=actor, action="node.create", subject_type="node", subject_id=name,
                    detail={"title": title}, now=now)
    return node


def find_node(session: Session, *, name: str) -> Node | None:
    return session.scalars(select(Node).where(Node.name == name)).one_or_none()


def list_nodes(session: Session) -> Sequence[Node]:
    return session.scalars(select(Node).order_by(Node.name)).all()


# --- standards ---------------------------------------------------------------------------------


def _get_or_create_product(session: Session, *, slug: str, name: str, now: dt.datetime) -> Product:
    product = session.scalars(select(Product).where(Product.slug == slug)).one_or_none()
    if product is None:
        product = Product(slug=slug, name=name, created_at=now)
        session.add(product)
        session.flush()
    return product


def publish_standard(
    session: Session, *, standard: Standard, by: str, now: dt.datetime, role: str | None = None
) -> tuple[StandardRow, bool]:
    """Store a standard version; return (row, created). ``by`` is the person the audit event names.

    The same version again is a no-op (created False) when it says the same thing: the same
    input bytes, or a document that parses to an equal standard (e.g. the shipped YAML against
    a row stored by an older Kipimo with every default spelled out, or a file that now writes a
    default explicitly); the stored row and its identity stay as they are. A version that says
    something else is a ``Conflict``: published versions are immutable. A standard naming a model
    that is not registered is refused (422) before anything is written.
    """
    existing = get_standard(session, product=standard.product, version=standard.version)
    if existing is not None:
        if existing.sha256 == standard.sha256 or standard_from_row(existing).same_rules(standard):
            return existing, False
        raise Conflict(
            f"{standard.product} version {standard.version} is already published with different content "
            f"(sha256 {existing.sha256[:12]}…); publish the change as version "
            f"{_next_version(session, standard.product)}",
            [Problem("version", "published versions are immutable")],
        )
    _require_registered_models(session, standard)
    product = _get_or_create_product(session, slug=standard.product, name=standard.name, now=now)
    row = StandardRow(
        product_id=product.id,
        version=standard.version,
        status=str(standard.status),
        name=standard.name,
        content=standard.document_bytes.decode("utf-8"),
        sha256=standard.sha256,
        released_at=now,
        released_by=by,
    )
    session.add(row)
    session.flush()
    add_audit_event(session, actor=by, role=role, action="standard.publish", subject_type="standard",
                    subject_id=f"{standard.product}@{standard.version}",
                    detail={"sha256": standard.sha256, "status": str(standard.status)}, now=now)
    return row, True


def _require_registered_models(session: Session, standard: Standard) -> None:
    registered = {f"{m.name}@{m.version}" for m in session.scalars(select(ModelRow))}
    missing = {
        f"photos[{i}:{slot.id}].checks[{j}:{check.id}].model": check.model
        for i, slot in enumerate(standard.photos) for j, check in enumerate(slot.checks)
        if isinstance(check, ModelCheck) and check.model not in registered
    }
    if missing:
        installed = ", ".join(sorted(registered)) or "none"
        raise StandardInvalid(
            f"{standard.product} v{standard.version} names {', '.join(sorted(set(missing.values())))}, "
            f"which is not registered here (installed: {installed}); register the model first "
            "(`qc init` registers the shipped ones)",
            [Problem(path, f"model {model} is not registered; installed: {installed}")
             for path, model in missing.items()],
        )


def retire_standard(
    session: Session, *, product: str, version: int, reason: str, by: str, now: dt.datetime,
    role: str | None = None,
) -> StandardRow:
    """Mark a version retired: its content and hash never change and records keep pointing at it,
    but it is no longer current (the highest remaining released version is)."""
    if not reason.strip():
        raise InvalidInput("say why the version is retired", [Problem("reason", "required")])
    row = get_standard(session, product=product, version=version)
    if row is None:
        published = [str(r.version) for r in list_standards(session, product=product)]
        raise NotFound(f"no version {version} of the standard for {product!r}; "
                       f"published: {', '.join(published) or 'none'}")
    if row.status == Status.RETIRED.value:
        raise Conflict(f"{product} v{version} is already retired")
    previous = row.status
    row.status = Status.RETIRED.value
    session.flush()
    add_audit_event(session, actor=by, role=role, action="standard.retire", subject_type="standard",
                    subject_id=f"{product}@{version}",
                    detail={"reason": reason, "sha256": row.sha256, "previous_status": previous}, now=now)
    return row


def _next_version(session: Session, product: str) -> int:
    latest = session.scalar(
        select(func.max(StandardRow.version)).join(Product).where(Product.slug == product)
    )
    return (latest or 0) + 1


def get_standard(session: Session, *, product: str, version: int) -> StandardRow | None:
    return session.scalars(
        select(StandardRow).join(Product).where(Product.slug == product, StandardRow.version == version)
    ).one_or_none()


def current_standard(session: Session, *, product: str) -> StandardRow | None:
    """The highest released version of ``product``: a draft or retired version is never current."""
    return session.scalars(
        select(StandardRow)
        .join(Product)
        .where(Product.slug == product, StandardRow.status == Status.RELEASED.value)
        .order_by(StandardRow.version.desc())
        .limit(1)
    ).one_or_none()


def list_standards(session: Session, *, product: str | None = None) -> Sequence[StandardRow]:
    query = select(StandardRow).join(Product).order_by(Product.slug, StandardRow.version)
    if product is not None:
        query = query.where(Product.slug == product)
    return session.scalars(query).all()


def standard_from_row(row: StandardRow) -> Standard:
    """The parsed standard of a row; its bytes are verified against the stored hash first."""
    return _parse_stored(row.content, row.sha256)


@lru_cache(maxsize=256)
def _parse_stored(content: str, sha256: str) -> Standard:
    return parse_stored_standard(content.encode("utf-8"), sha256=sha256)


# --- models ------------------------------------------------------------------------------------


def register_model(
    session: Session, *, name: str, version: int, sha256: str, task: str, now: dt.datetime, actor: str = "cli"
) -> tuple[ModelRow, bool]:
    """Record a model in the registry; the same name@version with another file is a ``Conflict``."""
    row = session.scalars(select(ModelRow).where(ModelRow.name == name, ModelRow.version == version)).one_or_none()
    if row is not None:
        if row.sha256 != sha256:
            raise Conflict(f"model {name}@{version} is registered with sha256 {row.sha256[:12]}…, "
                           f"not {sha256[:12]}…; give the new file a new version")
        return row, False
    row = ModelRow(name=name, version=version, sha256=sha256, task=task, registered_at=now)
    session.add(row)
    session.flush()
    add_audit_event(session, actor=actor, action="model.register", subject_type="model",
                    subject_id=f"{name}@{version}", detail={"sha256": sha256, "task": task}, now=now)
    return row, True


# --- lots, submissions -------------------------------------------------------------------------


def get_or_create_lot(session: Session, *, node_id: int, product_id: int, code: str, now: dt.datetime) -> Lot:
    lot = session.scalars(
        select(Lot).where(Lot.node_id == node_id, Lot.product_id == product_id, Lot.code == code)
    ).one_or_none()
    if lot is None:
        lot = Lot(node_id=node_id, product_id=product_id, code=code, created_at=now)
        session.add(lot)
        session.flush()
    return lot


def get_submission(session: Session, *, id: str) -> Submission | None:
    return session.scalars(select(Submission).where(Submission.id == id)).one_or_none()


@dataclass(frozen=True)
class SubmissionFilter:
    product: str | None = None
    node: str | None = None
    lot: str | None = None
    verdict: str | None = None
    since: dt.datetime | None = None  # received_at >= since
    until: dt.datetime | None = None  # received_at < until
    visible_node_id: int | None = None  # restrict to one node (technicians)


def encode_cursor(seq: int) -> str:
    return base64.urlsafe_b64encode(f"s{seq}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        if not raw.startswith("s") or not raw[1:].isascii() or not raw[1:].isdigit() or int(raw[1:]) > MAX_INT:
            raise ValueError(raw)
        return int(raw[1:])
    except (ValueError, UnicodeDecodeError):
        raise InvalidInput("invalid cursor", [Problem("cursor", "use the next_cursor of a previous page")]) from None


def list_submissions(
    session: Session, *, where: SubmissionFilter, before_seq: int | None = None, limit: int | None = None
) -> Sequence[Submission]:
    """Newest first; ``before_seq`` continues a page (cursor paging on the insertion order)."""
    query = submissions_query(where, before_seq=before_seq)
    if limit is not None:
        query = query.limit(limit)
    return session.scalars(query).unique().all()


def submissions_query(where: SubmissionFilter, *, before_seq: int | None = None) -> Select[Submission]:
    """The filtered, newest-first query behind ``list_submissions`` (the review queue narrows it further)."""
    query = select(Submission).order_by(Submission.seq.desc())
    if where.product is not None:
        query = query.join(Product, Submission.product_id == Product.id).where(Product.slug == where.product)
    if where.node is not None:
        query = query.join(Node, Submission.node_id == Node.id).where(Node.name == where.node)
    if where.lot is not None:
        query = query.join(Lot, Submission.lot_id == Lot.id).where(Lot.code == where.lot)
    if where.verdict is not None:
        query = query.where(Submission.verdict == where.verdict)
    if where.since is not None:
        query = query.where(Submission.received_at >= where.since)
    if where.until is not None:
        query = query.where(Submission.received_at < where.until)
    if where.visible_node_id is not None:
        query = query.where(Submission.node_id == where.visible_node_id)
    if before_seq is not None:
        query = query.where(Submission.seq < before_seq)
    return query


def photo_visible(session: Session, *, sha256: str, node_id: int | None) -> bool:
    """Whether a photo or overlay blob belongs to a submission (of ``node_id``, when given)."""
    query = (
        select(PhotoRow.id)
        .join(Submission, PhotoRow.submission_seq == Submission.seq)
        .where((PhotoRow.sha256 == sha256) | (PhotoRow.overlay_sha256 == sha256))
    )
    if node_id is not None:
        query = query.where(Submission.node_id == node_id)
    return session.scalar(query.limit(1)) is not None


def referenced_blobs(session: Session) -> set[str]:
    """Every blob a row points at (photos and overlays): what ``qc store gc`` keeps."""
    refs: set[str] = set(session.scalars(select(PhotoRow.sha256)).all())
    refs.update(s for s in session.scalars(select(PhotoRow.overlay_sha256)).all() if s)
    return refs


# --- audit -------------------------------------------------------------------------------------


def add_audit_event(
    session: Session,
    *,
    actor: str,
    action: str,
    subject_type: str,
    subject_id: str,
    detail: dict[str, Any],
    now: dt.datetime,
    role: str | None = None,
    node_id: int | None = None,
) -> AuditEvent:
    event = AuditEvent(at=now, actor=actor, role=role, node_id=node_id, action=action,
                       subject_type=subject_type, subject_id=subject_id, detail=detail)
    session.add(event)
    return event


def audit_events(session: Session, *, subject_type: str | None = None,
                 subject_id: str | None = None) -> Sequence[AuditEvent]:
    query = select(AuditEvent).order_by(AuditEvent.id)
    if subject_type is not None:
        query = query.where(AuditEvent.subject_type == subject_type)
    if subject_id is not None:
        query = query.where(AuditEvent.subject_id == subject_id)
    return session.scalars(query).all()
