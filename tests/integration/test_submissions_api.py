"""Submissions over HTTP: verdicts, idempotent replays, conflicts, reading back, listing, CSV."""

from __future__ import annotations

import csv
import io
import uuid

from service.core.context import ServiceContext
from tests.integration.support import ITEM_IDS, TEST_PRODUCT, count_rows, jpeg, record, upload


def test_submission_gets_verdict_with_one_result_per_check(client, seed):
    rec = record()
    r = upload(client, seed.tech_a, rec)
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["id"] == rec["id"]
    # Diameter 10.0 in 9.5..10.5, clean true, colour red: every rule of the test standard passes.
    assert body["verdict"] == "pass"
    assert [x["check_id"] for x in body["results"]] == [*ITEM_IDS, "top"]
    # vision is off in these tests: the photo is a check of its own, not judged (never a silent pass)
    assert (by_id := {x["check_id"]: x for x in body["results"]})["top"]["kind"] == "photo"
    assert by_id["top"]["status"] == "not_applicable" and "not checked" in by_id["top"]["message"]
    by_id = {x["check_id"]: x for x in body["results"]}
    assert by_id["diameter"]["status"] == "pass"
    assert by_id["note"]["status"] == "not_applicable"
    assert body["node"] == "node-a"
    assert body["standard"]["product"] == TEST_PRODUCT and body["standard"]["version"] == 1
    assert len(body["standard"]["sha256"]) == 64
    assert [p["slot"] for p in body["photos"]] == ["top"]


def test_out_of_limit_answer_fails_the_record(client, seed):
    r = upload(client, seed.tech_a, record(answers={"diameter": 10.6, "clean": True, "colour": "red"}))
    assert r.status_code == 201, r.text
    assert r.json()["verdict"] == "fail"
    assert {x["check_id"]: x["status"] for x in r.json()["results"]}["diameter"] == "fail"


def test_minor_failure_is_counted_not_failed(client, seed):
    r = upload(client, seed.tech_a, record(answers={"diameter": 10.0, "clean": True, "colour": "blue"}))
    assert r.json()["verdict"] == "pass"
    assert r.json()["minor_defects"] == 1


def test_replay_returns_same_body_and_keeps_one_row(client, seed, ctx: ServiceContext):
    rec, photo = record(), jpeg(seed=7)
    first = upload(client, seed.tech_a, rec, {"top": photo})
    again = upload(client, seed.tech_a, rec, {"top": photo})
    assert first.status_code == 201 and again.status_code == 200
    assert again.json() == first.json()
    assert count_rows(ctx)["submissions"] == 1
    assert count_rows(ctx)["photos"] == 1


def test_changed_replay_is_conflict(client, seed, ctx: ServiceContext):
    rec = record()
    assert upload(client, seed.tech_a, rec).status_code == 201
    changed = dict(rec, unit="U-2")
    r = upload(client, seed.tech_a, changed)
    assert r.status_code == 409
    assert r.json()["problems"][0]["field"] == "record.id"
    other_photo = upload(client, seed.tech_a, rec, {"top": jpeg(seed=99)})
    assert other_photo.status_code == 409
    assert count_rows(ctx)["submissions"] == 1


def test_same_id_from_another_node_is_conflict(client, seed):
    rec = record()
    assert upload(client, seed.tech_a, rec).status_code == 201
    assert upload(client, seed.tech_b, rec).status_code == 409


def test_get_submission_and_photo(client, seed):
    photo = jpeg(seed=11)
    body = upload(client, seed.tech_a, record(), {"top": photo}).json()
    got = client.get(f"/api/v1/submissions/{body['id']}", headers={"Authorization": f"Bearer {seed.tech_a}"})
    assert got.status_code == 200 and got.json() == body
    img = client.get(body["photos"][0]["url"], headers={"Authorization": f"Bearer {seed.manager}"})
    assert img.status_code == 200 and img.content == photo
    assert img.headers["content-type"] == "image/jpeg"


def test_record_names_the_exact_standard_version_even_after_a_new_one(client, seed):
    first = upload(client, seed.tech_a, record()).json()
    v2 = client.get(f"/api/v1/standards/{TEST_PRODUCT}", headers={"Authorization": f"Bearer {seed.manager}"})
    doc = v2.json()["document"]
    doc.update(version=2, supersedes=1)
    doc["items"][0]["max"] = 10.2
    assert client.post("/api/v1/standards", json=doc,
                       headers={"Authorization": f"Bearer {seed.manager}"}).status_code == 201
    second = upload(client, seed.tech_a, record(answers={"diameter": 10.3, "clean": True, "colour": "red"})).json()
    pinned = upload(client, seed.tech_a, record(standard_version=1,
                                                answers={"diameter": 10.3, "clean": True, "colour": "red"})).json()
    assert first["standard"]["version"] == 1 and second["standard"]["version"] == 2
    assert second["standard"]["sha256"] != first["standard"]["sha256"]
    assert second["verdict"] == "fail"  # 10.3 > 10.2 under version 2
    assert pinned["standard"] == first["standard"] and pinned["verdict"] == "pass"  # 10.3 <= 10.5 under v1
    again = client.get(f"/api/v1/submissions/{first['id']}", headers={"Authorization": f"Bearer {seed.auditor}"})
    assert again.json()["standard"] == first["standard"]


def test_list_filters_and_cursor_paging(client, seed):
    ids_a = [upload(client, seed.tech_a, record(lot="L-1")).json()["id"] for _ in range(5)]
    failing = upload(client, seed.tech_a, record(lot="L-2", answers={"diameter": 12, "clean": True,
                                                                      "colour": "red"})).json()["id"]
    ids_b = [upload(client, seed.tech_b, record(lot="L-1")).json()["id"] for _ in range(2)]
    manager = {"Authorization": f"Bearer {seed.manager}"}
    seen, cursor = [], None
    while True:
        params = {"limit": 3} | ({"cursor": cursor} if cursor else {})
        page = client.get("/api/v1/submissions", params=params, headers=manager).json()
        seen += [s["id"] for s in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == list(reversed(ids_a + [failing] + ids_b))  # newest first, nothing twice
    by_node = client.get("/api/v1/submissions", params={"node": "node-b"}, headers=manager).json()
    assert {s["id"] for s in by_node["items"]} == set(ids_b)
    fails = client.get("/api/v1/submissions", params={"verdict": "fail"}, headers=manager).json()
    assert [s["id"] for s in fails["items"]] == [failing]
    lot = client.get("/api/v1/submissions", params={"lot": "L-2", "product": TEST_PRODUCT}, headers=manager).json()
    assert [s["id"] for s in lot["items"]] == [failing]
    future = client.get("/api/v1/submissions", params={"since": "2100-01-01T00:00:00Z"}, headers=manager).json()
    assert future["items"] == []
    mine = client.get("/api/v1/submissions", headers={"Authorization": f"Bearer {seed.tech_b}"}).json()
    assert {s["id"] for s in mine["items"]} == set(ids_b)  # a technician lists only their node
    bad = client.get("/api/v1/submissions", params={"cursor": "!!"}, headers=manager)
    assert bad.status_code == 422 and bad.json()["problems"][0]["field"] == "cursor"


def test_csv_export_for_managers_and_auditors_only(client, seed):
    ids = {upload(client, seed.tech_a, record()).json()["id"] for _ in range(2)}
    for token in (seed.manager, seed.auditor):
        r = client.get("/api/v1/submissions.csv", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(r.text)))
        assert {row["id"] for row in rows} == ids
        assert {row["verdict"] for row in rows} == {"pass"}
    assert client.get("/api/v1/submissions.csv", headers={"Authorization": f"Bearer {seed.tech_a}"}).status_code == 403


def test_csv_and_list_show_the_verdict_under_the_hash(client, seed):
    passing = upload(client, seed.tech_a, record()).json()
    failing = upload(client, seed.tech_a, record(answers={"diameter": 12.0, "clean": True, "colour": "red"})).json()
    manager = {"Authorization": f"Bearer {seed.manager}"}
    rows = {row["id"]: row for row in csv.DictReader(io.StringIO(client.get("/api/v1/submissions.csv",
                                                                             headers=manager).text))}
    listed = {s["id"]: s for s in client.get("/api/v1/submissions", headers=manager).json()["items"]}
    # 10.0 mm is inside 9.5..10.5 and 12.0 mm is not (TEST_STANDARD): the verdicts are known independently.
    for body, expected in ((passing, "pass"), (failing, "fail")):
        assert body["document"]["verdict"] == expected
        assert rows[body["id"]]["verdict"] == expected
        assert rows[body["id"]]["record_sha256"] == body["record_sha256"]
        assert listed[body["id"]]["verdict"] == listed[body["id"]]["document"]["verdict"] == expected


def test_lookup_of_unknown_id_is_404(client, seed):
    r = client.get(f"/api/v1/submissions/{uuid.uuid4()}", headers={"Authorization": f"Bearer {seed.manager}"})
    assert r.status_code == 404 and r.json()["error"]
