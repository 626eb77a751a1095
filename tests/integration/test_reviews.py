"""Reviews are settled by a person and counted by their disposition until then (issue 14 §1).

The standard here (``review-widget``) has one boolean item and an optional photo slot with a dimension
check. Vision is off in these tests, so a record with the photo cannot be measured: its check is
inconclusive and its verdict ``review``; without the photo it passes or fails on the item alone. Every
expected count below is counted by hand from the records each test sends.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from qc.records import canonical_json, sha256_hex
from qc.standards import parse_standard
from service.storage import repository as repo
from service.storage.orm import ReviewDecision
from tests.clock import TEST_NOW
from tests.integration.support import auth, jpeg, record, upload

PRODUCT = "review-widget"
STANDARD = """\
product: review-widget
name: Review widget
version: 1
status: released
items:
  - {id: clean, prompt: Free of swarf, type: boolean, pass_if: true, severity: major}
photos:
  - id: top
    prompt: Top view on the card
    required: false
    checks:
      - {id: length, kind: dimension, feature: length, nominal: 80.0, tolerance: [-0.3, 0.3], severity: major}
"""


@pytest.fixture
def product(seed: Any, ctx: Any) -> Any:
    with ctx.db.write_session() as session:
        repo.publish_standard(session, standard=parse_standard(STANDARD, source="test"), by="test", now=TEST_NOW)
    return seed


def send(client: Any, token: str, kind: str, **extra: Any) -> str:
    """One record of ``kind``: pass (clean, no photo), fail (not clean) or review (clean, photo unmeasured)."""
    rec = record(product=PRODUCT, answers={"clean": kind != "fail"}, **extra)
    res = upload(client, token, rec, {"top": jpeg(64, 48)} if kind == "review" else {})
    assert res.status_code == 201, res.text
    assert res.json()["verdict"] == kind
    return str(res.json()["id"])


def decide(client: Any, token: str, submission_id: str, decision: str, reason: str = "measured by caliper") -> Any:
    return client.post(f"/api/v1/reviews/{submission_id}/decision", headers=auth(token),
                       json={"decision": decision, "reason": reason})


def test_a_review_is_listed_with_its_photos_and_inconclusive_checks(client: Any, product: Any) -> None:
    sid = send(client, product.tech_a, "review")
    send(client, product.tech_a, "pass")
    res = client.get("/api/v1/reviews", headers=auth(product.manager))
    assert res.status_code == 200, res.text
    (item,) = res.json()["items"]
    assert item["submission_id"] == sid and item["status"] == "pending" and item["disposition"] == "review"
    assert item["node"] == "node-a" and item["product"] == PRODUCT and item["decision"] is None
    (check,) = item["inconclusive"]
    assert check["check_id"] == "length" and check["slot"] == "top" and "vision disabled" in check["message"]
    (photo,) = item["photos"]
    assert photo["slot"] == "top" and photo["url"].startswith("/api/v1/photos/")
    assert client.get(photo["url"], headers=auth(product.manager)).status_code == 200


def test_a_decision_settles_the_review_and_the_record_keeps_its_verdict(client: Any, product: Any,
                                                                        ctx: Any) -> None:
    sid = send(client, product.tech_a, "review")
    before = client.get(f"/api/v1/submissions/{sid}", headers=auth(product.manager)).json()
    res = decide(client, product.manager, sid, "fail", "length 80.6 mm by caliper")
    assert res.status_code == 201, res.text
    body = res.json()
    assert body["status"] == "decided" and body["disposition"] == "fail"
    decision = body["decision"]
    assert decision["decision"] == "fail" and decision["reason"] == "length 80.6 mm by caliper"
    assert decision["decided_by"] == "Quality manager" and decision["role"] == "manager"
    document = decision["document"]
    # the hash covers the document exactly, and the document names the original record's hash and the clock's time
    assert decision["sha256"] == sha256_hex(canonical_json(document))
    assert document["submission"] == {"id": sid, "record_sha256": before["record_sha256"], "verdict": "review"}
    assert document["decided_at"] == TEST_NOW.isoformat().replace("+00:00", "Z")
    assert document["supersedes"] is None and document["revision"] == 1
    after = client.get(f"/api/v1/submissions/{sid}", headers=auth(product.manager)).json()
    assert after["verdict"] == "review" and after["record_sha256"] == before["record_sha256"]
    assert after["document"] == before["document"]
    events = [e for e in repo_events(ctx, sid) if e.action == "review.decide"]
    assert len(events) == 1 and events[0].detail["sha256"] == decision["sha256"]
    assert events[0].actor.endswith("Quality manager")
    pending = client.get("/api/v1/reviews", headers=auth(product.manager)).json()["items"]
    decided = client.get("/api/v1/reviews?status=decided", headers=auth(product.manager)).json()["items"]
    assert pending == [] and [i["submission_id"] for i in decided] == [sid]


def repo_events(ctx: Any, sid: str) -> list[Any]:
    with ctx.db.session() as session:
        return list(repo.audit_events(session, subject_type="submission", subject_id=sid))


def test_a_later_decision_supersedes_the_earlier_and_both_are_kept(client: Any, product: Any) -> None:
    sid = send(client, product.tech_a, "review")
    first = decide(client, product.manager, sid, "fail").json()["decision"]
    res = decide(client, product.admin, sid, "pass", "re-measured: 80.1 mm; the first caliper was off")
    assert res.status_code == 201, res.text
    body = res.json()
    assert body["disposition"] == "pass"
    assert [d["decision"] for d in body["decisions"]] == ["fail", "pass"]
    assert body["decision"]["revision"] == 2 and body["decision"]["supersedes"] == first["sha256"]


def test_only_a_review_can_be_decided(client: Any, product: Any) -> None:
    for kind in ("pass", "fail"):
        sid = send(client, product.tech_a, kind)
        res = decide(client, product.manager, sid, "pass")
        assert res.status_code == 409, res.text
        assert f"judged {kind}" in res.json()["error"]
    assert decide(client, product.manager, "00000000-0000-4000-8000-000000000000", "pass").status_code == 404


def test_a_decision_needs_pass_or_fail_and_a_reason(client: Any, product: Any) -> None:
    sid = send(client, product.tech_a, "review")
    for body in ({"decision": "pass"}, {"decision": "pass", "reason": ""}, {"decision": "pass", "reason": "   "},
                 {"decision": "maybe", "reason": "x"}, {"decision": "pass", "reason": "a\x00b"},
                 {"decision": "pass", "reason": "x", "extra": 1}):
        res = client.post(f"/api/v1/reviews/{sid}/decision", headers=auth(product.manager), json=body)
        assert res.status_code == 422, (body, res.text)
    assert client.get("/api/v1/reviews", headers=auth(product.manager)).json()["items"][0]["status"] == "pending"


def test_technicians_list_their_node_only_and_may_not_decide(client: Any, product: Any) -> None:
    mine = send(client, product.tech_a, "review")
    theirs = send(client, product.tech_b, "review", lot="L-B")
    listed = client.get("/api/v1/reviews", headers=auth(product.tech_a)).json()["items"]
    assert [i["submission_id"] for i in listed] == [mine]
    everyone = client.get("/api/v1/reviews", headers=auth(product.auditor)).json()["items"]
    assert {i["submission_id"] for i in everyone} == {mine, theirs}
    only_b = client.get("/api/v1/reviews?node=node-b", headers=auth(product.manager)).json()["items"]
    assert [i["submission_id"] for i in only_b] == [theirs]
    for token in (product.tech_a, product.auditor):
        res = decide(client, token, mine, "pass")
        assert res.status_code == 403, res.text
        assert "may not decide reviews" in res.json()["error"]


def test_the_queue_pages_newest_first(client: Any, product: Any) -> None:
    sids = [send(client, product.tech_a, "review") for _ in range(3)]
    first = client.get("/api/v1/reviews?limit=2", headers=auth(product.manager)).json()
    assert [i["submission_id"] for i in first["items"]] == sids[::-1][:2] and first["next_cursor"]
    rest = client.get(f"/api/v1/reviews?limit=2&cursor={first['next_cursor']}", headers=auth(product.manager)).json()
    assert [i["submission_id"] for i in rest["items"]] == sids[:1] and rest["next_cursor"] is None


def test_decisions_are_append_only_in_the_database(client: Any, product: Any, ctx: Any) -> None:
    sid = send(client, product.tech_a, "review")
    decide(client, product.manager, sid, "pass")
    for sql in ("UPDATE review_decisions SET decision = 'fail'", "DELETE FROM review_decisions"):
        with ctx.db.session() as session, pytest.raises(DBAPIError, match="append-only"):
            session.execute(text(sql))
    with ctx.db.session() as session:
        (row,) = session.query(ReviewDecision).all()
        assert row.decision == "pass" and json.loads(canonical_json(row.document)) == row.document


# --- every statistic counts units by disposition ------------------------------------------------------------------

def network_of(client: Any, product: Any) -> dict[str, Any]:
    """node-a: 3 pass, 1 fail, 4 review (one decided fail, one decided pass, two pending), lot L-001;
    node-b: 2 pass, 2 review (pending), lot L-B. Returns the ids of node-a's reviews."""
    a, b = product.tech_a, product.tech_b
    for _ in range(3):
        send(client, a, "pass")
    send(client, a, "fail")
    reviews_a = [send(client, a, "review") for _ in range(4)]
    for _ in range(2):
        send(client, b, "pass", lot="L-B")
    for _ in range(2):
        send(client, b, "review", lot="L-B")
    return {"reviews_a": reviews_a}


def test_rates_count_decided_units_and_bound_the_pending_ones(client: Any, product: Any) -> None:
    made = network_of(client, product)
    url = f"/api/v1/analytics/rates?product={PRODUCT}"
    before = client.get(url, headers=auth(product.manager)).json()
    # nothing decided yet: node-a 1 fail of 4 decided, 4 pending of 8
    assert {n["node"]: (n["n"], n["defects"], n["pending"]) for n in before["nodes"]} == \
        {"node-a": (4, 1, 4), "node-b": (2, 0, 2)}
    assert decide(client, product.manager, made["reviews_a"][0], "fail").status_code == 201
    assert decide(client, product.manager, made["reviews_a"][1], "pass").status_code == 201
    body = client.get(url, headers=auth(product.manager)).json()  # the decisions reach past the cache
    nodes = {n["node"]: n for n in body["nodes"]}
    a, b = nodes["node-a"], nodes["node-b"]
    assert (a["inspected"], a["n"], a["defects"], a["pending"]) == (8, 6, 2, 2)
    assert a["rate"] == pytest.approx(2 / 6) and a["bounds"] == pytest.approx([2 / 8, 4 / 8])
    assert (b["inspected"], b["n"], b["defects"], b["pending"]) == (4, 2, 0, 2)
    assert b["rate"] == 0 and b["bounds"] == pytest.approx([0, 2 / 4])
    net = body["network"]
    assert (net["inspected"], net["n"], net["defects"], net["pending"]) == (12, 8, 2, 4)
    assert net["rate"] == pytest.approx(2 / 8) and net["bounds"] == pytest.approx([2 / 12, 6 / 12])
    readings = " ".join(body["readings"])
    assert "2 reviews pending of 8 inspected" in readings and "2 reviews pending of 4 inspected" in readings


def test_p_charts_pareto_and_lots_say_how_many_reviews_are_pending(client: Any, product: Any, ctx: Any) -> None:
    made = network_of(client, product)
    decide(client, product.manager, made["reviews_a"][0], "fail")
    decide(client, product.manager, made["reviews_a"][1], "fail")
    decide(client, product.manager, made["reviews_a"][1], "pass")  # supersedes its fail: counts as a pass
    h = auth(product.manager)
    pc = client.get(f"/api/v1/analytics/p-chart?product={PRODUCT}", headers=h).json()
    assert pc["pbar"] == pytest.approx(2 / 8) and pc["pending"] == 4
    charts = {n["node"]: n for n in pc["nodes"]}  # every record is captured in one week
    assert (charts["node-a"]["sizes"], charts["node-a"]["defects"], charts["node-a"]["pending"]) == ([6], [2], [2])
    assert (charts["node-b"]["sizes"], charts["node-b"]["defects"], charts["node-b"]["pending"]) == ([2], [0], [2])
    assert any("2 reviews pending" in line for line in pc["readings"])
    par = client.get(f"/api/v1/analytics/pareto?product={PRODUCT}", headers=h).json()
    # the automatic fail's failed item, and the inconclusive length of the review decided fail
    assert {c["check"]: c["count"] for c in par["checks"]} == {"clean": 1, "length": 1}
    assert par["pending"] == 4 and "4 reviews pending" in par["reading"]
    with ctx.db.session() as session:
        lots = {code: i for i, code in session.execute(text("SELECT id, code FROM lots"))}
    lot_a = client.get(f"/api/v1/analytics/lots/{lots['L-001']}", headers=h).json()
    assert (lot_a["n"], lot_a["defects"], lot_a["pending"]) == (8, 2, 2)
    assert lot_a["reading"] == "Lot L-001: 2 of 8 units failed (25.0 %); 2 reviews waiting for a decision."
    lot_b = client.get(f"/api/v1/analytics/lots/{lots['L-B']}", headers=h).json()
    assert lot_b["reading"] == "Lot L-B: 2 of 4 units passed; 2 reviews waiting for a decision."
    page = client.get(f"/dashboard/lots/{lots['L-B']}", headers=h)
    assert page.status_code == 200, page.text
    assert "2 of 4 units passed; 2 reviews waiting" in page.text and "all 4 units passed" not in page.text.lower()
    assert "2 waiting for review" in page.text and page.text.count("review pending") == 2
    from service.core import analytics as q  # noqa: PLC0415
    from service.reports.quality_report import build_report  # noqa: PLC0415

    report = build_report(ctx, q.Filters(product=PRODUCT), now=TEST_NOW)
    assert "12 inspections, 2 failed (25.0 % of decided units), 4 reviews pending" in report
    assert "(defect rate 16.7 % if all pass, 50.0 % if all fail)" in report


# --- the dashboard's review page ----------------------------------------------------------------------------------

ORIGIN = {"Origin": "http://testserver"}


def signed_in(client: Any, token: str) -> str:
    """Sign in by the form (a cookie session); the CSRF token the review page carries."""
    res = client.post("/dashboard/login", data={"token": token, "next": "/dashboard/reviews"}, headers=ORIGIN,
                      follow_redirects=False)
    assert res.status_code == 303, res.text
    page = client.get("/dashboard/reviews")
    assert page.status_code == 200, page.text
    found = re.search(r'name="csrf" value="([0-9a-f]{64})"', page.text)
    assert found
    return found.group(1)


def test_the_review_page_shows_the_photo_and_settles_with_the_session_token(client: Any, product: Any) -> None:
    sid = send(client, product.tech_a, "review")
    csrf = signed_in(client, product.manager)
    page = client.get("/dashboard/reviews").text
    assert f'data-submission-id="{sid}"' in page and "vision disabled" in page
    assert 'data-pending-reviews="1"' in page  # the header's count
    photo = client.get(f"/dashboard/reviews/{sid}/photos/top")
    assert photo.status_code == 200 and photo.headers["content-type"] == "image/jpeg"
    assert client.get(f"/dashboard/reviews/{sid}/photos/top?overlay=true").status_code == 404  # vision off: none
    form = {"decision": "fail", "reason": "burr on the edge", "back": "/dashboard/reviews"}
    forged = client.post(f"/dashboard/reviews/{sid}/decision", data=form | {"csrf": "0" * 64}, headers=ORIGIN,
                         follow_redirects=False)
    assert forged.status_code == 403 and "CSRF" in forged.text
    elsewhere = client.post(f"/dashboard/reviews/{sid}/decision", data=form | {"csrf": csrf},
                            headers={"Origin": "http://evil.example"}, follow_redirects=False)
    assert elsewhere.status_code == 403
    assert client.get("/api/v1/reviews", headers=auth(product.manager)).json()["items"][0]["status"] == "pending"
    done = client.post(f"/dashboard/reviews/{sid}/decision", data=form | {"csrf": csrf}, headers=ORIGIN,
                       follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == "/dashboard/reviews"
    assert "No reviews pending." in client.get("/dashboard/reviews").text
    decided = client.get("/dashboard/reviews?status=decided").text
    assert "burr on the edge" in decided and "Decide again" in decided


def test_an_auditor_sees_the_queue_without_a_form(client: Any, product: Any) -> None:
    send(client, product.tech_a, "review")
    signed_in(client, product.auditor)
    page = client.get("/dashboard/reviews").text
    assert "data-submission-id" in page and "/decision" not in page


def test_a_rate_alert_says_how_many_reviews_are_pending(ctx: Any, client: Any, product: Any) -> None:
    from service.core import alerts  # noqa: PLC0415
    from service.core import analytics as q  # noqa: PLC0415

    for _ in range(3):
        send(client, product.tech_a, "review")
    with ctx.db.session() as session:
        r = q.resolve(session, q.Filters(product=PRODUCT, node="node-a"), now=TEST_NOW)
        signals = [{"check": None, "message": "rate high.", "detail": {}},
                   {"check": "length", "message": "mean shift.", "detail": {}}]
        alerts._note_pending_reviews(session, r, signals)  # noqa: SLF001
    assert signals[0]["message"] == "rate high. 3 reviews in these weeks still pending."
    assert signals[0]["detail"] == {"pending_reviews": 3}
    assert signals[1] == {"check": "length", "message": "mean shift.", "detail": {}}


def test_a_decision_queues_the_alert_evaluation_of_its_node(client: Any, product: Any, ctx: Any) -> None:
    from service.core.outbox import ALERTS_EVALUATE  # noqa: PLC0415
    from service.storage.orm import Outbox  # noqa: PLC0415

    sid = send(client, product.tech_a, "review")

    def queued() -> int:
        with ctx.db.session() as session:
            return session.query(Outbox).filter(Outbox.kind == ALERTS_EVALUATE).count()

    before = queued()
    assert decide(client, product.manager, sid, "fail").status_code == 201
    assert queued() == before + 1


def test_a_reason_over_4000_characters_is_refused_at_every_door(client: Any, product: Any) -> None:
    sid = send(client, product.tech_a, "review")
    assert decide(client, product.manager, sid, "fail", "x" * 4001).status_code == 422
    page = client.post(f"/dashboard/reviews/{sid}/decision", headers=auth(product.manager),
                       data={"decision": "fail", "reason": "x" * 4001})
    assert page.status_code == 422 and "at most 4000 characters" in page.text
    page = client.post(f"/dashboard/reviews/{sid}/decision", headers=auth(product.manager),
                       data={"decision": "maybe", "reason": "looked"})
    assert page.status_code == 422 and "pass or fail" in page.text


@pytest.mark.parametrize(("n", "defects", "pending", "expected"), [
    (4, 0, 0, "Lot L: all 4 units passed."),
    (4, 0, 4, "Lot L: none of its 4 units is decided yet; 4 reviews waiting for a decision."),
    (4, 0, 1, "Lot L: 3 of 4 units passed; 1 review waiting for a decision."),
    (4, 1, 0, "Lot L: 1 of 4 units failed (25.0 %)."),
    (0, 0, 0, "Lot L has no inspections yet."),
])
def test_a_lot_never_reads_all_passed_while_a_review_is_pending(n: int, defects: int, pending: int,
                                                                expected: str) -> None:
    from service.core.insights import _lot_reading  # noqa: PLC0415

    assert _lot_reading("L", n, defects, pending) == expected


def test_the_product_and_node_pages_say_how_many_reviews_are_pending(client: Any, product: Any) -> None:
    send(client, product.tech_a, "pass")
    send(client, product.tech_a, "review")
    h = auth(product.manager)
    page = client.get(f"/dashboard/products/{PRODUCT}", headers=h)
    assert page.status_code == 200, page.text
    assert "2 inspections, 0.0 % of decided units failed" in page.text and "1 pending review" in page.text
    assert "Decided units only: 1 review pending." in page.text
    node = client.get("/dashboard/nodes/node-a", headers=h)
    assert node.status_code == 200, node.text
    assert "1 pending review(s) not on the chart yet." in node.text
    overview = client.get(f"/dashboard?product={PRODUCT}", headers=h).text
    assert 'data-node="node-a" data-status="within" data-pending="1"' in overview
    assert "1 review pending: the defect rate counts decided units" in overview
