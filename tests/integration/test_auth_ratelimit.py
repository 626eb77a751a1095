"""Wrong tokens are rate-limited per client address, and a valid token always gets through (issue 13).

Numbers from the settings' defaults (service/settings.py): a burst of 10 failures, then one more
every 6 s. The clock is the context's frozen one (``ctx.clock.advance``), never the wall clock.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from starlette.requests import Request

from service.core.context import ServiceContext
from service.http.app import create_app
from service.http.ratelimit import FailedAuthLimiter, client_key
from tests.clock import TEST_NOW
from tests.integration.support import auth

BURST, REFILL_S = 10, 6
WRONG = auth("kip_" + "x" * 43)  # the shape of a real token, known to no one


@pytest.fixture
def client_at(settings, ctx) -> Iterator[Any]:
    """``client_at(address, **settings)``: a client on the shared app (or one with other settings) calling
    from ``address``."""
    clients: list[TestClient] = []
    apps: dict[tuple[tuple[str, Any], ...], Any] = {}

    def make(address: str, **overrides: Any) -> TestClient:
        key = tuple(sorted(overrides.items()))
        if key not in apps:
            other = settings.model_copy(update=overrides)
            apps[key] = create_app(other, context=ServiceContext(other, ctx.db, ctx.store, ctx.clock))
        c = TestClient(apps[key], client=(address, 40_000))
        clients.append(c)
        return c

    yield make
    for c in clients:
        c.close()


def _fail(client: TestClient, times: int, headers: dict[str, str] | None = None) -> list[int]:
    return [client.get("/api/v1/me", headers={**WRONG, **(headers or {})}).status_code for _ in range(times)]


def test_the_eleventh_wrong_token_from_one_address_is_429_with_retry_after(seed, client_at):
    client = client_at("198.51.100.20")
    assert _fail(client, BURST) == [401] * BURST
    response = client.get("/api/v1/me", headers=WRONG)
    assert response.status_code == 429
    assert response.headers["retry-after"] == str(REFILL_S)  # the bucket is empty: one failure back in 6 s
    assert "try again in 6 s" in response.json()["error"]


def test_a_valid_token_from_a_limited_address_is_still_accepted(seed, client_at):
    client = client_at("198.51.100.20")
    _fail(client, BURST + 5)
    response = client.get("/api/v1/me", headers=auth(seed.tech_a))
    assert response.status_code == 200
    assert response.json()["name"] == "Amina"
    assert client.get("/api/v1/me").status_code == 401, "no token at all is a plain 401, not counted"
    assert client.get("/api/v1/me", headers=WRONG).status_code == 429, "and the address is still limited"


def test_another_address_is_not_affected(seed, client_at):
    assert _fail(client_at("198.51.100.20"), BURST + 1)[-1] == 429
    assert _fail(client_at("198.51.100.21"), BURST) == [401] * BURST


def test_wrong_tokens_count_again_once_the_refill_time_has_passed(seed, client_at, ctx):
    client = client_at("198.51.100.20")
    assert _fail(client, BURST + 1)[-1] == 429
    ctx.clock.advance(dt.timedelta(seconds=REFILL_S - 1))
    assert client.get("/api/v1/me", headers=WRONG).headers["retry-after"] == "1"
    ctx.clock.advance(dt.timedelta(seconds=1))
    assert _fail(client, 2) == [401, 429], "one failure refilled in 6 s"
    ctx.clock.advance(dt.timedelta(seconds=BURST * REFILL_S))
    assert _fail(client, BURST + 1) == [401] * BURST + [429], "and the whole burst in 60 s"


def test_revoked_and_malformed_credentials_count_as_failures(seed, client_at):
    client = client_at("198.51.100.20")
    statuses = [client.get("/api/v1/me", headers={"Authorization": "Basic dXNlcjpwdw=="}).status_code
                for _ in range(BURST)]
    assert statuses == [401] * BURST
    assert client.get("/api/v1/me", headers=WRONG).status_code == 429


def test_behind_a_trusted_proxy_each_forwarded_address_has_its_own_limit(seed, client_at):
    proxy = client_at("127.0.0.1", proxy_headers=True, forwarded_allow_ips="127.0.0.1")
    assert _fail(proxy, BURST + 1, {"X-Forwarded-For": "203.0.113.5"})[-1] == 429
    assert _fail(proxy, BURST, {"X-Forwarded-For": "203.0.113.6"}) == [401] * BURST


def test_a_forwarded_address_from_an_untrusted_peer_is_ignored(seed, client_at):
    # A client cannot escape its limit by sending a new X-Forwarded-For with each guess.
    spoofer = client_at("192.0.2.9", proxy_headers=True, forwarded_allow_ips="127.0.0.1")
    statuses = [spoofer.get("/api/v1/me", headers={**WRONG, "X-Forwarded-For": f"203.0.113.{i}"}).status_code
                for i in range(BURST + 1)]
    assert statuses == [401] * BURST + [429]


def _request_from(host: str) -> Request:
    return Request({"type": "http", "method": "GET", "path": "/", "headers": [], "client": (host, 1)})


@pytest.mark.parametrize(("host", "key"), [
    ("198.51.100.7", "198.51.100.7"),
    ("2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"),  # one host may hold a whole /64
    ("2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64"),
    ("2001:db8:1:3::1", "2001:db8:1:3::/64"),
    ("::ffff:198.51.100.7", "198.51.100.7"),  # IPv4 through a dual-stack socket
    ("testclient", "testclient"),
])
def test_client_key_is_the_address_and_an_ipv6_client_its_64(host, key):
    assert client_key(_request_from(host)) == key


def test_the_limiter_holds_at_most_max_keys_addresses_and_keeps_the_most_recent():
    limiter = FailedAuthLimiter(burst=2, refill_s=REFILL_S, max_keys=3)
    for i in range(6):
        limiter.record_failure(f"a{i}", TEST_NOW)
    limiter.record_failure("a5", TEST_NOW)
    assert len(limiter) == 3
    assert limiter.retry_after_s("a5", TEST_NOW) == REFILL_S, "the latest stays limited"
    assert limiter.retry_after_s("a0", TEST_NOW) == 0, "the oldest was forgotten"


def test_a_clock_stepped_back_refills_nothing():
    limiter = FailedAuthLimiter(burst=1, refill_s=REFILL_S)
    limiter.record_failure("a", TEST_NOW)
    assert limiter.retry_after_s("a", TEST_NOW - dt.timedelta(hours=1)) == REFILL_S


@pytest.mark.parametrize(("burst", "refill_s"), [(0, 6.0), (10, 0.0)])
def test_a_limiter_needs_a_burst_and_a_refill_time(burst, refill_s):
    with pytest.raises(ValueError, match="burst must be >= 1"):
        FailedAuthLimiter(burst=burst, refill_s=refill_s)


def test_the_dashboard_sign_in_form_shares_the_budget_and_a_valid_token_still_signs_in(seed, client_at):
    client = client_at("198.51.100.40")
    origin = {"Origin": "http://testserver"}

    def sign_in(token: str) -> Any:
        return client.post("/dashboard/login", data={"token": token}, headers=origin, follow_redirects=False)

    assert [sign_in("kip_" + "y" * 43).status_code for _ in range(BURST)] == [401] * BURST
    refused = sign_in("kip_" + "y" * 43)
    assert refused.status_code == 429 and refused.headers["retry-after"] == str(REFILL_S)
    assert "try again in 6 s" in refused.text
    assert sign_in(seed.manager).status_code == 303  # colleagues behind the same address are not locked out
    # the dashboard's header path and the API refuse this address's wrong tokens alike
    assert client.get("/dashboard", headers=WRONG, follow_redirects=False).status_code == 429
    assert client.get("/api/v1/me", headers=WRONG).status_code == 429
