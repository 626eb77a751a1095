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

Uncertainty budget
------------------
Every measurement carries an expanded uncertainty U (k = 2),

    U = 2 * sqrt( sum_i (c[f, i] * x_i)^2 + (s * size * PRINT_SCALE_U)^2 )

(s = 2 for area, else 1) with one coefficient c per feature f and term i. The
terms x_i (``PartMeasurement.budget``) are computed from this photo, in mm
(for area, times the perimeter):

- ``edge``: 1 / slope of the normalised edge profile (mm per unit of contrast):
  how far an edge moves for an error in the half-way level; grows with blur and
  falls with contrast.
- ``pixel``: one photo pixel at the part (resolution; interpolation, JPEG).
- ``noise``: scatter of the edge points about the fitted shape over the root of
  the number of independent points (neighbours within the blur count as one).
- ``homography``: a point's position error transferred through the card fit,
  from the marker corners' residual (``reprojection_mm``) and their number.
- ``scale``: the same per 100 mm of the feature: the fit's scale error, which
  grows with the feature (twice, relative, for an area).
- ``tilt``: sin(viewing tilt) / photo px per mm (foreshortened edges).

The printed card's scale error is a type-B term, not fitted: the ruler check
(100.0 +/- 0.2 mm, ``PRINT_SCALE_TOLERANCE``) accepts a card at about 95 %
confidence, so its standard uncertainty is 0.1 % of the size (``PRINT_SCALE_U``).

Where the coefficients come from (``_FITTED``): ``bench/measure.py --fit
--seed0 0 --n 600``, on the scene benchmark's fitting seeds 0-599 only (600
photos at 12, 8 and 3 MP, tilt 0-35 degrees, blur 0.5-1.5 px, noise, uneven
light, JPEG 70-95, parts 10-200 mm with 0-3 holes). The error fitted is the
photo's (the measurement less what the card's drawn print scale does), by
maximum likelihood of a normal model whose variance is the sum above;
features with the same physics share one fit (length with width; disc
diameter with hole diameter: sizes 3-190 mm in each), then each feature gets
one factor on its coefficients so that, on the fitting cases, 2u covers the
photo's error in 95 % and U is expected to cover the true error (print term
included) in 95 %. A coefficient that fits to zero stays zero: that term
explained no error in the benchmark. The largest term in practice is
``scale``: the marker corners' residual error (corners on the card's outer
edge refine up to 0.8 px inwards in the generator's photos) shows as a scale
error of the fit. Coverage is checked on other seeds (``bench/measure.py``,
seeds 10000 on) by feature, size, tilt, blur and resolution: README,
"Benchmarks". Refit and check again when the measuring code changes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import cv2
import numpy as np

from inspection.card import PRINT_SCALE_TOLERANCE, CardDetection
from qc.findings import Feature, Measurement

__all__ = ["Circle", "PartGeometry", "PartMeasurement", "MeasureError", "measure_part", "fit_circle",
           "BUDGET_TERMS", "UNCERTAINTY_COEFFICIENTS", "PRINT_SCALE_U"]

MIN_HOLE_DIAMETER_MM = 1.0
_EDGE_CORRELATION_PX = 4.0  # neighbouring edge points are not independent (blur, JPEG blocks)
PRINT_SCALE_U = PRINT_SCALE_TOLERANCE / 2  # the ruler check as a k = 2 interval
BUDGET_TERMS = ("edge", "pixel", "noise", "homography", "scale", "tilt")
# Fitted by `bench/measure.py --fit --seed0 0 --n 600` (see the module docstring); dimensionless,
# one value per term, in the order of BUDGET_TERMS.
_FITTED: dict[str, tuple[float, ...]] = {
    "length": (0.005333, 0.01405, 0.2805, 0.08041, 0.9762, 0.0),
    "width": (0.00509, 0.01341, 0.2677, 0.07675, 0.9317, 0.0),
    "diameter": (0.01294, 0.05277, 4.911, 0.2077, 0.4604, 0.1447),
    "hole_diameter": (0.009553, 0.03897, 3.627, 0.1534, 0.34, 0.1069),
    "hole_spacing": (0.0, 0.0, 0.0, 0.129, 0.6781, 0.02069),
    "area": (0.0, 0.008701, 0.0, 0.0, 0.8285, 0.01876),
}
UNCERTAINTY_COEFFICIENTS: dict[str, dict[str, float]] = {
    f: dict(zip(BUDGET_TERMS, c, strict=True)) for f, c in _FITTED.items()}


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
    # (feature, index) -> the budget's terms x_i before their coefficients, and "print"
    budget: dict[tuple[str, int], dict[str, float]] = field(default_factory=dict, repr=False)

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
    M = S @ det.homography
    if det.preview is not None and det.preview_k > 1 and det.px_per_mm / det.preview_k >= 0.6 * r:
        # The detector's reduced copy is sharp enough for this view and far cheaper
        # to sample; edges are still located in the full-resolution photo.
        image, M = det.preview, S @ det.preview_homography()
    out = cv2.warpPerspective(image, M, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return out, (x0, y0)


class _Light:
    """Quadratic lighting surface fitted to card-background pixels, in rectified px."""

    def __init__(self, c: np.ndarray, bg: np.ndarray) -> None:
        h, w = c.shape
        self.h, self.w = h, w
        step = max(1, int(math.sqrt(h * w / 10_000)))
        ys, xs = np.mgrid[0:h:step, 0:w:step]
        sel = bg[::step, ::step]
        A = self._basis(xs[sel].astype(np.float64), ys[sel].astype(np.float64))
        b = c[::step, ::step][sel].astype(np.float64)
        self.coef = np.linalg.solve(A.T @ A + 1e-9 * np.eye(6), A.T @ b)  # 6 unknowns: normal equations

    def _basis(self, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        x, y = u / self.w - 0.5, v / self.h - 0.5
        return np.stack([np.ones_like(x), x, y, x * x, x * y, y * y], axis=-1)

    def at(self, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        return np.maximum(self._basis(u, v) @ self.coef, 1.0)

    def image(self) -> np.ndarray:
        c = self.coef.astype(np.float32)
        x = (np.arange(self.w, dtype=np.float32) / self.w - 0.5)[None, :]
        y = (np.arange(self.h, dtype=np.float32) / self.h - 0.5)[:, None]
        surf = (c[0] + c[1] * x + c[3] * x * x) + (c[2] * y + c[5] * y * y) + c[4] * (y * x)
        return np.maximum(surf, 1.0)


def _normalise(rect: np.ndarray) -> tuple[np.ndarray, float, _Light]:
    """Card -> ~1, part -> its relative darkness; returns (image, half-way level, light)."""
    c = (cv2.min(cv2.min(rect[..., 0], rect[..., 1]), rect[..., 2]) if rect.ndim == 3 else rect).astype(np.float32)
    small = cv2.GaussianBlur(c, (0, 0), 1.0)
    t, _ = cv2.threshold(small.astype(np.uint8), 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    bg = small > t
    light = _Light(c, bg)  # light from the Otsu background, then one refinement
    n = c / light.image()
    part = n[::2, ::2][~bg[::2, ::2]]
    level = (1.0 + (float(np.median(part)) if part.size else 0.0)) / 2
    bg = cv2.GaussianBlur(n, (0, 0), 1.0) > level
    light = _Light(c, bg)
    n = c / light.image()
    part = n[::2, ::2][~bg[::2, ::2]]
    level = (1.0 + (float(np.median(part)) if part.size else 0.0)) / 2
    return n, level, light


class _EdgeSampler:
    """Finds edges to sub-pixel precision in the original photo.

    The coarse contour (rectified px) gives a start point and a normal; the
    photo is sampled along that normal (mapped through the homography), the
    profile divided by the lighting surface, and the half-way crossing taken.
    """

    def __init__(self, image: np.ndarray, det: CardDetection, r: float, origin: tuple[float, float],
                 light: _Light, level: float, grad: tuple[np.ndarray, np.ndarray]) -> None:
        self.image, self.r, self.origin, self.light, self.level = image, r, origin, light, level
        self.card_to_img = det.inverse
        self.img_ppm = det.px_per_mm
        self.gy, self.gx = grad

    def edges(self, contour: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Edge points in card mm and the profile slope at each (per mm)."""
        pix = contour.reshape(-1, 2)
        u, v = pix[:, 0].astype(np.float64), pix[:, 1].astype(np.float64)
        d = np.stack([self.gx[pix[:, 1], pix[:, 0]], self.gy[pix[:, 1], pix[:, 0]]], axis=1).astype(np.float64)
        norm = np.linalg.norm(d, axis=1)
        ok = norm > 1e-6
        d = d[ok] / norm[ok, None]
        u, v = u[ok], v[ok]
        ox, oy = self.origin
        px_mm = np.column_stack([ox + (u + 0.5) / self.r, oy + (v + 0.5) / self.r])
        reach = 2.0 / self.r + 4.0 / self.img_ppm  # coarse error + blur, mm
        k = int(min(96, math.ceil(2 * reach * self.img_ppm / 0.25))) + 1
        t = np.linspace(-reach, reach, k)
        sx = px_mm[:, 0:1] + d[:, 0:1] * t[None, :]
        sy = px_mm[:, 1:2] + d[:, 1:2] * t[None, :]
        Hc = self.card_to_img
        w = Hc[2, 0] * sx + Hc[2, 1] * sy + Hc[2, 2]
        mx = ((Hc[0, 0] * sx + Hc[0, 1] * sy + Hc[0, 2]) / w).astype(np.float32)
        my = ((Hc[1, 0] * sx + Hc[1, 1] * sy + Hc[1, 2]) / w).astype(np.float32)
        prof = cv2.remap(self.image, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        prof = prof.min(axis=2).astype(np.float64) if prof.ndim == 3 else prof.astype(np.float64)
        # the light varies over centimetres: one value per edge point is enough
        prof /= self.light.at((px_mm[:, 0] - ox) * self.r - 0.5, (px_mm[:, 1] - oy) * self.r - 0.5)[:, None]
        above = prof >= self.level
        cross = (~above[:, :-1]) & above[:, 1:]
        p0, p1 = prof[:, :-1], prof[:, 1:]
        frac = np.clip((self.level - p0) / np.where(p1 - p0 > 1e-9, p1 - p0, 1e-9), 0, 1)
        tc = t[None, :-1] + frac * (t[1] - t[0])
        dist = np.where(cross, np.abs(tc), np.inf)
        j = np.argmin(dist, axis=1)
        rows = np.arange(len(j))
        good = np.isfinite(dist[rows, j])
        tt = tc[rows, j]
        slope = (p1[rows, j] - p0[rows, j]) / (t[1] - t[0])
        pts = px_mm + d * tt[:, None]
        return pts[good], slope[good]


def _refine_extent(pts: np.ndarray, centre: tuple[float, float], size: tuple[float, float],
                   angle: float) -> tuple[float, float]:
    """Replace the rectangle's extreme-point extents by line fits where a side is straight.

    The minimum-area rectangle rests on the outermost edge points, so edge noise
    pushes it outwards. Where a side of the part is a straight edge (points
    within 0.3 mm of the side over most of its length), a line fitted through
    those points gives that side's position without the bias; curved sides
    (discs, rounded shapes) keep the extreme-point extent.
    """
    a = math.radians(angle)
    ax = np.array([math.cos(a), math.sin(a)])  # along the rect's width
    ay = np.array([-math.sin(a), math.cos(a)])  # along its height
    d = pts - np.asarray(centre)
    u, v = d @ ax, d @ ay
    out = []
    for coord, other, half, other_half in ((u, v, size[0] / 2, size[1] / 2), (v, u, size[1] / 2, size[0] / 2)):
        ext = []
        for sign in (1.0, -1.0):
            near = (np.abs(sign * coord - half) < 0.3) & (np.abs(other) < 0.8 * other_half)
            if near.sum() >= 20 and np.ptp(other[near]) > 0.6 * other_half:
                # line coord = c0 + c1 * other (small tilt allowed); its value at other = 0
                A = np.column_stack([np.ones(int(near.sum())), other[near]])
                c0, _c1 = np.linalg.lstsq(A, coord[near], rcond=None)[0]
                ext.append(sign * float(c0))
            else:
                ext.append(half)
        out.append(ext[0] + ext[1])
    return out[0], out[1]


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
        dist = np.maximum(np.hypot(dx, dy), 1e-12)
        res = dist - r
        J = np.column_stack([-dx / dist, -dy / dist, -np.ones_like(dist)])
        step = np.linalg.solve(J.T @ J, -J.T @ res)
        cx, cy, r = cx + step[0], cy + step[1], r + step[2]
        if np.abs(step).max() < 1e-9:
            break
    res = np.hypot(u - cx, v - cy) - r
    return float(cx + mx), float(cy + my), float(abs(r)), float(np.sqrt(np.mean(res * res)))


def _polygon_area(p: np.ndarray) -> float:
    x, y = p[:, 0], p[:, 1]
    return float(0.5 * abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))


class _Budget:
    """The terms of one detection, combined into U (k = 2) with the fitted coefficients."""

    def __init__(self, det: CardDetection, img_ppm: float) -> None:
        self.det = det
        self.img_ppm = img_ppm  # photo px per mm at the part
        n = max(8, det.corners_used or 4 * det.markers_found)
        # homography: a point's transferred-position std. uncertainty (mm) ~ sigma * sqrt(dof / n)
        sigma = det.reprojection_mm * math.sqrt(2 * n / max(1, 2 * n - 8))
        self.u_point = sigma * math.sqrt(8 / n)
        tilt = det.tilt_deg if math.isfinite(det.tilt_deg) else 0.0
        self.u_tilt = math.sin(math.radians(tilt)) / img_ppm
        self.lines: dict[tuple[str, int], dict[str, float]] = {}

    def u(self, feature: str, index: int, size: float, *, edge: float, noise: float, per: float = 1.0) -> float:
        """U (k = 2) of one measurement of ``size``; ``per`` scales the terms (the perimeter, for area)."""
        relative = 2.0 if feature == "area" else 1.0  # a scale error counts twice in an area
        x = {"edge": per * edge, "pixel": per / self.img_ppm, "noise": per * noise,
             "homography": per * self.u_point, "scale": relative * abs(size) / 100 * self.u_point,
             "tilt": per * self.u_tilt}
        printed = relative * abs(size) * PRINT_SCALE_U
        self.lines[(feature, index)] = {**x, "print": printed}
        c = UNCERTAINTY_COEFFICIENTS[feature]
        return 2.0 * math.sqrt(sum((c[k] * v) ** 2 for k, v in x.items()) + printed**2)


def measure_part(image: np.ndarray, det: CardDetection, *, view_px_per_mm: float = 4.0) -> PartMeasurement:
    """Measure the one part on the card. Raises MeasureError with advice when it cannot.

    Segmentation runs on the measuring area rectified at ``view_px_per_mm``;
    edges are then located in the full-resolution photo.
    """
    if not det.found or det.layout is None:
        raise MeasureError("calibration card not found")
    r = float(min(view_px_per_mm, det.px_per_mm))
    rect, origin = rectify(image, det, r)
    n, level, light = _normalise(rect)
    if level > 0.9:  # "part" less than 20 % darker than the card: noise, or a white part
        raise MeasureError("no part found on the card — place the part inside the measuring area "
                           "(white or very light parts need a dark card)")
    smooth = cv2.GaussianBlur(n, (0, 0), 1.0)
    mask = cv2.morphologyEx((smooth < level).astype(np.uint8), cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    contours, hier = cv2.findContours(mask, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_NONE)
    outers = [i for i in range(len(contours)) if hier[0][i][3] < 0]
    if not outers:
        raise MeasureError("no part found on the card — place the part inside the measuring area")
    outer_i = max(outers, key=lambda i: cv2.contourArea(contours[i]))
    if cv2.contourArea(contours[outer_i]) < (3 * r) ** 2:
        raise MeasureError("no part found on the card — place the part inside the measuring area")
    x, y, w, h = cv2.boundingRect(contours[outer_i])
    H, W = mask.shape
    if x <= 1 or y <= 1 or x + w >= W - 1 or y + h >= H - 1:
        raise MeasureError("the part touches the edge of the measuring area — move it to the middle")
    grad = (cv2.Sobel(smooth, cv2.CV_32F, 0, 1, ksize=3), cv2.Sobel(smooth, cv2.CV_32F, 1, 0, ksize=3))
    sampler = _EdgeSampler(image, det, r, origin, light, level, grad)

    outer, outer_slope = sampler.edges(contours[outer_i])
    if len(outer) < 12:
        raise MeasureError("the part's outline could not be found — check the light and retake")
    holes: list[tuple[Circle, float, float]] = []  # circle, area, slope
    for i, c in enumerate(contours):
        if hier[0][i][3] != outer_i or len(c) < 8:
            continue
        hmm, hs = sampler.edges(c)
        if len(hmm) < 8:
            continue
        a = _polygon_area(hmm)
        if 2 * math.sqrt(a / math.pi) < MIN_HOLE_DIAMETER_MM:
            continue
        cx, cy, rad, rms = fit_circle(hmm)
        holes.append((Circle(cx, cy, rad, rms, len(hmm)), a, float(np.median(hs))))
    holes.sort(key=lambda t: -t[0].r)

    img_ppm = det.px_per_mm
    budget = _Budget(det, img_ppm)
    ms: list[Measurement] = []
    edge = 1.0 / max(float(np.median(outer_slope)), 1e-3)
    # Local edge noise: scatter of points about a smoothed outline.
    nb = 5
    kernel = np.ones(2 * nb + 1) / (2 * nb + 1)
    sm = np.column_stack([np.convolve(np.pad(outer[:, j], nb, mode="wrap"), kernel, "valid")
                          for j in range(2)])
    scatter = 1.4826 * float(np.median(np.linalg.norm(outer - sm, axis=1)))  # robust to corners
    per_point = _EDGE_CORRELATION_PX * r / img_ppm + 1  # contour points per independent edge point
    n_eff = max(1.0, len(outer) / per_point)

    (rcx, rcy), (rw, rh), ang = cv2.minAreaRect(outer.astype(np.float32))
    rw, rh = _refine_extent(outer, (rcx, rcy), (rw, rh), ang)
    length, width = max(rw, rh), min(rw, rh)
    for feat, val in ((Feature.LENGTH, length), (Feature.WIDTH, width)):
        # each side holds about a quarter of the outline's points
        U = budget.u(feat.value, 1, val, edge=edge, noise=scatter / math.sqrt(max(1.0, n_eff / 4)))
        ms.append(Measurement(feat.value, round(float(val), 4), round(U, 4)))

    hole_area = sum(a for _, a, _ in holes)
    outer_area = _polygon_area(outer)
    perim = float(np.sum(np.linalg.norm(np.diff(outer, axis=0, append=outer[:1]), axis=1)))
    area = outer_area - hole_area
    U = budget.u(Feature.AREA.value, 1, area, edge=edge, noise=scatter / math.sqrt(n_eff), per=perim)
    ms.append(Measurement(Feature.AREA.value, round(area, 3), round(U, 3), unit="mm2"))

    cx, cy, rad, rms = fit_circle(outer)
    outer_circle = Circle(cx, cy, rad, rms, len(outer))
    d = 2 * rad
    U = budget.u(Feature.DIAMETER.value, 1, d, edge=edge, noise=rms / math.sqrt(n_eff))
    ms.append(Measurement(Feature.DIAMETER.value, round(d, 4), round(U, 4)))

    ms.append(Measurement(Feature.HOLE_COUNT.value, float(len(holes)), 0.0, unit="count"))
    for idx, (hole, _a, hslope) in enumerate(holes, start=1):
        ne = max(1.0, hole.n / per_point)
        hd = 2 * hole.r
        U = budget.u(Feature.HOLE_DIAMETER.value, idx, hd, edge=1.0 / max(hslope, 1e-3),
                     noise=hole.rms / math.sqrt(ne))
        ms.append(Measurement(Feature.HOLE_DIAMETER.value, round(hd, 4), round(U, 4), index=idx))
    if len(holes) >= 2:
        (h1, _, s1), (h2, _, s2) = holes[0], holes[1]
        sp = math.hypot(h1.cx - h2.cx, h1.cy - h2.cy)
        # centres: the level bias cancels; noise of both fits
        u_c = math.hypot(h1.rms / math.sqrt(max(1.0, h1.n / per_point / 2)),
                         h2.rms / math.sqrt(max(1.0, h2.n / per_point / 2)))
        U = budget.u(Feature.HOLE_SPACING.value, 1, sp, edge=math.hypot(1 / max(s1, 1e-3), 1 / max(s2, 1e-3)),
                     noise=u_c)
        ms.append(Measurement(Feature.HOLE_SPACING.value, round(sp, 4), round(U, 4)))

    geo = PartGeometry(outer, ((float(rcx), float(rcy)), (float(rw), float(rh)), float(ang)),
                       outer_circle, tuple(c for c, _, _ in holes))
    return PartMeasurement(tuple(ms), geo, r, rect, origin, budget.lines)
