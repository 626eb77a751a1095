"""Publishing standards: new, identical, conflicting and invalid versions; reading them back."""

from __future__ import annotations

import json

from tests.integration.support import TEST_PRODUCT, TEST_STANDARD, auth

V2 = TEST_STANDARD.replace("version: 1", "version: 2\nsupersedes: 1")


def test_publish_new_version_then_identical_then_conflict(client, seed):
    first = client.post("/api/v1/standards", content=V2, headers=auth(seed.manager) | {"Content-Type":
                                                                                         "application/yaml"})
    assert first.status_code == 201, first.text
    assert first.json()["version"] == 2 and first.json()["released_by"].endswith("Quality manager")
    same = client.post("/api/v1/standards", content=V2, headers=auth(seed.manager))
    assert same.status_code == 200 and same.json() == first.json()
    changed = client.post("/api/v1/standards", content=V2.replace("max: 10.5", "max: 10.4"),
                          headers=auth(seed.manager))
    assert changed.status_code == 409
    assert "version 3" in changed.json()["error"]
    current = client.get(f"/api/v1/standards/{TEST_PRODUCT}", headers=auth(seed.tech_a)).json()
    assert current["version"] == 2 and current["sha256"] == first.json()["sha256"]
    assert current["document"]["items"][0]["max"] == 10.5  # the refused change did not leak in


def test_json_body_is_accepted_and_hash_matches_yaml(client, seed):
    yaml_doc = client.get(f"/api/v1/standards/{TEST_PRODUCT}/versions/1", headers=auth(seed.manager)).json()
    doc = dict(yaml_doc["document"], version=2)
    r = client.post("/api/v1/standards", content=json.dumps(doc), headers=auth(seed.manager) |
                    {"Content-Type": "application/json"})
    assert r.status_code == 201
    assert r.json()["document"]["items"] == yaml_doc["document"]["items"]


def test_identical_republish_of_version_one_is_200(client, seed):
    r = client.post("/api/v1/standards", content=TEST_STANDARD, headers=auth(seed.manager))
    assert r.status_code == 200


def test_invalid_standard_is_422_naming_the_field(client, seed, ctx):
    bad = V2.replace("min: 9.5, max: 10.5", "min: 10.5, max: 9.5").replace("type: boolean", "type: yesno")
    r = client.post("/api/v1/standards", content=bad, headers=auth(seed.manager))
    assert r.status_code == 422
    fields = [p["field"] for p in r.json()["problems"]]
    assert any(f.startswith("items[1") for f in fields), fields
    assert client.get(f"/api/v1/standards/{TEST_PRODUCT}/versions/2", headers=auth(seed.manager)).status_code == 404


def test_not_yaml_is_422(client, seed):
    r = client.post("/api/v1/standards", content=b"product: [unclosed", headers=auth(seed.manager))
    assert r.status_code == 422
    r = client.post("/api/v1/standards", content=b"\xff\xfe\x00", headers=auth(seed.manager))
    assert r.status_code == 422


def test_list_and_versions(client, seed):
    client.post("/api/v1/standards", content=V2, headers=auth(seed.manager))
    listed = client.get("/api/v1/standards", headers=auth(seed.auditor)).json()
    assert [(s["product"], s["version"]) for s in listed] == [(TEST_PRODUCT, 1), (TEST_PRODUCT, 2)]
    assert client.get("/api/v1/standards/nope", headers=auth(seed.auditor)).status_code == 404
    assert client.get(f"/api/v1/standards/{TEST_PRODUCT}/versions/7", headers=auth(seed.auditor)).status_code == 404


def test_draft_is_stored_but_not_current(client, seed):
    draft = V2.replace("status: released", "status: draft")
    assert client.post("/api/v1/standards", content=draft, headers=auth(seed.manager)).status_code == 201
    assert client.get(f"/api/v1/standards/{TEST_PRODUCT}", headers=auth(seed.manager)).json()["version"] == 1


def test_include_resolves_against_shipped_library(client, seed):
    doc = V2.replace("items:\n", "include: [traceability]\nitems:\n")
    r = client.post("/api/v1/standards", content=doc, headers=auth(seed.manager))
    assert r.status_code == 201, r.text
    ids = [i["id"] for i in r.json()["document"]["items"]]
    assert ids[-4:] == ["diameter", "clean", "colour", "note"] and len(ids) > 4


def test_source_is_the_document_the_hash_identifies_and_document_has_the_defaults(client, seed):
    import hashlib

    import rfc8785
    import yaml

    body = client.get(f"/api/v1/standards/{TEST_PRODUCT}", headers=auth(seed.tech_a)).json()
    assert body["source"] == yaml.safe_load(TEST_STANDARD)  # exactly what was published, nothing added
    assert hashlib.sha256(rfc8785.dumps(body["source"])).hexdigest() == body["sha256"]
    assert body["document"]["capture"] == {"long_side": 3000, "jpeg_quality": 0.9, "location": False}
    assert body["document"]["items"][0]["required"] is True and "required" not in body["source"]["items"][0]


def test_same_rules_spelled_differently_are_already_published(client, seed):
    spelled = TEST_STANDARD.replace("photos:\n", "description: ''\nphotos:\n")  # the default, written out
    r = client.post("/api/v1/standards", content=spelled, headers=auth(seed.manager))
    assert r.status_code == 200, r.text  # the stored version and its identity stay as they were
    original = client.get(f"/api/v1/standards/{TEST_PRODUCT}/versions/1", headers=auth(seed.manager)).json()
    assert r.json()["sha256"] == original["sha256"] and "description" not in original["source"]
