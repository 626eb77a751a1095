"""The record hash covers everything a record asserts, and anyone can recompute it from the API alone.

The hash is recomputed here with nothing but ``hashlib`` and ``rfc8785`` (no project code), from the
``document`` the API returns. Expected values come from what the test sent (photo bytes, answers,
the token's holder), from the published standard and from the model file's own bytes.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import rfc8785
import sqlalchemy as sa
import yaml
from onnx import TensorProto, helper
from sqlalchemy.orm import Session

from qc.errors import RecordAltered
from qc.standards import parse_standard
from service.core.auth import create_token, hash_token, revoke_token
from service.core.submissions import recompute_record_sha256, submission_view
from service.storage import repository as repo
from service.storage.orm import AccessToken, AuditEvent, Submission
from tests.clock import TEST_NOW
from tests.integration.support import TEST_PRODUCT, auth, jpeg, record, upload


def _sha(document: dict) -> str:
    return hashlib.sha256(rfc8785.dumps(document)).hexdigest()


def _token_id(ctx, token: str) -> int:
    with ctx.db.session() as session:
        return session.scalars(sa.select(AccessToken.id).where(AccessToken.token_sha256 == hash_token(token))).one()


def test_record_hash_recomputes_from_the_api_response_alone_verdict_included(client, seed):
    posted = upload(client, seed.tech_a, record(), {"top": jpeg(seed=5)}).json()
    body = client.get(f"/api/v1/submissions/{posted['id']}", headers=auth(seed.auditor)).json()
    assert body == posted
    document = body["document"]
    assert _sha(document) == body["record_sha256"]
    assert document["verdict"] == body["verdict"] == "pass"  # 10.0 mm in 9.5..10.5, clean, red
    assert _sha(dict(document, verdict="fail")) != body["record_sha256"]
    assert _sha(dict(document, minor_defects=1)) != body["record_sha256"]


def test_the_document_states_what_was_sent_who_sent_it_and_when(client, seed, ctx):
    photo = jpeg(seed=8)
    original = upload(client, seed.tech_a, record()).json()["id"]
    rec = record(technician="A. Mwangi", notes="burr on one edge", location={"lat": -0.0917, "lon": 34.768},
                 answers={"diameter": 10.0, "clean": True, "colour": "blue"}, corrects=original)
    body = upload(client, seed.tech_a, rec, {"top": photo}).json()
    standard = client.get(f"/api/v1/standards/{TEST_PRODUCT}", headers=auth(seed.manager)).json()
    document = body["document"]
    assert document == {
        "schema": "kipimo.record/2",
        "id": rec["id"], "node": "node-a", "product": TEST_PRODUCT,
        "standard": {"product": TEST_PRODUCT, "version": 1, "sha256": standard["sha256"]},
        "verdict": "pass", "minor_defects": 1,  # blue fails the minor colour check only
        "results": body["results"],
        "models": [],  # vision is off in these tests: no model ran
        "photos": {"top": {"sha256": hashlib.sha256(photo).hexdigest(), "overlay_sha256": None}},
        "answers": rec["answers"], "lot": "L-001", "unit": "U-1",
        "notes": "burr on one edge", "location": {"lat": -0.0917, "lon": 34.768}, "corrects": rec["corrects"],
        "person": {"name": "Amina", "token_id": _token_id(ctx, seed.tech_a), "role": "technician"},
        "entered_as": "A. Mwangi",
        "captured_at": rec["captured_at"],
        "received_at": TEST_NOW.isoformat().replace("+00:00", "Z"),
    }
    assert [r["status"] for r in document["results"]] == ["pass", "pass", "fail", "not_applicable",
                                                           "not_applicable"]  # the photo: no gate ran (vision off)
    # The person is the token's holder; the typed name is kept beside it, never in its place.
    assert body["technician"] == "Amina" and body["entered_as"] == "A. Mwangi"
    assert (body["notes"], body["location"], body["corrects"]) == (rec["notes"], rec["location"], rec["corrects"])
    assert body["document_schema"] == "kipimo.record/2"
    assert _sha(document) == body["record_sha256"]


def _toy_anomaly_model(models_dir: Path) -> str:
    """An anomaly model whose score is the brightest channel mean (0..1 after scaling), threshold 2: always good."""
    x = helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 3, 32, 32])
    outs = [helper.make_tensor_value_info("pred_score", TensorProto.FLOAT, ["N"]),
            helper.make_tensor_value_info("anomaly_map", TensorProto.FLOAT, ["N", 1, 32, 32])]
    axes = [helper.make_tensor("c", TensorProto.INT64, [1], [1]), helper.make_tensor("chw", TensorProto.INT64, [3],
                                                                                     [1, 2, 3])]
    nodes = [helper.make_node("ReduceMean", ["image", "c"], ["anomaly_map"], keepdims=1),
             helper.make_node("ReduceMax", ["anomaly_map", "chw"], ["pred_score"], keepdims=0)]
    model = helper.make_model(helper.make_graph(nodes, "toy", [x], outs, initializer=axes),
                              opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 10
    data = model.SerializeToString()
    folder = models_dir / "toy-surface"
    folder.mkdir(parents=True)
    (folder / "model.onnx").write_bytes(data)
    (folder / "card.yaml").write_text(yaml.safe_dump({
        "name": "toy-surface", "version": 1, "task": "anomaly", "file": "model.onnx",
        "sha256": hashlib.sha256(data).hexdigest(),
        "input": {"name": "image", "layout": "NCHW", "height": 32, "width": 32, "color": "rgb", "scale": 255.0,
                  "mean": [0, 0, 0], "std": [1, 1, 1], "resize": "stretch"},
        "output": {"format": "anomaly-score-map", "score": "pred_score", "map": "anomaly_map"},
        "threshold": 2.0}))
    return hashlib.sha256(data).hexdigest()


def test_the_document_names_the_model_that_judged_and_the_overlay_shown(make_client, seed, ctx, tmp_path):
    model_sha = _toy_anomaly_model(tmp_path / "models")
    with ctx.db.write_session() as session:
        repo.register_model(session, name="toy-surface", version=1, sha256=model_sha, task="anomaly",
                            now=TEST_NOW, actor="test")
        repo.publish_standard(session, by="test", now=TEST_NOW, standard=parse_standard(
            "product: toy-tile\nname: Toy tile\nversion: 1\nstatus: released\nphotos:\n"
            "  - {id: surface, prompt: Surface, card: false,"
            " checks: [{id: smooth, kind: model, model: toy-surface@1}]}\n", source="test"))
    client = make_client(vision=True, models_dir=tmp_path / "models")
    r = upload(client, seed.tech_a, record(product="toy-tile", answers={}), {"surface": jpeg(seed=2)})
    assert r.status_code == 201, r.text
    body = r.json()
    document = body["document"]
    assert document["models"] == [{"name": "toy-surface", "version": 1, "sha256": model_sha}]
    assert [(x["check_id"], x["status"], x["model_sha256"]) for x in document["results"]] == [
        ("surface", "pass", None), ("smooth", "pass", model_sha)]  # the photo passed the quality gate
    overlay = client.get(body["photos"][0]["overlay_url"], headers=auth(seed.tech_a)).content
    assert document["photos"]["surface"]["overlay_sha256"] == hashlib.sha256(overlay).hexdigest()
    assert _sha(document) == body["record_sha256"]


def _alter(ctx, statement: str, **params: object) -> None:
    """What someone with database access could do: lift the append-only guard, change a row, restore it."""
    postgres = ctx.db.engine.dialect.name == "postgresql"
    with ctx.db.engine.begin() as conn:
        if postgres:
            conn.execute(sa.text("ALTER TABLE submissions DISABLE TRIGGER submissions_append_only"))
        else:
            conn.execute(sa.text("DROP TRIGGER submissions_no_update"))
        conn.execute(sa.text(statement), params)
        if postgres:
            conn.execute(sa.text("ALTER TABLE submissions ENABLE TRIGGER submissions_append_only"))
        else:
            conn.execute(sa.text("CREATE TRIGGER submissions_no_update BEFORE UPDATE ON submissions "
                                 "BEGIN SELECT RAISE(ABORT, 'kipimo: refused'); END"))


def _stored(ctx, submission_id: str) -> Submission:
    with ctx.db.session() as session:
        sub = repo.get_submission(session, id=submission_id)
        assert sub is not None
        return sub


def test_an_altered_verdict_column_is_detected(client, seed, ctx):
    body = upload(client, seed.tech_a, record(answers={"diameter": 11.0, "clean": True, "colour": "red"})).json()
    assert body["verdict"] == "fail"
    assert recompute_record_sha256(_stored(ctx, body["id"])) == body["record_sha256"]
    _alter(ctx, "UPDATE submissions SET verdict = 'pass' WHERE id = :id", id=body["id"])
    with pytest.raises(RecordAltered, match="verdict"):
        recompute_record_sha256(_stored(ctx, body["id"]))


def _set_document(ctx, submission_id: str, document: dict) -> None:
    cast = "CAST(:doc AS JSONB)" if ctx.db.engine.dialect.name == "postgresql" else ":doc"
    _alter(ctx, f"UPDATE submissions SET document = {cast} WHERE id = :id", doc=json.dumps(document), id=submission_id)


def test_an_altered_document_is_detected(client, seed, ctx):
    failing = upload(client, seed.tech_a, record(answers={"diameter": 11.0, "clean": True, "colour": "red"})).json()
    _set_document(ctx, failing["id"], dict(failing["document"], verdict="pass"))
    with pytest.raises(RecordAltered, match="verdict"):  # the verdict column still says fail
        recompute_record_sha256(_stored(ctx, failing["id"]))
    seen = client.get(f"/api/v1/submissions/{failing['id']}", headers=auth(seed.auditor)).json()
    assert seen["document"]["verdict"] == "pass" and _sha(seen["document"]) != seen["record_sha256"]

    noted = upload(client, seed.tech_a, record(notes="scratch")).json()
    _set_document(ctx, noted["id"], dict(noted["document"], notes="no scratch"))  # a fact only the document holds
    assert recompute_record_sha256(_stored(ctx, noted["id"])) != noted["record_sha256"]


def test_token_creation_and_revocation_are_audit_events_naming_the_person(ctx, seed):
    with ctx.db.write_session() as session:
        secret, row = create_token(session, role="technician", name="Otieno", node="node-b", actor="cli:wanjiru",
                                   now=TEST_NOW)
        token_id = row.id
    with ctx.db.write_session() as session:
        revoke_token(session, token_id=token_id, actor="cli:kamau", now=TEST_NOW)
        revoke_token(session, token_id=token_id, actor="cli:kamau", now=TEST_NOW)  # no second event
    with ctx.db.session() as session:
        events = session.scalars(sa.select(AuditEvent).where(AuditEvent.subject_type == "token",
                                                             AuditEvent.subject_id == str(token_id))
                                 .order_by(AuditEvent.id)).all()
        node_b = repo.find_node(session, name="node-b")
        assert node_b is not None
        assert [(e.action, e.actor, e.node_id, e.detail) for e in events] == [
            ("token.create", "cli:wanjiru", node_b.id, {"holder": "Otieno", "role": "technician", "node": "node-b"}),
            ("token.revoke", "cli:kamau", node_b.id, {"holder": "Otieno", "role": "technician", "node": "node-b"}),
        ]
        for e in events:  # neither the secret nor its stored hash is evidence anyone needs
            assert secret not in str(e.detail) and hash_token(secret) not in str(e.detail)


def _legacy_rows(conn: sa.Connection) -> dict[str, str]:
    """Two records as Kipimo stored them before migration 0004, hashed the old way (written out here).

    The standard was re-identified by migration 0003 (its row now holds the new identity; the audit log
    holds old -> new), so the hash of the first record used the old identity. The second record's answers
    were changed after it was hashed.
    """
    content = rfc8785.dumps(yaml.safe_load(TEST_STANDARD_V1)).decode()  # its stored canonical bytes
    old_identity, new_identity = "a" * 64, hashlib.sha256(content.encode()).hexdigest()
    t = TEST_NOW
    conn.execute(sa.text("INSERT INTO nodes (id, name, title, created_at) VALUES (1, 'node-a', '', :t)"), {"t": t})
    conn.execute(sa.text("INSERT INTO products (id, slug, name, created_at) VALUES (1, 'test-widget', 'W', :t)"),
                 {"t": t})
    conn.execute(sa.text("INSERT INTO standards (id, product_id, version, status, name, content, sha256, released_at,"
                         " released_by) VALUES (1, 1, 1, 'released', 'W', :c, :s, :t, 'test')"),
                 {"c": content, "s": new_identity, "t": t})
    mapping = {"mapping": {"test-widget@1": {"old": old_identity, "new": new_identity}}}
    conn.execute(sa.text("INSERT INTO audit_events (at, actor, action, subject_type, subject_id, detail) "
                         "VALUES (:t, 'migration 0003', 'standard.reidentify', 'standard', '*', :d)"),
                 {"t": t, "d": json.dumps(mapping)})
    hashes = {}
    for seq, answers_hashed, answers_stored in ((1, {"clean": True}, {"clean": True}),
                                                (2, {"clean": True}, {"clean": False})):
        rec = {"id": f"00000000-0000-4000-8000-00000000000{seq}", "node": "node-a", "product": "test-widget",
               "technician": "Amina", "answers": answers_hashed, "lot": None, "unit": None}
        photo, result = "b" * 64, {"check_id": "clean", "status": "pass", "value": True}
        legacy = {"record": rec, "standard_sha256": old_identity, "photos": {"top": photo}, "results": [result]}
        hashes[rec["id"]] = hashlib.sha256(rfc8785.dumps(legacy)).hexdigest()
        conn.execute(sa.text(
            "INSERT INTO submissions (seq, id, node_id, product_id, standard_id, unit, technician, captured_at, "
            "received_at, verdict, minor_defects, answers, record, request_sha256, record_sha256) VALUES "
            "(:seq, :id, 1, 1, 1, NULL, 'Amina', :t, :t, 'pass', 0, :a, :r, :q, :h)"),
            {"seq": seq, "id": rec["id"], "t": t, "a": json.dumps(answers_stored),
             "r": json.dumps(dict(rec, answers=answers_stored)), "q": "0" * 64, "h": hashes[rec["id"]]})
        conn.execute(sa.text("INSERT INTO photos (submission_seq, slot, sha256, size, media_type, width, height, "
                             "findings) VALUES (:seq, 'top', :p, 1, 'image/jpeg', 1, 1, '{}')"),
                     {"seq": seq, "p": photo})
        conn.execute(sa.text("INSERT INTO check_results (submission_seq, position, check_id, kind, status, severity, "
                             "detail) VALUES (:seq, 0, 'clean', 'item', 'pass', 'major', :d)"),
                     {"seq": seq, "d": json.dumps(result)})
    return hashes


def test_migration_0004_stores_each_legacy_document_exactly_as_it_was_hashed(db_url):
    from service.storage.db import downgrade_database, make_engine, upgrade_database

    engine = make_engine(db_url)
    try:
        downgrade_database(engine, "0003")
        with engine.begin() as conn:
            hashes = _legacy_rows(conn)
        upgrade_database(engine)
        with engine.connect() as conn:
            stored = dict(conn.execute(sa.text("SELECT id, document FROM submissions ORDER BY seq")).all())
        intact, altered = (json.loads(d) if isinstance(d, str) else d for d in stored.values())
        first, second = stored
        assert "schema" not in intact and intact["standard_sha256"] == "a" * 64  # the identity it was hashed with
        assert _sha(intact) == hashes[first]
        assert intact["record"]["answers"] == {"clean": True}
        assert _sha(altered) != hashes[second]  # rebuilt from what is stored now: the change shows
        with Session(engine) as session:
            old = repo.get_submission(session, id=first)
            assert old is not None and recompute_record_sha256(old) == hashes[first]
            view = submission_view(old)
            assert view["document_schema"] == "kipimo.record/1" and view["document"] == intact
            assert view["entered_as"] is None  # an old record cannot tell a typed name from the token's
            changed = repo.get_submission(session, id=second)
            assert changed is not None and recompute_record_sha256(changed) != hashes[second]
    finally:
        upgrade_database(engine)
        engine.dispose()


TEST_STANDARD_V1 = ("product: test-widget\nname: W\nversion: 1\nstatus: released\n"
                    "items:\n  - {id: clean, prompt: Clean, type: boolean, pass_if: true, severity: major}\n")
