"""The standard that judges a record is chosen by rule, never by the client (issue 13 §1).

The seed publishes test-widget v1 (diameter 9.5–10.5 mm) three days before TEST_NOW. Each test
publishes v2 (diameter 9.9–10.1 mm: a part of 10.3 mm passes v1 and fails v2) at a known instant, then
sends records naming versions at chosen capture and arrival times, moving the app's frozen clock.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from service.storage import repository as repo
from tests.clock import TEST_NOW
from tests.integration.support import (
    TEST_STANDARD,
    auth,
    count_rows,
    received_at,
    record,
    stored_blobs,
    upload,
)

V2_AT = TEST_NOW - dt.timedelta(hours=6)
V2 = TEST_STANDARD.replace("version: 1", "version: 2\nsupersedes: 1").replace("min: 9.5, max: 10.5",
                                                                              "min: 9.9, max: 10.1")
YAML = {"Content-Type": "application/yaml"}


def iso(t: dt.datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


def publish(client: Any, token: str, text: str, at: dt.datetime) -> None:
    with received_at(client, at):
        res = client.post("/api/v1/standards", content=text, headers=auth(token) | YAML)
    assert res.status_code == 201, res.text


def send(client: Any, token: str, *, captured: dt.datetime | None, version: int | None,
         arrives: dt.datetime = TEST_NOW, diameter: float = 10.3) -> Any:
    rec = record(answers={"diameter": diameter, "clean": True, "colour": "red"})
    rec["captured_at"] = iso(captured) if captured is not None else None
    if version is not None:
        rec["standard_version"] = version
    with received_at(client, arrives):
        return upload(client, token, rec)


@pytest.fixture
def v2(client: Any, seed: Any) -> Any:
    publish(client, seed.manager, V2, V2_AT)
    return seed


def refused(res: Any, *words: str) -> str:
    assert res.status_code == 422, res.text
    body = res.json()
    reason = next(p["reason"] for p in body["problems"] if p["field"] in ("record.standard_version",
                                                                          "record.captured_at"))
    for word in words:
        assert word in body["error"] and word in reason, (word, body)
    return reason


def test_an_unnamed_version_is_judged_by_the_current_one(client: Any, v2: Any) -> None:
    res = send(client, v2.tech_a, captured=TEST_NOW - dt.timedelta(hours=1), version=None)
    assert res.status_code == 201, res.text
    assert (res.json()["standard"]["version"], res.json()["verdict"]) == (2, "fail")  # 10.3 > 10.1


def test_a_superseded_version_cannot_pass_a_part_captured_after_it_was_replaced(client: Any, v2: Any) -> None:
    res = send(client, v2.tech_a, captured=V2_AT + dt.timedelta(minutes=1), version=1)
    refused(res, "version 2", "replaced")


def test_an_offline_phone_within_the_grace_period_is_judged_by_the_version_it_had(client: Any, v2: Any) -> None:
    # captured an hour before v2 came into force, arriving 6 h after it: within the default 24 h grace
    res = send(client, v2.tech_a, captured=V2_AT - dt.timedelta(hours=1), version=1)
    assert res.status_code == 201, res.text
    body = res.json()
    assert (body["standard"]["version"], body["verdict"]) == (1, "pass")  # 9.5 <= 10.3 <= 10.5
    assert body["document"]["standard"]["version"] == 1


def test_the_grace_period_ends_24_hours_after_the_replacement(client: Any, v2: Any) -> None:
    captured = V2_AT - dt.timedelta(hours=1)
    inside = send(client, v2.tech_a, captured=captured, version=1, arrives=V2_AT + dt.timedelta(hours=23, minutes=59))
    assert inside.status_code == 201, inside.text
    late = send(client, v2.tech_a, captured=captured, version=1, arrives=V2_AT + dt.timedelta(hours=24))
    refused(late, "grace period", "24 h", "version 2")


def test_the_replacing_version_sets_the_grace_period(client: Any, seed: Any) -> None:
    urgent = V2.replace("photos:", "offline: {grace_hours: 0}\nphotos:")
    publish(client, seed.manager, urgent, V2_AT)
    res = send(client, seed.tech_a, captured=V2_AT - dt.timedelta(hours=1), version=1)
    refused(res, "grace period", "version 2")


def test_a_version_is_not_used_for_a_record_captured_before_it_came_into_force(client: Any, v2: Any) -> None:
    res = send(client, v2.tech_a, captured=V2_AT - dt.timedelta(days=4), version=1)  # v1: TEST_NOW - 3 days
    refused(res, "came into force")


def test_a_draft_is_refused_even_when_newest(client: Any, v2: Any) -> None:
    draft = V2.replace("version: 2\nsupersedes: 1", "version: 3\nsupersedes: 2").replace(
        "status: released", "status: draft").replace("min: 9.9, max: 10.1", "min: 0, max: 100")
    publish(client, v2.manager, draft, TEST_NOW - dt.timedelta(hours=1))
    res = send(client, v2.tech_a, captured=TEST_NOW - dt.timedelta(minutes=5), version=3)
    refused(res, "draft", "current version is 2")


def test_a_retired_version_is_refused(client: Any, v2: Any, ctx: Any) -> None:
    with ctx.db.write_session() as session:
        repo.retire_standard(session, product="test-widget", version=1, reason="limits too loose", by="qm",
                             now=TEST_NOW - dt.timedelta(hours=2))
    res = send(client, v2.tech_a, captured=V2_AT - dt.timedelta(hours=1), version=1)
    refused(res, "retired", "current version is 2")


def test_an_unknown_version_names_the_current_one(client: Any, v2: Any) -> None:
    refused(send(client, v2.tech_a, captured=None, version=7), "no such version", "current version is 2")


@pytest.mark.parametrize(("offset", "accepted"), [
    (dt.timedelta(minutes=9), True),  # within the 10 min clock skew the service tolerates
    (dt.timedelta(minutes=11), False),
    (-dt.timedelta(days=13, hours=23), True),  # within the default 14-day offline allowance
    (-dt.timedelta(days=14, minutes=1), False),
])
def test_captured_at_lies_in_a_plausibility_window(client: Any, seed: Any, offset: dt.timedelta,
                                                   accepted: bool) -> None:
    res = send(client, seed.tech_a, captured=TEST_NOW + offset, version=None, diameter=10.0)
    if accepted:
        assert res.status_code == 201, res.text
    else:
        refused(res, "captured_at")


def test_a_refused_record_writes_nothing(client: Any, v2: Any, ctx: Any) -> None:
    rows, blobs = count_rows(ctx), stored_blobs(ctx)
    refused(send(client, v2.tech_a, captured=V2_AT + dt.timedelta(minutes=1), version=1))
    assert (count_rows(ctx), stored_blobs(ctx)) == (rows, blobs)
