"""``qc serve``: run the API and web apps with uvicorn, bounded against idle clients (service/http/serving.py)."""

from __future__ import annotations

import logging

import click

from service.settings import Settings

from .base import cli
from .db import migrated_context


@cli.command("serve")
@click.option("--host", default=None, help="Interface to listen on [default: KIPIMO_HOST or 127.0.0.1]; "
              "0.0.0.0 lets phones on the workshop network connect.")
@click.option("--port", type=int, default=None, help="TCP port [default: KIPIMO_PORT or 8000].")
@click.option("--log-level", default="info", show_default=True,
              type=click.Choice(["critical", "error", "warning", "info", "debug"]), help="uvicorn log level.")
@click.option("--proxy-headers/--no-proxy-headers", default=None,
              help="Believe X-Forwarded-For/-Proto from the reverse proxy [default: KIPIMO_PROXY_HEADERS or off].")
@click.option("--forwarded-allow-ips", default=None, metavar="ADDRESSES",
              help="Comma-separated proxy addresses or networks whose X-Forwarded-* headers count "
                   "[default: KIPIMO_FORWARDED_ALLOW_IPS or 127.0.0.1].")
@click.pass_obj
def serve(settings: Settings, host: str | None, port: int | None, log_level: str, proxy_headers: bool | None,
          forwarded_allow_ips: str | None) -> None:
    """Serve the HTTP API (/api/v1, OpenAPI at /openapi.json) and the web apps.

    The database must be migrated first (`qc init` or `qc db upgrade`). A request's headers must
    arrive within KIPIMO_HEADER_TIMEOUT_S (10 s), idle connections close after KIPIMO_KEEP_ALIVE_S
    (5 s), and at most KIPIMO_MAX_CONNECTIONS (2048) are open; the open-file soft limit is raised
    to the hard limit at start. Behind a reverse proxy see docs/deploy.md.
    """
    from service.http.app import create_app  # noqa: PLC0415
    from service.http.serving import serve_app  # noqa: PLC0415

    overrides = {"proxy_headers": proxy_headers, "forwarded_allow_ips": forwarded_allow_ips}
    settings = settings.model_copy(update={k: v for k, v in overrides.items() if v is not None})
    with migrated_context(settings):
        pass  # only checks the schema; the app opens its own context
    logging.getLogger("service").setLevel(getattr(logging, log_level.upper()))
    app = create_app(settings)
    serve_app(app, settings, host=host or settings.host, port=port or settings.port, log_level=log_level)
