"""The outbox: post-commit work (alert evaluation, webhooks) written in the transaction that calls for it.

A submission's transaction adds its outbox rows (``enqueue_after_submission``), so a stored record always
has its follow-up work queued and a refused one never has. ``drain_outbox`` runs what is due:

1. claim: in one short write transaction, take due ``pending`` rows (PostgreSQL: ``FOR UPDATE SKIP LOCKED``,
   so several drains never take the same row; SQLite: the single writer lock), count the attempt and move
   ``next_attempt_at`` past a lease (``CLAIM_LEASE``: a drain that dies mid-row leaves it to be retried);
2. run each row's handler outside any transaction (a webhook may take seconds);
3. mark it ``done``; or record ``last_error`` and retry after ``backoff(attempts)`` (30 s doubling, at most an
   hour); after ``MAX_ATTEMPTS`` the row stays ``failed`` with its error (``qc outbox list``), never dropped.

Delivery is at least once: handlers must be safe to repeat (alerts are keyed by signal; webhook receivers
get the row id in ``X-Kipimo-Delivery`` to drop duplicates). Times come from ``ctx.clock``.
``OutboxWorker`` is the drain loop ``create_app`` starts; in-process callers (the demo, tests) call
``drain_outbox(ctx)`` themselves.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import event, func, select
from sqlalchemy.orm import Session

from qc.errors import InvalidInput, Problem
from service.core import alerts
from service.core.context import ServiceContext
from service.settings import Settings
from service.storage.orm import Outbox, Submission

__all__ = [
    "ALERTS_EVALUATE",
    "MAX_ATTEMPTS",
    "WEBHOOK_ALERTS",
    "WEBHOOK_SUBMISSION",
    "DrainReport",
    "Handler",
    "Job",
    "OutboxWorker",
    "backoff",
    "drain_outbox",
    "enqueue",
    "enqueue_after_submission",
    "list_outbox",
    "outbox_counts",
    "outbox_view",
]

log = logging.getLogger(__name__)

ALERTS_EVALUATE = "alerts.evaluate"
WEBHOOK_SUBMISSION = "webhook.submission"
WEBHOOK_ALERTS = "webhook.alerts"
STATUSES = ("pending", "done", "failed")

MAX_ATTEMPTS = 8
BACKOFF_FIRST = dt.timedelta(seconds=30)
BACKOFF_CAP = dt.timedelta(hours=1)
CLAIM_LEASE = dt.timedelta(minutes=5)  # longer than any handler runs (the webhook times out well before)
CLAIM_BATCH = 20
ERROR_CHARS = 2000


@dataclass(frozen=True)
class Job:
    """One claimed row, as its handler sees it."""

    id: int
    kind: str
    payload: dict[str, Any]
    attempts: int  # this run included


Handler = Callable[[ServiceContext, Job], None]


@dataclass
class DrainReport:
    done: int = 0
    retried: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)  # "#id kind: error" for each row that did not succeed

    @property
    def ran(self) -> int:
        return self.done + self.retried + self.failed


def backoff(attempts: int) -> dt.timedelta:
    """The wait after the ``attempts``-th failed run: 30 s, 1 min, 2 min, ... at most an hour."""
    return min(BACKOFF_FIRST * 2 ** (max(attempts, 1) - 1), BACKOFF_CAP)


# -- writing rows (inside the caller's transaction) -----------------------------------------------------------

def enqueue(session: Session, *, kind: str, payload: Mapping[str, Any], now: dt.datetime) -> Outbox:
    """Add one row to ``session``'s transaction, due at once; committed (or rolled back) with it."""
    row = Outbox(kind=kind, payload=dict(payload), status="pending", created_at=now, attempts=0,
                 next_attempt_at=now)
    session.add(row)
    return row


def enqueue_after_submission(session: Session, settings: Settings, sub: Submission, *, node: str | None, product: str,
                             standard_version: int, lot: str | None, now: dt.datetime) -> None:
    """The work a stored submission calls for: alert evaluation for its node x product, and the webhook."""
    enqueue(session, kind=ALERTS_EVALUATE, now=now,
            payload={"product_id": sub.product_id, "node_id": sub.node_id, "now": now.isoformat()})
    if settings.webhook_url:
        summary = {
            "id": sub.id, "node": node, "product": product, "standard_version": standard_version, "lot": lot,
            "unit": sub.unit, "verdict": sub.verdict, "minor_defects": sub.minor_defects,
            "record_sha256": sub.record_sha256, "captured_at": sub.captured_at.isoformat(),
            "received_at": sub.received_at.isoformat(), "url": f"/api/v1/submissions/{sub.id}",
        }
        enqueue(session, kind=WEBHOOK_SUBMISSION, now=now,
                payload={"event": "submission.created", "submission": summary})


# -- handlers ---------------------------------------------------------------------------------------------------

def _evaluate_alerts(ctx: ServiceContext, job: Job) -> None:
    """Alerts for the submission's node x product at its time; new ones queue the alerts webhook in the same
    transaction. The queries run in a read transaction; the write lock is taken only to store a signal."""
    now = dt.datetime.fromisoformat(job.payload["now"])
    product, node = int(job.payload["product_id"]), int(job.payload["node_id"])
    with ctx.db.session() as session:
        product_id, node_id, found = alerts.find_signals(session, product=product, node=node, now=now)
    if not found:
        return
    with ctx.db.write_session() as session:
        new = alerts.store_signals(session, found, product_id=product_id, node_id=node_id, now=now)
        if new and ctx.settings.webhook_url:
            enqueue(session, kind=WEBHOOK_ALERTS, now=ctx.clock.now(),
                    payload={"event": "alerts.opened", "alerts": [alerts.alert_view(a) for a in new]})


def _post_webhook(ctx: ServiceContext, job: Job) -> None:
    """POST the row's payload as JSON; any failure (refused, timed out, a 4xx/5xx answer) raises, to retry."""
    url = ctx.settings.webhook_url
    if not url:
        return  # the webhook was switched off after the row was written: nothing to deliver
    req = urllib.request.Request(url, data=json.dumps(job.payload).encode(), method="POST", headers={
        "Content-Type": "application/json", "X-Kipimo-Delivery": str(job.id), "X-Kipimo-Event": job.kind})
    with urllib.request.urlopen(req, timeout=ctx.settings.webhook_timeout_s):  # noqa: S310 - operator's URL
        pass  # urlopen raises HTTPError for 4xx/5xx


HANDLERS: dict[str, Handler] = {
    ALERTS_EVALUATE: _evaluate_alerts,
    WEBHOOK_SUBMISSION: _post_webhook,
    WEBHOOK_ALERTS: _post_webhook,
}


# -- draining ---------------------------------------------------------------------------------------------------

def drain_outbox(ctx: ServiceContext, *, handlers: Mapping[str, Handler] | None = None, limit: int | None = None,
                 stop: threading.Event | None = None) -> DrainReport:
    """Run every due row (and the rows those runs queue) until none is due, ``limit`` rows ran or ``stop``
    is set. Safe beside other drains, in this process or another."""
    table = HANDLERS if handlers is None else handlers
    report = DrainReport()
    while limit is None or report.ran < limit:
        if stop is not None and stop.is_set():
            break
        batch = CLAIM_BATCH if limit is None else min(CLAIM_BATCH, limit - report.ran)
        jobs = _claim(ctx, batch)
        if not jobs:
            break
        for job in jobs:  # a claimed batch is finished even when asked to stop: its rows are ours for the lease
            _run(ctx, job, table, report)
    return report


def _claim(ctx: ServiceContext, batch: int) -> list[Job]:
    now = ctx.clock.now()
    due = select(Outbox).where(Outbox.status == "pending", Outbox.next_attempt_at <= now)
    with ctx.db.session() as session:  # a read first: an idle poll never takes SQLite's write lock
        if session.scalars(due.with_only_columns(Outbox.id).limit(1)).first() is None:
            return []
    query = due.order_by(Outbox.next_attempt_at, Outbox.id).limit(batch)
    if ctx.db.backend == "postgresql":
        query = query.with_for_update(skip_locked=True)
    with ctx.db.write_session() as session:
        rows = list(session.scalars(query))
        for row in rows:
            row.attempts += 1
            row.next_attempt_at = now + CLAIM_LEASE
        return [Job(row.id, row.kind, dict(row.payload), row.attempts) for row in rows]


def _run(ctx: ServiceContext, job: Job, handlers: Mapping[str, Handler], report: DrainReport) -> None:
    handler = handlers.get(job.kind)
    error = None
    try:
        if handler is None:
            raise LookupError(f"no handler for outbox kind {job.kind!r}")
        handler(ctx, job)
    except Exception as exc:  # noqa: BLE001 - recorded on the row and retried; the drain goes on
        error = f"{type(exc).__name__}: {exc}"[:ERROR_CHARS]
    now = ctx.clock.now()
    with ctx.db.write_session() as session:
        row = session.get(Outbox, job.id)
        if row is None or row.attempts != job.attempts or row.status != "pending":
            return  # our lease ran out and another drain took the row: its outcome is the one that counts
        if error is None:
            row.status, row.done_at = "done", now
            report.done += 1
            return
        row.last_error = error
        report.errors.append(f"#{job.id} {job.kind}: {error}")
        if job.attempts >= MAX_ATTEMPTS:
            row.status, row.done_at = "failed", now
            report.failed += 1
            log.error("outbox #%s %s failed for good after %s attempts: %s", job.id, job.kind, job.attempts, error)
        else:
            row.next_attempt_at = now + backoff(job.attempts)
            report.retried += 1
            log.warning("outbox #%s %s failed (attempt %s), retrying at %s: %s", job.id, job.kind, job.attempts,
                        row.next_attempt_at.isoformat(), error)


# -- reading ----------------------------------------------------------------------------------------------------

def list_outbox(session: Session, *, status: str | None = None, limit: int = 100) -> list[Outbox]:
    """Rows newest first, optionally of one status."""
    query = select(Outbox).order_by(Outbox.id.desc()).limit(limit)
    if status is not None:
        if status not in STATUSES:
            raise InvalidInput("unknown outbox status", [Problem("status", " or ".join(STATUSES))])
        query = query.where(Outbox.status == status)
    return list(session.scalars(query))


def outbox_counts(session: Session) -> dict[str, int]:
    counts = dict.fromkeys(STATUSES, 0)
    for status, n in session.execute(select(Outbox.status, func.count()).group_by(Outbox.status)):
        counts[status] = n
    return counts


def outbox_view(row: Outbox) -> dict[str, Any]:
    return {
        "id": row.id, "kind": row.kind, "status": row.status, "attempts": row.attempts,
        "created_at": row.created_at.isoformat(), "next_attempt_at": row.next_attempt_at.isoformat(),
        "done_at": row.done_at.isoformat() if row.done_at else None, "last_error": row.last_error,
        "payload": row.payload,
    }


# -- the worker the app starts ----------------------------------------------------------------------------------

class OutboxWorker:
    """A thread that drains every ``interval_s`` seconds, and at once when a commit adds outbox rows."""

    def __init__(self, ctx: ServiceContext, *, interval_s: float = 1.0) -> None:
        self.ctx = ctx
        self.interval_s = interval_s
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._passes = threading.Condition()
        self._started = self._finished = 0
        self._thread: threading.Thread | None = None
        self._key = f"kipimo.outbox.new_rows.{id(self)}"  # per worker: several apps may share one database

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        event.listen(self.ctx.db.sessions, "after_flush", self._after_flush)
        event.listen(self.ctx.db.sessions, "after_commit", self._after_commit)
        self._thread = threading.Thread(target=self._loop, name="kipimo-outbox", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Finish the row in hand and stop (rows left pending are drained by the next start)."""
        if self._thread is None:
            return
        event.remove(self.ctx.db.sessions, "after_flush", self._after_flush)
        event.remove(self.ctx.db.sessions, "after_commit", self._after_commit)
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout)
        self._thread = None

    def poke(self) -> None:
        self._wake.set()

    def wait_for_drain(self, timeout: float = 60.0) -> bool:
        """Wait until a drain pass that started after this call has finished (False on timeout): every row
        committed before the call and due by then has run."""
        with self._passes:
            target = self._started + 1
            self.poke()
            return self._passes.wait_for(lambda: self._finished >= target, timeout)

    def _after_flush(self, session: Session, _flush_context: Any) -> None:
        if any(isinstance(obj, Outbox) for obj in session.new):
            session.info[self._key] = True

    def _after_commit(self, session: Session) -> None:
        if session.info.pop(self._key, False):
            self.poke()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.interval_s)
            self._wake.clear()
            if self._stop.is_set():
                break
            with self._passes:
                self._started += 1
                this_pass = self._started
            try:
                drain_outbox(self.ctx, stop=self._stop)
            except Exception:  # noqa: BLE001 - e.g. the database briefly unreachable: try again next tick
                log.exception("outbox drain failed")
            with self._passes:
                self._finished = this_pass
                self._passes.notify_all()
