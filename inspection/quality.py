"""Photo quality gate: is this photo good enough to measure and judge?

Each check yields a ``qc.findings.QualityMetric`` (value, limit, pass/fail and
retake advice a technician understands). Limits come from the standard's
photo slot (``QualityThresholds``) with the defaults below. Measured where the
quantity means something whatever the part looks like:

- sharpness: variance of the Laplacian on the card's markers, rectified to a
  fixed 6 px/mm and normalised to their contrast (a black part in the middle
  of the card does not make a photo look sharp or blurred);
- exposure: the white paper ring around the measuring area (dark = paper
  below grey 60; bright = clipped at 250+);
- glare: clipped, colourless spots in the measuring area well above the paper;
- tilt and resolution from the card's homography.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import cv2
import numpy as np

from inspection.card import CardDetection
from qc.findings import PhotoQuality, QualityMetric

__all__ = ["QualityLimits", "assess_quality", "DEFAULT_LIMITS"]

_SHARP_PPM = 6.0


@dataclass(frozen=True)
class QualityLimits:
    min_markers: int = 6
    min_px_per_mm: float = 5.0
    min_sharpness: float = 150.0
    max_dark_fraction: float = 0.2
    max_bright_fraction: float = 0.25
    max_glare_fraction: float = 0.02
    max_tilt_deg: float = 35.0
    min_pixels: int = 0
    min_sharpness_set: bool = False  # the standard named a sharpness limit

    @classmethod
    def from_slot(cls, slot: Any) -> QualityLimits:
        """Defaults overridden by a ``PhotoSlot``'s ``quality`` and ``min_pixels``."""
        over: dict[str, Any] = {}
        q = getattr(slot, "quality", None)
        for f in fields(cls):
            v = getattr(q, f.name, None) if q is not None else None
            if v is not None:
                over[f.name] = v
        over["min_sharpness_set"] = "min_sharpness" in over
        mp = getattr(slot, "min_pixels", 0) or 0
        if mp:
            over["min_pixels"] = int(mp)
        return cls(**over)


DEFAULT_LIMITS = QualityLimits()


def _metric(name: str, value: float, limit: float, kind: str, advice: str, fmt: str = "{:g}") -> QualityMetric:
    passed = value >= limit if kind == "min" else value <= limit
    need = "needs" if kind == "min" else "max"
    msg = "" if passed else f"{advice}; {name} {fmt.format(value)}, {need} {fmt.format(limit)}"
    return QualityMetric(name, round(float(value), 4), float(limit), kind, bool(passed), msg)  # type: ignore[arg-type]


def _gray(image: np.ndarray) -> np.ndarray:
    return image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)


def marker_sharpness(image: np.ndarray, det: CardDetection) -> float:
    """Median over markers of var(Laplacian) of the rectified marker, contrast-normalised."""
    assert det.layout is not None
    s = det.layout.marker_size
    m = 1.0  # mm of paper around the marker
    size = int(round((s + 2 * m) * _SHARP_PPM))
    vals = []
    items = sorted(det.corners.items())
    for mid, corners in items[:: max(1, len(items) // 6)]:  # six markers spread over the card suffice
        ideal = det.layout.marker_corners(mid)
        dst = (ideal - ideal[0] + m) * _SHARP_PPM - 0.5
        Hm = cv2.getPerspectiveTransform(corners.astype(np.float32), dst.astype(np.float32))
        patch = _gray(cv2.warpPerspective(image, Hm, (size, size), flags=cv2.INTER_LINEAR)).astype(np.float32)
        lo, hi = np.percentile(patch, 5), np.percentile(patch, 95)
        if hi - lo < 10:
            continue
        patch = (patch - lo) * (255.0 / (hi - lo))
        vals.append(float(cv2.Laplacian(patch, cv2.CV_32F, ksize=1).var()))
    return float(np.median(vals)) if vals else 0.0


def _paper_ring(image: np.ndarray, det: CardDetection) -> tuple[np.ndarray, np.ndarray]:
    """Grey levels of the paper between markers and measuring area, and of the area."""
    assert det.layout is not None and det.homography is not None
    lay = det.layout
    r = 2.0
    S = np.array([[r, 0, -0.5], [0, r, -0.5], [0, 0, 1]])
    w, h = int(lay.width * r), int(lay.height * r)
    H = det.homography
    if det.preview is not None:  # 2 px/mm needs no more than the detector's reduced copy
        image, H = det.preview, det.preview_homography()
    card = _gray(cv2.warpPerspective(image, S @ H, (w, h), flags=cv2.INTER_LINEAR))
    ring = np.zeros((h, w), bool)
    s = lay.marker_size
    ring[int(2 * r) : h - int(2 * r), int((s + 1) * r) : int((lay.area[0] - 1) * r)] = True
    ring[int(2 * r) : h - int(2 * r), int((lay.area[2] + 1) * r) : w - int((s + 1) * r)] = True
    x0, y0, x1, y1 = (int(v * r) for v in lay.area)
    return card[ring], card[y0:y1, x0:x1]


def assess_quality(image: np.ndarray, det: CardDetection | None, limits: QualityLimits = DEFAULT_LIMITS,
                   *, card: bool = True, pixels: int | None = None) -> PhotoQuality:
    """All gate metrics for one photo (``det`` from ``detect_card``; None when ``card`` is False).
    ``pixels``: the photo's full pixel count when ``image`` was decoded reduced."""
    h, w = image.shape[:2]
    out: list[QualityMetric] = []
    if limits.min_pixels:
        out.append(_metric("pixels", (pixels or h * w) / 1e6, limits.min_pixels / 1e6, "min",
                           "photo resolution too low — use the camera's full resolution", "{:.1f} MP"))
    if not card:
        gray = _gray(image)
        # Without the card there is no known target to judge focus by: sharpness is
        # checked only when the standard sets a limit for this slot.
        if limits.min_sharpness_set:
            sharp = float(cv2.Laplacian(gray, cv2.CV_32F).var())
            out.append(_metric("sharpness", sharp, limits.min_sharpness, "min",
                               "too blurred — hold the phone steady and tap to focus", "{:.0f}"))
        out.append(_metric("dark", float(np.mean(gray < 20)), limits.max_dark_fraction, "max",
                           "too dark — add light", "{:.0%}"))
        out.append(_metric("bright", float(np.mean(gray >= 250)), limits.max_bright_fraction, "max",
                           "overexposed — avoid direct light or the flash", "{:.0%}"))
        return PhotoQuality(tuple(out))
    found = 0 if det is None or not det.found else det.markers_found
    out.append(_metric("card_markers", found, limits.min_markers, "min",
                       "calibration card not found — lay the part on the card and keep the whole card, "
                       "with all its black squares, in the photo", "{:.0f}"))
    if det is None or not det.found:
        return PhotoQuality(tuple(out))
    out.append(_metric("resolution", det.px_per_mm, limits.min_px_per_mm, "min",
                       "too far away or photo too small — move closer so the card fills the photo",
                       "{:.1f} px/mm"))
    out.append(_metric("sharpness", marker_sharpness(image, det), limits.min_sharpness, "min",
                       "too blurred — hold the phone steady and tap the card to focus", "{:.0f}"))
    ring, area = _paper_ring(image, det)
    dark = float(np.mean(ring < 60)) if ring.size else 1.0
    bright = float(np.mean(ring >= 250)) if ring.size else 0.0
    out.append(_metric("dark", dark, limits.max_dark_fraction, "max",
                       "too dark — add light or move to a brighter place", "{:.0%}"))
    out.append(_metric("bright", bright, limits.max_bright_fraction, "max",
                       "overexposed — move out of direct sunlight or turn off the flash", "{:.0%}"))
    paper = float(np.median(ring)) if ring.size else 255.0
    glare = float(np.mean((area >= 250) & (area > paper + 15))) if area.size else 0.0
    out.append(_metric("glare", glare, limits.max_glare_fraction, "max",
                       "glare on the card or part — change the angle or move the lamp to remove "
                       "the bright reflection", "{:.1%}"))
    out.append(_metric("tilt", det.tilt_deg, limits.max_tilt_deg, "max",
                       "phone tilted too much — hold it parallel to the card, straight above it",
                       "{:.0f}°"))
    return PhotoQuality(tuple(out))
