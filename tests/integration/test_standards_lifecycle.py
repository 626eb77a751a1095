"""The life of a standard: published only when its models are registered, drafts never by `qc init`,
retired by a named person for a stated reason (records keep pointing at it, new work moves on)."""

from __future__ import annotations

import hashlib

import pytest
from click.testing import CliRunner
from pydantic import create_model
from sqlalchemy import select

import qc.standards as standards_module
from service.cli import cli
from service.cli.db import cli_actor
from service.storage import repository as repo
from service.storage.orm import ModelRow
from tests.clock import TEST_NOW
from tests.integration.support import TEST_PRODUCT, TEST_STANDARD, auth, record, upload

V2 = TEST_STANDARD.replace("version: 1", "version: 2\nsupersedes: 1")
YAML = {"Content-Type": "application/yaml"}
MODEL_STANDARD = """\
product: tile
name: Tile
version: 1
photos:
  - id: top
    prompt: Top
    checks:
      - {id: surface, kind: model, model: tile-surface@3}
"""


@pytest.fixture
def qc(settings):
    env = {"KIPIMO_DATA_DIR": str(settings.data_dir), "KIPIMO_DATABASE_URL": settings.database_url,
           "KIPIMO_CHECKLISTS_DIR": str(settings.checklists_dir), "KIPIMO_MODELS_DIR": str(settings.models_dir),
           "KIPIMO_FROZEN_TIME": TEST_NOW.isoformat()}

    def run(*args: str, ok: bool = True, **extra_env: str):
        result = CliRunner().invoke(cli, list(args), env=env | extra_env)
        if ok:
            assert result.exit_code == 0, result.output
        return result

    return run


def _events(ctx, subject_id: str, action: str):
    with ctx.db.session() as session:
        return [e for e in repo.audit_events(session, subject_type="standard", subject_id=subject_id)
                if e.action == action]


# --- models must be registered ------------------------------------------------------------------


def test_publishing_refuses_a_standard_naming_an_unregistered_model(client, seed, ctx):
    with ctx.db.write_session() as session:
        repo.register_model(session, name="tile-surface", version=2, sha256="a" * 64, task="anomaly", now=TEST_NOW)
    r = client.post("/api/v1/standards", content=MODEL_STANDARD, headers=auth(seed.manager) | YAML)
    assert r.status_code == 422, r.text
    assert "tile-surface@3" in r.json()["error"] and "installed: tile-surface@2" in r.json()["error"]
    assert r.json()["problems"] == [{"field": "photos[0:top].checks[0:surface].model",
                                     "reason": "model tile-surface@3 is not registered; installed: tile-surface@2"}]
    assert client.get("/api/v1/standards/tile", headers=auth(seed.manager)).status_code == 404  # nothing written
    with ctx.db.write_session() as session:
        repo.register_model(session, name="tile-surface", version=3, sha256="b" * 64, task="anomaly", now=TEST_NOW)
    assert client.post("/api/v1/standards", content=MODEL_STANDARD, headers=auth(seed.manager)).status_code == 201


def test_cli_publish_refuses_an_unregistered_model_and_names_the_person(qc, ctx, tmp_path):
    path = tmp_path / "tile" / "v1.yaml"
    path.parent.mkdir()
    path.write_text(MODEL_STANDARD)
    refused = qc("standards", "publish", str(path), ok=False)
    assert refused.exit_code == 1 and "tile-surface@3" in refused.output and "installed: none" in refused.output
    assert "--by" not in qc("standards", "publish", "--help").output
    assert qc("standards", "publish", "--by", "someone", str(path), ok=False).exit_code == 2  # no such option
    with ctx.db.write_session() as session:
        repo.register_model(session, name="tile-surface", version=3, sha256="b" * 64, task="anomaly", now=TEST_NOW)
    assert "tile v1 published" in qc("standards", "publish", str(path)).output
    (event,) = _events(ctx, "tile@1", "standard.publish")
    assert event.actor == cli_actor() and event.actor.startswith("cli:")


def test_http_publish_is_an_audit_event_naming_the_token_holder(client, seed, ctx):
    r = client.post("/api/v1/standards", content=V2, headers=auth(seed.manager) | YAML)
    assert r.status_code == 201
    (event,) = _events(ctx, f"{TEST_PRODUCT}@2", "standard.publish")
    assert event.actor.endswith("Quality manager") and event.role == "manager"
    assert event.detail["sha256"] == r.json()["sha256"]


# --- qc init ------------------------------------------------------------------------------------


def test_init_skips_drafts_and_says_so(qc, tmp_path):
    widget = tmp_path / "checklists" / "widget"
    widget.mkdir(parents=True)
    (widget / "v1.yaml").write_text("product: widget\nname: W\nversion: 1\nitems: [{id: a, prompt: A, type: text}]\n")
    (widget / "v2.yaml").write_text("product: widget\nname: W\nversion: 2\nstatus: draft\n"
                                    "items: [{id: a, prompt: A, type: text}]\n")
    out = qc("init", KIPIMO_CHECKLISTS_DIR=str(widget.parent), KIPIMO_MODELS_DIR=str(tmp_path / "none")).output
    assert "standards published: widget@1" in out and "standards skipped (draft): widget@2" in out
    listed = qc("standards", "list").output.splitlines()
    assert [line.split("\t")[:3] for line in listed] == [["widget", "v1", "released"]]


@pytest.mark.parametrize("folder", ["empty", "missing"])
def test_init_fails_loudly_without_standards(qc, tmp_path, folder):
    checklists = tmp_path / "checklists"
    if folder == "empty":
        (checklists / "_library").mkdir(parents=True)
    result = qc("init", ok=False, KIPIMO_CHECKLISTS_DIR=str(checklists))
    assert result.exit_code == 1
    assert f"no standards found in {checklists}" in result.output and "KIPIMO_CHECKLISTS_DIR" in result.output


def test_init_registers_the_shipped_models_before_their_standards(qc, ctx):
    out = qc("init").output
    assert "magnetic-tile@3" in out.split("standards published:")[1].splitlines()[0]
    with ctx.db.session() as session:
        tile = repo.standard_from_row(repo.current_standard(session, product="magnetic-tile"))
        registered = {(m.name, m.version) for m in session.scalars(select(ModelRow))}
    assert ("magnetic-tile-surface", 2) in registered
    assert tile.photos[0].checks[0].model == "magnetic-tile-surface@2"


# --- retiring -----------------------------------------------------------------------------------


def test_retiring_the_current_version_moves_new_submissions_back_and_keeps_old_records(client, seed, ctx, qc):
    assert client.post("/api/v1/standards", content=V2, headers=auth(seed.manager) | YAML).status_code == 201
    before = upload(client, seed.tech_a, record()).json()
    assert before["standard"]["version"] == 2
    with ctx.db.session() as session:
        v2 = repo.get_standard(session, product=TEST_PRODUCT, version=2)
        v2_sha, v2_content = v2.sha256, v2.content

    out = qc("standards", "retire", TEST_PRODUCT, "--version", "2", "--reason", "diameter limit wrong").output
    assert f"{TEST_PRODUCT} v2 retired" in out and "current for new submissions: v1" in out

    (event,) = _events(ctx, f"{TEST_PRODUCT}@2", "standard.retire")
    assert event.actor == cli_actor() and event.detail["reason"] == "diameter limit wrong"
    with ctx.db.session() as session:
        row = repo.get_standard(session, product=TEST_PRODUCT, version=2)
        assert (row.status, row.sha256, row.content) == ("retired", v2_sha, v2_content)  # only the status moved
        assert repo.current_standard(session, product=TEST_PRODUCT).version == 1
    current = client.get(f"/api/v1/standards/{TEST_PRODUCT}", headers=auth(seed.tech_a)).json()
    assert current["version"] == 1
    listed = {s["version"]: s["status"] for s in client.get("/api/v1/standards", headers=auth(seed.tech_a)).json()}
    assert listed == {1: "released", 2: "retired"}
    old = client.get(f"/api/v1/submissions/{before['id']}", headers=auth(seed.manager)).json()
    assert old["standard"] == {"product": TEST_PRODUCT, "version": 2, "sha256": v2_sha}  # still points at v2
    after = upload(client, seed.tech_a, record()).json()
    assert after["standard"]["version"] == 1


def test_retiring_the_last_released_version_refuses_new_submissions_clearly(client, seed, ctx, qc):
    out = qc("standards", "retire", TEST_PRODUCT, "--version", "1", "--reason", "product discontinued").output
    assert "no released version of test-widget is left" in out
    r = upload(client, seed.tech_a, record())
    assert r.status_code == 422
    assert r.json()["problems"] == [{"field": "record.product", "reason": "no released standard for this product"}]
    assert client.get(f"/api/v1/standards/{TEST_PRODUCT}", headers=auth(seed.tech_a)).status_code == 404
    # ...and publishing the same rules again does not bring the retired version back
    assert client.post("/api/v1/standards", content=TEST_STANDARD, headers=auth(seed.manager)).status_code == 200
    assert client.get(f"/api/v1/standards/{TEST_PRODUCT}", headers=auth(seed.tech_a)).status_code == 404


def test_a_draft_is_never_current_even_when_newest(client, seed, qc):
    draft = V2.replace("status: released", "status: draft")
    assert client.post("/api/v1/standards", content=draft, headers=auth(seed.manager) | YAML).status_code == 201
    assert client.get(f"/api/v1/standards/{TEST_PRODUCT}", headers=auth(seed.tech_a)).json()["version"] == 1
    assert upload(client, seed.tech_a, record()).json()["standard"]["version"] == 1
    qc("standards", "retire", TEST_PRODUCT, "--version", "1", "--reason", "replaced")
    assert client.get(f"/api/v1/standards/{TEST_PRODUCT}", headers=auth(seed.tech_a)).status_code == 404


@pytest.mark.parametrize(("args", "message"), [
    (["--version", "9", "--reason", "x"], "no version 9 of the standard for 'test-widget'; published: 1"),
    (["--version", "1", "--reason", " "], "say why"),
    (["--version", "1"], "Missing option '--reason'"),
])
def test_retire_refuses_what_it_cannot_do(qc, seed, args, message):
    result = qc("standards", "retire", TEST_PRODUCT, *args, ok=False)
    assert result.exit_code != 0 and message in result.output


def test_retiring_twice_is_refused(qc, seed):
    qc("standards", "retire", TEST_PRODUCT, "--version", "1", "--reason", "replaced")
    again = qc("standards", "retire", TEST_PRODUCT, "--version", "1", "--reason", "replaced", ok=False)
    assert again.exit_code == 1 and "already retired" in again.output


# --- identity survives schema growth --------------------------------------------------------------


def test_stored_standards_still_verify_and_serve_after_the_schema_grows(client, seed, ctx, monkeypatch):
    with ctx.db.session() as session:
        row = repo.current_standard(session, product=TEST_PRODUCT)
        stored_sha, stored_content = row.sha256, row.content
    assert stored_sha == hashlib.sha256(stored_content.encode()).hexdigest()
    grown_item = create_model("Item", __base__=standards_module.Item, group_colour=(str, "none"))
    grown = create_model("Standard", __base__=standards_module.Standard, review_note=(str, ""),
                         items=(tuple[grown_item, ...], ()))  # type: ignore[valid-type]
    with monkeypatch.context() as patched:
        patched.setattr(standards_module, "Standard", grown)
        repo._parse_stored.cache_clear()  # parse the stored bytes again, with the grown schema
        got = client.get(f"/api/v1/standards/{TEST_PRODUCT}", headers=auth(seed.tech_a))
        assert got.status_code == 200, got.text
        assert got.json()["sha256"] == stored_sha and got.json()["document"]["review_note"] == ""
        assert all(i["group_colour"] == "none" for i in got.json()["document"]["items"])
        assert hashlib.sha256(standards_module.canonical_json(got.json()["source"])).hexdigest() == stored_sha
        r = upload(client, seed.tech_a, record())
        assert r.status_code == 201, r.text
        assert r.json()["standard"]["sha256"] == stored_sha
        # the app's outbox worker parses the standard too (alerts): let it finish under the grown schema
        assert client.app.state.outbox.wait_for_drain()
    repo._parse_stored.cache_clear()  # the schema is restored: leave no grown standards for other tests


def test_shipped_files_publish_with_their_golden_identity(qc, ctx):
    from tests.unit.qc.test_standard_identity import GOLDEN

    qc("init")
    with ctx.db.session() as session:
        stored = {f"{r.product.slug}/v{r.version}.yaml": r.sha256 for r in repo.list_standards(session)}
    assert stored == GOLDEN
