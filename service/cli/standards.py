"""``qc standards``: validate, publish and list per-product standards."""

from __future__ import annotations

from pathlib import Path

import click

from qc.errors import KipimoError
from service.core.checklists import load_standard_file
from service.settings import Settings
from service.storage import repository as repo

from .base import cli
from .db import cli_actor, cli_errors, migrated_context

_FILES = click.argument("files", nargs=-1, required=True,
                        type=click.Path(exists=True, dir_okay=False, path_type=Path))


@cli.group("standards")
def standards() -> None:
    """Standards: one YAML file per product version (checklists/<product>/v<N>.yaml).

    A published version is immutable; change a standard by publishing the next version.
    """


@standards.command("validate")
@_FILES
def standards_validate(files: tuple[Path, ...]) -> None:
    """Check standard FILES without publishing; print each one's SHA-256 or its problems."""
    failed = 0
    for path in files:
        try:
            standard = load_standard_file(path)
        except KipimoError as exc:
            failed += 1
            click.echo(f"INVALID {exc}", err=True)
            continue
        click.echo(f"ok {path}: {standard.product} v{standard.version} ({standard.status}) sha256 {standard.sha256}")
    if failed:
        raise SystemExit(1)


@standards.command("publish")
@_FILES
@click.option("--by", default=None, help="Who releases it (audit log) [default: cli:<user>].")
@click.pass_obj
def standards_publish(settings: Settings, files: tuple[Path, ...], by: str | None) -> None:
    """Publish standard FILES; an identical version already published is left alone."""
    with cli_errors():
        parsed = [load_standard_file(p) for p in files]
    with migrated_context(settings) as ctx, ctx.db.write_session() as session:
        for standard in parsed:
            _, created = repo.publish_standard(session, standard=standard, by=by or cli_actor(), now=ctx.now())
            state = "published" if created else "already published (identical)"
            click.echo(f"{standard.product} v{standard.version} {state}: sha256 {standard.sha256}")


@standards.command("list")
@click.option("--product", default=None, help="Only this product.")
@click.pass_obj
def standards_list(settings: Settings, product: str | None) -> None:
    """List published standards: product, version, status, SHA-256, when and by whom."""
    with migrated_context(settings) as ctx, ctx.db.session() as session:
        for row in repo.list_standards(session, product=product):
            click.echo(f"{row.product.slug}\tv{row.version}\t{row.status}\t{row.sha256}\t"
                       f"{row.released_at:%Y-%m-%d %H:%M}\t{row.released_by}")
