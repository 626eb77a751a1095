"""Analytics and alert endpoints on SQLite and PostgreSQL, fed through the real submission API.

Expected values are worked by hand from the uploaded records (rates, Wilson intervals from
Newcombe 1998 / Wilson 1927, funnel and p-chart limits from the binomial formula), never read
back from the code under test.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import pytest

from tests.clock import TEST_NOW
from tests.integration.support import TEST_PRODUCT, auth, jpeg, received_at, record, upload

NOW = TEST_NOW
PHOTO = {"top": jpeg(64, 48)}


def monday(weeks_ago: int) -> dt.datetime:
    today = NOW.date() - dt.timedelta(days=NOW.weekday())
    return dt.datetime.combine(today - dt.timedelta(weeks=weeks_ago), dt.time(9), tzinfo=dt.UTC)


def at(weeks_ago: int, hour: int = 0) -> str:
    return (monday(weeks_ago) + dt.timedelta(hours=hour)).isoformat().replace("+00:00", "Z")


def send(client: Any, token: str, *, weeks_ago: int, clean: bool = True, diameter: float = 10.0, hour: int = 0,
         lot: str = "L-001") -> dict[str, Any]:
    rec = record(captured_at=at(weeks_ago, hour), lot=lot,
                 answers={"diameter": diameter, "clean": clean, "colour": "red"})
    with received_at(client, monday(weeks_ago) + dt.timedelta(hours=hour, minutes=5)):
        res = upload(client, token, rec, PHOTO)
    assert res.status_code == 201, res.text
    return res.json()


@pytest.fixture
def small_network(client: Any, seed: Any) -> Any:
    """node-a: 10 units in two weeks, 2 fail (clean = false); node-b: 20 units, 1 fails (diameter 10.7 > 10.5)."""
    for k in range(10):
        send(client, seed.tech_a, weeks_ago=2 if k < 5 else 1, clean=k not in (3, 7), diameter=10.0 + 0.01 * k,
             hour=k)
    for k in range(20):
        send(client, seed.tech_b, weeks_ago=1, diameter=10.7 if k == 0 else 9.9, hour=k)
    return seed


def get(client: Any, token: str, path: str, **params: Any) -> Any:
    res = client.get(path, headers=auth(token), params=params)
    assert res.status_code == 200, res.text
    return res.json()


def test_rates_per_node_match_hand_counts_and_wilson_intervals(client: Any, small_network: Any) -> None:
    body = get(client, small_network.manager, "/api/v1/analytics/rates", product=TEST_PRODUCT)
    nodes = {n["node"]: n for n in body["nodes"]}
    assert (nodes["node-a"]["n"], nodes["node-a"]["defects"]) == (10, 2)
    assert (nodes["node-b"]["n"], nodes["node-b"]["defects"]) == (20, 1)
    assert body["network"]["rate"] == pytest.approx(3 / 30)
    # Wilson 95 % interval for 2/10: 0.0567 to 0.5098 (Newcombe 1998, table I style worked value)
    assert nodes["node-a"]["ci95"] == pytest.approx([0.0567, 0.5098], abs=5e-4)
    # 99.8 % funnel limit at n = 10 around p = 0.1: 0.1 + 3.0902 sqrt(0.09 / 10)
    assert nodes["node-a"]["funnel998"][1] == pytest.approx(0.1 + 3.0902 * math.sqrt(0.009), abs=1e-4)
    assert nodes["node-a"]["status"] == "within"


def test_p_chart_has_one_point_per_iso_week_judged_against_the_network_rate(client: Any,
                                                                          small_network: Any) -> None:
    body = get(client, small_network.auditor, "/api/v1/analytics/p-chart", product=TEST_PRODUCT)
    a = next(n for n in body["nodes"] if n["node"] == "node-a")
    assert a["weeks"] == [monday(2).date().isoformat(), monday(1).date().isoformat()]
    assert a["sizes"] == [5, 5] and a["defects"] == [1, 1]
    assert body["pbar"] == pytest.approx(0.1)
    # per-point UCL: p + 3 sqrt(p (1 - p) / n) with the network p = 0.1 and n = 5
    assert a["chart"]["ucl"][0] == pytest.approx(0.1 + 3 * math.sqrt(0.09 / 5))


def test_pareto_orders_failed_checks_by_count(client: Any, small_network: Any) -> None:
    body = get(client, small_network.manager, "/api/v1/analytics/pareto", product=TEST_PRODUCT)
    assert [(c["check"], c["count"]) for c in body["checks"]] == [("clean", 2), ("diameter", 1)]
    assert body["checks"][-1]["cumulative"] == pytest.approx(1.0)


def test_measurements_give_node_means_and_weekly_subgroups(client: Any, small_network: Any) -> None:
    body = get(client, small_network.manager, "/api/v1/analytics/measurements", product=TEST_PRODUCT,
               check="diameter")
    (m,) = body["checks"]
    assert m["check"]["lsl"] == 9.5 and m["check"]["usl"] == 10.5
    nodes = {n["node"]: n for n in m["nodes"]}
    assert nodes["node-a"]["mean"] == pytest.approx(10.045)  # 10.00 .. 10.09 in steps of 0.01
    assert nodes["node-b"]["mean"] == pytest.approx((10.7 + 19 * 9.9) / 20)
    assert m["kind"] == "xbar_s" and len(m["chart"]["values"]) == 2  # two weeks with data
    # week 1 pools node-a's 5 and node-b's 20 values
    assert m["chart"]["values"][1] == pytest.approx((10.05 + 10.06 + 10.07 + 10.08 + 10.09 + 10.7 + 19 * 9.9) / 25)


def test_filters_narrow_by_node_date_and_version(client: Any, small_network: Any) -> None:
    only_b = get(client, small_network.manager, "/api/v1/analytics/rates", product=TEST_PRODUCT, node="node-b")
    assert [n["node"] for n in only_b["nodes"]] == ["node-b"]
    later = get(client, small_network.manager, "/api/v1/analytics/rates", product=TEST_PRODUCT,
                since=monday(1).isoformat())
    assert {n["node"]: n["n"] for n in later["nodes"]} == {"node-a": 5, "node-b": 20}
    v1 = get(client, small_network.manager, "/api/v1/analytics/rates", product=TEST_PRODUCT, version=1)
    assert v1["network"]["n"] == 30


@pytest.mark.parametrize(("params", "status"), [
    ({"product": "no-such-product"}, 404),
    ({"node": "no-such-node"}, 404),
    ({"version": 2}, 422),  # a version needs a product
    ({"product": TEST_PRODUCT, "since": "2026-02-01T00:00:00Z", "until": "2026-01-01T00:00:00Z"}, 422),
])
def test_bad_filters_are_refused_with_a_reason(client: Any, seed: Any, params: dict[str, Any], status: int) -> None:
    res = client.get("/api/v1/analytics/rates", headers=auth(seed.manager), params=params)
    assert res.status_code == status
    assert res.json()["error"]


def test_technicians_and_anonymous_callers_cannot_read_analytics(client: Any, seed: Any) -> None:
    assert client.get("/api/v1/analytics/overview").status_code == 401
    assert client.get("/api/v1/analytics/overview", headers=auth(seed.tech_a)).status_code == 403
    assert client.get("/api/v1/alerts", headers=auth(seed.tech_a)).status_code == 403
    assert client.get("/api/v1/analytics/overview", headers=auth(seed.auditor)).status_code == 200


def test_a_fresh_record_changes_the_cached_answer(client: Any, small_network: Any) -> None:
    before = get(client, small_network.manager, "/api/v1/analytics/rates", product=TEST_PRODUCT)
    send(client, small_network.tech_a, weeks_ago=1, clean=False, hour=30)
    after = get(client, small_network.manager, "/api/v1/analytics/rates", product=TEST_PRODUCT)
    assert before["network"]["n"] == 30 and after["network"]["n"] == 31
    assert after["network"]["defects"] == 4


def open_alerts(client: Any, token: str) -> list[dict[str, Any]]:
    """The open alerts once the app's outbox worker has run what the submissions so far queued."""
    assert client.app.state.outbox.wait_for_drain(), "the outbox worker did not finish a pass"
    return get(client, token, "/api/v1/alerts")["items"]


def test_a_shifted_node_raises_an_alert_that_a_manager_acknowledges(client: Any, seed: Any) -> None:
    # Ten quiet weeks for both nodes, then node-b fails 6 of 8 in the current week.
    for week in range(10, 0, -1):
        for k in range(4):
            send(client, seed.tech_a, weeks_ago=week, hour=k)
        send(client, seed.tech_b, weeks_ago=week, hour=1)
    assert open_alerts(client, seed.manager) == []
    for k in range(8):
        send(client, seed.tech_b, weeks_ago=0, clean=k >= 6, hour=k)
    alerts = open_alerts(client, seed.manager)
    assert alerts, "the shift raised no alert"
    assert {a["node"] for a in alerts} == {"node-b"}
    rules = {a["rule"] for a in alerts}
    # p = 6 / 58; node-b's week: 6/8 = 0.75 > p + 3 sqrt(p (1 - p) / 8) = 0.42
    assert "p-above-limit" in rules
    alert = next(a for a in alerts if a["rule"] == "p-above-limit")
    assert alert["period_start"] == monday(0).date().isoformat()
    # one more failing unit in the same week does not open a second alert of the same kind
    send(client, seed.tech_b, weeks_ago=0, clean=False, hour=20)
    again = open_alerts(client, seed.manager)
    assert sorted(a["id"] for a in again) == sorted(a["id"] for a in alerts)

    path = f"/api/v1/alerts/{alert['id']}/acknowledge"
    assert client.post(path, headers=auth(seed.auditor), json={"comment": "seen"}).status_code == 403
    assert client.post(path, headers=auth(seed.manager), json={"comment": ""}).status_code == 422
    res = client.post(path, headers=auth(seed.manager), json={"comment": "nozzle replaced, re-inspecting lot"})
    assert res.status_code == 200, res.text
    assert res.json()["status"] == "acknowledged"
    assert res.json()["comment"] == "nozzle replaced, re-inspecting lot"
    assert alert["id"] not in [a["id"] for a in get(client, seed.manager, "/api/v1/alerts")["items"]]
    done = get(client, seed.manager, "/api/v1/alerts", status="acknowledged")["items"]
    assert [a["id"] for a in done] == [alert["id"]]
    assert client.post("/api/v1/alerts/999999/acknowledge", headers=auth(seed.manager),
                       json={"comment": "x"}).status_code == 404


def test_lot_view_lists_its_units(client: Any, small_network: Any) -> None:
    overview = get(client, small_network.manager, "/api/v1/analytics/overview", product=TEST_PRODUCT)
    assert overview["network"]["network"]["n"] == 30
    from service.storage.orm import Lot  # noqa: PLC0415

    app = client.app
    with app.state.ctx.db.session() as session:
        lot = session.query(Lot).filter(Lot.code == "L-001", Lot.node_id != None).order_by(Lot.id).first()  # noqa: E711
        lot_id = lot.id
    body = get(client, small_network.manager, f"/api/v1/analytics/lots/{lot_id}")
    assert body["lot"]["code"] == "L-001"
    assert body["n"] in (10, 20) and body["defects"] in (2, 1)
    assert client.get("/api/v1/analytics/lots/999999", headers=auth(small_network.manager)).status_code == 404
