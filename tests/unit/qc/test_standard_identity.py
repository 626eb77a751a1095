"""A standard's identity: SHA-256 of the RFC 8785 bytes of its resolved input document, never of the parsed model.

Golden hashes pin every shipped file: a change to a shipped standard, to the include rule or to the
canonical form shows up here. Each is also recomputed in the test with nothing but PyYAML, rfc8785 and
hashlib, so the pins do not merely repeat what the code says.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import rfc8785
import yaml
from pydantic import create_model

import qc.standards as standards_module
from qc.errors import StandardAltered, StandardInvalid
from qc.standards import Item, Standard, parse_standard, parse_stored_standard
from service.core.checklists import load_standard_file

CHECKLISTS = Path(__file__).resolve().parents[3] / "checklists"

GOLDEN = {
    "enzyme-batch/v1.yaml": "0ee1d2376caab3bfb1a4e8a8a0944eb22ea716f34e7e5817b8c6f4edc45a30c3",
    "face-shield-visor/v1.yaml": "74deddb7dc7e6d3c856d011a24e2adaee51834e146260f207a0153d896723c49",
    "magnetic-tile/v1.yaml": "57ef451b585a1e4bf3056f09699de31abed798e8bd21a8b91df6e4c4da5be7b4",
    "magnetic-tile/v2.yaml": "3270aa492dddfb6e03f8c16a69c36aa1e0458b6836abda96253cc159994ff9b4",
    "magnetic-tile/v3.yaml": "e582eb080e981cccde96949a47485ee3122ba1bf4f31d8803f1be874f552abf1",
    "spare-part-bracket/v1.yaml": "af2c20ae70607e64520431ab02b3062b63a3b0c415d42850833bd3324ad81f70",
}

MINIMAL = {"product": "widget", "name": "Widget", "version": 1,
           "items": [{"id": "ok", "prompt": "Looks fine", "type": "boolean", "pass_if": True}]}


def _shipped() -> list[str]:
    return sorted(f"{p.parent.name}/{p.name}" for p in CHECKLISTS.glob("*/v*.yaml") if p.parent.name != "_library")


def _independent_sha256(relative: str) -> str:
    """The issue's rule, done by hand: includes' items first, 'include' itself dropped, nothing defaulted."""
    doc = yaml.safe_load((CHECKLISTS / relative).read_text(encoding="utf-8"))
    includes = doc.pop("include", [])
    if includes:
        library = [yaml.safe_load((CHECKLISTS / "_library" / f"{name}.yaml").read_text(encoding="utf-8"))
                   for name in includes]
        doc["items"] = [item for entry in library for item in entry["items"]] + doc.get("items", [])
    return hashlib.sha256(rfc8785.dumps(doc)).hexdigest()


def test_every_shipped_standard_has_a_golden_hash():
    assert _shipped() == sorted(GOLDEN)  # a new shipped file needs its pin here


@pytest.mark.parametrize("relative", sorted(GOLDEN))
def test_shipped_standard_hash_is_pinned_and_recomputed_independently(relative):
    standard = load_standard_file(CHECKLISTS / relative)
    assert standard.sha256 == GOLDEN[relative]
    assert _independent_sha256(relative) == GOLDEN[relative]


def test_files_without_include_hash_their_own_yaml_exactly():
    plain = [r for r in GOLDEN if "include" not in yaml.safe_load((CHECKLISTS / r).read_text(encoding="utf-8"))]
    assert plain  # the shipped set has both kinds
    for relative in plain:
        doc = yaml.safe_load((CHECKLISTS / relative).read_text(encoding="utf-8"))
        assert hashlib.sha256(rfc8785.dumps(doc)).hexdigest() == GOLDEN[relative]
        assert load_standard_file(CHECKLISTS / relative).document_bytes == rfc8785.dumps(doc)


def test_defaults_are_not_part_of_the_identity():
    bare = parse_standard(MINIMAL)
    spelled = parse_standard({**MINIMAL, "status": "released", "description": "",
                              "items": [{**MINIMAL["items"][0], "required": True, "severity": "major"}]})
    assert bare.same_rules(spelled)  # the same rules...
    assert bare.sha256 != spelled.sha256  # ...from different documents, so different identities
    assert bare.sha256 == hashlib.sha256(
        b'{"items":[{"id":"ok","pass_if":true,"prompt":"Looks fine","type":"boolean"}],'
        b'"name":"Widget","product":"widget","version":1}').hexdigest()


def test_key_order_and_yaml_layout_do_not_change_the_identity():
    text = "version: 1\nitems:\n- {type: boolean, pass_if: true, prompt: Looks fine, id: ok}\nname: Widget\n" \
           "product: widget\n"
    assert parse_standard(text).sha256 == parse_standard(MINIMAL).sha256


def test_values_json_cannot_carry_are_refused():
    with pytest.raises(StandardInvalid, match="invalid standard") as exc:
        parse_standard("product: w\nname: W\nversion: 1\nitems:\n"
                       "  - {id: n, prompt: N, type: number, unit: mm, min: .nan}\n")
    assert "not plain JSON" in exc.value.problems[0].reason


def test_a_standard_not_made_by_parsing_has_no_identity():
    with pytest.raises(TypeError, match="parse_standard"):
        _ = Standard.model_validate(MINIMAL).sha256


def test_stored_bytes_are_verified_as_bytes():
    stored = parse_standard(MINIMAL)
    again = parse_stored_standard(stored.document_bytes, sha256=stored.sha256)
    assert again.sha256 == stored.sha256 and again.same_rules(stored)
    tampered = stored.document_bytes.replace(b"Looks fine", b"Looks okay")
    with pytest.raises(StandardAltered, match="does not match its bytes"):
        parse_stored_standard(tampered, sha256=stored.sha256)


def test_a_schema_that_grows_a_defaulted_field_keeps_stored_identities(monkeypatch):
    stored = {r: load_standard_file(CHECKLISTS / r) for r in GOLDEN}
    grown_item = create_model("Item", __base__=Item, group_colour=(str, "none"))
    grown = create_model("Standard", __base__=Standard, review_note=(str, ""),
                         items=(tuple[grown_item, ...], ()))  # type: ignore[valid-type]
    monkeypatch.setattr(standards_module, "Standard", grown)
    for relative, before in stored.items():
        after = parse_stored_standard(before.document_bytes, sha256=GOLDEN[relative])
        assert isinstance(after, grown) and after.review_note == ""
        assert all(item.group_colour == "none" for item in after.items)
        assert after.sha256 == GOLDEN[relative]
        assert after.to_document() != before.to_document()  # the parsed model did change shape
