"""``qc nodes``: the workshops (and the hub) of the network."""

from __future__ import annotations

import click

from service.settings import Settings
from service.storage import repository as repo

from .base import cli
from .db import cli_actor, migrated_context


@cli.group("nodes")
def nodes() -> None:
    """Nodes: workshops that make and inspect products; technician tokens belong to one."""


@nodes.command("add")
@click.argument("name")
@click.option("--title", default="", help="Human-readable name, e.g. 'Makerspace Nairobi'.")
@click.pass_obj
def nodes_add(settings: Settings, name: str, title: str) -> None:
    """Add a node called NAME (letters, digits, '-', '_', '.')."""
    with migrated_context(settings) as ctx, ctx.db.write_session() as session:
        repo.create_node(session, name=name, title=title, now=ctx.now(), actor=cli_actor())
    click.echo(f"node {name} added")


@nodes.command("list")
@click.pass_obj
def nodes_list(settings: Settings) -> None:
    """List the nodes: name, title and when each was added."""
    with migrated_context(settings) as ctx, ctx.db.session() as session:
        rows = repo.list_nodes(session)
        for node in rows:
            click.echo(f"{node.name}\t{node.title}\t{node.created_at:%Y-%m-%d}")
        if not rows:
            click.echo("no nodes yet; add one with `qc nodes add NAME`", err=True)
