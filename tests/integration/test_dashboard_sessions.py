"""Dashboard sign-in by server-side session, and the CSRF rules for every dashboard POST (issue 13, section 4).

The cookie holds a random session id (its SHA-256 in ``dashboard_sessions``), never the bearer token. A POST
from a signed-in browser needs the session's CSRF token and an Origin (or Referer) equal to the server's own
origin, ``http://testserver`` for the TestClient; the same rules in a real Chromium: tests/e2e/test_csrf.py.
Times move on the ``ctx`` fixture's frozen clock, which the app reads.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from service.core.auth import revoke_token
from service.storage.orm import AccessToken, Alert, AuditEvent, DashboardSession, Node, Product
from service.web.dashboard.routes import COOKIE
from tests.integration.support import TEST_PRODUCT, auth

OWN = "http://testserver"
ORIGIN = {"Origin": OWN}


@pytest.fixture
def alert_id(ctx: Any, seed: Any) -> int:
    """One open alert for node-a (a stored row, as the alert evaluation leaves it)."""
    with ctx.db.write_session() as session:
        product = session.scalars(select(Product).where(Product.slug == TEST_PRODUCT)).one()
        node = session.scalars(select(Node).where(Node.name == "node-a")).one()
        alert = Alert(key="test:node-a:diameter", kind="rule", rule="beyond_limits", product_id=product.id,
                      node_id=node.id, check_id="diameter", message="diameter beyond the limits at node-a",
                      detail={}, status="open", created_at=ctx.now())
        session.add(alert)
        session.flush()
        return alert.id


def sign_in(client: TestClient, token: str) -> str:
    """Sign in through the form; the session id the cookie holds."""
    res = client.post("/dashboard/login", data={"token": token, "next": "/dashboard/alerts"}, headers=ORIGIN,
                      follow_redirects=False)
    assert res.status_code == 303, res.text
    return res.cookies[COOKIE]


def csrf_of(client: TestClient) -> str:
    page = client.get("/dashboard/alerts")
    assert page.status_code == 200, page.text
    found = re.search(r'name="csrf" value="([0-9a-f]{64})"', page.text)
    assert found, "the page carries no CSRF token"
    return found.group(1)


def status_of(ctx: Any, alert_id: int) -> str:
    with ctx.db.session() as session:
        alert = session.get(Alert, alert_id)
        assert alert is not None
        return alert.status


def sessions(ctx: Any) -> list[DashboardSession]:
    with ctx.db.session() as session:
        return list(session.scalars(select(DashboardSession).order_by(DashboardSession.id)))


def is_signed_in(client: TestClient) -> bool:
    res = client.get("/dashboard/alerts", follow_redirects=False)
    assert res.status_code in (200, 303), res.text
    return res.status_code == 200


# --- the session -----------------------------------------------------------------------------------------


def test_the_cookie_holds_a_session_id_and_the_database_only_its_hash(client: TestClient, seed: Any,
                                                                     ctx: Any) -> None:
    res = client.post("/dashboard/login", data={"token": seed.manager}, headers=ORIGIN, follow_redirects=False)
    assert res.status_code == 303
    cookie = res.headers["set-cookie"]
    attributes = {part.strip().split("=")[0].lower() for part in cookie.split(";")}
    assert {"httponly", "path", "samesite", "max-age"} <= attributes and "secure" not in attributes  # plain http
    assert "path=/dashboard" in cookie.lower() and "samesite=strict" in cookie.lower()
    secret = res.cookies[COOKIE]
    assert seed.manager not in cookie and secret.startswith("kds_")
    [row] = sessions(ctx)
    assert row.session_sha256 == hashlib.sha256(secret.encode()).hexdigest()
    assert row.created_at == row.last_seen_at == ctx.now() and row.ended_at is None
    assert row.expires_at == ctx.now() + dt.timedelta(hours=12)
    with ctx.db.session() as session:
        token = session.scalars(select(AccessToken).where(AccessToken.id == row.token_id)).one()
        assert token.name == "Quality manager"
        [event] = session.scalars(select(AuditEvent).where(AuditEvent.action == "dashboard.login")).all()
        assert event.subject_id == str(row.id) and event.actor == f"token:{token.id} Quality manager"
        assert secret not in str(event.detail) and row.session_sha256 not in str(event.detail)
    assert is_signed_in(client)


def test_the_cookie_is_secure_when_the_request_came_over_https(app: Any, seed: Any) -> None:
    with TestClient(app, base_url="https://testserver") as client:
        res = client.post("/dashboard/login", data={"token": seed.manager}, headers={"Origin": "https://testserver"},
                          follow_redirects=False)
        assert res.status_code == 303
        assert "secure" in {p.strip().lower() for p in res.headers["set-cookie"].split(";")}


def test_behind_a_tls_proxy_the_cookie_is_secure_only_with_proxy_headers(make_client: Any, seed: Any) -> None:
    """The browser talks https to the proxy, the proxy http to us: ``--proxy-headers`` makes the request https."""
    proxied = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.7", "Origin": "https://testserver"}
    trusting = make_client(proxy_headers=True, forwarded_allow_ips="*")
    res = trusting.post("/dashboard/login", data={"token": seed.manager}, headers=proxied, follow_redirects=False)
    assert res.status_code == 303
    assert "secure" in {p.strip().lower() for p in res.headers["set-cookie"].split(";")}
    # without it the forwarded scheme is not believed: the browser's https origin is not this http server's
    res = make_client().post("/dashboard/login", data={"token": seed.manager}, headers=proxied,
                             follow_redirects=False)
    assert res.status_code == 403 and "set-cookie" not in res.headers


def test_a_cookie_holding_a_raw_token_no_longer_signs_in(client: TestClient, seed: Any) -> None:
    client.cookies.set(COOKIE, seed.manager, path="/dashboard")  # what the cookie held before sessions
    assert not is_signed_in(client)


def test_sign_out_ends_the_session_and_the_old_cookie_stops_working(client: TestClient, seed: Any,
                                                                   ctx: Any) -> None:
    secret = sign_in(client, seed.manager)
    csrf = csrf_of(client)
    assert "Sign out</button>" in client.get("/dashboard/alerts").text  # a form in the header, not a link
    # GET /dashboard/logout only shows the button: a link followed by any page signs no one out
    assert 'action="/dashboard/logout"' in client.get("/dashboard/logout").text and is_signed_in(client)
    ctx.clock.advance(dt.timedelta(minutes=5))
    res = client.post("/dashboard/logout", data={"csrf": csrf}, headers=ORIGIN, follow_redirects=False)
    assert res.status_code == 303 and res.headers["location"] == "/dashboard/login"
    assert f'{COOKIE}=""' in res.headers["set-cookie"] or "max-age=0" in res.headers["set-cookie"].lower()
    [row] = sessions(ctx)
    assert row.ended_at == ctx.now() and row.end_reason == "logout"
    client.cookies.clear()
    client.cookies.set(COOKIE, secret, path="/dashboard")  # the old cookie, kept by someone
    assert not is_signed_in(client)
    with ctx.db.session() as session:
        assert session.scalars(select(AuditEvent).where(AuditEvent.action == "dashboard.logout")).one()


def test_sign_out_needs_the_csrf_token(client: TestClient, seed: Any, ctx: Any) -> None:
    sign_in(client, seed.manager)
    res = client.post("/dashboard/logout", data={}, headers=ORIGIN, follow_redirects=False)
    assert res.status_code == 403 and "CSRF token" in res.text
    assert is_signed_in(client) and sessions(ctx)[0].ended_at is None


def test_a_session_ends_after_the_idle_timeout(client: TestClient, seed: Any, ctx: Any) -> None:
    sign_in(client, seed.manager)
    for _ in range(3):  # a request every 29 minutes keeps it alive, past the first half hour
        ctx.clock.advance(dt.timedelta(minutes=29))
        assert is_signed_in(client)
    ctx.clock.advance(dt.timedelta(minutes=30))  # 30 minutes without a request (the default)
    assert not is_signed_in(client)
    [row] = sessions(ctx)
    assert row.end_reason == "idle" and row.ended_at == ctx.now()
    sign_in(client, seed.manager)  # signing in again opens a new session
    assert is_signed_in(client) and len(sessions(ctx)) == 2


def test_a_busy_session_still_ends_twelve_hours_after_sign_in(client: TestClient, seed: Any, ctx: Any) -> None:
    sign_in(client, seed.manager)
    started = ctx.now()
    while ctx.now() - started < dt.timedelta(hours=12) - dt.timedelta(minutes=20):
        ctx.clock.advance(dt.timedelta(minutes=20))
        assert is_signed_in(client), ctx.now() - started
    ctx.clock.advance(dt.timedelta(minutes=20))  # exactly 12 h after sign-in
    assert not is_signed_in(client)
    assert sessions(ctx)[0].end_reason == "expired"


def test_timeouts_are_settings(make_client: Any, seed: Any, ctx: Any) -> None:
    client = make_client(dashboard_idle_minutes=5)
    sign_in(client, seed.manager)
    ctx.clock.advance(dt.timedelta(minutes=5))
    assert not is_signed_in(client)


def test_revoking_the_token_ends_its_sessions(client: TestClient, seed: Any, ctx: Any) -> None:
    sign_in(client, seed.manager)
    with TestClient(client.app) as other:  # a second browser of the same manager
        sign_in(other, seed.manager)
        [first, second] = sessions(ctx)
        with ctx.db.write_session() as session:
            revoke_token(session, token_id=first.token_id, actor="tests", now=ctx.now())
        assert not is_signed_in(client) and not is_signed_in(other)
    assert {s.end_reason for s in sessions(ctx)} == {"revoked"}


def test_scripts_still_sign_pages_and_posts_with_the_authorization_header(client: TestClient, seed: Any,
                                                                        ctx: Any, alert_id: int) -> None:
    assert client.get("/dashboard/alerts", headers=auth(seed.manager)).status_code == 200
    res = client.post(f"/dashboard/alerts/{alert_id}/acknowledge", data={"comment": "checked by script"},
                      headers=auth(seed.manager), follow_redirects=False)  # no CSRF token, no Origin
    assert res.status_code == 303 and status_of(ctx, alert_id) == "acknowledged"
    assert sessions(ctx) == []  # the header opens no session


# --- CSRF -----------------------------------------------------------------------------------------------

GOOD = object()  # stands for the session's real CSRF token in the table below


@pytest.mark.parametrize(("csrf", "headers", "why"), [
    (None, ORIGIN, "CSRF token"),
    ("", ORIGIN, "CSRF token"),
    ("0" * 64, ORIGIN, "CSRF token"),
    ("ünïcode", ORIGIN, "CSRF token"),
    (GOOD, {"Origin": "http://testserver:8001"}, "not from the dashboard"),  # same site, another port
    (GOOD, {"Origin": "https://testserver"}, "not from the dashboard"),
    (GOOD, {"Origin": "http://evil.example"}, "not from the dashboard"),
    (GOOD, {"Origin": "null"}, "not from the dashboard"),
    (GOOD, {"Referer": "http://testserver:8001/attack.html"}, "Referer header"),
    (GOOD, {}, "neither an Origin nor a Referer"),
], ids=["no-token", "empty-token", "wrong-token", "non-ascii-token", "other-port", "other-scheme", "other-site",
        "null-origin", "referer-other-port", "no-origin-no-referer"])
def test_an_acknowledgement_without_the_token_or_from_another_origin_is_refused(
        client: TestClient, seed: Any, ctx: Any, alert_id: int, csrf: Any, headers: dict[str, str],
        why: str) -> None:
    sign_in(client, seed.manager)
    token = csrf_of(client) if csrf is GOOD else csrf
    data = {"comment": "forged", "back": "/dashboard/alerts"} | ({} if token is None else {"csrf": token})
    res = client.post(f"/dashboard/alerts/{alert_id}/acknowledge", data=data, headers=headers,
                      follow_redirects=False)
    assert res.status_code == 403, res.text
    assert res.headers["content-type"].startswith("text/html") and why in res.text  # a page saying why
    assert status_of(ctx, alert_id) == "open"


@pytest.mark.parametrize("headers", [ORIGIN, {"Origin": "http://TestServer:80"},
                                     {"Referer": f"{OWN}/dashboard/alerts"}], ids=["origin", "origin-default-port",
                                                                                   "referer"])
def test_an_acknowledgement_from_the_dashboard_page_is_accepted(client: TestClient, seed: Any, ctx: Any,
                                                               alert_id: int, headers: dict[str, str]) -> None:
    sign_in(client, seed.manager)
    res = client.post(f"/dashboard/alerts/{alert_id}/acknowledge", headers=headers, follow_redirects=False,
                      data={"comment": "nozzle replaced", "back": "/dashboard/alerts", "csrf": csrf_of(client)})
    assert res.status_code == 303 and res.headers["location"] == "/dashboard/alerts"
    assert status_of(ctx, alert_id) == "acknowledged"


def test_one_sessions_token_does_not_work_for_another(client: TestClient, seed: Any, ctx: Any,
                                                     alert_id: int) -> None:
    with TestClient(client.app) as attacker:  # signed in too (an auditor's token would do), reads its own token
        sign_in(attacker, seed.manager)
        theirs = csrf_of(attacker)
    sign_in(client, seed.manager)
    assert csrf_of(client) != theirs
    res = client.post(f"/dashboard/alerts/{alert_id}/acknowledge", data={"comment": "x", "csrf": theirs},
                      headers=ORIGIN, follow_redirects=False)
    assert res.status_code == 403 and status_of(ctx, alert_id) == "open"


@pytest.mark.parametrize("headers", [{"Origin": "http://testserver:8001"}, {"Origin": "null"}, {}])
def test_sign_in_from_another_origin_is_refused(client: TestClient, seed: Any, ctx: Any,
                                                headers: dict[str, str]) -> None:
    """Login CSRF: a page elsewhere must not sign this browser in (as the attacker, to collect what it does)."""
    res = client.post("/dashboard/login", data={"token": seed.manager}, headers=headers, follow_redirects=False)
    assert res.status_code == 403 and "set-cookie" not in res.headers
    assert "not from the dashboard" in res.text or "neither an Origin nor a Referer" in res.text
    assert sessions(ctx) == []
