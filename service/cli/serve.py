"""``qc serve``: run the API and web apps with uvicorn."""

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
@click.pass_obj
def serve(settings: Settings, host: str | None, port: int | None, log_level: str) -> None:
    """Serve the HTTP API (/api/v1, OpenAPI at /openapi.json) and the web apps.

    The database must be migrated first (`qc init` or `qc db upgrade`).
    """
    import uvicorn  # noqa: PLC0415

    from service.http.app import create_app  # noqa: PLC0415

    with migrated_context(settings):
        pass  # only checks the schema; the app opens its own context
    logging.getLogger("service").setLevel(getattr(logging, log_level.upper()))
    app = create_app(settings)
    uvicorn.run(app, host=host or settings.host, port=port or settings.port, log_level=log_level,
                timeout_graceful_shutdown=10)
