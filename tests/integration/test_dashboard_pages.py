"""Dashboard HTML pages, sign-in by cookie, acknowledging alerts from a page, and ``qc report``."""

from __future__ import annotations

import datetime as dt
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from demo.bulk import Shift, SyntheticPlan, load_synthetic
from service.core.alerts import evaluate_alerts
from service.storage.orm import Alert, Lot
from service.web.dashboard.routes import COOKIE
from tests.clock import TEST_NOW
from tests.integration.support import TEST_PRODUCT, auth

NOW = TEST_NOW
ORIGIN = {"Origin": "http://testserver"}  # what a browser sends with a form from the dashboard's own pages


@pytest.fixture
def network(ctx: Any, seed: Any) -> Any:
    """Twelve weeks of records for node-a and node-b (bulk-loaded), node-b shifted in the last three weeks."""
    from qc.standards import parse_standard  # noqa: PLC0415
    from tests.integration.support import TEST_STANDARD  # noqa: PLC0415

    load_synthetic(ctx.db, [parse_standard(TEST_STANDARD, source="test")],
                   SyntheticPlan(records=1200, nodes=["node-a", "node-b"], weeks=12, end=NOW, defect_rate=0.03,
                                 seed=11, shift=Shift("node-b", weeks=3, defect_factor=6.0, sigmas=3.0)))
    with ctx.db.write_session() as session:
        for node in ("node-a", "node-b"):
            evaluate_alerts(session, product=TEST_PRODUCT, node=node, now=NOW, fresh=True)
    return seed


def signed_in(client: Any, token: str) -> Any:
    res = client.post("/dashboard/login", data={"token": token, "next": "/dashboard"}, headers=ORIGIN,
                      follow_redirects=False)
    assert res.status_code == 303, res.text
    assert res.headers["location"] == "/dashboard"
    cookie = res.headers["set-cookie"]
    assert COOKIE in cookie and "HttpOnly" in cookie and "samesite=strict" in cookie.lower()
    return client


def test_pages_need_a_sign_in_and_send_the_browser_to_the_form(client: Any, seed: Any) -> None:
    res = client.get("/dashboard/products/x?since=2026-01-01", follow_redirects=False)
    assert res.status_code == 303
    assert res.headers["location"].startswith("/dashboard/login?next=/dashboard/products/x")
    form = client.get("/dashboard/login")
    assert form.status_code == 200 and 'name="token"' in form.text


def test_a_technician_token_does_not_open_the_dashboard(client: Any, seed: Any) -> None:
    res = client.post("/dashboard/login", data={"token": seed.tech_a}, headers=ORIGIN, follow_redirects=False)
    assert res.status_code == 401
    assert "a technician token may not open the dashboard (allowed: manager, auditor, admin)" in res.text
    assert client.get("/dashboard", headers=auth(seed.tech_a)).status_code == 403


def test_login_refuses_an_unknown_token_and_an_outside_redirect(client: Any, seed: Any) -> None:
    assert client.post("/dashboard/login", data={"token": "kip_nope"}, headers=ORIGIN).status_code == 401
    res = client.post("/dashboard/login", data={"token": seed.manager, "next": "https://evil.example/"},
                      headers=ORIGIN, follow_redirects=False)
    assert res.headers["location"] == "/dashboard"


def test_overview_shows_charts_readings_and_the_shifted_node(client: Any, network: Any) -> None:
    signed_in(client, network.manager)
    res = client.get(f"/dashboard?product={TEST_PRODUCT}")
    assert res.status_code == 200
    assert "script-src" not in res.headers["content-security-policy"]  # no script at all: default-src 'none'
    html = res.text
    assert html.count("<svg") >= 5  # rates, funnel, Pareto, one p-chart per node
    assert 'data-testid="funnel"' in html and 'data-testid="p-chart-node-b"' in html
    # node-b's card is flagged and read out in words
    card = re.search(r'<figure class="card chart flagged" data-testid="p-chart-node-b">.*?</figure>', html, re.S)
    assert card, "node-b's p-chart is not flagged"
    assert "Node-b" in card.group(0) and "above the network" in card.group(0)
    assert "class='point violation'" in card.group(0)
    assert 'data-node="node-b"' in html  # its open alert is listed


def test_product_node_lot_and_alert_pages_render(client: Any, network: Any, ctx: Any) -> None:
    headers = auth(network.auditor)  # the Authorization header works as well as the cookie
    product = client.get(f"/dashboard/products/{TEST_PRODUCT}", headers=headers)
    assert product.status_code == 200 and 'data-testid="measure-diameter"' in product.text
    assert "Capability per node" in product.text
    node = client.get("/dashboard/nodes/node-b", headers=headers)
    assert node.status_code == 200 and "Recent lots" in node.text and "<svg" in node.text
    with ctx.db.session() as session:
        lot_id = session.query(Lot.id).order_by(Lot.id).first()[0]
    lot = client.get(f"/dashboard/lots/{lot_id}", headers=headers)
    assert lot.status_code == 200 and "Units" in lot.text
    missing = client.get("/dashboard/nodes/nowhere", headers=headers)
    assert missing.status_code == 404 and "no node" in missing.text
    alerts = client.get("/dashboard/alerts", headers=headers)
    assert alerts.status_code == 200
    assert "Acknowledge</button>" not in alerts.text  # auditors read, managers acknowledge


def test_a_manager_acknowledges_an_alert_from_the_page(client: Any, network: Any, ctx: Any) -> None:
    with ctx.db.session() as session:
        alert = session.query(Alert).filter(Alert.status == "open").order_by(Alert.id).first()
        assert alert is not None, "the shifted node raised no alert"
        alert_id = alert.id
    signed_in(client, network.manager)
    page = client.get("/dashboard/alerts")
    assert f'action="/dashboard/alerts/{alert_id}/acknowledge"' in page.text
    csrf = re.search(r'name="csrf" value="([0-9a-f]{64})"', page.text).group(1)
    res = client.post(f"/dashboard/alerts/{alert_id}/acknowledge", headers=ORIGIN, follow_redirects=False,
                      data={"comment": "worn nozzle replaced", "back": "/dashboard/alerts", "csrf": csrf})
    assert res.status_code == 303 and res.headers["location"] == "/dashboard/alerts"
    with ctx.db.session() as session:
        stored = session.get(Alert, alert_id)
        assert stored.status == "acknowledged" and stored.comment == "worn nozzle replaced"
        assert stored.acknowledged_by.endswith("Quality manager")


def test_qc_report_writes_the_charts_to_an_offline_html_file(network: Any, settings: Any, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    from service.cli import cli  # noqa: PLC0415

    monkeypatch.setenv("KIPIMO_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("KIPIMO_DATABASE_URL", settings.resolved_database_url)
    out = tmp_path / "report.html"
    since = (NOW - dt.timedelta(weeks=12)).date().isoformat()
    res = CliRunner().invoke(cli, ["report", "--product", TEST_PRODUCT, "--since", since, "--out", str(out)])
    assert res.exit_code == 0, res.output
    html = out.read_text()
    assert html.count("<svg") >= 5 and "<style>" in html and "/dashboard/static" not in html
    assert "node-b" in html
    bad = CliRunner().invoke(cli, ["report", "--product", TEST_PRODUCT, "--out", str(tmp_path / "r.docx")])
    assert bad.exit_code != 0 and ".html or .pdf" in bad.output


@pytest.mark.skipif(not (shutil.which("chromium") or Path("/usr/bin/chromium").exists()), reason="needs Chromium")
def test_qc_report_prints_a_pdf_with_chromium(network: Any, settings: Any, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    from service.cli import cli  # noqa: PLC0415

    if not settings.resolved_database_url.startswith("sqlite"):
        pytest.skip("the PDF path does not depend on the database; SQLite covers it")
    monkeypatch.setenv("KIPIMO_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("KIPIMO_DATABASE_URL", settings.resolved_database_url)
    out = tmp_path / "report.pdf"
    res = CliRunner().invoke(cli, ["report", "--product", TEST_PRODUCT, "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert out.read_bytes()[:5] == b"%PDF-" and out.stat().st_size > 10_000


def test_pdf_without_chromium_says_how_to_get_it(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from service.reports.quality_report import ReportFailed, print_pdf  # noqa: PLC0415

    monkeypatch.setenv("KIPIMO_CHROMIUM", str(tmp_path / "no-such-chromium"))
    with pytest.raises(ReportFailed, match="apt-get install chromium"):
        print_pdf("<html></html>", tmp_path / "x.pdf")


def test_the_shifted_node_alone_gets_rate_and_mean_shift_alerts(network: Any, ctx: Any) -> None:
    with ctx.db.session() as session:
        alerts = session.query(Alert).all()
        by_node = {(a.node.name, a.rule) for a in alerts}
    assert {node for node, _ in by_node} == {"node-b"}, by_node
    rules = {rule for _, rule in by_node}
    assert "mean-shift-1" in rules  # diameter moved 3 sigma off its own history
    assert rules & {"p-above-limit", "funnel-above"}
    # evaluating the same data again opens nothing new
    with ctx.db.write_session() as session:
        for node in ("node-a", "node-b"):
            assert evaluate_alerts(session, product=TEST_PRODUCT, node=node, now=NOW, fresh=True) == []


def test_a_partial_current_week_raises_no_alert_for_the_steady_node(ctx: Any, seed: Any) -> None:
    from qc.standards import parse_standard  # noqa: PLC0415
    from tests.integration.support import TEST_STANDARD  # noqa: PLC0415

    tuesday_evening = dt.datetime(2026, 12, 1, 20, 0, tzinfo=dt.UTC)  # the instant that exposed it
    load_synthetic(ctx.db, [parse_standard(TEST_STANDARD, source="test")],
                   SyntheticPlan(records=1200, nodes=["node-a", "node-b"], weeks=12, end=tuesday_evening,
                                 defect_rate=0.03, seed=11,
                                 shift=Shift("node-b", weeks=3, defect_factor=6.0, sigmas=3.0)))
    with ctx.db.write_session() as session:
        found = evaluate_alerts(session, product=TEST_PRODUCT, node="node-a", now=tuesday_evening, fresh=True)
    assert found == []
