"""``qc outbox``: the post-commit work queue (alert evaluation, webhooks) for operators."""

from __future__ import annotations

import json

import click

from qc.errors import NotFound
from service.core import outbox as ob
from service.settings import Settings
from service.storage.orm import Outbox

from .base import cli
from .db import migrated_context


@cli.group("outbox")
def outbox_group() -> None:
    """Post-commit work: rows each submission queues (alerts, webhook), drained with retries by `qc serve`."""


@outbox_group.command("drain")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Run at most this many rows.")
@click.pass_obj
def outbox_drain(settings: Settings, limit: int | None) -> None:
    """Run every due row now (safe beside a running server: a row is never run by two drains)."""
    with migrated_context(settings) as ctx:
        report = ob.drain_outbox(ctx, limit=limit)
    for line in report.errors:
        click.echo(line, err=True)
    click.echo(f"ran {report.ran}: {report.done} done, {report.retried} to retry, {report.failed} failed")


@outbox_group.command("list")
@click.option("--status", type=click.Choice([*ob.STATUSES, "all"]), default="all", show_default=True)
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def outbox_list(settings: Settings, status: str, limit: int, as_json: bool) -> None:
    """List rows, newest first, with attempts, the next try and the last error."""
    with migrated_context(settings) as ctx, ctx.db.session() as session:
        rows = [ob.outbox_view(r) for r in ob.list_outbox(session, status=None if status == "all" else status,
                                                          limit=limit)]
        counts = ob.outbox_counts(session)
    if as_json:
        click.echo(json.dumps({"counts": counts, "items": rows}, indent=2))
        return
    click.echo(", ".join(f"{n} {s}" for s, n in counts.items()))
    for r in rows:
        when = r["done_at"] if r["status"] != "pending" else f"next {r['next_attempt_at']}"
        click.echo(f"#{r['id']} {r['kind']} {r['status']} after {r['attempts']} attempt(s), {when}"
                   + (f": {r['last_error']}" if r["last_error"] else ""))


@outbox_group.command("retry")
@click.argument("row_id", type=int)
@click.pass_obj
def outbox_retry(settings: Settings, row_id: int) -> None:
    """Queue a failed row again (after fixing what made it fail, e.g. the webhook URL)."""
    with migrated_context(settings) as ctx, ctx.db.write_session() as session:
        row = session.get(Outbox, row_id)
        if row is None:
            raise NotFound(f"no outbox row #{row_id}")
        if row.status != "failed":
            raise click.ClickException(f"outbox row #{row_id} is {row.status}; only failed rows are retried")
        row.status, row.attempts, row.done_at, row.next_attempt_at = "pending", 0, None, ctx.now()
    click.echo(f"#{row_id} queued again; `qc outbox drain` (or the server) runs it")
