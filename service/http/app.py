"""The FastAPI application, built by ``create_app(settings)`` (no import-time globals)."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from qc.errors import PayloadTooLarge, Problem
from service.core.context import ServiceContext, open_context
from service.core.decoding import decode_budget
from service.core.outbox import OutboxWorker
from service.http.deps import storable_url
from service.http.errors import document_errors, error_body, install_error_handlers
from service.http.ratelimit import FailedAuthLimiter
from service.http.routes import analytics, meta, photos, reviews, standards, submissions
from service.http.routes.meta import kipimo_version
from service.settings import Settings

__all__ = ["API_PREFIX", "BodySizeLimit", "create_app"]

log = logging.getLogger(__name__)

API_PREFIX = "/api/v1"


class BodySizeLimit:
    """Refuse bodies above ``max_bytes``: by Content-Length before reading, and while
    streaming (chunked uploads or a lying header) by raising ``PayloadTooLarge``."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    def _too_large(self, size: str) -> PayloadTooLarge:
        limit_mb = self.max_bytes / 1024 / 1024
        return PayloadTooLarge(
            f"request body is {size}, above the limit of {limit_mb:g} MiB; send fewer or smaller photos",
            [Problem("body", f"larger than {self.max_bytes} bytes")],
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None:
            try:
                length = int(declared)
            except ValueError:
                await _send_json(send, 400, error_body("invalid Content-Length header",
                                                       [Problem("content-length", "not an integer")]))
                return
            if length > self.max_bytes:
                exc = self._too_large(f"{length} bytes")
                await _send_json(send, 413, error_body(exc.message, exc.problems))
                return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise self._too_large(f"more than {received} bytes")
            return message

        await self.app(scope, limited_receive, send)


async def _send_json(send: Send, status: int, body: dict[str, object]) -> None:
    payload = json.dumps(body).encode()
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode()),
        (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": payload})


def create_app(settings: Settings, *, context: ServiceContext | None = None) -> FastAPI:
    """The API (under ``/api/v1``) and the web apps, on the database and store ``settings`` name.

    The database must already be migrated (``qc db upgrade`` / ``qc init``).
    """
    ctx = context or open_context(settings)
    worker = OutboxWorker(ctx)  # post-commit work (alerts, webhook): drained every second and after each commit

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        worker.start()
        try:
            yield
        finally:
            worker.stop()  # finishes the row in hand; what is left stays pending for the next start
            if context is None:  # we opened it, we close it
                ctx.close()

    app = FastAPI(
        title="Kipimo",
        version=kipimo_version(),
        summary="Shared quality standards, photo inspection and audit-ready records for distributed manufacturing.",
        openapi_url="/openapi.json",
        docs_url="/docs",
        redoc_url=None,
        lifespan=lifespan,
        dependencies=[Depends(storable_url)],  # no NUL in any path or query parameter, on every route
    )
    app.state.ctx = ctx
    app.state.outbox = worker
    app.state.settings = settings
    app.state.auth_limiter = FailedAuthLimiter.from_settings(settings)  # failed sign-ins per address (429)
    decode_budget(settings)  # made now, not at the first photo: caps glibc's arenas before a burst can spread them
    install_error_handlers(app)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    if settings.proxy_headers:  # outermost, so the client address and scheme are the real ones for all below
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=settings.forwarded_allow_ips)
    for router in (meta.router, standards.router, submissions.csv_router, submissions.router, photos.router,
                   analytics.router, analytics.alerts_router, reviews.router):
        app.include_router(router, prefix=API_PREFIX)
    from service.web import mount_web  # noqa: PLC0415 (the web package may import the app's pieces)

    mount_web(app, settings)  # technician app and the dashboard's HTML pages
    document_errors(app)  # every operation's refusals in /openapi.json
    return app
