"""``qc store``: maintenance of the content-addressed photo store."""

from __future__ import annotations

import click

from service.settings import Settings
from service.storage import repository as repo

from .base import cli
from .db import migrated_context


@cli.group("store")
def store() -> None:
    """Photo store maintenance: the content-addressed files in KIPIMO_DATA_DIR/photos/ab/cd/<sha256>."""


@store.command("gc")
@click.option("--min-age", type=float, default=3600.0, show_default=True,
              help="Keep unreferenced files younger than this many seconds (uploads in flight).")
@click.option("--dry-run", is_flag=True, help="Only report what would be removed.")
@click.pass_obj
def store_gc(settings: Settings, min_age: float, dry_run: bool) -> None:
    """Remove photo files no record references (left by a crash between write and commit)."""
    with migrated_context(settings) as ctx:
        # Read references before listing files: a file written after this read is younger than min-age.
        with ctx.db.session() as session:
            referenced = repo.referenced_blobs(session)
        report = ctx.store.gc(referenced, now=ctx.now(), min_age_s=min_age, dry_run=dry_run)
    verb = "would remove" if dry_run else "removed"
    click.echo(f"kept {report.kept}, {verb} {len(report.removed)} ({report.freed_bytes} bytes), "
               f"left {report.skipped_young} younger than {min_age:g} s")
