"""``qc init``: a new node or hub, useful at once (data folder, schema, standards, models)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import click

from qc.errors import NotFound
from qc.standards import Standard, Status
from service.core.checklists import load_shipped_standards
from service.core.context import ServiceContext, open_context
from service.settings import Settings
from service.storage import repository as repo
from service.storage.db import upgrade_database

from .base import cli
from .db import cli_actor, cli_errors

__all__ = ["InitReport", "initialise", "publish_shipped_standards", "register_shipped_models", "shipped_standards"]


@dataclass
class InitReport:
    standards_published: list[str] = field(default_factory=list)  # "product@version"
    standards_present: list[str] = field(default_factory=list)
    standards_drafts: list[str] = field(default_factory=list)  # found but not published
    models_registered: list[str] = field(default_factory=list)  # "name@version"
    models_present: list[str] = field(default_factory=list)
    node_created: str | None = None


def shipped_standards(checklists_dir: Path) -> list[Standard]:
    """Every standard file under ``checklists_dir``; none at all is an error (a broken install, a wrong folder)."""
    found = load_shipped_standards(checklists_dir) if checklists_dir.is_dir() else []
    if not found:
        raise NotFound(f"no standards found in {checklists_dir} (expected <product>/v<N>.yaml files); "
                       "set KIPIMO_CHECKLISTS_DIR to the folder that holds them")
    return found


def publish_shipped_standards(
    ctx: ServiceContext, standards: list[Standard], *, by: str, report: InitReport
) -> None:
    """Publish the released and retired shipped standards (same rules already there: skipped); drafts never."""
    with ctx.db.write_session() as session:
        for standard in standards:
            ref = f"{standard.product}@{standard.version}"
            if standard.status is Status.DRAFT:
                report.standards_drafts.append(ref)
                continue
            _, created = repo.publish_standard(session, standard=standard, by=by, now=ctx.now())
            (report.standards_published if created else report.standards_present).append(ref)


def register_shipped_models(ctx: ServiceContext, *, by: str, report: InitReport) -> None:
    """Register every ``models/<name>/card.yaml``, read as the runner reads it (``inspection.model_card``);
    the ONNX file's hash is checked when the file is present."""
    from inspection.model_card import check_file, read_card  # noqa: PLC0415  (pydantic and YAML only)

    models_dir = ctx.settings.models_dir
    if not models_dir.is_dir():
        return
    with ctx.db.write_session() as session:
        for card_path in sorted(models_dir.glob("*/card.yaml")):
            card = read_card(card_path.parent)
            onnx = card_path.parent / card.file
            if onnx.is_file():
                check_file(card, onnx)
            _, created = repo.register_model(session, name=card.name, version=card.version, sha256=card.sha256,
                                             task=card.task, now=ctx.now(), actor=by)
            (report.models_registered if created else report.models_present).append(card.ref)


def initialise(settings: Settings, *, by: str, node: str | None = None) -> InitReport:
    """Create the data folder, migrate, register shipped models, then publish shipped standards.

    Models come first because publishing refuses a standard naming an unregistered model. ``by`` is
    the person the audit log names. Safe to run again: everything already there is left as it is.
    """
    standards = shipped_standards(settings.checklists_dir)  # before anything is created: fail early
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade_database(settings.resolved_database_url)
    report = InitReport()
    ctx = open_context(settings)
    try:
        register_shipped_models(ctx, by=by, report=report)
        publish_shipped_standards(ctx, standards, by=by, report=report)
        if node:
            with ctx.db.write_session() as session:
                if repo.find_node(session, name=node) is None:
                    repo.create_node(session, name=node, now=ctx.now(), actor=by)
                    report.node_created = node
    finally:
        ctx.close()
    return report


@cli.command("init")
@click.option("--node", default=None, help="Also create this node (e.g. the workshop this server runs in).")
@click.pass_obj
def init(settings: Settings, node: str | None) -> None:
    """Set up a node or hub: data folder, database schema, shipped standards and models.

    Run it once after installing, and again after an upgrade (it only adds what is new).
    """
    with cli_errors():
        report = initialise(settings, by=cli_actor(), node=node)
    click.echo(f"data folder {settings.data_dir.resolve()}")
    for label, refs in (("published", report.standards_published), ("already there", report.standards_present),
                        ("skipped (draft)", report.standards_drafts)):
        if refs:
            click.echo(f"standards {label}: {', '.join(refs)}")
    for label, refs in (("registered", report.models_registered), ("already there", report.models_present)):
        if refs:
            click.echo(f"models {label}: {', '.join(refs)}")
    if report.node_created:
        click.echo(f"node {report.node_created} created")
    click.echo("next: `qc tokens create --role technician --node NODE --qr token.png`, then `qc serve`")
