"""Who may see and do what: node scoping for technicians, roles for the rest."""

from __future__ import annotations

import uuid

import pytest

from tests.clock import TEST_NOW
from tests.integration.support import TEST_STANDARD, auth, record, upload


@pytest.fixture
def b_submission(client, seed) -> dict:
    r = upload(client, seed.tech_b, record())
    assert r.status_code == 201, r.text
    return r.json()


def test_technician_gets_404_for_another_nodes_submission_like_a_missing_one(client, seed, b_submission):
    missing_id = str(uuid.uuid4())
    other = client.get(f"/api/v1/submissions/{b_submission['id']}", headers=auth(seed.tech_a))
    missing = client.get(f"/api/v1/submissions/{missing_id}", headers=auth(seed.tech_a))
    assert other.status_code == missing.status_code == 404
    # Byte for byte the same answer, but for the id the caller asked about.
    assert other.text.replace(b_submission["id"], "ID") == missing.text.replace(missing_id, "ID")
    assert "node-b" not in other.text


def test_technician_gets_404_for_another_nodes_photo_and_overlay(client, seed, b_submission):
    photo = b_submission["photos"][0]
    assert client.get(photo["url"], headers=auth(seed.tech_a)).status_code == 404
    slot_url = f"/api/v1/submissions/{b_submission['id']}/photos/top"
    assert client.get(slot_url, headers=auth(seed.tech_a)).status_code == 404
    assert client.get(slot_url + "/overlay", headers=auth(seed.tech_a)).status_code == 404
    assert client.get(photo["url"], headers=auth(seed.tech_b)).status_code == 200
    assert client.get(slot_url, headers=auth(seed.tech_b)).status_code == 200


def test_same_photo_bytes_in_two_nodes_stay_visible_to_each(client, seed, b_submission):
    from tests.integration.support import jpeg

    a = upload(client, seed.tech_a, record(), {"top": jpeg()}).json()  # same bytes as node B's default photo
    assert a["photos"][0]["sha256"] == b_submission["photos"][0]["sha256"]
    assert client.get(a["photos"][0]["url"], headers=auth(seed.tech_a)).status_code == 200


def test_readers_see_every_node(client, seed, b_submission):
    for token in (seed.manager, seed.auditor, seed.admin):
        r = client.get(f"/api/v1/submissions/{b_submission['id']}", headers=auth(token))
        assert r.status_code == 200 and r.json() == b_submission
        assert client.get(b_submission["photos"][0]["url"], headers=auth(token)).status_code == 200


@pytest.mark.parametrize("who", ["manager", "auditor", "admin"])
def test_only_technicians_bound_to_a_node_submit(client, seed, who):
    r = upload(client, getattr(seed, who), record())
    assert r.status_code == 403 and "technician" in r.json()["error"]


@pytest.mark.parametrize("who", ["tech_a", "auditor", "admin"])
def test_only_managers_publish_standards(client, seed, who):
    doc = TEST_STANDARD.replace("version: 1", "version: 2")
    r = client.post("/api/v1/standards", content=doc, headers=auth(getattr(seed, who)))
    assert r.status_code == 403


@pytest.mark.parametrize("header", [None, "Bearer nope", "Basic abc", "Bearer "])
def test_missing_or_unknown_token_is_401(client, seed, header):
    headers = {"Authorization": header} if header else {}
    r = client.get("/api/v1/submissions", headers=headers)
    assert r.status_code == 401 and r.json()["error"]
    assert r.headers["www-authenticate"] == "Bearer"


def test_revoked_token_is_refused(client, seed, ctx):

    from service.core.auth import hash_token
    from service.storage.orm import AccessToken

    with ctx.db.write_session() as session:
        row = session.query(AccessToken).filter_by(token_sha256=hash_token(seed.tech_a)).one()
        row.revoked_at = TEST_NOW
    assert client.get("/api/v1/me", headers=auth(seed.tech_a)).status_code == 401


def test_tokens_are_stored_hashed(ctx, seed):
    import hashlib

    from sqlalchemy import select

    from service.storage.orm import AccessToken

    with ctx.db.session() as session:
        stored = set(session.scalars(select(AccessToken.token_sha256)))
    assert seed.tech_a not in stored
    assert hashlib.sha256(seed.tech_a.encode()).hexdigest() in stored


def test_me_names_the_token(client, seed):
    assert client.get("/api/v1/me", headers=auth(seed.tech_a)).json() == {
        "role": "technician", "name": "Amina", "node": "node-a"}
    assert client.get("/api/v1/me", headers=auth(seed.manager)).json()["node"] is None


def test_health_needs_no_token(client, settings):
    body = client.get("/api/v1/health").json()
    assert body["status"] == "ok"
    assert body["database"] == ("sqlite" if settings.resolved_database_url.startswith("sqlite") else "postgresql")
    assert body["version"]


def test_openapi_lists_the_api(client):
    paths = client.get("/openapi.json").json()["paths"]
    for path in ("/api/v1/submissions", "/api/v1/submissions/{submission_id}", "/api/v1/standards",
                 "/api/v1/standards/{product}", "/api/v1/photos/{sha256}", "/api/v1/health", "/api/v1/me",
                 "/api/v1/submissions/{submission_id}/photos/{slot}/overlay", "/api/v1/submissions.csv"):
        assert path in paths


_READERS = "(allowed: manager, auditor, admin)"
_ANALYTICS = f"a technician token may not read the network's analytics {_READERS}"


@pytest.mark.parametrize(("who", "method", "path", "message"), [
    ("tech_a", "GET", "/api/v1/analytics/overview", _ANALYTICS),
    ("tech_a", "GET", "/api/v1/analytics/lots/1", _ANALYTICS),
    ("tech_a", "GET", "/api/v1/alerts", _ANALYTICS),
    ("auditor", "POST", "/api/v1/alerts/1/acknowledge",
     "a auditor token may not acknowledge alerts (allowed: manager, admin)"),
    ("tech_a", "GET", "/api/v1/submissions.csv", f"a technician token may not export submissions {_READERS}"),
    ("manager", "POST", "/api/v1/submissions",
     "a manager token may not submit inspection records (allowed: technician)"),
    ("admin", "POST", "/api/v1/standards", "a admin token may not publish standards (allowed: manager)"),
])
def test_a_refusal_names_the_action_and_who_may(client, seed, who, method, path, message):
    # refused before the body is read: an empty body changes nothing
    r = client.request(method, path, headers=auth(getattr(seed, who)))
    assert (r.status_code, r.json()["error"]) == (403, message)


def test_routes_check_roles_by_dependency_not_by_hand():
    from pathlib import Path

    routes = Path(__file__).resolve().parents[2] / "service"
    hand_checks = [str(p.relative_to(routes)) for folder in ("http/routes", "web/dashboard")
                   for p in sorted((routes / folder).glob("*.py")) if "require_role(" in p.read_text()]
    assert hand_checks == []
