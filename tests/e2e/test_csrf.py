"""Cross-site request forgery against the dashboard, in a real Chromium, against a real ``qc serve``.

The attacker's page is served by a second HTTP server on another port of 127.0.0.1. To the browser that is
the same *site* as the dashboard (ports do not count), so the SameSite=Strict session cookie travels with
the attacker's form; what must stop it is the CSRF token and the Origin check (issue 13, section 4). The
403 page (not a redirect to the sign-in form) shows the cookie did travel, and that the check refused it.
"""

from __future__ import annotations

import datetime as dt
import html
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.clock import TEST_NOW
from tests.e2e.conftest import NODE, KipimoServer

pytestmark = pytest.mark.e2e
LAPTOP = {"viewport": {"width": 1366, "height": 900}, "device_scale_factor": 1, "locale": "en-GB"}


class Attacker:
    """Serves one auto-submitting form per path (``pages``), from its own port."""

    def __init__(self) -> None:
        self.pages: dict[str, str] = {}
        pages = self.pages

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                body = pages.get(self.path, "").encode()
                self.send_response(200 if body else 404)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def form(self, path: str, action: str, fields: dict[str, str]) -> str:
        inputs = "".join(f'<input name="{html.escape(k)}" value="{html.escape(v)}">' for k, v in fields.items())
        self.pages[path] = (f'<!doctype html><title>Win a prize</title><form id="f" method="post" '
                            f'action="{html.escape(action)}">{inputs}</form>'
                            "<script>document.getElementById('f').submit()</script>")
        return self.url + path

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def attacker() -> Iterator[Attacker]:
    a = Attacker()
    yield a
    a.close()


def _open_alert(srv: KipimoServer, key: str) -> int:
    """An open alert in the server's database, as the alert evaluation leaves one."""
    from sqlalchemy import select  # noqa: PLC0415

    from service.settings import Settings  # noqa: PLC0415
    from service.storage.db import open_database  # noqa: PLC0415
    from service.storage.orm import Alert, Node, Product  # noqa: PLC0415

    db = open_database(Settings(data_dir=srv.data_dir).resolved_database_url)
    try:
        with db.write_session() as session:
            product = session.scalars(select(Product).order_by(Product.id)).first()
            node = session.scalars(select(Node).where(Node.name == NODE)).one()
            assert product is not None
            alert = Alert(key=key, kind="rule", rule="beyond_limits", product_id=product.id, node_id=node.id,
                          message=f"{key}: a point beyond the limits", detail={}, status="open",
                          created_at=TEST_NOW - dt.timedelta(hours=1))
            session.add(alert)
            session.flush()
            return alert.id
    finally:
        db.dispose()


def _status(srv: KipimoServer, alert_id: int) -> str:
    res = srv.api("/api/v1/alerts", status="all")
    res.raise_for_status()
    return next(a["status"] for a in res.json()["items"] if a["id"] == alert_id)


def _sign_in(page: Any, srv: KipimoServer) -> None:
    page.goto(f"{srv.url}/dashboard/login?next=/dashboard/alerts")
    page.fill("#token", srv.manager)
    page.click("button[type=submit]")
    page.wait_for_url(f"{srv.url}/dashboard/alerts")


@pytest.fixture()
def laptop(browser: Any) -> Iterator[Any]:
    context = browser.new_context(**LAPTOP)
    context.set_default_timeout(20_000)
    yield context
    context.close()


def test_a_page_on_another_port_cannot_acknowledge_an_alert(laptop: Any, server: KipimoServer,
                                                            attacker: Attacker) -> None:
    alert_id = _open_alert(server, "e2e-csrf-forged")
    page = laptop.new_page()
    _sign_in(page, server)
    action = f"{server.url}/dashboard/alerts/{alert_id}/acknowledge"
    for path, fields in (("/no-token.html", {"comment": "forged", "back": "/dashboard/alerts"}),
                         ("/guessed-token.html", {"comment": "forged", "csrf": "0" * 64})):
        with page.expect_response(lambda r: r.url == action) as answer:
            page.goto(attacker.form(path, action, fields))
        assert answer.value.status == 403, answer.value.text()[:500]
        assert re.search(r"sent from 'http://127\.0\.0\.1:\d+' \(Origin header\), not from the dashboard",
                         page.content()), page.content()[:2000]
    assert _status(server, alert_id) == "open"


def test_a_page_on_another_port_cannot_sign_the_browser_in(laptop: Any, server: KipimoServer,
                                                           attacker: Attacker) -> None:
    """Login CSRF: the attacker's own token would make the manager's later actions the attacker's."""
    page = laptop.new_page()
    action = f"{server.url}/dashboard/login"
    with page.expect_response(lambda r: r.url == action) as answer:
        page.goto(attacker.form("/login.html", action, {"token": server.manager}))
    assert answer.value.status == 403
    assert not [c for c in laptop.cookies() if c["name"] == "kipimo_dashboard"]


def test_the_dashboards_own_form_acknowledges_and_sign_out_ends_the_session(laptop: Any,
                                                                           server: KipimoServer) -> None:
    alert_id = _open_alert(server, "e2e-csrf-genuine")
    page = laptop.new_page()
    _sign_in(page, server)
    [cookie] = [c for c in laptop.cookies() if c["name"] == "kipimo_dashboard"]
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["path"] == "/dashboard"
    assert not cookie["value"].startswith("kip_")  # a session id, not the token
    item = page.locator(f'.alert-list li[data-alert-id="{alert_id}"]')
    item.locator("input[name=comment]").fill("Checked: a gauge misread")
    item.locator("button[type=submit]").click()
    page.wait_for_selector(f'.alert-list li.acknowledged[data-alert-id="{alert_id}"]')
    assert _status(server, alert_id) == "acknowledged"
    page.click("form.signout button")
    page.wait_for_url(f"{server.url}/dashboard/login")
    laptop.add_cookies([cookie])  # the old cookie, put back: the session it named has ended
    page.goto(f"{server.url}/dashboard/alerts")
    page.wait_for_url(re.compile(r"/dashboard/login\?next="))
