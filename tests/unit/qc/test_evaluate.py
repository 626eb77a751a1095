"""Evaluation: per-check status, ISO 14253-1 guarded acceptance, and the verdict rule."""

from __future__ import annotations

import pytest

from qc.errors import StandardInvalid, SubmissionInvalid
from qc.evaluate import CheckStatus, VerdictKind, evaluate, validate_submission
from qc.findings import Measurement, ModelResult, PhotoFindings, PhotoQuality, QualityMetric
from qc.standards import parse_standard

STANDARD = parse_standard({
    "product": "bracket",
    "name": "Bracket",
    "version": 1,
    "items": [
        {"id": "adhesion", "prompt": "No layer separation", "type": "boolean", "pass_if": True,
         "severity": "critical"},
        {"id": "infill", "prompt": "Infill", "type": "number", "unit": "%", "min": 40, "max": 100},
        {"id": "material", "prompt": "Material", "type": "choice", "options": ["PETG", "PLA"],
         "pass_if": ["PETG"]},
        {"id": "warp", "prompt": "Lies flat", "type": "boolean", "pass_if": True, "severity": "minor"},
        {"id": "notes", "prompt": "Notes", "type": "text", "required": False},
        {"id": "made", "prompt": "Made on", "type": "date", "required": False},
    ],
    "photos": [
        {"id": "top", "prompt": "Top view", "checks": [
            {"id": "length", "kind": "dimension", "feature": "length", "nominal": 80, "tolerance": [-0.3, 0.3]},
            {"id": "hole", "kind": "dimension", "feature": "hole_diameter", "nominal": 6.2,
             "tolerance": [-0.15, 0.15], "decision_rule": "guarded"},
            {"id": "surface", "kind": "model", "model": "surface@2", "severity": "critical"},
        ]},
        {"id": "side", "prompt": "Side view", "required": False, "checks": [
            {"id": "thick", "kind": "dimension", "feature": "width", "max": 5.0, "severity": "minor"}]},
    ],
})

GOOD_ANSWERS = {"adhesion": True, "infill": 60, "material": "PETG", "warp": True}
SURFACE_OK = ModelResult(model="surface@2", sha256="ab" * 32, task="anomaly", score=0.4, label="good",
                         threshold=1.0)


def top(length=80.0, hole=6.2, hole_u=0.02, models=(SURFACE_OK,), quality=None, error=None):
    ms = []
    if length is not None:
        ms.append(Measurement("length", length, 0.05))
    if hole is not None:
        ms.append(Measurement("hole_diameter", hole, hole_u))
    return PhotoFindings(slot="top", measurements=tuple(ms), models=models, quality=quality, error=error)


def result(verdict, check_id):
    return next(r for r in verdict.results if r.check_id == check_id)


def test_everything_in_limits_passes_with_one_result_per_check():
    v = evaluate(STANDARD, GOOD_ANSWERS, {"top": top()})
    assert v.verdict is VerdictKind.PASS
    assert [r.check_id for r in v.results] == [
        "adhesion", "infill", "material", "warp", "notes", "made", "top", "length", "hole", "surface", "thick"]
    # the photo taken is a check of its own (kind photo; no gate ran here); the optional one not taken has none
    assert [(r.kind, r.status) for r in v.results if r.kind == "photo"] == [("photo", CheckStatus.NOT_APPLICABLE)]
    assert result(v, "thick").status is CheckStatus.NOT_APPLICABLE  # optional photo not taken
    assert result(v, "notes").status is CheckStatus.NOT_APPLICABLE
    assert result(v, "surface").model_sha256 == "ab" * 32


@pytest.mark.parametrize(
    ("answers", "check_id"),
    [
        ({"adhesion": False}, "adhesion"),
        ({"infill": 39.9}, "infill"),
        ({"infill": 100.1}, "infill"),
        ({"material": "PLA"}, "material"),
    ],
)
def test_a_failed_critical_or_major_item_fails_the_verdict(answers, check_id):
    v = evaluate(STANDARD, {**GOOD_ANSWERS, **answers}, {"top": top()})
    assert result(v, check_id).status is CheckStatus.FAIL
    assert v.verdict is VerdictKind.FAIL


def test_limits_are_inclusive():
    v = evaluate(STANDARD, {**GOOD_ANSWERS, "infill": 40}, {"top": top(length=80.3)})
    assert result(v, "infill").status is CheckStatus.PASS
    assert result(v, "length").status is CheckStatus.PASS


def test_minor_failure_is_counted_but_passes():
    v = evaluate(STANDARD, {**GOOD_ANSWERS, "warp": False}, {"top": top()})
    assert v.verdict is VerdictKind.PASS
    assert v.minor_defects == 1


# ISO 14253-1 guarded acceptance for 6.2 ± 0.15 (limits 6.05 and 6.35) with U = 0.02:
# acceptance zone [6.07, 6.33], rejection outside [6.03, 6.37], between: neither proven.
@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (6.20, CheckStatus.PASS),
        (6.33, CheckStatus.PASS),
        (6.07, CheckStatus.PASS),
        (6.34, CheckStatus.INCONCLUSIVE),
        (6.36, CheckStatus.INCONCLUSIVE),
        (6.06, CheckStatus.INCONCLUSIVE),
        (6.04, CheckStatus.INCONCLUSIVE),
        (6.38, CheckStatus.FAIL),
        (6.02, CheckStatus.FAIL),
    ],
)
def test_guarded_rule_follows_iso_14253_1(value, expected):
    v = evaluate(STANDARD, GOOD_ANSWERS, {"top": top(hole=value)})
    assert result(v, "hole").status is expected


def test_straddling_uncertainty_on_a_major_check_sends_to_review():
    v = evaluate(STANDARD, GOOD_ANSWERS, {"top": top(hole=6.34)})
    assert v.verdict is VerdictKind.REVIEW
    assert "straddles" in result(v, "hole").message


def test_simple_rule_ignores_uncertainty():
    v = evaluate(STANDARD, GOOD_ANSWERS, {"top": top(length=80.29)})
    assert result(v, "length").status is CheckStatus.PASS
    assert result(v, "length").uncertainty == 0.05


def test_missing_model_is_review_never_a_silent_pass():
    v = evaluate(STANDARD, GOOD_ANSWERS, {"top": top(models=())})
    assert result(v, "surface").status is CheckStatus.INCONCLUSIVE
    assert "not installed" in result(v, "surface").message
    assert v.verdict is VerdictKind.REVIEW


def test_anomaly_score_at_threshold_is_a_defect():
    at = ModelResult(model="surface@2", sha256="cd" * 32, task="anomaly", score=1.0, threshold=1.0)
    v = evaluate(STANDARD, GOOD_ANSWERS, {"top": top(models=(at,))})
    assert result(v, "surface").status is CheckStatus.FAIL
    assert v.verdict is VerdictKind.FAIL


@pytest.mark.parametrize(("score", "expected"), [
    (0.89, CheckStatus.PASS), (0.90, CheckStatus.INCONCLUSIVE), (0.99, CheckStatus.INCONCLUSIVE),
    (1.00, CheckStatus.FAIL),
])
def test_anomaly_review_band(score, expected):
    """review_from: scores in [review_from, threshold) are borderline and go to a person."""
    std = parse_standard({"product": "p", "name": "P", "version": 1, "photos": [{"id": "a", "prompt": "A", "checks": [
        {"id": "surface", "kind": "model", "model": "surface@2", "review_from": 0.9, "severity": "critical"}]}]})
    res = ModelResult(model="surface@2", sha256="cd" * 32, task="anomaly", score=score, threshold=1.0)
    v = evaluate(std, {}, {"a": PhotoFindings(slot="a", models=(res,))})
    assert result(v, "surface").status is expected
    assert v.verdict is {CheckStatus.PASS: VerdictKind.PASS, CheckStatus.INCONCLUSIVE: VerdictKind.REVIEW,
                         CheckStatus.FAIL: VerdictKind.FAIL}[expected]


def test_review_band_must_sit_below_the_limit():
    with pytest.raises(StandardInvalid) as exc:
        parse_standard({"product": "p", "name": "P", "version": 1, "photos": [{"id": "a", "prompt": "A", "checks": [
            {"id": "s", "kind": "model", "model": "s@1", "max_score": 0.8, "review_from": 1.0}]}]})
    assert "review_from 1 must be below max_score 0.8" in exc.value.problems[0].reason


def test_unusable_photo_makes_its_checks_inconclusive_with_the_retake_message():
    blurred = PhotoQuality((QualityMetric("sharpness", 31, 80, "min", False,
                                          "too blurred — hold the phone steady; sharpness 31, needs 80"),))
    v = evaluate(STANDARD, GOOD_ANSWERS, {"top": top(quality=blurred)})
    for check_id in ("length", "hole", "surface"):
        r = result(v, check_id)
        assert r.status is CheckStatus.INCONCLUSIVE
        assert "sharpness 31, needs 80" in r.message
    assert v.verdict is VerdictKind.REVIEW


DARK = PhotoQuality((QualityMetric("dark", 1.0, 0.2, "max", False, "too dark — add light; dark 100%, max 20%"),))
LIT = PhotoQuality((QualityMetric("dark", 0.0, 0.2, "max", True),))


def test_the_photo_itself_is_a_check_major_when_required_minor_when_optional():
    v = evaluate(STANDARD, GOOD_ANSWERS, {"top": top(quality=LIT), "side": PhotoFindings(slot="side", quality=DARK)})
    photos = {r.slot: r for r in v.results if r.kind == "photo"}
    assert (photos["top"].status, photos["top"].severity) == (CheckStatus.PASS, "major")
    assert (photos["side"].status, photos["side"].severity) == (CheckStatus.INCONCLUSIVE, "minor")
    assert "too dark" in photos["side"].message
    assert v.verdict is VerdictKind.PASS  # an unusable optional photo does not hold the unit back


def test_an_unusable_required_evidence_photo_is_review_or_fail_as_the_slot_says():
    for rule, verdict in (("review", VerdictKind.REVIEW), ("fail", VerdictKind.FAIL)):
        std = parse_standard({"product": "gel", "name": "Gel", "version": 1, "photos": [
            {"id": "gel", "prompt": "Gel", "card": False, "on_unusable": rule}]})
        v = evaluate(std, {}, {"gel": PhotoFindings(slot="gel", quality=DARK)})
        assert v.verdict is verdict
        assert evaluate(std, {}, {"gel": PhotoFindings(slot="gel", quality=LIT)}).verdict is VerdictKind.PASS


def test_unmeasurable_feature_is_inconclusive_with_the_reason():
    v = evaluate(STANDARD, GOOD_ANSWERS, {"top": top(length=None, error="no part found on the card")})
    assert result(v, "length").status is CheckStatus.INCONCLUSIVE
    assert "no part found" in result(v, "length").message


def test_classification_and_detection_checks():
    std = parse_standard({"product": "p", "name": "P", "version": 1, "photos": [{"id": "a", "prompt": "A", "checks": [
        {"id": "cls", "kind": "model", "model": "cls@1", "accept_labels": ["ok"]},
        {"id": "det", "kind": "model", "model": "det@1", "reject_labels": ["crack"], "min_confidence": 0.5}]}]})
    from qc.findings import Detection

    cls = ModelResult(model="cls@1", sha256="0" * 64, task="classification", score=0.9, label="scratch")
    det = ModelResult(model="det@1", sha256="1" * 64, task="detection", detections=(
        Detection("crack", 0.4, (0, 0, 1, 1)), Detection("dust", 0.9, (0, 0, 1, 1))))
    v = evaluate(std, {}, {"a": PhotoFindings(slot="a", models=(cls, det))})
    assert result(v, "cls").status is CheckStatus.FAIL  # scratch is not accepted
    assert result(v, "det").status is CheckStatus.PASS  # the crack is below 0.5, dust is not rejected


# --- validation ---------------------------------------------------------------------------------


def test_validation_lists_every_problem_at_once():
    with pytest.raises(SubmissionInvalid) as exc:
        validate_submission(STANDARD, {"adhesion": "yes", "infill": "sixty", "material": "steel", "colour": 1,
                                       "made": "32/13/2025"}, {"side", "back"})
    fields = {p.field for p in exc.value.problems}
    assert fields == {"answers.adhesion", "answers.infill", "answers.material", "answers.colour",
                      "answers.made", "answers.warp", "photos.back", "photos.top"}


def test_missing_required_answer_names_the_item_prompt():
    with pytest.raises(SubmissionInvalid) as exc:
        validate_submission(STANDARD, {k: v for k, v in GOOD_ANSWERS.items() if k != "warp"}, {"top"})
    assert [str(p) for p in exc.value.problems] == ["answers.warp: required answer missing: Lies flat"]


@pytest.mark.parametrize("bad", [True, float("nan"), float("inf")])
def test_numbers_must_be_finite_numbers_not_booleans(bad):
    with pytest.raises(SubmissionInvalid):
        validate_submission(STANDARD, {**GOOD_ANSWERS, "infill": bad}, {"top"})


def test_valid_answers_are_normalised():
    out = validate_submission(STANDARD, {**GOOD_ANSWERS, "made": "2026-11-02", "notes": ""}, {"top"})
    assert out["made"] == "2026-11-02"
    assert out["notes"] == ""
