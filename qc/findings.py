"""What ``inspection`` tells ``qc`` about one photo: plain values, no arrays.

These are the only inputs ``qc.evaluate`` takes from vision. Everything is
frozen and JSON-friendly (see ``to_dict``) so records can be hashed.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any, Literal

__all__ = [
    "Feature",
    "Measurement",
    "QualityMetric",
    "PhotoQuality",
    "Detection",
    "ModelResult",
    "PhotoFindings",
]


class Feature(StrEnum):
    """Dimensional features a standard may name (see inspection/measure.py)."""

    LENGTH = "length"  # long side of the minimum-area rectangle, mm
    WIDTH = "width"  # short side of the minimum-area rectangle, mm
    AREA = "area"  # mm2
    DIAMETER = "diameter"  # outer circle fit, mm
    HOLE_COUNT = "hole_count"  # count
    HOLE_DIAMETER = "hole_diameter"  # n-th largest hole (index, 1-based), mm
    HOLE_SPACING = "hole_spacing"  # centre distance of the two largest holes, mm


@dataclass(frozen=True)
class Measurement:
    feature: str
    value: float
    uncertainty: float  # expanded uncertainty U (k = 2), same unit as value
    unit: str = "mm"
    index: int = 1  # n-th largest, for hole_diameter

    def __post_init__(self) -> None:
        if self.uncertainty < 0:
            raise ValueError(f"uncertainty must be >= 0, got {self.uncertainty}")
        if self.index < 1:
            raise ValueError(f"index is 1-based, got {self.index}")


@dataclass(frozen=True)
class QualityMetric:
    """One quality-gate measurement, its limit and the advice if it fails."""

    name: str  # card_found, resolution, sharpness, dark, bright, glare, tilt, ...
    value: float
    limit: float
    kind: Literal["min", "max"]  # value must be >= limit (min) or <= limit (max)
    passed: bool
    message: str = ""  # retake advice a technician understands, when failed


@dataclass(frozen=True)
class PhotoQuality:
    metrics: tuple[QualityMetric, ...] = ()

    @property
    def usable(self) -> bool:
        return all(m.passed for m in self.metrics)

    @property
    def retake_message(self) -> str | None:
        failed = [m.message or f"{m.name} {m.value:g} (limit {m.limit:g})" for m in self.metrics if not m.passed]
        return "; ".join(failed) if failed else None


@dataclass(frozen=True)
class Detection:
    label: str
    confidence: float
    box: tuple[float, float, float, float]  # x1, y1, x2, y2 in image pixels


@dataclass(frozen=True)
class ModelResult:
    """What one model said about one photo, naming the exact model file."""

    model: str  # "name@version"
    sha256: str  # of the ONNX file that ran
    task: str  # anomaly | classification | detection
    score: float | None = None  # anomaly score (>= threshold means defect); top probability
    label: str | None = None  # anomaly: good/defect; classification: top label
    threshold: float | None = None
    probabilities: tuple[tuple[str, float], ...] = ()  # classification
    detections: tuple[Detection, ...] = ()  # detection


@dataclass(frozen=True)
class PhotoFindings:
    """Everything vision found on one photo slot."""

    slot: str
    quality: PhotoQuality | None = None  # None when the gate did not run
    measurements: tuple[Measurement, ...] = ()
    models: tuple[ModelResult, ...] = ()
    error: str | None = None  # why measuring failed (e.g. "no part found on the card")
    extra: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def measurement(self, feature: str, index: int = 1) -> Measurement | None:
        for m in self.measurements:
            if m.feature == feature and m.index == index:
                return m
        return None

    def model_result(self, ref: str) -> ModelResult | None:
        for r in self.models:
            if r.model == ref:
                return r
        return None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
