"""``python -m demo`` (``make demo``): a network with three nodes and twelve weeks of records, served locally."""

from __future__ import annotations

import datetime as dt
import shlex
import socket
from pathlib import Path

import click
from tqdm import tqdm

from demo.guard import claim_folder, reserve_port
from demo.network import DEMO_NODES, plan_demo
from demo.photos import DemoPhotos
from service.cli.db import cli_errors
from service.cli.init import initialise
from service.core.auth import Principal, authenticate, create_token
from service.core.checklists import load_shipped_standards
from service.core.context import open_context
from service.core.outbox import drain_outbox
from service.core.submissions import record_submission
from service.settings import Settings
from service.storage import repository as repo

DEMO_ACTOR = "demo"


@click.command("demo", context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--data-dir", type=click.Path(path_type=Path), default=Path("kipimo-demo"), show_default=True,
              help="Folder for the demo's database and photos (emptied on every run; refused while another "
              "demo uses it).")
@click.option("--weeks", type=click.IntRange(1, 52), default=12, show_default=True,
              help="How many weeks of history to generate.")
@click.option("--seed", type=int, default=2026, show_default=True, help="Seed; the same seed gives the same demo.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to serve on.")
@click.option("--port", type=int, default=8000, show_default=True, help="Port to serve on.")
@click.option("--no-serve", is_flag=True, help="Build the demo data and stop (do not start the server).")
def demo(data_dir: Path, weeks: int, seed: int, host: str, port: int, no_serve: bool) -> None:
    """Build a demo network and serve it.

    Creates DATA_DIR with SQLite and a photo folder, registers three nodes
    (Kisumu, Yaoundé, Kathmandu), publishes the shipped standards, creates one
    token per role and prints them, records a few hundred realistic submissions
    (photos rendered on the calibration card and inspected by the real
    pipeline) across nodes and weeks, then serves on HOST:PORT and prints what
    to open. A taken port, or a folder another demo is using, is refused at once.
    """
    sock = None if no_serve else reserve_port(host, port)  # held from now on, handed to the server
    with claim_folder(data_dir):  # the folder is this process's until the demo stops
        settings = Settings().model_copy(update={"data_dir": data_dir, "database_url": None,
                                                 "host": host, "port": port})
        with cli_errors():
            tokens = build_demo(settings, weeks=weeks, seed=seed)
        _print_ready(settings, tokens)
        if sock is not None:
            _serve(settings, sock)


def _print_ready(settings: Settings, tokens: dict[str, str]) -> None:
    base = f"http://{settings.host}:{settings.port}"
    click.echo("\nKipimo demo is ready. Tokens (shown once; the database keeps only their hashes):")
    for label, token in tokens.items():
        click.echo(f"  {label:<22} {token}")
    tech = tokens[f"technician@{DEMO_NODES[0].name}"]
    click.echo("\nOpen:")
    click.echo(f"  technician app  {base}/app/#token={tech}")
    click.echo(f"  dashboard       {base}/dashboard   (sign in with the manager token)")
    click.echo(f"  API docs        {base}/docs")
    click.echo(f"  health          {base}/api/v1/health")
    click.echo("\nThe README's commands (qc report, qc alerts list, curl ...) work on this data after:")
    click.echo(f"  {export_line(settings.data_dir, tokens)}")


def _serve(settings: Settings, sock: socket.socket) -> None:
    import uvicorn  # noqa: PLC0415

    from service.http.app import create_app  # noqa: PLC0415

    click.echo(f"\nServing on http://{settings.host}:{settings.port} (Ctrl+C stops).")
    uvicorn.Server(uvicorn.Config(create_app(settings), log_level="warning")).run(sockets=[sock])


def export_line(data_dir: Path, tokens: dict[str, str]) -> str:
    """The shell line that points ``qc`` at the demo's data and names the README's ``$TECH``, ``$MANAGER``, ..."""
    values = {"KIPIMO_DATA_DIR": str(data_dir.resolve()), "TECH": tokens[f"technician@{DEMO_NODES[0].name}"],
              "MANAGER": tokens["manager"], "AUDITOR": tokens["auditor"], "ADMIN": tokens["admin"]}
    return "export " + " ".join(f"{k}={shlex.quote(v)}" for k, v in values.items())


def build_demo(settings: Settings, *, weeks: int = 12, seed: int = 2026) -> dict[str, str]:
    """Create the demo data in ``settings.data_dir``; return the printed tokens by label."""
    initialise(settings, by=DEMO_ACTOR)
    ctx = open_context(settings)
    tokens: dict[str, str] = {}
    people: dict[tuple[str, str], Principal] = {}
    try:
        now = ctx.now()
        with ctx.db.write_session() as session:
            for node in DEMO_NODES:
                repo.create_node(session, name=node.name, title=node.title, now=now, actor=DEMO_ACTOR)
            for node in DEMO_NODES:  # one token per person: a record names the technician who held it
                for i, person in enumerate(node.technicians):
                    secret, _ = create_token(session, actor=DEMO_ACTOR, role="technician", name=person,
                                             node=node.name, now=now)
                    people[(node.name, person)] = authenticate(session, f"Bearer {secret}")
                    if i == 0:
                        tokens[f"technician@{node.name}"] = secret
            for role, name in (("manager", "Network quality manager"), ("auditor", "External auditor"),
                               ("admin", "Hub administrator")):
                tokens[role], _ = create_token(session, actor=DEMO_ACTOR, role=role, name=name, now=now)
        # technicians submit against the current version of each product's standard
        current = {s.product: s for s in load_shipped_standards(settings.checklists_dir)}  # sorted: newest last
        photos = DemoPhotos()
        if not photos.has_real_tiles:
            # the shipped tile model judges real tile photos only; synthetic stand-ins would all fail
            current.pop("magnetic-tile", None)
            click.echo("magnetic-tile records skipped: data set not found (set KIPIMO_MT_DATASET)", err=True)
        standards = list(current.values())
        # the plan does not depend on the photos: count it with a stand-in, then render as the bar moves
        total = sum(1 for _ in plan_demo(standards, now=now, make_photo=_no_photo, weeks=weeks, seed=seed))
        plan = plan_demo(standards, now=now, make_photo=photos, weeks=weeks, seed=seed)
        for sub in tqdm(plan, total=total, desc="rendering, inspecting, recording", unit="record"):
            received = dt.datetime.fromisoformat(sub.record["captured_at"]) + dt.timedelta(minutes=3)
            person = people[(sub.node, sub.record["technician"])]
            record_submission(ctx, record=sub.record, photos=sub.photos, now=received, principal=person)
            drain_outbox(ctx)  # its alerts now, judged at its own time, as the server's worker would
    finally:
        ctx.close()
    return tokens


def _no_photo(*_: object) -> bytes:
    return b""
