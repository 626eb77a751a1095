"""Dimensional measurement of a flat part lying on the calibration card.

1. Rectify the measuring area to a metric image (``r`` px per mm) with the
   card homography.
2. Segment: the part is whatever is darker or more saturated than the white
   card (the per-pixel minimum of B, G, R), after dividing out the lighting
   (a quadratic surface fitted to the card's background).
3. Edges to sub-pixel: each boundary pixel is moved along the intensity
   gradient to where the normalised profile crosses half-way between part and
   card level (the unbiased edge of a blurred step).
4. Features from the edge points: length/width (minimum-area rectangle),
   area (polygon), diameter (circle fit), holes (inner contours, circle fits).

Every measurement carries an expanded uncertainty U (k = 2) combining the
homography fit (propagated from the marker-corner residuals), the random and
systematic edge localisation, and the print-scale tolerance of the card.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import cv2
import numpy as np
from scipy import ndimage

from inspection.card import PRINT_SCALE_TOLERANCE, CardDetection
from qc.findings import Feature, Measurement

__all__ = ["Circle", "PartGeometry", "PartMeasurement", "MeasureError", "measure_part", "fit_circle"]

MIN_HOLE_DIAMETER_MM = 1.0
_LEVEL_UNCERTAINTY = 0.03  # std. uncertainty of the half-way level, fraction of the contrast
_EDGE_CORRELATION_PX = 4.0  # neighbouring edge points are not independent (blur, JPEG blocks)


class MeasureError(Exception):
    """The photo is usable but no part can be measured (message for the technician)."""


@dataclass(frozen=True)
class Circle:
    cx: float  # mm, card coordinates
    cy: float
    r: float
    rms: float  # RMS radial residual of the edge points, mm
    n: int  # edge points


@dataclass(frozen=True)
class PartGeometry:
    """Where things are, in card mm (for overlays)."""

    outline: np.ndarray  # N x 2, sub-pixel outer edge
    rect: tuple[tuple[float, float], tuple[float, float], float]  # minAreaRect in mm
    outer_circle: Circle
    holes: tuple[Circle, ...]  # largest first


@dataclass(frozen=True)
class PartMeasurement:
    measurements: tuple[Measurement, ...]
    geometry: PartGeometry
    px_per_mm: float  # of the rectified image
    rectified: np.ndarray = field(repr=False)  # BGR, the measuring area
    origin: tuple[float, float] = (0.0, 0.0)  # card mm of the rectified image's corner

    def get(self, feature: str, index: int = 1) -> Measurement | None:
        for m in self.measurements:
            if m.feature == feature and m.index == index:
                return m
        return None


def rectify(image: np.ndarray, det: CardDetection, r: float,
            inset: float = 1.0) -> tuple[np.ndarray, tuple[float, float]]:
    """Measuring area as a metric image; pixel (u, v) centre = origin + ((u, v) + 0.5) / r mm."""
    assert det.layout is not None and det.homography is not None
    x0, y0, x1, y1 = det.layout.area
    x0, y0, x1, y1 = x0 + inset, y0 + inset, x1 - inset, y1 - inset
    S = np.array([[r, 0, -x0 * r - 0.5], [0, r, -y0 * r - 0.5], [0, 0, 1]])
    size = (int(round((x1 - x0) * r)), int(round((y1 - y0) * r)))
    out = cv2.warpPerspective(image, S @ det.homography, size, flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_REPLICATE)
    return out, (x0, y0)


def _fit_background(c: np.ndarray, bg: np.ndarray) -> np.ndarray:
    """Quadratic lighting surface fitted to background pixels (subsampled)."""
    h, w = c.shape
    step = max(1, int(math.sqrt(h * w / 40_000)))
    ys, xs = np.mgrid[0:h:step, 0:w:step]
    sel = bg[::step, ::step]
    x, y = xs[sel] / w - 0.5, ys[sel] / h - 0.5
    A = np.column_stack([np.ones_like(x), x, y, x * x, x * y, y * y])
    coef, *_ = np.linalg.lstsq(A, c[::step, ::step][sel], rcond=None)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    xx, yy = xx / w - 0.5, yy / h - 0.5
    surf = coef[0] + coef[1] * xx + coef[2] * yy + coef[3] * xx * xx + coef[4] * xx * yy + coef[5] * yy * yy
    return np.maximum(surf.astype(np.float32), 1.0)


def _normalise(rect: np.ndarray) -> tuple[np.ndarray, float]:
    """Card -> ~1, part -> its relative darkness; returns (image, half-way level)."""
    c = rect.min(axis=2).astype(np.float32) if rect.ndim == 3 else rect.astype(np.float32)
    small = cv2.GaussianBlur(c, (0, 0), 1.0)
    t, _ = cv2.threshold(small.astype(np.uint8), 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    bg = small > t
    for _ in range(2):
        light = _fit_background(c, bg)
        n = c / light
        part_level = float(np.median(n[~bg])) if (~bg).any() else 0.0
        level = (1.0 + part_level) / 2
        bg = cv2.GaussianBlur(n, (0, 0), 1.0) > level
    return n, level


def _subpixel_edges(n: np.ndarray, grad: tuple[np.ndarray, np.ndarray], contour: np.ndarray,
                    level: float) -> tuple[np.ndarray, np.ndarray]:
    """Move boundary pixels to the level crossing along the gradient; also return the slope."""
    pts = contour.reshape(-1, 2).astype(np.float64)
    gy, gx = grad
    xi, yi = pts[:, 0].astype(int), pts[:, 1].astype(int)
    d = np.stack([gx[yi, xi], gy[yi, xi]], axis=1)
    norm = np.linalg.norm(d, axis=1, keepdims=True)
    ok = norm[:, 0] > 1e-6
    d = np.where(ok[:, None], d / np.maximum(norm, 1e-12), 0.0)
    ts = np.arange(-3.0, 3.01, 0.25)
    sx = pts[:, 0:1] + d[:, 0:1] * ts[None, :]
    sy = pts[:, 1:2] + d[:, 1:2] * ts[None, :]
    prof = ndimage.map_coordinates(n, [sy.ravel(), sx.ravel()], order=1, mode="nearest").reshape(sx.shape)
    above = prof >= level
    # first crossing from below to above, nearest to the start pixel
    cross = (~above[:, :-1]) & above[:, 1:]
    idx = np.where(cross.any(axis=1), np.argmax(cross, axis=1), -1)
    good = ok & (idx >= 0)
    i = np.clip(idx, 0, len(ts) - 2)
    rows = np.arange(len(pts))
    p0, p1 = prof[rows, i], prof[rows, i + 1]
    frac = np.clip((level - p0) / np.maximum(p1 - p0, 1e-9), 0, 1)
    t = ts[i] + frac * (ts[1] - ts[0])
    slope = (p1 - p0) / (ts[1] - ts[0])
    out = pts + d * t[:, None]
    return out[good], slope[good]


def fit_circle(pts: np.ndarray) -> tuple[float, float, float, float]:
    """Least-squares circle: algebraic (Kasa) start, then geometric Gauss-Newton.
    Returns cx, cy, r, RMS radial residual."""
    x, y = pts[:, 0], pts[:, 1]
    mx, my = x.mean(), y.mean()
    u, v = x - mx, y - my
    A = np.column_stack([u, v, np.ones_like(u)])
    b = u * u + v * v
    sol, *_ = np.linalg.lstsq(A, b, rcond=None)
    cx, cy = sol[0] / 2, sol[1] / 2
    r = math.sqrt(max(sol[2] + cx * cx + cy * cy, 1e-12))
    for _ in range(10):
        dx, dy = u - cx, v - cy
        dist = np.hypot(dx, dy)
        dist = np.maximum(dist, 1e-12)
        res = dist - r
        J = np.column_stack([-dx / dist, -dy / dist, -np.ones_like(dist)])
        step, *_ = np.linalg.lstsq(J, -res, rcond=None)
        cx, cy, r = cx + step[0], cy + step[1], r + step[2]
        if np.abs(step).max() < 1e-9:
            break
    res = np.hypot(u - cx, v - cy) - r
    return float(cx + mx), float(cy + my), float(abs(r)), float(np.sqrt(np.mean(res * res)))


def _polygon_area(p: np.ndarray) -> float:
    x, y = p[:, 0], p[:, 1]
    return float(0.5 * abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))


class _Budget:
    """Combines the standard uncertainties of one detection into U (k = 2)."""

    def __init__(self, det: CardDetection, img_ppm: float) -> None:
        self.det = det
        self.img_ppm = img_ppm  # photo px per mm at the part
        n = max(8, 4 * det.markers_found)
        # homography: a point's transferred-position std. uncertainty (mm) ~ sigma * sqrt(dof / n)
        sigma = det.reprojection_mm * math.sqrt(2 * n / max(1, 2 * n - 8))
        self.u_point = sigma * math.sqrt(8 / n)

    def expand(self, *u: float) -> float:
        return 2.0 * math.sqrt(sum(x * x for x in u))

    def print_scale(self, value: float) -> float:
        return abs(value) * PRINT_SCALE_TOLERANCE / math.sqrt(3)

    def edge_bias(self, slope_per_px: float, r: float) -> float:
        """Std. uncertainty (mm) of an edge's position from the level's uncertainty.
        ``slope_per_px`` is the normalised profile's slope in rectified px."""
        contrast_px = _LEVEL_UNCERTAINTY / max(slope_per_px, 1e-3)
        floor = 0.05 / self.img_ppm  # resampling and JPEG, 0.05 photo px
        return math.hypot(contrast_px / r, floor)


def measure_part(image: np.ndarray, det: CardDetection, *, max_px_per_mm: float = 14.0) -> PartMeasurement:
    """Measure the one part on the card. Raises MeasureError with advice when it cannot."""
    if not det.found or det.layout is None:
        raise MeasureError("calibration card not found")
    r = float(np.clip(det.px_per_mm, 4.0, max_px_per_mm))
    rect, origin = rectify(image, det, r)
    n, level = _normalise(rect)
    mask = (cv2.GaussianBlur(n, (0, 0), 0.7) < level).astype(np.uint8)
    mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    if count <= 1:
        raise MeasureError("no part found on the card — place the part inside the measuring area")
    k = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    area_px = stats[k, cv2.CC_STAT_AREA]
    if area_px < (3 * r) ** 2:
        raise MeasureError("no part found on the card — place the part inside the measuring area")
    x, y, w, h = stats[k, :4]
    H, W = mask.shape
    if x <= 1 or y <= 1 or x + w >= W - 1 or y + h >= H - 1:
        raise MeasureError("the part touches the edge of the measuring area — move it to the middle")
    part = (labels == k).astype(np.uint8)
    contours, hier = cv2.findContours(part, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_NONE)
    smooth = cv2.GaussianBlur(n, (0, 0), 1.0)
    grad = (cv2.Sobel(smooth, cv2.CV_32F, 0, 1, ksize=3), cv2.Sobel(smooth, cv2.CV_32F, 1, 0, ksize=3))
    ox, oy = origin

    def to_mm(p: np.ndarray) -> np.ndarray:
        return np.column_stack([ox + (p[:, 0] + 0.5) / r, oy + (p[:, 1] + 0.5) / r])

    outer_i = max(range(len(contours)), key=lambda i: len(contours[i]) if hier[0][i][3] < 0 else -1)
    outer_px, outer_slope = _subpixel_edges(n, grad, contours[outer_i], level)
    outer = to_mm(outer_px)
    holes: list[tuple[Circle, float, float]] = []  # circle, area, slope
    for i, c in enumerate(contours):
        if hier[0][i][3] != outer_i or len(c) < 12:
            continue
        hp, hs = _subpixel_edges(n, grad, c, level)
        if len(hp) < 12:
            continue
        hmm = to_mm(hp)
        a = _polygon_area(hmm)
        if 2 * math.sqrt(a / math.pi) < MIN_HOLE_DIAMETER_MM:
            continue
        cx, cy, rad, rms = fit_circle(hmm)
        holes.append((Circle(cx, cy, rad, rms, len(hmm)), a, float(np.median(hs))))
    holes.sort(key=lambda t: -t[0].r)

    img_ppm = det.px_per_mm
    budget = _Budget(det, img_ppm)
    ms: list[Measurement] = []
    slope = float(np.median(outer_slope))
    u_edge = budget.edge_bias(slope, r)
    # Local edge noise: scatter of points about a smoothed outline.
    nb = 5
    kernel = np.ones(2 * nb + 1) / (2 * nb + 1)
    sm = np.column_stack([np.convolve(np.pad(outer[:, j], nb, mode="wrap"), kernel, "valid")
                          for j in range(2)])
    scatter = float(np.sqrt(np.mean(np.sum((outer - sm) ** 2, axis=1))))

    (rcx, rcy), (rw, rh), ang = cv2.minAreaRect(outer.astype(np.float32))
    length, width = max(rw, rh), min(rw, rh)
    for feat, val in ((Feature.LENGTH, length), (Feature.WIDTH, width)):
        # two opposite edges: systematic level bias adds, extremes add noise, homography
        U = budget.expand(2 * u_edge, 2 * scatter, math.sqrt(2) * budget.u_point, budget.print_scale(val))
        ms.append(Measurement(feat.value, round(float(val), 4), round(U, 4)))

    hole_area = sum(a for _, a, _ in holes)
    outer_area = _polygon_area(outer)
    perim = float(np.sum(np.linalg.norm(np.diff(outer, axis=0, append=outer[:1]), axis=1)))
    area = outer_area - hole_area
    u_area = math.hypot(perim * u_edge, 2 * budget.print_scale(area))
    ms.append(Measurement(Feature.AREA.value, round(area, 3),
                          round(budget.expand(u_area, perim * budget.u_point / math.sqrt(len(outer) / 8)), 3),
                          unit="mm2"))

    cx, cy, rad, rms = fit_circle(outer)
    outer_circle = Circle(cx, cy, rad, rms, len(outer))
    n_eff = max(1.0, len(outer) / (_EDGE_CORRELATION_PX * r / img_ppm + 1))
    d = 2 * rad
    U = budget.expand(2 * u_edge, 2 * rms / math.sqrt(n_eff), math.sqrt(2) * budget.u_point,
                      budget.print_scale(d))
    ms.append(Measurement(Feature.DIAMETER.value, round(d, 4), round(U, 4)))

    ms.append(Measurement(Feature.HOLE_COUNT.value, float(len(holes)), 0.0, unit="count"))
    for idx, (c, _a, hslope) in enumerate(holes, start=1):
        he = budget.edge_bias(hslope, r)
        ne = max(1.0, c.n / (_EDGE_CORRELATION_PX * r / img_ppm + 1))
        hd = 2 * c.r
        U = budget.expand(2 * he, 2 * c.rms / math.sqrt(ne), math.sqrt(2) * budget.u_point,
                          budget.print_scale(hd))
        ms.append(Measurement(Feature.HOLE_DIAMETER.value, round(hd, 4), round(U, 4), index=idx))
    if len(holes) >= 2:
        a, b = holes[0][0], holes[1][0]
        sp = math.hypot(a.cx - b.cx, a.cy - b.cy)
        u_c = math.hypot(a.rms / math.sqrt(max(1, a.n / 4)), b.rms / math.sqrt(max(1, b.n / 4)))
        U = budget.expand(u_c, math.sqrt(2) * budget.u_point, budget.print_scale(sp),
                          0.05 / img_ppm)
        ms.append(Measurement(Feature.HOLE_SPACING.value, round(sp, 4), round(U, 4)))

    geo = PartGeometry(outer, ((float(rcx), float(rcy)), (float(rw), float(rh)), float(ang)),
                       outer_circle, tuple(c for c, _, _ in holes))
    return PartMeasurement(tuple(ms), geo, r, rect, origin)
