"""Serving the app with uvicorn, bounded against idle and slow clients (``qc serve``).

uvicorn on its own keeps a connection that never completes a request for ever: its keep-alive
timer starts only after a first response, and ``limit_concurrency`` counts idle connections too
(it answers 503 to the next real request instead of shedding the idle ones). So 1,100 idle or
slowloris sockets exhaust a process with the usual soft limit of 1,024 file descriptors and the
server stops answering (``bench/slow_clients.py`` measures it). Here:

- each request's headers must arrive within ``header_timeout_s`` of the connection opening or of
  the previous response; it is one deadline, so a client trickling a byte a second does not
  extend it (as nginx's ``client_header_timeout`` does not);
- an idle keep-alive connection closes after ``keep_alive_s`` (uvicorn's ``timeout_keep_alive``);
- at most ``max_connections`` are open at once; one more is answered 503 and closed, so the
  process keeps file descriptors for its database and photo files;
- the soft ``RLIMIT_NOFILE`` is raised to the hard limit at start, and ``max_connections`` is
  clipped to leave ``FD_RESERVE`` descriptors below it.

The bodies of requests are bounded in size by the app (``BodySizeLimit``); their pace is the
reverse proxy's job (``client_body_timeout``, docs/deploy.md). Proxy headers are the app's
(``create_app``), so uvicorn's own handling is off.

This subclasses uvicorn's h11 protocol (``uvicorn`` is pinned in pyproject.toml for that reason;
tests/integration/test_slow_clients.py fails if an upgrade changes what it relies on).
"""

from __future__ import annotations

import asyncio
import logging
import resource
from typing import Any

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from service.settings import Settings

__all__ = ["FD_RESERVE", "bounded_h11_protocol", "connection_cap", "raise_fd_limit", "serve_app"]

log = logging.getLogger(__name__)

FD_RESERVE = 128  # descriptors kept for the database, photo files, the log and the outbox's HTTP client

_BUSY_BODY = b"server busy: too many open connections; try again shortly\n"
_BUSY = (b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain; charset=utf-8\r\nretry-after: 5\r\n"
         b"connection: close\r\ncontent-length: %d\r\n\r\n%s" % (len(_BUSY_BODY), _BUSY_BODY))


def bounded_h11_protocol(*, header_timeout_s: float, max_connections: int) -> type[H11Protocol]:
    """uvicorn's h11 protocol with a header deadline per request and a cap on open connections."""

    class BoundedH11Protocol(H11Protocol):
        _header_deadline: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            if len(self.connections) > max_connections:
                transport.write(_BUSY)
                transport.close()
                return
            self._arm_header_deadline()

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            if self.conn.their_state is not h11.IDLE:  # a request's headers are in (or it was refused)
                self._disarm_header_deadline()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing() and self.conn.their_state is h11.IDLE:
                self._arm_header_deadline()  # the next request's headers get the same deadline

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm_header_deadline()
            super().connection_lost(exc)

        def _arm_header_deadline(self) -> None:
            self._disarm_header_deadline()
            self._header_deadline = self.loop.call_later(header_timeout_s, self._headers_too_slow)

        def _disarm_header_deadline(self) -> None:
            if self._header_deadline is not None:
                self._header_deadline.cancel()
                self._header_deadline = None

        def _headers_too_slow(self) -> None:
            self._header_deadline = None
            if not self.transport.is_closing() and self.conn.their_state is h11.IDLE:
                self.transport.close()

    return BoundedH11Protocol


def raise_fd_limit() -> int:
    """Raise the soft limit on open files to the hard limit (as far as the OS lets us); return it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError) as exc:  # e.g. macOS refuses above kern.maxfilesperproc
            log.warning("could not raise the open-file limit from %d to %d: %s", soft, target, exc)
    return soft


def connection_cap(wanted: int, fd_soft_limit: int) -> int:
    """``wanted``, clipped so that ``FD_RESERVE`` descriptors stay free below the soft limit."""
    return max(1, min(wanted, fd_soft_limit - FD_RESERVE))


def serve_app(app: Any, settings: Settings, *, host: str, port: int, log_level: str) -> None:
    """Run ``app`` with uvicorn on ``host:port``, bounded as this module's docstring says."""
    fds = raise_fd_limit()
    cap = connection_cap(settings.max_connections, fds)
    if cap < settings.max_connections:
        log.warning("KIPIMO_MAX_CONNECTIONS=%d lowered to %d: the open-file limit is %d (raise `ulimit -Hn`)",
                    settings.max_connections, cap, fds)
    protocol = bounded_h11_protocol(header_timeout_s=settings.header_timeout_s, max_connections=cap)
    uvicorn.run(app, host=host, port=port, log_level=log_level, http=protocol,
                timeout_keep_alive=settings.keep_alive_s, backlog=settings.backlog,
                proxy_headers=False, timeout_graceful_shutdown=10)
