"""Review decisions: a person settles a ``review`` record as pass or fail, and every statistic counts it so.

A record whose checks were inconclusive gets the automatic verdict ``review``; that verdict is part of the
record's hashed document and never changes. A manager or an admin decides it (``decide_review``): the
decision is a new append-only row (``orm.ReviewDecision``) with its own RFC 8785 document and SHA-256 that
names the record's ``record_sha256``, and an audit event. A later decision on the same record supersedes the
earlier one (the next ``revision``, its document naming the one it supersedes): the latest is the record's
*disposition*, and every decision is kept, so a mistaken decision is corrected the way records are, by a new
row. Only ``review`` records can be decided; a pass or fail stands as the checks found it.

Disposition of a record: its automatic verdict if pass or fail; else its latest decision; else ``review``
(pending). ``DISPOSITION_SQL`` says the same in SQL for the aggregates of ``service.core.analytics``.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import exists, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from qc.bounds import text_problem
from qc.errors import Conflict, InvalidInput, NotFound, Problem
from qc.records import canonical_json, sha256_hex
from service.core.auth import Principal
from service.core.context import ServiceContext
from service.storage import repository as repo
from service.storage.orm import Lot, ReviewDecision, Submission

__all__ = [
    "DECISION_SCHEMA",
    "DISPOSITION_SQL",
    "ReviewFilter",
    "ReviewStatus",
    "decide_review",
    "decision_view",
    "disposition",
    "disposition_sql",
    "list_reviews",
    "pending_count",
    "review_view",
]

DECISION_SCHEMA = "kipimo.review-decision/1"
MAX_REASON = 4000
Decision = Literal["pass", "fail"]
ReviewStatus = Literal["pending", "decided", "all"]


def disposition_sql(alias: str = "s") -> str:
    """A record's disposition in SQL (SQLite and PostgreSQL): the verdict, or for a review its latest decision
    (one probe of the (submission_seq, revision) index, for review rows only), else 'review'."""
    return (f"CASE WHEN {alias}.verdict = 'review' THEN COALESCE((SELECT d.decision FROM review_decisions d "
            f"WHERE d.submission_seq = {alias}.seq ORDER BY d.revision DESC LIMIT 1), 'review') "
            f"ELSE {alias}.verdict END")


DISPOSITION_SQL = disposition_sql()


def disposition(sub: Submission, latest: ReviewDecision | None) -> str:
    """pass | fail | review (pending): the verdict, unless a person decided the review."""
    if sub.verdict != "review":
        return sub.verdict
    return latest.decision if latest is not None else "review"


# --- deciding -------------------------------------------------------------------------------------


def decision_document(sub: Submission, *, decision: str, reason: str, principal: Principal, at: dt.datetime,
                      revision: int, supersedes: ReviewDecision | None) -> dict[str, Any]:
    """What a decision asserts, as hashed: the record it settles (id and record_sha256), the outcome, why, who,
    when, and the decision it supersedes (its sha256), so the chain of decisions verifies like the records."""
    return {
        "schema": DECISION_SCHEMA,
        "submission": {"id": sub.id, "record_sha256": sub.record_sha256, "verdict": sub.verdict},
        "decision": decision,
        "reason": reason,
        "decided_by": {"name": principal.name, "token_id": principal.token_id, "role": principal.role.value},
        "decided_at": at.astimezone(dt.UTC).isoformat().replace("+00:00", "Z"),
        "revision": revision,
        "supersedes": supersedes.sha256 if supersedes is not None else None,
    }


def decide_review(ctx: ServiceContext, *, submission_id: str, decision: str, reason: str, principal: Principal,
                  now: dt.datetime) -> dict[str, Any]:
    """Store a decision on a review record (one transaction, with its audit event); answer the review's view.

    The caller's role was checked by the route (managers and admins). 404: no such record (or one of a node
    the caller does not see); 409: the record is not a review, or another decision was stored at the same
    moment (reload and decide again)."""
    from service.core.outbox import ALERTS_EVALUATE, enqueue  # noqa: PLC0415 (outbox -> alerts -> analytics -> here)

    if decision not in ("pass", "fail"):
        raise InvalidInput("a decision is pass or fail", [Problem("decision", f"got {decision[:20]!r}")])
    reason = reason.strip()
    if not reason:
        raise InvalidInput("say why you decide so", [Problem("reason", "required")])
    if problem := text_problem(reason) or (f"at most {MAX_REASON} characters" if len(reason) > MAX_REASON else None):
        raise InvalidInput(f"the reason cannot be stored: {problem}", [Problem("reason", problem)])
    try:
        with ctx.db.write_session() as session:
            sub = _visible(session, principal, submission_id)
            if sub.verdict != "review":
                raise Conflict(f"submission {submission_id} was judged {sub.verdict} by its checks; only a record "
                               "sent to review can be decided (correct a record with a new one that `corrects` it)",
                               [Problem("submission_id", f"verdict {sub.verdict}, not review")])
            previous = _decisions(session, [sub.seq]).get(sub.seq, [])
            latest = previous[-1] if previous else None
            revision = latest.revision + 1 if latest else 1
            document = decision_document(sub, decision=decision, reason=reason, principal=principal, at=now,
                                         revision=revision, supersedes=latest)
            canonical = canonical_json(document)
            row = ReviewDecision(
                submission_seq=sub.seq, revision=revision, decision=decision, reason=reason,
                decided_by=principal.name, role=principal.role.value, token_id=principal.token_id,
                decided_at=now, document=json.loads(canonical), sha256=sha256_hex(canonical),
            )
            session.add(row)
            session.flush()
            repo.add_audit_event(
                session, actor=principal.actor, role=principal.role.value, node_id=sub.node_id,
                action="review.decide", subject_type="submission", subject_id=sub.id,
                detail={"decision": decision, "reason": reason, "sha256": row.sha256, "revision": revision,
                        "record_sha256": sub.record_sha256,
                        "supersedes": latest.sha256 if latest is not None else None}, now=now,
            )
            # a decided review moves the node's defect rate: judge its alerts again, as after a new record
            enqueue(session, kind=ALERTS_EVALUATE, now=now,
                    payload={"product_id": sub.product_id, "node_id": sub.node_id, "now": now.isoformat()})
    except IntegrityError:  # the same revision stored by someone else since we read: theirs stands
        raise Conflict(f"submission {submission_id} was decided by someone else just now; reload it and "
                       "decide again if you disagree", [Problem("submission_id", "decided meanwhile")]) from None
    with ctx.db.session() as session:
        sub = _visible(session, principal, submission_id)
        return review_view(sub, _decisions(session, [sub.seq]).get(sub.seq, []))


def _visible(session: Session, principal: Principal, submission_id: str) -> Submission:
    sub = repo.get_submission(session, id=submission_id)
    if sub is None or not principal.may_see_node(sub.node_id):  # another node's record reads as missing
        raise NotFound(f"no submission {submission_id}")
    return sub


def _decisions(session: Session, seqs: Sequence[int]) -> dict[int, list[ReviewDecision]]:
    """Every decision on these records, oldest first."""
    out: dict[int, list[ReviewDecision]] = {}
    if not seqs:
        return out
    rows = session.scalars(select(ReviewDecision).where(ReviewDecision.submission_seq.in_(list(seqs)))
                           .order_by(ReviewDecision.submission_seq, ReviewDecision.revision))
    for row in rows:
        out.setdefault(row.submission_seq, []).append(row)
    return out


# --- the queue ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReviewFilter:
    status: ReviewStatus = "pending"
    product: str | None = None
    node: str | None = None
    visible_node_id: int | None = None  # technicians: their node only


def list_reviews(session: Session, *, where: ReviewFilter, before_seq: int | None = None,
                 limit: int = 50) -> tuple[list[dict[str, Any]], int | None]:
    """Review records, newest first, with their decisions; and the seq to continue from (None: last page)."""
    decided = exists().where(ReviewDecision.submission_seq == Submission.seq)
    query = repo.submissions_query(repo.SubmissionFilter(
        product=where.product, node=where.node, verdict="review", visible_node_id=where.visible_node_id,
    ), before_seq=before_seq)
    if where.status == "pending":
        query = query.where(~decided)
    elif where.status == "decided":
        query = query.where(decided)
    rows = session.scalars(query.limit(limit + 1)).unique().all()
    page = rows[:limit]
    decisions = _decisions(session, [s.seq for s in page])
    more = page[-1].seq if len(rows) > limit else None
    return [review_view(s, decisions.get(s.seq, [])) for s in page], more


def pending_count(session: Session, *, node_id: int | None = None, product_id: int | None = None) -> int:
    """Review records nobody has decided yet."""
    query = select(func.count()).select_from(Submission).where(
        Submission.verdict == "review", ~exists().where(ReviewDecision.submission_seq == Submission.seq))
    if node_id is not None:
        query = query.where(Submission.node_id == node_id)
    if product_id is not None:
        query = query.where(Submission.product_id == product_id)
    return int(session.scalar(query) or 0)


def decision_view(row: ReviewDecision) -> dict[str, Any]:
    return {"id": row.id, "decision": row.decision, "reason": row.reason, "decided_by": row.decided_by,
            "role": row.role, "decided_at": row.decided_at.isoformat(), "revision": row.revision,
            "supersedes": row.document.get("supersedes"), "sha256": row.sha256, "document": row.document}


def review_view(sub: Submission, decisions: Sequence[ReviewDecision]) -> dict[str, Any]:
    """One review: the record, its photos and overlays, the checks that were inconclusive and why, and its
    decisions (oldest first; the last is the disposition)."""
    latest = decisions[-1] if decisions else None
    lot: Lot | None = sub.lot
    return {
        "submission_id": sub.id,
        "node": sub.node.name,
        "product": sub.product.slug,
        "standard_version": sub.standard.version,
        "lot": lot.code if lot else None,
        "unit": sub.unit,
        "technician": sub.technician,
        "captured_at": sub.captured_at.isoformat(),
        "received_at": sub.received_at.isoformat(),
        "verdict": sub.verdict,
        "record_sha256": sub.record_sha256,
        "status": "decided" if latest is not None else "pending",
        "disposition": disposition(sub, latest),
        "inconclusive": [{"check_id": r.check_id, "kind": r.kind, "slot": r.slot, "severity": r.severity,
                          "message": str(r.detail.get("message", ""))}
                         for r in sub.results if r.status == "inconclusive"],
        "photos": [{"slot": p.slot, "url": f"/api/v1/photos/{p.sha256}",
                    "overlay_url": f"/api/v1/submissions/{sub.id}/photos/{p.slot}/overlay" if p.overlay_sha256
                    else None} for p in sub.photos],
        "decision": decision_view(latest) if latest is not None else None,
        "decisions": [decision_view(d) for d in decisions],
    }
