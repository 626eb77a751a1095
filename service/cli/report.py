"""``qc report`` (offline quality report, HTML or PDF) and ``qc alerts`` (evaluate, list).

The statistics and the dashboard's templates are imported inside the commands: SciPy and FastAPI would
otherwise cost every ``qc`` command seconds at start-up."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import click

from service.settings import Settings

from .base import cli
from .db import migrated_context


def _date(value: str | None, name: str) -> dt.datetime | None:
    if value is None:
        return None
    try:
        day = dt.date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date; use YYYY-MM-DD", param_hint=name) from None
    return dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)


@cli.command("report")
@click.option("--product", required=True, help="Product slug (e.g. spare-part-bracket).")
@click.option("--since", help="First capture day, YYYY-MM-DD [default: 26 weeks before --until].")
@click.option("--until", help="Day after the last capture day, YYYY-MM-DD [default: tomorrow].")
@click.option("--node", help="Only this node.")
@click.option("--version", "version", type=int, help="Only records made under this standard version.")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="report.html, or report.pdf (printed with headless Chromium).")
@click.pass_obj
def report(settings: Settings, product: str, since: str | None, until: str | None, node: str | None,
           version: int | None, out: Path) -> None:
    """Write the dashboard's charts and readings for one product to an offline HTML or PDF file."""
    if out.suffix.lower() not in (".html", ".htm", ".pdf"):
        raise click.BadParameter("the file name must end in .html or .pdf", param_hint="--out")
    from service.core import analytics as q  # noqa: PLC0415
    from service.reports.quality_report import build_report, print_pdf  # noqa: PLC0415

    filters = q.Filters(product=product, version=version, node=node, since=_date(since, "--since"),
                        until=_date(until, "--until"))
    with migrated_context(settings) as ctx:
        html = build_report(ctx, filters, now=ctx.now())
        out.parent.mkdir(parents=True, exist_ok=True)
        if out.suffix.lower() == ".pdf":
            print_pdf(html, out)
        else:
            out.write_text(html, encoding="utf-8")
    click.echo(f"wrote {out} ({out.stat().st_size:,} bytes)")


@cli.group("alerts")
def alerts_group() -> None:
    """Alerts raised by control-chart rules and the funnel limits."""


@alerts_group.command("evaluate")
@click.pass_obj
def alerts_evaluate(settings: Settings) -> None:
    """Evaluate every node and product now (after a bulk import; submissions evaluate on their own)."""
    with migrated_context(settings) as ctx:
        from service.core import alerts as alerting  # noqa: PLC0415

        new = alerting.evaluate_all(ctx, now=ctx.now())
    for a in new:
        click.echo(f"#{a['id']} {a['product']} {a['node']}: {a['message']}")
    click.echo(f"{len(new)} new alert(s)")


@alerts_group.command("list")
@click.option("--status", type=click.Choice(["open", "acknowledged", "all"]), default="open", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def alerts_list(settings: Settings, status: str, as_json: bool) -> None:
    """List alerts, newest first."""
    with migrated_context(settings) as ctx, ctx.db.session() as session:
        from service.core import alerts as alerting  # noqa: PLC0415

        rows: list[dict[str, Any]] = [alerting.alert_view(a) for a in
                                      alerting.list_alerts(session, status=None if status == "all" else status)]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for a in rows:
        click.echo(f"#{a['id']} [{a['status']}] {a['created_at'][:16]} {a['product']} {a['node']}: {a['message']}")
