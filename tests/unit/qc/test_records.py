"""Record hashing uses RFC 8785; the RFC's own example is the reference."""

from __future__ import annotations

import hashlib
import json

from qc.records import canonical_json, record_sha256


def test_canonical_json_matches_rfc8785_section_3_2_2_example():
    # RFC 8785, section 3.2.2 (input) and 3.2.3 (expected canonical output).
    source = ('{"numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],'
              ' "string": "\\u20ac$\\u000F\\u000aA\'\\u0042\\u0022\\u005c\\\\\\"\\/",'
              ' "literals": [null, true, false]}')
    expected = ('{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],'
                '"string":"€$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}')
    assert canonical_json(json.loads(source)) == expected.encode("utf-8")


def test_record_hash_covers_every_part():
    base = dict(record={"id": "r1", "answers": {"a": True}}, standard_sha256="s" * 64,
                photos={"top": "p" * 64}, results=[{"check_id": "a", "status": "pass"}])
    h = record_sha256(**base)
    expected = hashlib.sha256(
        b'{"photos":{"top":"' + b"p" * 64 + b'"},"record":{"answers":{"a":true},"id":"r1"},'
        b'"results":[{"check_id":"a","status":"pass"}],"standard_sha256":"' + b"s" * 64 + b'"}').hexdigest()
    assert h == expected
    for key, changed in [("record", {"id": "r1", "answers": {"a": False}}), ("standard_sha256", "t" * 64),
                         ("photos", {"top": "q" * 64}), ("results", [{"check_id": "a", "status": "fail"}])]:
        assert record_sha256(**{**base, key: changed}) != h
