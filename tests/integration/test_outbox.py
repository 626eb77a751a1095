"""The outbox on SQLite and PostgreSQL: rows commit with their submission, retries follow the backoff on the
frozen clock, a row that keeps failing ends ``failed``, concurrent drains never share a row, the webhook
reaches a real HTTP server, and the app's worker drains what HTTP submissions queue.

The backoff schedule below is the documented one (30 s, doubling, at most an hour; 8 attempts), written out
here rather than read from the module.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from sqlalchemy import event, func, select

from demo.bulk import Shift, SyntheticPlan, load_synthetic
from qc.standards import parse_standard
from service.cli import cli
from service.core.context import ServiceContext
from service.core.outbox import Job, drain_outbox, enqueue
from service.core.submissions import record_submission
from service.http.app import create_app
from service.storage.orm import Alert, Node, Outbox, Product, Submission
from tests.clock import TEST_NOW
from tests.integration.support import TEST_PRODUCT, TEST_STANDARD, jpeg, record, upload

SCHEDULE_S = [30, 60, 120, 240, 480, 960, 1920]  # waits after attempts 1..7; the 8th failure is final (3840 > cap)


class Hook:
    """A real HTTP server on a free loopback port that records each POST and answers ``statuses`` in turn."""

    def __init__(self, statuses: list[int]) -> None:
        self.received: list[tuple[dict[str, str], dict[str, Any]]] = []
        self.statuses = statuses
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the http.server API
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                hook.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(hook.statuses.pop(0) if hook.statuses else 204)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hook() -> Iterator[Callable[..., Hook]]:
    hooks: list[Hook] = []

    def make(*statuses: int) -> Hook:
        hooks.append(Hook(list(statuses)))
        return hooks[-1]

    yield make
    for h in hooks:
        h.close()


def with_webhook(ctx: ServiceContext, url: str) -> ServiceContext:
    return ServiceContext(ctx.settings.model_copy(update={"webhook_url": url, "webhook_timeout_s": 5.0}),
                          ctx.db, ctx.store, ctx.clock)


def rows(ctx: ServiceContext) -> list[Outbox]:
    with ctx.db.session() as session:
        return list(session.scalars(select(Outbox).order_by(Outbox.id)))


def submit(ctx: ServiceContext, **overrides: Any) -> dict[str, Any]:
    rec = record(**overrides)
    record_submission(ctx, record=rec, photos={"top": jpeg(64, 48)}, now=ctx.now(), node="node-a")
    return rec


def add_row(ctx: ServiceContext, kind: str, payload: dict[str, Any] | None = None) -> int:
    with ctx.db.write_session() as session:
        row = enqueue(session, kind=kind, payload=payload or {}, now=ctx.now())
        session.flush()
        return row.id


def test_a_submission_queues_its_work_in_its_own_transaction(ctx: Any, seed: Any, hook: Any) -> None:
    plain = submit(ctx)
    with ctx.db.session() as session:
        sub = session.scalars(select(Submission).where(Submission.id == plain["id"])).one()
        node_id = session.scalars(select(Node.id).where(Node.name == "node-a")).one()
        product_id = session.scalars(select(Product.id).where(Product.slug == TEST_PRODUCT)).one()
        assert sub.node_id == node_id
    [alerts_row] = rows(ctx)  # no webhook configured: only the alert evaluation
    assert (alerts_row.kind, alerts_row.status, alerts_row.attempts) == ("alerts.evaluate", "pending", 0)
    assert alerts_row.payload == {"product_id": product_id, "node_id": node_id, "now": TEST_NOW.isoformat()}
    assert alerts_row.created_at == alerts_row.next_attempt_at == TEST_NOW

    submit(with_webhook(ctx, hook().url))
    assert [r.kind for r in rows(ctx)] == ["alerts.evaluate", "alerts.evaluate", "webhook.submission"]


def test_a_failed_insert_leaves_neither_the_submission_nor_its_outbox_rows(ctx: Any, seed: Any) -> None:
    seen: list[tuple[int, int]] = []

    def refuse(session: Any) -> None:  # the commit fails (a full disk, a lost connection) after every row is in
        session.flush()
        held = (session.scalar(select(func.count()).select_from(Submission)),
                session.scalar(select(func.count()).select_from(Outbox)))
        if held[0]:
            seen.append(held)
            raise RuntimeError("disk full")

    event.listen(ctx.db.sessions, "before_commit", refuse)
    try:
        with pytest.raises(RuntimeError, match="disk full"):
            submit(ctx)
    finally:
        event.remove(ctx.db.sessions, "before_commit", refuse)
    assert seen == [(1, 1)]  # the transaction held the submission and its outbox row together
    with ctx.db.session() as session:
        assert session.scalar(select(func.count()).select_from(Submission)) == 0
    assert rows(ctx) == []


def test_a_failing_handler_is_retried_after_the_backoff_and_then_succeeds(ctx: Any) -> None:
    calls: list[int] = []

    def flaky(_ctx: Any, job: Job) -> None:
        calls.append(job.attempts)
        if len(calls) == 1:
            raise ConnectionError("gauge server offline")

    handlers = {"test.flaky": flaky}
    row_id = add_row(ctx, "test.flaky", {"n": 1})
    first = drain_outbox(ctx, handlers=handlers)
    assert (first.done, first.retried, first.failed) == (0, 1, 0)
    [row] = rows(ctx)
    assert (row.id, row.status, row.attempts) == (row_id, "pending", 1)
    assert row.last_error == "ConnectionError: gauge server offline"
    assert row.next_attempt_at == TEST_NOW + dt.timedelta(seconds=30)

    assert drain_outbox(ctx, handlers=handlers).ran == 0  # not due yet
    ctx.clock.advance(dt.timedelta(seconds=29))
    assert drain_outbox(ctx, handlers=handlers).ran == 0
    ctx.clock.advance(dt.timedelta(seconds=1))
    assert drain_outbox(ctx, handlers=handlers).done == 1
    [row] = rows(ctx)
    assert (row.status, row.attempts, row.done_at) == ("done", 2, TEST_NOW + dt.timedelta(seconds=30))
    assert calls == [1, 2]
    assert drain_outbox(ctx, handlers=handlers).ran == 0  # done rows never run again


def test_a_handler_that_always_fails_ends_failed_with_its_error(ctx: Any, settings: Any) -> None:
    def broken(_ctx: Any, _job: Job) -> None:
        raise ValueError("no such endpoint")

    add_row(ctx, "test.broken")
    for wait in SCHEDULE_S:
        assert drain_outbox(ctx, handlers={"test.broken": broken}).retried == 1
        [row] = rows(ctx)
        assert row.next_attempt_at == ctx.now() + dt.timedelta(seconds=wait)
        ctx.clock.advance(dt.timedelta(seconds=wait))
    last = drain_outbox(ctx, handlers={"test.broken": broken})
    assert (last.failed, last.errors) == (1, [f"#{row.id} test.broken: ValueError: no such endpoint"])
    [row] = rows(ctx)
    assert (row.status, row.attempts, row.done_at) == ("failed", 8, ctx.now())
    assert row.last_error == "ValueError: no such endpoint"
    ctx.clock.advance(dt.timedelta(days=30))
    assert drain_outbox(ctx, handlers={"test.broken": broken}).ran == 0  # given up, kept, never dropped

    # operators see it, and queue it again once the cause is fixed
    env = {"KIPIMO_DATA_DIR": str(settings.data_dir), "KIPIMO_DATABASE_URL": settings.database_url,
           "KIPIMO_FROZEN_TIME": ctx.now().isoformat()}
    listed = CliRunner().invoke(cli, ["outbox", "list", "--status", "failed", "--json"], env=env)
    assert listed.exit_code == 0, listed.output
    body = json.loads(listed.output)
    assert body["counts"] == {"pending": 0, "done": 0, "failed": 1}
    assert [(r["id"], r["attempts"], r["last_error"]) for r in body["items"]] == [
        (row.id, 8, "ValueError: no such endpoint")]
    assert CliRunner().invoke(cli, ["outbox", "retry", str(row.id)], env=env).exit_code == 0
    [row] = rows(ctx)
    assert (row.status, row.attempts, row.done_at) == ("pending", 0, None)
    refused = CliRunner().invoke(cli, ["outbox", "retry", str(row.id)], env=env)
    assert refused.exit_code == 1 and "only failed rows" in refused.output
    # `qc outbox drain` runs it with the real handlers, which know no "test.broken": it fails visibly again
    drained = CliRunner().invoke(cli, ["outbox", "drain"], env=env)
    assert drained.exit_code == 0, drained.output
    assert "ran 1: 0 done, 1 to retry, 0 failed" in drained.output
    assert "no handler for outbox kind 'test.broken'" in drained.output


def test_two_concurrent_drains_never_run_the_same_row(ctx: Any) -> None:
    ids = [add_row(ctx, "test.slow", {"n": n}) for n in range(40)]
    ran: list[int] = []
    lock = threading.Lock()
    start = threading.Barrier(2)

    def slow(_ctx: Any, job: Job) -> None:
        with lock:
            ran.append(job.id)

    def drain() -> None:
        start.wait()
        drain_outbox(ctx, handlers={"test.slow": slow})

    def slow_claim(session: Any) -> None:  # hold each claim open a moment so the two drains' claims overlap
        if any(isinstance(o, Outbox) and o.status == "pending" for o in session.dirty):
            threading.Event().wait(0.05)

    threads = [threading.Thread(target=drain) for _ in range(2)]
    event.listen(ctx.db.sessions, "before_commit", slow_claim)
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    finally:
        event.remove(ctx.db.sessions, "before_commit", slow_claim)
    assert sorted(ran) == ids  # every row once, none twice
    assert {(r.status, r.attempts) for r in rows(ctx)} == {("done", 1)}


def test_the_webhook_posts_the_submission_to_a_real_server_and_retries_a_500(ctx: Any, seed: Any,
                                                                              hook: Any) -> None:
    server = hook(500)  # the first delivery is refused, the retry accepted
    hooked = with_webhook(ctx, server.url)
    rec = submit(hooked, unit="U-7", lot="L-042")
    first = drain_outbox(hooked)
    assert (first.done, first.retried) == (1, 1)  # the alert evaluation is done; the webhook waits 30 s
    webhook_row = next(r for r in rows(ctx) if r.kind == "webhook.submission")
    assert "500" in (webhook_row.last_error or "")
    ctx.clock.advance(dt.timedelta(seconds=30))
    assert drain_outbox(hooked).done == 1
    assert [r.status for r in rows(ctx)] == ["done", "done"]

    assert len(server.received) == 2 and server.received[0] == server.received[1]  # the same delivery, twice
    headers, body = server.received[1]
    assert headers["content-type"] == "application/json"
    assert headers["x-kipimo-delivery"] == str(webhook_row.id)  # receivers drop repeats by it
    assert body["event"] == "submission.created"
    sent = body["submission"]
    assert {k: sent[k] for k in ("id", "node", "product", "standard_version", "lot", "unit", "verdict",
                                 "minor_defects")} == {
        "id": rec["id"], "node": "node-a", "product": TEST_PRODUCT, "standard_version": 1, "lot": "L-042",
        "unit": "U-7", "verdict": "pass", "minor_defects": 0}
    assert sent["received_at"] == TEST_NOW.isoformat()
    assert sent["url"] == f"/api/v1/submissions/{rec['id']}"


def test_new_alerts_are_stored_and_posted_to_the_webhook(ctx: Any, seed: Any, hook: Any) -> None:
    # twelve weeks for two nodes, node-b's defect rate six times the rest for the last three
    load_synthetic(ctx.db, [parse_standard(TEST_STANDARD, source="test")],
                   SyntheticPlan(records=1200, nodes=["node-a", "node-b"], weeks=12, end=TEST_NOW,
                                 defect_rate=0.03, seed=11, shift=Shift("node-b", weeks=3, defect_factor=6.0,
                                                                        sigmas=3.0)))
    server = hook()
    hooked = with_webhook(ctx, server.url)
    with ctx.db.session() as session:
        product_id = session.scalars(select(Product.id).where(Product.slug == TEST_PRODUCT)).one()
        node_ids = {name: id_ for name, id_ in session.execute(select(Node.name, Node.id))}
    for node in ("node-a", "node-b"):
        add_row(ctx, "alerts.evaluate", {"product_id": product_id, "node_id": node_ids[node],
                                         "now": TEST_NOW.isoformat()})
    report = drain_outbox(hooked)
    assert (report.done, report.failed) == (3, 0)  # two evaluations, then the webhook row node-b's queued
    with ctx.db.session() as session:
        stored = {(a.id, a.node.name) for a in session.scalars(select(Alert))}
    assert stored and {node for _, node in stored} == {"node-b"}
    [(headers, body)] = server.received
    assert headers["x-kipimo-event"] == "webhook.alerts"
    assert body["event"] == "alerts.opened"
    assert {(a["id"], a["node"]) for a in body["alerts"]} == stored
    # evaluating again opens nothing, so nothing more is posted
    add_row(ctx, "alerts.evaluate", {"product_id": product_id, "node_id": node_ids["node-b"],
                                     "now": TEST_NOW.isoformat()})
    assert drain_outbox(hooked).done == 1 and len(server.received) == 1


def test_the_app_worker_drains_what_http_submissions_queue_and_stops_with_the_app(settings: Any, ctx: Any,
                                                                                    seed: Any) -> None:
    app = create_app(settings, context=ctx)
    worker = app.state.outbox
    with TestClient(app) as client:
        assert upload(client, seed.tech_a, record(), {"top": jpeg(64, 48)}).status_code == 201
        assert worker.wait_for_drain(timeout=60)
        assert [(r.kind, r.status) for r in rows(ctx)] == [("alerts.evaluate", "done")]
        thread = worker._thread
        assert thread is not None and thread.is_alive()
    assert not thread.is_alive()  # the lifespan's shutdown stopped it
    assert worker._thread is None
