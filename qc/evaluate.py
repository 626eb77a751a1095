"""Turn a standard, the technician's answers and vision's findings into a verdict.

Pure: nothing here knows where the inputs came from. Rules:

- every submitted photo is itself a check (kind ``photo``): usable by the quality gate, or ``inconclusive``
  (``fail`` when the slot says ``on_unusable: fail``); major for a required slot, minor for an optional one;
- each check gets ``pass``, ``fail``, ``inconclusive`` or ``not_applicable``;
- the verdict is ``fail`` if any critical or major check fails, ``review`` if
  none fails but a critical or major check is inconclusive (missing model,
  unusable photo, uncertainty straddling a limit under the guarded rule),
  otherwise ``pass``; minor failures are counted as minor defects.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Collection, Mapping
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any

from qc.errors import Problem, SubmissionInvalid
from qc.findings import ModelResult, PhotoFindings
from qc.standards import (
    DecisionRule,
    DimensionCheck,
    Item,
    ItemType,
    ModelCheck,
    PhotoSlot,
    Severity,
    Standard,
)

__all__ = ["CheckStatus", "VerdictKind", "CheckResult", "Verdict", "validate_submission", "evaluate"]


class CheckStatus(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    INCONCLUSIVE = "inconclusive"
    NOT_APPLICABLE = "not_applicable"


class VerdictKind(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    REVIEW = "review"


@dataclass(frozen=True)
class CheckResult:
    check_id: str
    kind: str  # item | dimension | model
    slot: str | None
    status: CheckStatus
    severity: Severity
    message: str
    value: Any = None
    unit: str | None = None
    uncertainty: float | None = None
    lower: float | None = None
    upper: float | None = None
    accepted: tuple[Any, ...] | None = None
    model_sha256: str | None = None  # which exact model file judged, for model checks

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["status"] = str(self.status)
        d["severity"] = str(self.severity)
        d["accepted"] = list(self.accepted) if self.accepted is not None else None
        return d


@dataclass(frozen=True)
class Verdict:
    verdict: VerdictKind
    results: tuple[CheckResult, ...]
    minor_defects: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "verdict": str(self.verdict),
            "minor_defects": self.minor_defects,
            "results": [r.to_dict() for r in self.results],
        }


# --- validation -------------------------------------------------------------------------------


def validate_submission(
    standard: Standard, answers: Mapping[str, Any], photo_slots: Collection[str]
) -> dict[str, Any]:
    """Check answers and photo slots against the standard; return normalised answers.

    Raises ``SubmissionInvalid`` listing every problem at once, so a person can
    fix them all in one go.
    """
    problems: list[Problem] = []
    normalised: dict[str, Any] = {}
    known_items = {i.id: i for i in standard.items}
    for key in answers:
        if key not in known_items:
            problems.append(Problem(f"answers.{key}", f"unknown item; {standard.product} v{standard.version} "
                                    f"has: {', '.join(known_items) or 'no items'}"))
    for item in standard.items:
        value = answers.get(item.id)
        if value is None or (isinstance(value, str) and not value.strip() and item.type is not ItemType.TEXT):
            if item.required:
                problems.append(Problem(f"answers.{item.id}", f"required answer missing: {item.prompt}"))
            continue
        try:
            normalised[item.id] = _normalise_answer(item, value)
        except ValueError as exc:
            problems.append(Problem(f"answers.{item.id}", str(exc)))
    known_slots = {p.id for p in standard.photos}
    for slot in photo_slots:
        if slot not in known_slots:
            problems.append(Problem(f"photos.{slot}", f"unknown photo slot; expected one of: "
                                    f"{', '.join(sorted(known_slots)) or 'none'}"))
    for p in standard.photos:
        if p.required and p.id not in photo_slots:
            problems.append(Problem(f"photos.{p.id}", f"required photo missing: {p.prompt}"))
    if problems:
        raise SubmissionInvalid("the record does not fit the standard", problems)
    return normalised


def _normalise_answer(item: Item, value: Any) -> Any:
    if item.type is ItemType.BOOLEAN:
        if isinstance(value, bool):
            return value
        raise ValueError(f"expected true or false, got {value!r}")
    if item.type is ItemType.NUMBER:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"expected a number in {item.unit}, got {value!r}")
        if not math.isfinite(value):
            raise ValueError(f"expected a finite number, got {value!r}")
        return value
    if item.type is ItemType.CHOICE:
        if value not in item.options:
            raise ValueError(f"expected one of {list(item.options)}, got {value!r}")
        return value
    if item.type is ItemType.DATE:
        if not isinstance(value, str):
            raise ValueError(f"expected a date YYYY-MM-DD, got {value!r}")
        try:
            return dt.date.fromisoformat(value).isoformat()
        except ValueError:
            raise ValueError(f"expected a date YYYY-MM-DD, got {value!r}") from None
    if not isinstance(value, str):
        raise ValueError(f"expected text, got {value!r}")
    return value


# --- evaluation -------------------------------------------------------------------------------


def evaluate(
    standard: Standard, answers: Mapping[str, Any], findings: Mapping[str, PhotoFindings]
) -> Verdict:
    """One result per item and per photo check, and the verdict they add up to."""
    results: list[CheckResult] = [_evaluate_item(item, answers.get(item.id)) for item in standard.items]
    for slot in standard.photos:
        photo = findings.get(slot.id)
        if photo is not None:
            results.append(_evaluate_photo_quality(slot, photo))
        for check in slot.checks:
            results.append(_evaluate_photo_check(slot, check, photo))
    return Verdict(verdict=_verdict(results), results=tuple(results), minor_defects=sum(
        1 for r in results if r.status is CheckStatus.FAIL and r.severity is Severity.MINOR))


def _verdict(results: list[CheckResult]) -> VerdictKind:
    serious = [r for r in results if r.severity in (Severity.CRITICAL, Severity.MAJOR)]
    if any(r.status is CheckStatus.FAIL for r in serious):
        return VerdictKind.FAIL
    if any(r.status is CheckStatus.INCONCLUSIVE for r in serious):
        return VerdictKind.REVIEW
    return VerdictKind.PASS


def _evaluate_item(item: Item, value: Any) -> CheckResult:
    base = dict(check_id=item.id, kind="item", slot=None, severity=item.severity, value=value, unit=item.unit)
    if value is None:
        return CheckResult(status=CheckStatus.NOT_APPLICABLE, message="not answered (optional)", **base)
    if item.type is ItemType.NUMBER:
        status = _within(value, item.min, item.max)
        if item.min is None and item.max is None:
            return CheckResult(status=CheckStatus.NOT_APPLICABLE, message="recorded", **base)
        return CheckResult(status=status, lower=item.min, upper=item.max,
                           message=_limit_message(item.prompt, value, item.unit, item.min, item.max, status), **base)
    if item.pass_if is None:
        return CheckResult(status=CheckStatus.NOT_APPLICABLE, message="recorded", **base)
    accepted = (item.pass_if,) if isinstance(item.pass_if, bool) else tuple(item.pass_if)
    ok = value in accepted
    shown = _yes_no(value)
    message = (f"{item.prompt}: {shown}" if ok
               else f"{item.prompt}: {shown}, must be {' or '.join(_yes_no(a) for a in accepted)}")
    return CheckResult(status=CheckStatus.PASS if ok else CheckStatus.FAIL, accepted=accepted, message=message, **base)


def _evaluate_photo_quality(slot: PhotoSlot, photo: PhotoFindings) -> CheckResult:
    """The photo itself is evidence: an unusable one (too dark, too small, ...) is never a silent pass."""
    base: dict[str, Any] = dict(check_id=slot.id, kind="photo", slot=slot.id,
                                severity=Severity.MAJOR if slot.required else Severity.MINOR)
    if photo.quality is None:
        return CheckResult(status=CheckStatus.NOT_APPLICABLE,
                           message=f"photo '{slot.id}' not checked: {photo.error or 'no quality gate ran'}", **base)
    if photo.quality.usable:
        return CheckResult(status=CheckStatus.PASS, message=f"photo '{slot.id}' passed the quality gate", **base)
    status = CheckStatus.FAIL if slot.on_unusable == "fail" else CheckStatus.INCONCLUSIVE
    return CheckResult(status=status, message=f"retake photo '{slot.id}': {photo.quality.retake_message}", **base)


def _evaluate_photo_check(
    slot: PhotoSlot, check: DimensionCheck | ModelCheck, photo: PhotoFindings | None
) -> CheckResult:
    base: dict[str, Any] = dict(check_id=check.id, kind=check.kind, slot=slot.id, severity=check.severity)
    if isinstance(check, DimensionCheck):
        base.update(unit=check.unit, lower=check.limits[0], upper=check.limits[1])
    if photo is None:
        return CheckResult(status=CheckStatus.NOT_APPLICABLE, message=f"no photo for '{slot.id}' (optional)", **base)
    if photo.quality is not None and not photo.quality.usable:
        return CheckResult(status=CheckStatus.INCONCLUSIVE,
                           message=f"retake photo '{slot.id}': {photo.quality.retake_message}", **base)
    if isinstance(check, DimensionCheck):
        return _evaluate_dimension(check, photo, base)
    return _evaluate_model(check, photo.model_result(check.model), base)


def _evaluate_dimension(check: DimensionCheck, photo: PhotoFindings, base: dict[str, Any]) -> CheckResult:
    m = photo.measurement(check.feature, check.index)
    if m is None:
        why = photo.error or f"{check.feature} could not be measured"
        return CheckResult(status=CheckStatus.INCONCLUSIVE, message=f"{check.id}: {why}", **base)
    lower, upper = check.limits
    name = check.feature.replace("_", " ") + (f" #{check.index}" if check.index > 1 else "")
    value_text = f"{name} {m.value:.2f} ± {m.uncertainty:.2f} {check.unit}"
    if check.decision_rule is DecisionRule.GUARDED:
        # ISO 14253-1: conformance is proven only inside the limits shrunk by U,
        # non-conformance only outside the limits widened by U; between, neither.
        if _within(m.value, _shift(lower, m.uncertainty), _shift(upper, -m.uncertainty)) is CheckStatus.PASS:
            status = CheckStatus.PASS
        elif _within(m.value, _shift(lower, -m.uncertainty), _shift(upper, m.uncertainty)) is CheckStatus.FAIL:
            status = CheckStatus.FAIL
        else:
            status = CheckStatus.INCONCLUSIVE
    else:
        status = _within(m.value, lower, upper)
    message = f"{value_text}; {_limits_text(lower, upper, check.unit)}"
    if status is CheckStatus.INCONCLUSIVE:
        message += "; the uncertainty straddles a limit — measure by hand or retake closer"
    return CheckResult(status=status, value=m.value, uncertainty=m.uncertainty, message=message,
                       **{**base, "unit": m.unit or check.unit})


def _evaluate_model(check: ModelCheck, result: ModelResult | None, base: dict[str, Any]) -> CheckResult:
    if result is None:
        return CheckResult(status=CheckStatus.INCONCLUSIVE,
                           message=f"model {check.model} not installed; a person must review this photo", **base)
    base["model_sha256"] = result.sha256
    if result.task == "anomaly":
        limit = check.max_score if check.max_score is not None else result.threshold
        if result.score is None or limit is None:
            return CheckResult(status=CheckStatus.INCONCLUSIVE,
                               message=f"model {check.model} gave no score or threshold", **base)
        ok = result.score < limit
        if ok and check.review_from is not None and result.score >= check.review_from:
            return CheckResult(status=CheckStatus.INCONCLUSIVE, value=result.score, upper=limit,
                               message=f"anomaly score {result.score:.2f} is borderline ({check.review_from:g} "
                               f"to {limit:g}) — a person must look at the surface", **base)
        return CheckResult(status=CheckStatus.PASS if ok else CheckStatus.FAIL, value=result.score, upper=limit,
                           message=f"anomaly score {result.score:.2f} {'<' if ok else '≥'} {limit:g}"
                           + ("" if ok else " — surface defect suspected"), **base)
    if result.task == "classification":
        ok = result.label in check.accept_labels
        return CheckResult(status=CheckStatus.PASS if ok else CheckStatus.FAIL, value=result.label,
                           accepted=check.accept_labels,
                           message=f"classified as '{result.label}' ({(result.score or 0):.0%})"
                           + ("" if ok else f"; accepted: {', '.join(check.accept_labels)}"), **base)
    hits = [d for d in result.detections if d.confidence >= check.min_confidence
            and (not check.reject_labels or d.label in check.reject_labels)]
    if hits:
        found = ", ".join(f"{d.label} {d.confidence:.0%}" for d in hits[:5])
        return CheckResult(status=CheckStatus.FAIL, value=len(hits), message=f"found {found}", **base)
    return CheckResult(status=CheckStatus.PASS, value=0, message="no defects detected", **base)


# --- small helpers ----------------------------------------------------------------------------


def _within(value: float, lower: float | None, upper: float | None) -> CheckStatus:
    if lower is not None and value < lower:
        return CheckStatus.FAIL
    if upper is not None and value > upper:
        return CheckStatus.FAIL
    return CheckStatus.PASS


def _shift(limit: float | None, by: float) -> float | None:
    return None if limit is None else limit + by


def _limits_text(lower: float | None, upper: float | None, unit: str | None) -> str:
    u = f" {unit}" if unit else ""
    if lower is not None and upper is not None:
        return f"accepted {lower:g}–{upper:g}{u}"
    if lower is not None:
        return f"accepted ≥ {lower:g}{u}"
    return f"accepted ≤ {upper:g}{u}"


def _limit_message(prompt: str, value: float, unit: str | None, lower: float | None, upper: float | None,
                   status: CheckStatus) -> str:
    u = f" {unit}" if unit else ""
    verdict = "" if status is CheckStatus.PASS else " — out of limits"
    return f"{prompt}: {value:g}{u}; {_limits_text(lower, upper, unit)}{verdict}"


def _yes_no(value: Any) -> str:
    if value is True:
        return "yes"
    if value is False:
        return "no"
    return str(value)
