"""Boundary values are refused as input (422 naming the field and the bound), on SQLite and PostgreSQL alike,
and leave nothing behind: ids beyond what an INTEGER column holds, times outside years 1-9999 in UTC, text
with NUL or an unpaired surrogate, nesting 50,000 deep, ``include: [[1]]`` (issue 13, section 5)."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from sqlalchemy import func, select

from qc.errors import InvalidInput, NotFound
from service.core.auth import create_token
from service.core.context import ServiceContext
from service.storage import repository as repo
from service.storage.orm import Alert, AuditEvent, StandardRow
from tests.integration.support import TEST_STANDARD, auth, count_rows, record, stored_blobs, upload

INT_MAX = 2**31 - 1  # PostgreSQL's INTEGER, the narrower of the two databases
TOO_BIG = [2**63, 2**53 + 1, 2**31]
NOT_POSITIVE = [0, -1, -(2**63)]
EMPTY = {"submissions": 0, "photos": 0, "check_results": 0}


def _problems(response: Any) -> dict[str, str]:
    body = response.json()
    assert body["error"], body
    return {p["field"]: p["reason"] for p in body["problems"]}


def _nothing_stored(ctx: ServiceContext) -> None:
    rows = count_rows(ctx)
    assert {k: rows[k] for k in EMPTY} == EMPTY
    assert stored_blobs(ctx) == set()


def _audit_events(ctx: ServiceContext) -> int:
    with ctx.db.session() as session:
        return session.scalar(select(func.count()).select_from(AuditEvent)) or 0


def _open_alert(ctx: ServiceContext) -> int:
    with ctx.db.write_session() as session:
        sub_node = repo.find_node(session, name="node-a")
        product = repo.current_standard(session, product="test-widget")
        assert sub_node is not None and product is not None
        alert = Alert(key="bounds", kind="rule", rule="r1", product_id=product.product_id, node_id=sub_node.id,
                      message="m", detail={}, created_at=ctx.now())
        session.add(alert)
        session.flush()
        return alert.id


# --- ids and versions ----------------------------------------------------------------------------------


def test_an_id_in_a_path_beyond_an_integer_column_is_422(client, seed, ctx):
    before = _audit_events(ctx)
    for value in TOO_BIG + NOT_POSITIVE:
        for path, field in ((f"/api/v1/standards/test-widget/versions/{value}", "version"),
                            (f"/api/v1/analytics/lots/{value}", "lot_id")):
            r = client.get(path, headers=auth(seed.manager))
            assert r.status_code == 422, (path, r.text)
            reason = _problems(r)[field]
            assert (str(INT_MAX) if value > 0 else "greater than or equal to 1") in reason
        r = client.post(f"/api/v1/alerts/{value}/acknowledge", json={"comment": "checked"},
                        headers=auth(seed.manager))
        assert r.status_code == 422 and "alert_id" in _problems(r)
    assert _audit_events(ctx) == before  # no acknowledgement was written


def test_a_version_filter_beyond_an_integer_column_is_422(client, seed):
    for value in [*TOO_BIG, 0, "²", "1.5"]:
        r = client.get("/api/v1/analytics/overview", params={"product": "test-widget", "version": value},
                       headers=auth(seed.manager))
        assert r.status_code == 422, r.text
        assert "version" in _problems(r)


def test_an_empty_filter_still_means_not_set(client, seed):
    r = client.get("/api/v1/analytics/overview", params={"version": "", "since": "", "until": ""},
                   headers=auth(seed.manager))
    assert r.status_code == 200, r.text


def test_a_cursor_naming_a_row_no_column_holds_is_422(client, seed):
    for seq in (2**63, INT_MAX + 1, -1):
        cursor = base64.urlsafe_b64encode(f"s{seq}".encode()).decode().rstrip("=")
        r = client.get("/api/v1/submissions", params={"cursor": cursor}, headers=auth(seed.manager))
        assert r.status_code == 422 and "cursor" in _problems(r)


def test_a_record_naming_a_version_beyond_an_integer_column_is_422(client, seed, ctx):
    for value in TOO_BIG:
        r = upload(client, seed.tech_a, record(standard_version=value))
        assert r.status_code == 422, r.text
        assert str(INT_MAX) in _problems(r)["record.standard_version"]
    _nothing_stored(ctx)


@pytest.mark.parametrize("version", [2**53 + 1, 2**31])
def test_a_standard_version_beyond_an_integer_column_is_422(version, client, seed):
    r = _publish(client, seed.manager, TEST_STANDARD.replace("version: 1", f"version: {version}"))
    assert r.status_code == 422, r.text
    assert str(INT_MAX) in _problems(r)["version"]
    assert [s["version"] for s in client.get("/api/v1/standards", headers=auth(seed.manager)).json()] == [1]


# --- times -----------------------------------------------------------------------------------------------

# each is a valid ISO 8601 time whose UTC instant lies outside the years 1-9999
OUT_OF_RANGE = ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:00-01:00", "9999-12-31T23:30:00-23:59"]


def test_a_capture_time_outside_years_1_to_9999_in_utc_is_422(client, seed, ctx):
    for when in OUT_OF_RANGE:
        r = upload(client, seed.tech_a, record(captured_at=when))
        assert r.status_code == 422, r.text
        assert "outside the years 1-9999 in UTC" in _problems(r)["record.captured_at"]
    _nothing_stored(ctx)


def test_a_time_filter_outside_years_1_to_9999_in_utc_is_422(client, seed):
    for path in ("/api/v1/submissions", "/api/v1/submissions.csv", "/api/v1/analytics/overview",
                 "/api/v1/analytics/rates", "/api/v1/analytics/p-chart", "/api/v1/analytics/pareto"):
        for name in ("since", "until"):
            for when in OUT_OF_RANGE:
                r = client.get(path, params={name: when}, headers=auth(seed.manager))
                assert r.status_code == 422, (path, name, when, r.text)
                assert "outside the years 1-9999 in UTC" in _problems(r)[name]


def test_a_time_filter_is_iso_8601_not_a_unix_time(client, seed):
    for value in ("0.5", "1700000000", "-1e5"):
        r = client.get("/api/v1/submissions", params={"since": value}, headers=auth(seed.manager))
        assert r.status_code == 422 and "ISO 8601" in _problems(r)["since"], r.text


def test_an_until_in_year_one_cuts_the_default_window_instead_of_failing(client, seed):
    for until in ("0001-01-05T00:00:00Z", "0001-01-01T00:00:01Z"):
        for chart in ("overview", "rates", "p-chart", "pareto"):
            r = client.get(f"/api/v1/analytics/{chart}", params={"until": until}, headers=auth(seed.manager))
            assert r.status_code == 200, (chart, r.text)
            assert r.json()["filters"]["since"] == "0001-01-01T00:00:00+00:00"


def test_a_chart_over_more_than_twenty_years_is_422_not_minutes_of_cpu(client, seed):
    span = {"since": "0001-01-01T00:00:00Z", "until": "9999-12-31T00:00:00Z"}
    for chart in ("overview", "rates", "p-chart", "pareto"):
        r = client.get(f"/api/v1/analytics/{chart}", params=span, headers=auth(seed.manager))
        assert r.status_code == 422 and "20 years" in r.json()["error"], (chart, r.text)
    twenty = {"since": "2006-12-01T00:00:00Z", "until": "2026-11-25T00:00:00Z"}  # 19.99 years: drawn
    assert client.get("/api/v1/analytics/rates", params=twenty, headers=auth(seed.manager)).status_code == 200


# --- text ------------------------------------------------------------------------------------------------

NUL = "\x00"
SURROGATE = "\ud800"


@pytest.mark.parametrize("bad", [NUL, SURROGATE])
def test_text_a_database_cannot_store_is_422_in_every_record_field(bad, client, seed, ctx):
    for field in ("notes", "lot", "unit", "technician", "answers.note", "answers key", "location key"):
        rec = record()
        if field == "answers key":
            rec["answers"][f"no{bad}te"] = "x"
        elif field == "location key":
            rec["location"] = {f"lat{bad}": 1.0}
        elif field.startswith("answers."):
            rec["answers"]["note"] = f"a{bad}b"
        else:
            rec[field] = f"a{bad}b"
        r = upload(client, seed.tech_a, json.dumps(rec))  # json.dumps writes \u0000 and \ud800 escapes
        assert r.status_code == 422, (field, r.text)
        (where, reason), = _problems(r).items()
        assert where == "record." + field.split(" ")[0].split(".")[0]
        assert ("NUL" if bad == NUL else "surrogate") in reason
    _nothing_stored(ctx)  # no row, no photo file


def test_text_a_database_cannot_store_is_422_in_a_standard(client, seed, ctx):
    for spelling in ('"Test\\0widget"', '"Test\\u0000widget"', '"Test\\ud800widget"'):
        text = TEST_STANDARD.replace("version: 1", "version: 2").replace("name: Test widget", f"name: {spelling}")
        r = _publish(client, seed.manager, text)
        assert r.status_code == 422, r.text
        assert "name" in _problems(r)
    with ctx.db.session() as session:
        assert session.scalar(select(func.count()).select_from(StandardRow)) == 1


@pytest.mark.parametrize("bad", [NUL, SURROGATE])
def test_text_a_database_cannot_store_is_422_in_an_acknowledgement(bad, client, seed, ctx):
    alert_id = _open_alert(ctx)
    r = client.post(f"/api/v1/alerts/{alert_id}/acknowledge",
                    content=json.dumps({"comment": f"nozzle{bad}"}).encode(),
                    headers=auth(seed.manager) | {"Content-Type": "application/json"})
    assert r.status_code == 422, r.text
    assert "comment" in _problems(r)
    with ctx.db.session() as session:
        alert = session.get(Alert, alert_id)
        assert alert is not None and alert.status == "open"


def test_an_acknowledgement_from_a_form_is_held_to_the_same_bounds(ctx, seed):
    """The dashboard's form calls the use case without the API's model: it applies the same rules."""
    from service.core import alerts as alerting  # noqa: PLC0415

    alert_id = _open_alert(ctx)
    with ctx.db.write_session() as session:
        with pytest.raises(InvalidInput) as refused:
            alerting.acknowledge_alert(session, alert_id=alert_id, by="tests", comment="done\x00", now=ctx.now())
        assert refused.value.problems[0].field == "comment"
        with pytest.raises(NotFound):
            alerting.acknowledge_alert(session, alert_id=2**63, by="tests", comment="done", now=ctx.now())
    with ctx.db.session() as session:
        alert = session.get(Alert, alert_id)
        assert alert is not None and alert.status == "open"


def test_nul_in_a_path_or_query_parameter_is_422(client, seed):
    for url in ("/api/v1/submissions?product=a%00b", "/api/v1/standards?product=%00", "/api/v1/standards/a%00b",
                "/api/v1/standards/test-widget/versions/1?x=%00", "/api/v1/submissions/a%00b",
                "/api/v1/photos/a%00b", "/api/v1/alerts?node=%00", "/api/v1/analytics/overview?product=%00",
                "/api/v1/submissions.csv?lot=%00"):
        r = client.get(url, headers=auth(seed.manager))
        assert r.status_code == 422, (url, r.text)
        assert all("NUL" in reason for reason in _problems(r).values()) and _problems(r)


@pytest.mark.parametrize("bad", [NUL, SURROGATE])
def test_a_token_or_node_title_with_unstorable_text_is_refused(bad, ctx, seed):
    with ctx.db.write_session() as session, pytest.raises(InvalidInput) as refused:
        create_token(session, role="auditor", name=f"aud{bad}itor", actor="tests", now=ctx.now())
    assert refused.value.problems[0].field == "name"
    with ctx.db.write_session() as session, pytest.raises(InvalidInput) as refused:
        repo.create_node(session, name="node-c", title=f"Work{bad}shop", now=ctx.now())
    assert refused.value.problems[0].field == "title"


# --- shapes ----------------------------------------------------------------------------------------------


def _publish(client: Any, token: str, text: str, content_type: str = "application/yaml") -> Any:
    return client.post("/api/v1/standards", content=text.encode(),
                       headers=auth(token) | {"Content-Type": content_type})


def test_an_include_that_is_not_a_list_of_names_is_422(client, seed):
    for include in ("[[1]]", "[{a: 1}]", "[1]", "[null]"):
        r = _publish(client, seed.manager, TEST_STANDARD.replace("version: 1", "version: 2") + f"include: {include}\n")
        assert r.status_code == 422, r.text
        assert "expected library names" in _problems(r)["include"]


def test_a_standard_nested_50000_deep_is_422(client, seed):
    for body in ("[" * 50_000, "a:\n" + "".join("  " * i + f"k{i}:\n" for i in range(1, 2000)),
                 '{"a": ' * 50_000 + "1" + "}" * 50_000, "- " * 50_000 + "x"):
        r = _publish(client, seed.manager, body, "application/json" if body.startswith("{") else "application/yaml")
        assert r.status_code == 422, r.text
        assert "nested deeper than 32 levels" in json.dumps(r.json())


def test_yaml_aliases_are_refused_in_a_standard(client, seed):
    r = _publish(client, seed.manager, "a: &a [x, x]\nb: &b [*a, *a]\nc: &c [*b, *b]\n")
    assert r.status_code == 422, r.text
    assert "aliases" in json.dumps(r.json())


def test_a_record_nested_deeper_than_the_bound_is_422(client, seed, ctx):
    for depth in (32, 500):  # with the answers object, 33 and 501 containers
        rec = record()
        rec["answers"]["note"] = json.loads("[" * depth + "]" * depth)
        r = upload(client, seed.tech_a, rec)
        assert r.status_code == 422, r.text
        assert "nested deeper than 32 levels" in _problems(r)["record.answers"]
    _nothing_stored(ctx)


def test_a_yaml_scalar_no_value_holds_is_422(client, seed):
    for scalar in ("9" * 5000, "2026-13-45"):
        r = _publish(client, seed.manager, TEST_STANDARD.replace("version: 1", "version: 2")
                     + f"description: {scalar}\n")
        assert r.status_code == 422, r.text
        assert "a value cannot be read" in json.dumps(r.json())
