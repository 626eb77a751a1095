"""The ``qc`` command group; each command module registers itself on ``cli``."""

from __future__ import annotations

import logging

import click

from service.settings import Settings


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", is_flag=True, help="Log debug messages to stderr.")
@click.pass_context
def cli(ctx: click.Context, verbose: bool) -> None:
    """Kipimo: shared quality standards, photo inspection and audit-ready records.

    Settings come from KIPIMO_* environment variables (KIPIMO_DATA_DIR,
    KIPIMO_DATABASE_URL, ...).
    """
    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING)
    ctx.obj = Settings()
