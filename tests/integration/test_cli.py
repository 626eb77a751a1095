"""The ``qc`` commands of the record spine, run in-process with click's runner."""

from __future__ import annotations

import os
from pathlib import Path

import click
import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from service.cli import cli
from tests.clock import TEST_NOW
from tests.integration.support import auth, jpeg, record, upload
from tests.qr import decode_qr

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def qc(settings):
    env = {"KIPIMO_DATA_DIR": str(settings.data_dir), "KIPIMO_DATABASE_URL": settings.database_url,
           "KIPIMO_CHECKLISTS_DIR": str(settings.checklists_dir), "KIPIMO_MODELS_DIR": str(settings.models_dir),
           "KIPIMO_FROZEN_TIME": TEST_NOW.isoformat()}

    def run(*args: str, ok: bool = True):
        result = CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)
        if ok:
            assert result.exit_code == 0, result.output
        return result

    return run


def test_init_publishes_every_shipped_standard_and_is_repeatable(qc):
    shipped = sorted(p.parent.name for p in (REPO_ROOT / "checklists").glob("*/v*.yaml") if p.parent.name[0] != "_")
    out = qc("init", "--node", "hub").output
    assert "node hub created" in out
    listed = qc("standards", "list").output.splitlines()
    assert sorted(line.split("\t")[0] for line in listed) == shipped
    again = qc("init").output
    assert "already there" in again and "published:" not in again
    assert qc("nodes", "list").output.startswith("hub\t")


def test_init_registers_model_cards_and_checks_their_hash(settings, ctx, tmp_path):
    import hashlib

    from sqlalchemy import select

    from service.storage.orm import ModelRow

    models = tmp_path / "models"
    (models / "tile-surface").mkdir(parents=True)
    onnx = b"not really onnx, but bytes with a hash"
    (models / "tile-surface" / "model.onnx").write_bytes(onnx)
    card = models / "tile-surface" / "card.yaml"
    card.write_text(f"name: tile-surface\nversion: 3\ntask: anomaly\nfile: model.onnx\n"
                    f"sha256: {hashlib.sha256(onnx).hexdigest()}\n"
                    "input: {height: 256, width: 256}\noutput: {format: anomaly-score-map, score: pred_score}\n")
    tile = tmp_path / "checklists" / "tile"
    tile.mkdir(parents=True)  # a standard naming that model: publishable only once the model is registered
    (tile / "v1.yaml").write_text("product: tile\nname: Tile\nversion: 1\nphotos:\n  - id: top\n    prompt: Top\n"
                                  "    checks: [{id: surface, kind: model, model: tile-surface@3}]\n")
    env = {"KIPIMO_DATA_DIR": str(settings.data_dir), "KIPIMO_DATABASE_URL": settings.database_url,
           "KIPIMO_MODELS_DIR": str(models), "KIPIMO_CHECKLISTS_DIR": str(tile.parent)}
    result = CliRunner().invoke(cli, ["init"], env=env)
    assert result.exit_code == 0, result.output
    assert "models registered: tile-surface@3" in result.output and "standards published: tile@1" in result.output
    with ctx.db.session() as session:
        rows = [(m.name, m.version, m.sha256, m.task) for m in session.scalars(select(ModelRow))]
    assert rows == [("tile-surface", 3, hashlib.sha256(onnx).hexdigest(), "anomaly")]
    (models / "tile-surface" / "model.onnx").write_bytes(onnx + b"tampered")
    tampered = CliRunner().invoke(cli, ["init"], env=env)
    assert tampered.exit_code == 1 and "card says" in tampered.output


def test_token_with_qr_encodes_the_sign_in_url_and_works(qc, client, tmp_path):
    qc("nodes", "add", "kisumu", "--title", "Kisumu makerspace")
    png = tmp_path / "token.png"
    result = qc("tokens", "create", "--role", "technician", "--node", "kisumu", "--name", "Otieno",
                "--qr", str(png), "--url", "http://10.0.0.5:8000")
    token = result.stdout.splitlines()[0]
    decoded = decode_qr(png)
    assert decoded == f"http://10.0.0.5:8000/app/#token={token}"
    # the printed card says who it is for, where and which server (never the token itself)
    card = Image.open(png)
    assert card.text["Title"] == "Kipimo sign-in: Otieno"
    assert card.text["Description"].splitlines()[1:3] == ["technician at node kisumu", "server http://10.0.0.5:8000"]
    assert token not in card.text["Description"]
    grey = np.asarray(card.convert("L"))
    code_rows = int(np.nonzero((grey < 128).any(axis=1))[0][0])  # the first dark row: the code's top
    below = grey[grey.shape[0] - 4 * 30 - 24 :]  # the caption's four lines under the code
    assert code_rows < grey.shape[0] // 2 and (below < 128).sum() > 500, "no caption printed under the code"
    assert client.get("/api/v1/me", headers=auth(token)).json() == {
        "role": "technician", "name": "Otieno", "node": "kisumu"}
    listed = qc("tokens", "list").output
    assert token not in listed and "Otieno" in listed
    token_id = listed.split("\t")[0]
    qc("tokens", "revoke", token_id)
    assert client.get("/api/v1/me", headers=auth(token)).status_code == 401


def test_technician_token_needs_a_known_node(qc):
    assert "node" in qc("tokens", "create", "--role", "technician", ok=False).output
    result = qc("tokens", "create", "--role", "technician", "--node", "nowhere", ok=False)
    assert result.exit_code == 1 and "qc nodes add nowhere" in result.output


def test_standards_validate_names_the_bad_field(qc, tmp_path):
    good = sorted((REPO_ROOT / "checklists").glob("*/v1.yaml"))[0]
    assert "sha256" in qc("standards", "validate", str(good)).output
    bad = tmp_path / "v1.yaml"
    bad.write_text("product: x\nname: X\nversion: 1\nitems:\n  - {id: a, prompt: A, type: colour}\n")
    result = qc("standards", "validate", str(bad), ok=False)
    assert result.exit_code == 1 and "items[0:a].type" in result.output


def test_standards_publish_then_conflict(qc, tmp_path):
    path = tmp_path / "w" / "v1.yaml"
    path.parent.mkdir()
    path.write_text("product: w\nname: W\nversion: 1\nitems:\n  - {id: a, prompt: A, type: boolean, pass_if: true}\n")
    assert "published" in qc("standards", "publish", str(path)).output
    assert "identical" in qc("standards", "publish", str(path)).output
    path.write_text(path.read_text().replace("pass_if: true", "pass_if: false"))
    result = qc("standards", "publish", str(path), ok=False)
    assert result.exit_code == 1 and "already published" in result.output


def test_store_gc_sweeps_orphans_only(qc, client, seed, ctx):
    kept = upload(client, seed.tech_a, record(), {"top": jpeg(seed=21)}).json()["photos"][0]["sha256"]
    orphan = ctx.store.put(b"a photo whose row never committed")
    old = TEST_NOW.timestamp() - 7200
    for _, path in ctx.store.iter_blobs():
        os.utime(path, (old, old))
    assert "would remove 1" in qc("store", "gc", "--dry-run").output
    assert ctx.store.exists(orphan)
    assert "removed 1" in qc("store", "gc").output
    assert ctx.store.exists(kept) and not ctx.store.exists(orphan)


def test_commands_refuse_an_unmigrated_database(tmp_path):
    env = {"KIPIMO_DATA_DIR": str(tmp_path), "KIPIMO_DATABASE_URL": f"sqlite:///{tmp_path}/empty.sqlite3"}
    result = CliRunner().invoke(cli, ["nodes", "list"], env=env)
    assert result.exit_code == 1 and "qc db upgrade" in result.output
    assert CliRunner().invoke(cli, ["db", "upgrade"], env=env).exit_code == 0
    assert CliRunner().invoke(cli, ["nodes", "list"], env=env).exit_code == 0


SPINE = ["init", "serve", "db", "nodes", "tokens", "standards", "store"]


def _commands(group: click.Group, prefix: tuple[str, ...]) -> list[tuple[str, ...]]:
    found = []
    for name, command in group.commands.items():
        if prefix == () and name not in SPINE:
            continue
        found.append((*prefix, name))
        if isinstance(command, click.Group):
            found += _commands(command, (*prefix, name))
    return found


@pytest.mark.parametrize("path", _commands(cli, ()), ids=" ".join)
def test_every_command_explains_itself(path):
    result = CliRunner().invoke(cli, [*path, "--help"])
    assert result.exit_code == 0
    command = cli
    for name in path:
        command = command.commands[name]
    assert command.help and len(command.help.split()) >= 4, f"qc {' '.join(path)} needs a real --help text"
