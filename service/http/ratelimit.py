"""Failed authentication, rate-limited per client address (429 with ``Retry-After``).

Each client address has a token bucket of ``burst`` failures that refills one failure every
``refill_s`` seconds. A wrong credential (an unknown or revoked token, a malformed header, a wrong
dashboard sign-in) takes one; while the bucket is empty a wrong credential is answered 429
(``TooManyRequests``) instead of 401, with ``Retry-After`` saying when the next try counts.

A *valid* credential is still accepted from a limited address: a workshop behind one NAT address
keeps working while one broken script there hammers the server with an old token. That gives a
guesser nothing for API tokens: they are 256-bit random (``service.core.auth``), so what the limit
buys is a bounded failure rate and a clear signal to the broken client, not secrecy. A caller
checking a *guessable* secret calls ``refuse_if_limited`` before checking it instead.

The key is ``request.client``'s address, which ``create_app``'s proxy-headers middleware sets from
``X-Forwarded-For`` only when the peer is a trusted proxy (``KIPIMO_FORWARDED_ALLOW_IPS``); an IPv6
client is keyed by its /64, since one host may hold a whole /64. Time is the service clock's
(``ctx.now()``), so a frozen clock freezes the buckets too. The state is in-process (one per app,
on ``app.state.auth_limiter``) and bounded to ``max_keys`` addresses: a full bucket is the same as
none, so those go first, then the longest untouched.

Use (the API token check in ``service.http.deps.get_principal`` does exactly this)::

    limiter, key, now = auth_limiter(request), client_key(request), ctx.now()
    try:
        principal = check(credential)
    except AuthenticationFailed:
        limiter.refuse_if_limited(key, now)   # raises TooManyRequests (429) while limited
        limiter.record_failure(key, now)
        raise                                 # 401 as before
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import math
import threading
from dataclasses import dataclass

from starlette.requests import Request

from qc.errors import Problem, TooManyRequests
from service.settings import Settings

__all__ = ["FailedAuthLimiter", "auth_limiter", "client_key"]


@dataclass
class _Bucket:
    level: float  # failures still allowed before the limit, at ``at``
    at: dt.datetime


class FailedAuthLimiter:
    """A token bucket of failed authentications per client key (thread-safe; routes run in a pool)."""

    def __init__(self, *, burst: int, refill_s: float, max_keys: int = 100_000) -> None:
        if burst < 1 or refill_s <= 0:
            raise ValueError(f"burst must be >= 1 and refill_s > 0 (got {burst}, {refill_s})")
        self.burst = burst
        self.refill_s = refill_s
        self.max_keys = max_keys
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings) -> FailedAuthLimiter:
        return cls(burst=settings.auth_failure_burst, refill_s=settings.auth_failure_refill_s)

    def _level(self, bucket: _Bucket, now: dt.datetime) -> float:
        elapsed = max(0.0, (now - bucket.at).total_seconds())  # a clock stepped back refills nothing
        return min(float(self.burst), bucket.level + elapsed / self.refill_s)

    def retry_after_s(self, key: str, now: dt.datetime) -> int:
        """Whole seconds until a failure from ``key`` is allowed again; 0 when it is now."""
        with self._lock:
            bucket = self._buckets.get(key)
            level = self._level(bucket, now) if bucket else float(self.burst)
        return 0 if level >= 1 else max(1, math.ceil((1 - level) * self.refill_s))

    def refuse_if_limited(self, key: str, now: dt.datetime) -> None:
        """Raise ``TooManyRequests`` (429, ``retry_after_s``) when ``key`` has no failure left."""
        wait = self.retry_after_s(key, now)
        if wait:
            raise TooManyRequests(
                f"too many failed sign-ins from this address; try again in {wait} s (a valid token is still "
                "accepted: check the token this client sends)",
                [Problem("authorization", f"more than {self.burst} wrong credentials; one more is allowed "
                                          f"every {self.refill_s:g} s")],
                retry_after_s=wait,
            )

    def record_failure(self, key: str, now: dt.datetime) -> None:
        """Count one failed authentication from ``key`` at ``now``."""
        with self._lock:
            bucket = self._buckets.pop(key, None)  # re-inserted last: the dict is ordered by last failure
            level = self._level(bucket, now) if bucket else float(self.burst)
            self._buckets[key] = _Bucket(max(0.0, level - 1), now)
            if len(self._buckets) > self.max_keys:
                self._prune(now)

    def _prune(self, now: dt.datetime) -> None:
        for key in [k for k, b in self._buckets.items() if self._level(b, now) >= self.burst]:
            del self._buckets[key]
        while len(self._buckets) > self.max_keys:
            del self._buckets[next(iter(self._buckets))]  # the longest since its last failure

    def __len__(self) -> int:
        return len(self._buckets)


def client_key(request: Request) -> str:
    """The client's address (already the forwarded one when a trusted proxy sent it); IPv6 by its /64."""
    host = request.client.host if request.client else ""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host or "unknown"  # e.g. the test client's "testclient"
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


def auth_limiter(request: Request) -> FailedAuthLimiter:
    """The app's limiter (``create_app`` puts one on ``app.state``)."""
    limiter: FailedAuthLimiter = request.app.state.auth_limiter
    return limiter
