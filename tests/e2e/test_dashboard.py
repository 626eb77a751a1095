"""The quality manager's dashboard in a real Chromium, against a real ``qc serve``.

The server holds the demo network (Kisumu, Yaoundé, Kathmandu; the shipped
standards) with twelve weeks of bulk-loaded records in which Yaoundé drifts in
the last three weeks (more defectives, measurements off centre). Today Yaoundé's
technician sends a few more failing records through the API, as a phone would:
the submission path must raise the alert, and the dashboard must show it, flag
Yaoundé in the charts and let the manager acknowledge it. Screenshots go to
test-artifacts/ (a good one is kept as docs/img/dashboard.png).
"""

from __future__ import annotations

import datetime as dt
import io
import json
import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from tests.clock import TEST_NOW
from tests.e2e.conftest import KipimoServer

pytestmark = pytest.mark.e2e

NODES = (("kisumu", "Kisumu Makerspace (Kenya)"), ("yaounde", "Yaoundé BioLab (Cameroon)"),
         ("kathmandu", "Kathmandu Fab Hub (Nepal)"))
SHIFTED = "yaounde"
BRACKET = "spare-part-bracket"
LAPTOP = {"viewport": {"width": 1366, "height": 900}, "device_scale_factor": 1, "locale": "en-GB"}
TABLET = {"viewport": {"width": 820, "height": 1180}, "device_scale_factor": 1, "is_mobile": True,
          "has_touch": True, "locale": "en-GB"}


def expect(locator):  # noqa: ANN001, ANN201 - Playwright's assertion helper
    from playwright.sync_api import expect as _expect  # noqa: PLC0415

    return _expect(locator)


@dataclass
class Network:
    server: KipimoServer
    manager: str
    technician: str
    alerts: list[dict[str, Any]]


class DashboardServer(KipimoServer):
    @property
    def env(self) -> dict[str, str]:  # photos are stored, not inspected: this test is about the dashboard
        return {**super().env, "KIPIMO_VISION": "off"}


def _answers(standard: Any, *, fail: bool) -> dict[str, Any]:
    """Passing answers for every item; with ``fail``, the first critical pass/fail item answered badly."""
    answers: dict[str, Any] = {}
    failed = not fail
    for item in standard.items:
        kind = item.type.value
        if kind == "boolean":
            good = item.pass_if if isinstance(item.pass_if, bool) else True
            answers[item.id] = (not good) if (not failed and item.severity.value == "critical") else good
            failed = failed or answers[item.id] != good
        elif kind == "choice":
            passing = list(item.pass_if or item.options)
            failing = [o for o in item.options if o not in passing]
            bad = not failed and item.severity.value == "critical" and failing
            answers[item.id] = failing[0] if bad else passing[0]
            failed = failed or bool(bad)
        elif kind == "number":
            lo, hi = item.min if item.min is not None else 0.0, item.max if item.max is not None else 100.0
            answers[item.id] = (lo + hi) / 2
        elif kind == "date":
            answers[item.id] = TEST_NOW.date().isoformat()
        else:
            answers[item.id] = "LOT-E2E"
    return answers


def _alerts_after_the_outbox(srv: Any, token: str) -> list[dict[str, Any]]:
    """The alerts once the server's outbox worker has run every evaluation the submissions queued."""
    deadline = time.monotonic() + 60
    while json.loads(srv.qc("outbox", "list", "--status", "pending", "--json"))["counts"]["pending"]:
        assert time.monotonic() < deadline, srv.qc("outbox", "list", "--status", "pending")
        time.sleep(0.5)
    return srv.api("/api/v1/alerts", token=token).json()["items"]


def _photo() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (2400, 1800), (200, 200, 190)).save(out, "JPEG", quality=80)
    return out.getvalue()


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory, browser: object) -> Iterator[Network]:
    from demo.bulk import Shift, SyntheticPlan, load_synthetic  # noqa: PLC0415
    from service.core.checklists import load_shipped_standards  # noqa: PLC0415
    from service.settings import Settings  # noqa: PLC0415
    from service.storage.db import open_database  # noqa: PLC0415

    srv = DashboardServer(tmp_path_factory.mktemp("kipimo-dashboard"))
    srv.qc("init")
    for name, title in NODES:
        srv.qc("nodes", "add", name, "--title", title)
    settings = Settings(data_dir=srv.data_dir)
    standards = [s for s in load_shipped_standards(settings.checklists_dir) if s.product in (BRACKET,
                                                                                            "face-shield-visor")]
    db = open_database(settings.resolved_database_url)
    try:
        load_synthetic(db, standards, SyntheticPlan(
            records=2400, nodes=[n for n, _ in NODES], weeks=12, end=TEST_NOW - dt.timedelta(hours=1),
            defect_rate=0.03, node_spread=0.0, seed=2026, shift=Shift(SHIFTED, weeks=3, defect_factor=5.0,
                                                                      sigmas=2.5)))
    finally:
        db.dispose()
    manager = srv.qc("tokens", "create", "--role", "manager", "--name", "Network quality manager").split()[0]
    technician = srv.qc("tokens", "create", "--role", "technician", "--node", SHIFTED, "--name",
                        "Mireille Ngo").split()[0]
    srv.start()
    try:
        bracket = next(s for s in standards if s.product == BRACKET)
        photo = _photo()
        for k in range(6):  # today's records from Yaoundé: most of them fail
            record = {"id": str(uuid.uuid4()), "product": BRACKET, "lot": "YAO-BRAC-TODAY", "unit": f"U{k}",
                      "answers": _answers(bracket, fail=k < 5)}
            res = httpx.post(f"{srv.url}/api/v1/submissions", headers={"Authorization": f"Bearer {technician}"},
                             files=[("record", (None, json.dumps(record), "application/json")),
                                    ("top", ("top.jpg", photo, "image/jpeg"))], timeout=60)
            assert res.status_code == 201, res.text
        alerts = _alerts_after_the_outbox(srv, manager)
        yield Network(srv, manager, technician, alerts)
    finally:
        srv.stop()


def test_new_records_from_the_shifted_node_raise_alerts_for_it_only(network: Network) -> None:
    assert network.alerts, "no alert was raised by the shifted node's new records"
    assert {a["node"] for a in network.alerts} == {SHIFTED}
    assert {a["product"] for a in network.alerts} >= {BRACKET}


def _sign_in(page: Any, network: Network) -> None:
    page.goto(f"{network.server.url}/dashboard")
    expect(page).to_have_url(f"{network.server.url}/dashboard/login?next=/dashboard")
    page.fill("#token", network.manager)
    page.click("button[type=submit]")
    expect(page).to_have_url(f"{network.server.url}/dashboard")


def _no_sideways_scroll(page: Any) -> None:
    overflow = page.evaluate("document.scrollingElement.scrollWidth - window.innerWidth")
    assert overflow <= 1, f"the page scrolls sideways by {overflow}px"


def test_dashboard_flags_the_shifted_node_in_chromium(browser: Any, network: Network, artifacts: Path) -> None:
    context = browser.new_context(**LAPTOP)
    context.set_default_timeout(30_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    try:
        _sign_in(page, network)
        expect(page.locator("h1")).to_have_text("Network at a glance")
        expect(page.locator(".count[data-open-alerts]")).to_have_text(str(len(network.alerts)))
        expect(page.locator(f'.alert-list li[data-node="{SHIFTED}"]').first).to_be_visible()
        page.select_option("select[name=product]", BRACKET)
        page.click("form.filters button[type=submit]")
        expect(page).to_have_url(re.compile(rf"/dashboard\?product={BRACKET}&"))
        card = page.locator(f'figure[data-testid="p-chart-{SHIFTED}"]')
        expect(card).to_have_class("card chart flagged")
        expect(card.locator("figcaption")).to_contain_text("above the network")
        assert card.locator("circle.violation").count() >= 1
        for calm, _ in NODES:
            if calm != SHIFTED:
                expect(page.locator(f'figure[data-testid="p-chart-{calm}"]')).to_have_class("card chart")
        expect(page.locator(f'figure[data-testid="funnel"] circle.violation[data-node="{SHIFTED}"]')).to_be_visible()
        assert page.locator("svg").count() >= 6
        box = page.locator('figure[data-testid="funnel"] svg').bounding_box()
        assert box and box["width"] > 300, "the funnel plot is too small to read"
        _no_sideways_scroll(page)
        page.screenshot(path=str(artifacts / "dashboard-overview.png"), full_page=True)
        # the top of the page: header, filters, readings, rates and funnel (docs/img/dashboard.png)
        page.screenshot(path=str(artifacts / "dashboard.png"), clip={"x": 0, "y": 0, "width": 1366, "height": 1180},
                        full_page=True)

        page.goto(f"{network.server.url}/dashboard/products/{BRACKET}")
        expect(page.locator('figure[data-testid="measure-screw_hole_1"]')).to_be_visible()
        expect(page.locator(".readings li.bad").first).to_contain_text("Yaoundé BioLab")
        page.screenshot(path=str(artifacts / "dashboard-product.png"), full_page=True)

        page.goto(f"{network.server.url}/dashboard/nodes/{SHIFTED}")
        expect(page.locator("h1")).to_have_text("Yaoundé BioLab (Cameroon)")
        page.screenshot(path=str(artifacts / "dashboard-node.png"), full_page=True)

        page.goto(f"{network.server.url}/dashboard/alerts")
        first = page.locator(".alert-list li.open").first
        alert_id = first.get_attribute("data-alert-id")
        first.locator("input[name=comment]").fill("Nozzle worn; replaced, lot quarantined")
        first.locator("button[type=submit]").click()
        done = page.locator(f'.alert-list li.acknowledged[data-alert-id="{alert_id}"]')
        expect(done).to_contain_text("Nozzle worn; replaced, lot quarantined")
        if len(network.alerts) > 1:
            expect(page.locator(".count[data-open-alerts]")).to_have_text(str(len(network.alerts) - 1))
    finally:
        context.close()
    assert not errors, f"errors in the browser: {errors}"


def test_dashboard_fits_a_tablet(browser: Any, network: Network, artifacts: Path) -> None:
    context = browser.new_context(**TABLET)
    context.set_default_timeout(30_000)
    page = context.new_page()
    try:
        _sign_in(page, network)
        page.goto(f"{network.server.url}/dashboard?product={BRACKET}")
        expect(page.locator(f'figure[data-testid="p-chart-{SHIFTED}"]')).to_be_visible()
        _no_sideways_scroll(page)
        width = page.locator('figure[data-testid="rates"] svg').bounding_box()["width"]
        assert width >= 700, f"charts should use the tablet's width, got {width}px"
        page.screenshot(path=str(artifacts / "dashboard-tablet.png"), full_page=False)
    finally:
        context.close()
