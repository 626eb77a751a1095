"""``qc report`` (offline quality report, HTML or PDF) and ``qc alerts`` (evaluate, list)."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import click

from service import alerts as alerting
from service import analytics as q
from service import insights
from service.deps import ServiceContext
from service.settings import Settings
from service.web.dashboard import pages

from .base import cli
from .db import migrated_context, now_utc

__all__ = ["build_report", "chromium_path", "print_pdf"]

CHROMIUM_ENV = "KIPIMO_CHROMIUM"


def _date(value: str | None, name: str) -> dt.datetime | None:
    if value is None:
        return None
    try:
        day = dt.date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date; use YYYY-MM-DD", param_hint=name) from None
    return dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)


def build_report(ctx: ServiceContext, filters: q.Filters, *, now: dt.datetime) -> str:
    """The product's charts and readings as one self-contained HTML document (the dashboard's figures)."""
    from service.web.dashboard import figures  # noqa: PLC0415

    an = q.Analytics(ctx.db)
    assert filters.product is not None
    with ctx.db.session() as session:
        rates = insights.rates(an, session, filters, now=now)
        pcharts = insights.p_charts(an, session, filters, now=now)
        measures = insights.measurements(an, session, filters, now=now)
        par = insights.pareto(an, session, filters, now=now)
        open_alerts = [alerting.alert_view(a) for a in
                       alerting.list_alerts(session, status="open", product=filters.product, node=filters.node)]
    f = rates["filters"]
    lines = list(rates["readings"]) + list(pcharts["readings"]) + [par["reading"]]
    for m in measures["checks"]:
        lines += m["readings"]
    flagged = any(n["status"] == "above" for n in rates["nodes"])
    body = [
        f'<h1>Quality report: {pages.esc(filters.product)}</h1><p class="sub">Captured {pages.esc(f["since"][:10])} '
        f'to {pages.esc(f["until"][:10])}{" · node " + pages.esc(f["node"]) if f.get("node") else ""} · '
        f'{rates["network"]["n"]} inspections, {rates["network"]["defects"]} failed '
        f'({pages.pct(rates["network"]["rate"])}).</p>',
        pages.readings(lines),
        '<div class="grid">',
        pages.chart_card("Defect rate per node (95 % Wilson interval)", figures.rates_svg(rates),
                         rates["readings"][0] if rates["readings"] else None, flagged=flagged),
        pages.chart_card("Funnel plot: defect rate against volume", figures.funnel_svg(rates),
                         "Points above the outer (99.8 %) curve are more defective than chance explains.",
                         flagged=flagged),
        pages.chart_card("Pareto of failed checks", figures.pareto_svg(par), par["reading"]),
        '</div>',
        pages.p_chart_grid(pcharts),
        *[pages.measurement_block(m) for m in measures["checks"]],
        f'<section class="block"><h2>Open alerts</h2>{pages.alert_items(open_alerts, can_ack=False, back="")}'
        '</section>',
        f'<section class="card block"><h2>Nodes</h2>{pages.rates_table(rates, f)}</section>',
    ]
    generated = now.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M")
    return pages.report_document(filters.product, "".join(body), generated=generated)


def chromium_path() -> str | None:
    """Chromium for printing PDFs: ``KIPIMO_CHROMIUM``, else ``chromium`` / ``chromium-browser`` on PATH."""
    env = os.environ.get(CHROMIUM_ENV)
    if env:
        return env if Path(env).exists() or shutil.which(env) else None
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


def print_pdf(html: str, out: Path, *, timeout: float = 120) -> None:
    """Print ``html`` to ``out`` with headless Chromium; a clear error when it is missing or fails."""
    exe = chromium_path()
    if exe is None:
        raise click.ClickException(
            "PDF output needs Chromium (Debian: apt-get install chromium; or set KIPIMO_CHROMIUM to its path). "
            "Without it, write --out report.html and print that from any browser.")
    with tempfile.TemporaryDirectory(prefix="kipimo-report-") as tmp:
        page = Path(tmp) / "report.html"
        page.write_text(html, encoding="utf-8")
        cmd = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", f"--user-data-dir={Path(tmp) / 'profile'}",
               "--no-pdf-header-footer", f"--print-to-pdf={out.resolve()}", page.as_uri()]
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            raise click.ClickException(f"Chromium did not finish printing within {timeout:.0f} s") from None
    if done.returncode != 0 or not out.exists() or out.stat().st_size == 0:
        raise click.ClickException(f"Chromium could not print the PDF (exit {done.returncode}): "
                                   f"{(done.stderr or done.stdout).strip()[-500:]}")


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
    filters = q.Filters(product=product, version=version, node=node, since=_date(since, "--since"),
                        until=_date(until, "--until"))
    with migrated_context(settings) as ctx:
        html = build_report(ctx, filters, now=now_utc())
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
        new = alerting.evaluate_all(ctx, now=now_utc())
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
        rows: list[dict[str, Any]] = [alerting.alert_view(a) for a in
                                      alerting.list_alerts(session, status=None if status == "all" else status)]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for a in rows:
        click.echo(f"#{a['id']} [{a['status']}] {a['created_at'][:16]} {a['product']} {a['node']}: {a['message']}")
