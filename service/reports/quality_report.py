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
    """The product's charts and readings as one self-contained HTML document (the dashboard's templates)."""
    an = q.Analytics(ctx.db)
    assert filters.product is not None
    with ctx.db.session() as session:
        rates = insights.rates(an, session, filters, now=now)
        pcharts = insights.p_charts(an, session, filters, now=now)
        measures = insights.measurements(an, session, filters, now=now)
        par = insights.pareto(an, session, filters, now=now)
        open_alerts = [alerting.alert_view(a) for a in
                       alerting.list_alerts(session, status="open", product=filters.product, node=filters.node)]
    generated = now.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M")
    return pages.render("report.html", product=filters.product, generated=generated, rates=rates, pcharts=pcharts,
                        measures=measures, pareto=par, alerts=open_alerts)


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
