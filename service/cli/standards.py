"""``qc standards``: validate, publish, list and retire per-product standards."""

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
@click.pass_obj
def standards_publish(settings: Settings, files: tuple[Path, ...]) -> None:
    """Publish standard FILES; a version already published with the same rules is left alone.

    The audit log names the person at this console. Every model a standard's checks name must be
    registered first (`qc init` registers the shipped ones).
    """
    with cli_errors():
        parsed = [load_standard_file(p) for p in files]
    with migrated_context(settings) as ctx, ctx.db.write_session() as session:
        for standard in parsed:
            row, created = repo.publish_standard(session, standard=standard, by=cli_actor(), now=ctx.now())
            state = ("published" if created else "already published (identical)" if row.sha256 == standard.sha256
                     else "already published (the same rules, as stored)")
            click.echo(f"{standard.product} v{standard.version} {state}: sha256 {row.sha256}")


@standards.command("list")
@click.option("--product", default=None, help="Only this product.")
@click.pass_obj
def standards_list(settings: Settings, product: str | None) -> None:
    """List published standards: product, version, status, SHA-256, when and by whom."""
    with migrated_context(settings) as ctx, ctx.db.session() as session:
        for row in repo.list_standards(session, product=product):
            click.echo(f"{row.product.slug}\tv{row.version}\t{row.status}\t{row.sha256}\t"
                       f"{row.released_at:%Y-%m-%d %H:%M}\t{row.released_by}")


@standards.command("retire")
@click.argument("product")
@click.option("--version", "version", type=int, required=True, help="The version to retire.")
@click.option("--reason", required=True, help="Why (kept in the audit log).")
@click.pass_obj
def standards_retire(settings: Settings, product: str, version: int, reason: str) -> None:
    """Retire one version of PRODUCT's standard: new submissions stop using it.

    Its content and hash never change and records made with it keep pointing at it. If it was the
    current version, the highest remaining released version becomes current (none left: submissions
    for PRODUCT are refused until a new version is published).
    """
    with migrated_context(settings) as ctx, ctx.db.write_session() as session:
        repo.retire_standard(session, product=product, version=version, reason=reason, by=cli_actor(),
                             now=ctx.now())
        current = repo.current_standard(session, product=product)
        current_version = current.version if current is not None else None
    click.echo(f"{product} v{version} retired")
    click.echo(f"current for new submissions: v{current_version}" if current_version is not None
               else f"no released version of {product} is left: new submissions for it are refused")
