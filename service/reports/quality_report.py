"""The offline quality report: the dashboard's charts and readings for one product as one
self-contained HTML document, and printing it to PDF with headless Chromium."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from qc.errors import KipimoError
from service.core import alerts as alerting
from service.core import analytics as q
from service.core import insights
from service.core.context import ServiceContext
from service.web.dashboard import pages

__all__ = ["CHROMIUM_ENV", "ReportFailed", "build_report", "chromium_path", "print_pdf"]

CHROMIUM_ENV = "KIPIMO_CHROMIUM"


class ReportFailed(KipimoError):
    """The report could not be printed (no Chromium, or Chromium failed)."""

    status_code = 503


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
        raise ReportFailed(
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
            raise ReportFailed(f"Chromium did not finish printing within {timeout:.0f} s") from None
    if done.returncode != 0 or not out.exists() or out.stat().st_size == 0:
        raise ReportFailed(f"Chromium could not print the PDF (exit {done.returncode}): "
                                   f"{(done.stderr or done.stdout).strip()[-500:]}")
