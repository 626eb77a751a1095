"""Standards: shipped files validate, bad documents name the file and field, hashes identify content."""

from __future__ import annotations

from pathlib import Path

import pytest

from qc.errors import StandardInvalid
from qc.records import sha256_hex
from qc.standards import DecisionRule, DimensionCheck, ModelCheck, Severity, parse_standard
from service.core.checklists import load_shipped_standards, load_standard_file

CHECKLISTS = Path(__file__).resolve().parents[3] / "checklists"


def minimal(**overrides):
    doc = {
        "product": "widget",
        "name": "Widget",
        "version": 1,
        "items": [{"id": "ok", "prompt": "Looks fine", "type": "boolean", "pass_if": True}],
    }
    doc.update(overrides)
    return doc


def test_shipped_standards_cover_the_seed_products():
    products = {s.product for s in load_shipped_standards(CHECKLISTS)}
    assert {"face-shield-visor", "spare-part-bracket", "enzyme-batch", "magnetic-tile"} <= products


def test_library_items_are_included_before_own_items():
    visor = load_standard_file(CHECKLISTS / "face-shield-visor" / "v1.yaml")
    ids = [i.id for i in visor.items]
    assert ids[:4] == ["material_lot", "operator_trained", "cleaned", "labelled"]
    assert "thickness" in ids


def test_spare_part_has_hole_checks_with_guarded_rule():
    part = load_standard_file(CHECKLISTS / "spare-part-bracket" / "v1.yaml")
    checks = {c.id: c for p in part.photos for c in p.checks}
    hole = checks["screw_hole_1"]
    assert isinstance(hole, DimensionCheck)
    assert hole.limits == pytest.approx((6.05, 6.35))
    assert hole.decision_rule is DecisionRule.GUARDED
    assert checks["hole_count"].limits == (2, 2)


def test_magnetic_tile_names_its_model_exactly():
    tile = load_standard_file(CHECKLISTS / "magnetic-tile" / "v1.yaml")
    check = tile.photos[0].checks[0]
    assert isinstance(check, ModelCheck)
    assert check.model == "magnetic-tile-surface@1"
    assert check.severity is Severity.CRITICAL


def test_hash_is_sha256_of_rfc8785_canonical_input_document():
    std = parse_standard(minimal())
    # Independent canonical form, written by hand: keys sorted, no whitespace, no defaults added.
    expected = (b'{"items":[{"id":"ok","pass_if":true,"prompt":"Looks fine","type":"boolean"}],'
                b'"name":"Widget","product":"widget","version":1}')
    assert std.document_bytes == expected
    assert std.sha256 == sha256_hex(expected)
    assert std.to_document()["capture"] == {"jpeg_quality": 0.9, "location": False, "long_side": 3000}


def test_key_order_and_yaml_formatting_do_not_change_the_hash():
    a = parse_standard(minimal())
    b = parse_standard("items:\n- {type: boolean, pass_if: true, prompt: Looks fine, id: ok}\n"
                       "version: 1\nname: Widget\nproduct: widget\n")
    assert a.sha256 == b.sha256


def test_any_content_change_changes_the_hash():
    a = parse_standard(minimal())
    b = parse_standard(minimal(name="Widget!"))
    assert a.sha256 != b.sha256


@pytest.mark.parametrize(
    ("overrides", "field", "fragment"),
    [
        ({"product": "Bad Name"}, "product", "pattern"),
        ({"version": 0}, "version", "greater than or equal to 1"),
        ({"items": [{"id": "n", "prompt": "N", "type": "number"}]}, "items[0:n]", "needs a 'unit'"),
        ({"items": [{"id": "c", "prompt": "C", "type": "choice"}]}, "items[0:c]", "needs 'options'"),
        ({"items": [{"id": "c", "prompt": "C", "type": "choice", "options": ["a"], "pass_if": ["b"]}]},
         "items[0:c]", "not in 'options'"),
        ({"items": [{"id": "x", "prompt": "X", "type": "boolean", "colour": "red"}]}, "items[0:x].colour",
         "Extra inputs"),
        ({"items": [], "photos": [{"id": "p", "prompt": "P", "checks": [
            {"id": "d", "kind": "dimension", "feature": "length", "nominal": 10, "tolerance": [0.1, -0.1]}]}]},
         "photos[0:p].checks[0:d]", "lower deviation is above upper"),
        ({"items": [], "photos": [{"id": "p", "prompt": "P", "checks": [
            {"id": "d", "kind": "dimension", "feature": "girth", "min": 1}]}]},
         "photos[0:p].checks[0:d].feature", "Input should be"),
        ({"items": [], "photos": [{"id": "p", "prompt": "P", "checks": [
            {"id": "m", "kind": "model", "model": "tile"}]}]}, "photos[0:p].checks[0:m].model", "pattern"),
        ({"items": [], "photos": [{"id": "p", "prompt": "P", "card": False, "checks": [
            {"id": "d", "kind": "dimension", "feature": "length", "min": 1}]}]}, "photos[0:p]", "calibration card"),
        ({"items": [{"id": "a", "prompt": "A", "type": "text"}, {"id": "a", "prompt": "B", "type": "text"}]},
         "", "duplicate check/item ids: ['a']"),
        ({"supersedes": 3}, "", "cannot supersede"),
    ],
)
def test_invalid_documents_name_the_field_and_the_problem(overrides, field, fragment):
    with pytest.raises(StandardInvalid) as exc:
        parse_standard(minimal(**overrides), source="checklists/widget/v1.yaml")
    assert str(exc.value).startswith("checklists/widget/v1.yaml")
    assert any(p.field == field and fragment in p.reason for p in exc.value.problems), exc.value.problems


def test_unknown_include_lists_the_known_sets():
    with pytest.raises(StandardInvalid) as exc:
        parse_standard(minimal(include=["nope"]), library={"traceability": {"items": []}})
    assert "no library set 'nope'" in exc.value.problems[0].reason
    assert "traceability" in exc.value.problems[0].reason


def test_file_name_must_match_declared_version(tmp_path):
    (tmp_path / "_library").mkdir()
    path = tmp_path / "widget" / "v2.yaml"
    path.parent.mkdir()
    path.write_text("product: widget\nname: W\nversion: 1\nitems: [{id: a, prompt: A, type: text}]\n")
    with pytest.raises(StandardInvalid, match="v2.yaml"):
        load_standard_file(path)


def _items(n, *, duplicate_every=0):
    ids = [f"q{i}" for i in range(n)]
    if duplicate_every:
        ids = [ids[i - 1] if i and i % duplicate_every == 0 else ids[i] for i in range(n)]
    return [{"id": i, "prompt": "Looks fine", "type": "boolean", "pass_if": True} for i in ids]


def test_a_standard_at_the_item_cap_validates_and_one_more_is_refused_by_field():
    assert len(parse_standard(minimal(items=_items(500))).items) == 500
    with pytest.raises(StandardInvalid) as err:
        parse_standard(minimal(items=_items(501)))
    assert [p.field for p in err.value.problems] == ["items"]
    assert "at most 500" in err.value.problems[0].reason


def test_duplicate_ids_are_all_named_even_in_a_large_standard():
    with pytest.raises(StandardInvalid) as err:
        parse_standard(minimal(items=_items(500, duplicate_every=100)))
    # items 100, 200, 300, 400 repeat the id before them: q99, q199, q299, q399
    assert "['q199', 'q299', 'q399', 'q99']" in err.value.problems[0].reason


@pytest.mark.parametrize("field", ["description", "prompt"])
def test_texts_are_bounded(field):
    long = "x" * 20_001
    doc = minimal(description=long) if field == "description" else minimal(
        items=[{"id": "ok", "prompt": long, "type": "boolean", "pass_if": True}])
    with pytest.raises(StandardInvalid) as err:
        parse_standard(doc)
    assert "at most 20000 characters" in err.value.problems[0].reason
