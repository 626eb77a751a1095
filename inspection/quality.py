"""Photo quality gate: is this photo good enough for the checks of its slot?

Each check yields a ``qc.findings.QualityMetric`` (value, limit, pass/fail and
retake advice a technician understands). Limits come from the standard's
photo slot (``QualityThresholds``) with the defaults below;
``bench/quality_gate.py`` measures them against outcomes (false and missed
retakes) and calibrates them. Each quantity is judged where it changes the result:

- sharpness: variance of the Laplacian on the card's markers, rectified to a
  fixed 6 px/mm and normalised to their contrast (the markers lie in the flat
  part's plane; a black part does not make a photo look sharp or blurred);
- dark / bright / glare on the part (``part_light``): for dimension checks its
  edges — an edge too faint to locate (dark); paper clipped beside the edge
  while clipping moves dark edges, which the markers' edges show against
  where they are printed (``marker_edge_shift``), since it moves the half-way
  level the measurer finds (bright); for model checks its surface — crushed
  blacks (dark) and clipped pixels (bright); on both, a reflection's halo on
  the part (glare). White paper that clips is otherwise no reason to retake;
- tilt and resolution from the card's homography.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import cv2
import numpy as np

from inspection.card import CardDetection
from inspection.measure import rectify
from qc.findings import PhotoQuality, QualityMetric

__all__ = ["QualityLimits", "assess_quality", "DEFAULT_LIMITS", "PartLight", "part_light"]

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


# Where a photo's light matters is the part: its edges for dimension checks
# (a faint edge is lost in noise; paper that clips moves the half-way level the
# measurer locates towards the part) and its surface for model checks. White
# paper at 255 costs nothing while its clipping stays clear of the edge.
_VIEW_PPM = 2.0  # rectified view that finds the part (px/mm; its edges are read in the photo)
_PROFILE_POINTS = 240
_PROFILE_HALF = 14.0  # photo px sampled each side of the outline
_PROFILE_STEP = 0.25
_CLIP = 250.0  # grey level taken as clipped
# Clipped paper beside the part's edge counts when clipping moves the markers'
# edges (marker_edge_shift) further than this, mm.
_MAX_CLIP_SHIFT_MM = 0.03
_MIN_EDGE_CONTRAST = 30.0  # grey levels between the part and the paper beside it
_CRUSHED = 15.0  # part surface below this grey level shows no detail
_GLARE_LEVEL = 0.35  # a glare halo: part pixels this fraction of the contrast above the part


@dataclass(frozen=True)
class PartLight:
    """Light on the part as the measurer and the models see it (rectified measuring area)."""

    found: bool
    clipped_edges: float = 0.0  # fraction of outline profiles clipped within the edge transition
    faint_edges: float = 0.0  # fraction of outline profiles with contrast below _MIN_EDGE_CONTRAST
    crushed: float = 0.0  # fraction of the part's surface below _CRUSHED
    clipped_surface: float = 0.0  # fraction of the part's surface clipped
    glare: float = 0.0  # fraction of the part's surface lit well above the part (a reflection)
    paper_dark: float = 0.0  # fraction of the area's paper below grey 60 (used when no part is found)
    clipped_paper: float = 0.0  # fraction of the outline whose paper side clips
    marker_shift: float = 0.0  # marker_edge_shift, mm
    contrast_q20: float = 255.0  # 20th percentile of the profiles' contrast (grey levels)


def _crossing(prof: np.ndarray, level: np.ndarray, start: np.ndarray) -> np.ndarray:
    """Per row, the first sub-sample position at or after ``start`` where ``prof`` reaches ``level`` (inf: never)."""
    idx = np.arange(prof.shape[1])[None, :]
    ge = (prof >= level[:, None]) & (idx >= start[:, None])
    hit = ge.any(axis=1)
    j = np.where(hit, ge.argmax(axis=1), 0)
    rows = np.arange(len(prof))
    jm = np.maximum(j - 1, 0)
    p0, p1 = prof[rows, jm], prof[rows, j]
    frac = np.where((j > 0) & (p1 > p0), (level - p0) / np.maximum(p1 - p0, 1e-6), 0.0)
    pos = np.where(j > 0, jm + np.clip(frac, 0.0, 1.0), 0.0).astype(np.float64)
    return np.where(hit, pos, np.inf)


def marker_edge_shift(image: np.ndarray, det: CardDetection) -> float:
    """How far (mm) the markers' black edges appear inside where they are printed.

    Paper that clips moves the half-way level of every dark-on-white edge towards the
    dark side, by an amount that grows with how far over the paper is and with the
    blur — the very error it causes on a dark part's edges. The markers are dark
    squares at known places: the homography rests on their centres, which clipping
    does not move, so their edges' shift is measured, not guessed. Median over the
    edge of each marker that faces the card's middle (the others may border the table).
    """
    assert det.layout is not None and det.homography is not None
    lay = det.layout
    to_img = det.inverse
    centre = np.array([lay.width / 2, lay.height / 2])
    ppm = det.px_per_mm
    ts = np.arange(-min(2.0, lay.marker_size / 8) * ppm, 2.0 * ppm + 1e-9, _PROFILE_STEP)  # black -> paper, px
    shifts = []
    for mid in sorted(det.corners):
        q = lay.marker_corners(mid)
        edges = [(q[i], q[(i + 1) % 4]) for i in range(4)]
        a, b = min(edges, key=lambda e: float(np.linalg.norm((e[0] + e[1]) / 2 - centre)))
        along = (b - a) / np.linalg.norm(b - a)
        out = np.array([-along[1], along[0]])
        if np.dot((a + b) / 2 - q.mean(axis=0), out) < 0:
            out = -out
        mm = a[None, :] + np.linspace(0.25, 0.75, 6)[:, None] * (b - a)[None, :]
        p0 = cv2.perspectiveTransform(mm.reshape(-1, 1, 2), to_img).reshape(-1, 2)
        p1 = cv2.perspectiveTransform((mm + 0.1 * out).reshape(-1, 1, 2), to_img).reshape(-1, 2)
        nrm = (p1 - p0) / np.maximum(np.linalg.norm(p1 - p0, axis=1, keepdims=True), 1e-9)
        xy = (p0[:, None, :] + ts[None, :, None] * nrm[:, None, :]).astype(np.float32)
        smp = cv2.remap(image, xy[..., 0], xy[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        prof = (smp.min(axis=2) if smp.ndim == 3 else smp).astype(np.float64)
        lo, hi = prof.min(axis=1), prof.max(axis=1)
        x = _crossing(prof, (lo + hi) / 2, np.zeros(len(prof), int))
        good = np.isfinite(x) & (hi - lo > _MIN_EDGE_CONTRAST)
        # crossing sample -> px from the printed edge (ts[0] is the first sample); + = into the paper
        shifts.extend((ts[0] + x[good] * _PROFILE_STEP) / ppm)
    return float(-np.median(shifts)) if shifts else 0.0


def part_light(image: np.ndarray, det: CardDetection) -> PartLight:
    """Find the part on the rectified measuring area (the measurer's 4 px/mm view), then
    read its edges across the outline in the photo itself, where their blur is."""
    assert det.homography is not None
    r = float(min(_VIEW_PPM, det.px_per_mm))
    rect, origin = rectify(image, det, r)
    c = (cv2.min(cv2.min(rect[..., 0], rect[..., 1]), rect[..., 2]) if rect.ndim == 3 else rect)
    c = c.astype(np.float32)  # darkest channel, as the measurer segments
    small = cv2.GaussianBlur(c, (0, 0), 1.0)
    t, _ = cv2.threshold(np.clip(small, 0, 255).astype(np.uint8), 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    mask = cv2.morphologyEx((small < t).astype(np.uint8), cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    paper = c[mask == 0]
    paper_dark = float(np.mean(paper < 60)) if paper.size else 1.0
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    if not contours:
        return PartLight(False, paper_dark=paper_dark)
    outline = max(contours, key=cv2.contourArea)
    if cv2.contourArea(outline) < (3 * r) ** 2 or len(outline) < 24:
        return PartLight(False, paper_dark=paper_dark)
    pts = outline.reshape(-1, 2).astype(np.float64)
    n = len(pts)
    sel = np.linspace(0, n, min(_PROFILE_POINTS, n), endpoint=False).astype(int)
    tangent = pts[(sel + 3) % n] - pts[(sel - 3) % n]
    tangent /= np.maximum(np.linalg.norm(tangent, axis=1, keepdims=True), 1e-9)
    normal = np.column_stack([tangent[:, 1], -tangent[:, 0]])
    # outline points and their normals, rectified px -> card mm -> photo px
    to_img = det.inverse
    mm = np.asarray(origin) + (pts[sel] + 0.5) / r
    p0 = cv2.perspectiveTransform(mm.reshape(-1, 1, 2), to_img).reshape(-1, 2)
    p1 = cv2.perspectiveTransform((mm + 0.1 * normal).reshape(-1, 1, 2), to_img).reshape(-1, 2)
    nrm = (p1 - p0) / np.maximum(np.linalg.norm(p1 - p0, axis=1, keepdims=True), 1e-9)
    ts = np.arange(-_PROFILE_HALF, _PROFILE_HALF + 1e-9, _PROFILE_STEP)  # photo px
    xy = (p0[:, None, :] + ts[None, :, None] * nrm[:, None, :]).astype(np.float32)
    sampled = cv2.remap(image, xy[..., 0], xy[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    prof = (sampled.min(axis=2) if sampled.ndim == 3 else sampled).astype(np.float64)
    flip = prof[:, :8].mean(axis=1) > prof[:, -8:].mean(axis=1)  # run each profile part -> paper
    prof[flip] = prof[flip, ::-1]
    lo = np.median(prof[:, :12], axis=1)
    hi = np.max(prof[:, prof.shape[1] // 2:], axis=1)
    contrast = hi - lo
    zero = np.zeros(len(prof), int)
    x20 = _crossing(prof, lo + 0.2 * contrast, zero)
    xc = _crossing(prof, lo + 0.5 * contrast, zero)  # where the measurer puts the edge
    ok = np.isfinite(xc) & np.isfinite(x20)
    width = np.where(ok, np.maximum(xc - x20, 1.0), 0.0) * (_PROFILE_STEP / det.px_per_mm)  # mm
    shift = marker_edge_shift(image, det) if bool(np.any(hi >= _CLIP)) else 0.0
    clipped = (hi >= _CLIP) & (shift > _MAX_CLIP_SHIFT_MM)
    faint = contrast < _MIN_EDGE_CONTRAST
    # The part's surface: inside the outline, clear of the edge transitions (and of holes' edges).
    filled = np.zeros_like(mask)
    cv2.drawContours(filled, [outline], -1, 1, thickness=-1)
    band = int(np.ceil(3 * float(np.median(width[ok])) * r if ok.any() else 3)) + 2
    edges = cv2.Canny(mask * 255, 50, 150)
    inner = cv2.erode(filled, np.ones((2 * band + 1, 2 * band + 1), np.uint8)) & \
        (cv2.dilate(edges, np.ones((2 * band + 1, 2 * band + 1), np.uint8)) == 0)
    surface = (inner > 0) & (mask > 0)  # the part itself, clear of edges; holes excluded
    if not surface.any():
        surface = filled > 0
    part_level = float(np.median(c[surface]))
    paper_level = float(np.median(paper)) if paper.size else 255.0
    # A reflection's soft halo is dark enough to pass for part yet lit far above it; a
    # through-hole has a sharp edge (excluded with the edge band) and no halo.
    halo = part_level + _GLARE_LEVEL * max(paper_level - part_level, 1.0)
    return PartLight(
        True,
        clipped_edges=float(np.mean(clipped)),
        faint_edges=float(np.mean(faint)),
        crushed=float(np.mean(c[surface] < _CRUSHED)),
        clipped_surface=float(np.mean(c[inner > 0] >= _CLIP)) if inner.any() else 0.0,
        glare=float(np.mean(c[surface] > halo)),
        paper_dark=paper_dark,
        clipped_paper=float(np.mean(hi >= _CLIP)),
        marker_shift=shift,
        contrast_q20=float(np.percentile(contrast, 20)),
    )


def assess_quality(image: np.ndarray, det: CardDetection | None, limits: QualityLimits = DEFAULT_LIMITS,
                   *, card: bool = True, pixels: int | None = None, measure: bool = True,
                   models: bool = False) -> PhotoQuality:
    """All gate metrics for one photo (``det`` from ``detect_card``; None when ``card`` is False).
    ``pixels``: the photo's full pixel count when ``image`` was decoded reduced.
    ``measure`` / ``models``: the slot has dimension / model checks (light is judged on
    the part's edges for the first, on its surface for the second; a slot with neither
    is judged as for models)."""
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
    pl = part_light(image, det)
    edges, surface = measure, models or not measure
    if not pl.found:  # nothing on the card to judge by: only a dim card is reason to retake
        dark, bright, glare = pl.paper_dark, 0.0, 0.0
    else:
        dark = max(pl.faint_edges if edges else 0.0, pl.crushed if surface else 0.0)
        bright = max(pl.clipped_edges if edges else 0.0, pl.clipped_surface if surface else 0.0)
        glare = pl.glare
    out.append(_metric("dark", dark, limits.max_dark_fraction, "max",
                       "too dark — add light or move to a brighter place", "{:.0%}"))
    out.append(_metric("bright", bright, limits.max_bright_fraction, "max",
                       "overexposed — move out of direct sunlight or turn off the flash", "{:.0%}"))
    out.append(_metric("glare", glare, limits.max_glare_fraction, "max",
                       "glare on the card or part — change the angle or move the lamp to remove "
                       "the bright reflection", "{:.1%}"))
    out.append(_metric("tilt", det.tilt_deg, limits.max_tilt_deg, "max",
                       "phone tilted too much — hold it parallel to the card, straight above it",
                       "{:.0f}°"))
    return PhotoQuality(tuple(out))
