"""Record documents and hashing; RFC 8785's own example is the reference for the canonical form."""

from __future__ import annotations

import hashlib
import json

from qc.findings import ModelResult
from qc.records import (
    canonical_json,
    document_schema,
    document_sha256,
    legacy_record_document,
    model_identities,
    record_document,
)


def test_canonical_json_matches_rfc8785_section_3_2_2_example():
    # RFC 8785, section 3.2.2 (input) and 3.2.3 (expected canonical output).
    source = ('{"numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],'
              ' "string": "\\u20ac$\\u000F\\u000aA\'\\u0042\\u0022\\u005c\\\\\\"\\/",'
              ' "literals": [null, true, false]}')
    expected = ('{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],'
                '"string":"€$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}')
    assert canonical_json(json.loads(source)) == expected.encode("utf-8")


_ARGS = dict(
    id="r1", node="north", product="visor",
    standard={"product": "visor", "version": 2, "sha256": "s" * 64},
    verdict="fail", minor_defects=1,
    results=[{"check_id": "a", "status": "fail"}],
    models=[{"name": "tile", "version": 2, "sha256": "m" * 64}],
    photos={"top": {"sha256": "p" * 64, "overlay_sha256": "o" * 64}},
    answers={"a": 11.2}, lot="L1", unit="U1", notes=None, location=None, corrects=None,
    person={"name": "Amina", "token_id": 7, "role": "technician"}, entered_as="A. M.",
    captured_at="2026-11-22T08:00:00Z", received_at="2026-11-22T08:03:00Z",
)


def test_record_document_holds_every_assertion_under_a_schema_name():
    doc = record_document(**_ARGS)
    assert doc == {"schema": "kipimo.record/2", **_ARGS}
    assert document_schema(doc) == "kipimo.record/2"
    assert document_sha256(doc) == hashlib.sha256(
        json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()).hexdigest()


def test_every_assertion_changes_the_hash():
    h = document_sha256(record_document(**_ARGS))
    changed = dict(verdict="review", minor_defects=0, person={"name": "Baraka", "token_id": 8, "role": "technician"},
                   models=[{"name": "tile", "version": 3, "sha256": "n" * 64}], received_at="2026-11-22T08:04:00Z",
                   standard={"product": "visor", "version": 2, "sha256": "t" * 64}, entered_as=None,
                   photos={"top": {"sha256": "p" * 64, "overlay_sha256": "q" * 64}}, notes="burr")
    for key, value in changed.items():
        assert document_sha256(record_document(**{**_ARGS, key: value})) != h, key


def test_legacy_document_reproduces_the_old_hash_bytes():
    doc = legacy_record_document(record={"id": "r1", "answers": {"a": True}}, standard_sha256="s" * 64,
                                 photos={"top": "p" * 64}, results=[{"check_id": "a", "status": "pass"}])
    expected = hashlib.sha256(
        b'{"photos":{"top":"' + b"p" * 64 + b'"},"record":{"answers":{"a":true},"id":"r1"},'
        b'"results":[{"check_id":"a","status":"pass"}],"standard_sha256":"' + b"s" * 64 + b'"}').hexdigest()
    assert document_sha256(doc) == expected
    assert document_schema(doc) == "kipimo.record/1"


def test_model_identities_name_each_model_a_result_used_once():
    ran = [ModelResult(model="tile-surface@2", sha256="a" * 64, task="anomaly"),
           ModelResult(model="tile-surface@2", sha256="a" * 64, task="anomaly"),  # a second photo, same model
           ModelResult(model="scratch@1", sha256="b" * 64, task="detection"),
           ModelResult(model="unused@4", sha256="c" * 64, task="classification")]
    results = [{"check_id": "s", "model_sha256": "a" * 64}, {"check_id": "d", "model_sha256": "b" * 64},
               {"check_id": "x", "model_sha256": None}]
    assert model_identities(ran, results) == [{"name": "scratch", "version": 1, "sha256": "b" * 64},
                                              {"name": "tile-surface", "version": 2, "sha256": "a" * 64}]
