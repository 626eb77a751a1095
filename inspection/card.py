"""The calibration card: one design, defined here, and its detector.

The card is a ring of ArUco markers (DICT_4X4_100) around a plain white
measuring area, a card id, and a 100 mm check ruler. The same design comes in
three paper sizes; each size uses its own block of marker ids, so the detector
knows which card it sees from the markers alone. Card coordinates are mm with
the origin at the card's top-left corner, x to the right, y down.

``detect_card`` finds the markers, fits the homography image -> card (mm),
and reports the reprojection error, the scale on the card (px/mm) and the
viewing tilt (from the homography with an estimated focal length).

Marker corners are judged in image pixels, where their localisation noise is
(a few tenths of a pixel whatever the card's size in the photo): RANSAC at
2 px, then corners beyond 3.5 robust sigmas (at least 0.5 px) are dropped,
refined again from where the inlier fit puts them, and kept only if they then
agree. A threshold in card mm cannot do this: 1 mm is 9 px at 12 MP, so a
corner 0.9 mm off passed and inflated every stated uncertainty.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cache

import cv2
import numpy as np

__all__ = [
    "PAPERS", "CardLayout", "CardDetection", "card_layout", "layout_for_ids",
    "render_card", "detect_card", "card_from_corners", "PRINT_SCALE_TOLERANCE", "PRINT_INSTRUCTIONS",
]

# Paper sizes, portrait (mm), and the printer margin the card stays inside.
PAPERS: dict[str, tuple[float, float]] = {"a4": (210.0, 297.0), "letter": (215.9, 279.4),
                                          "a5": (148.0, 210.0)}
_MARGIN_MM = 8.0
_ARUCO_DICT = cv2.aruco.DICT_4X4_100
_MARKER_CELLS = 6  # 4x4 bits + 1 cell black border each side
_IDS_PER_CARD = 16
_ID_BASE = {"a4": 0, "letter": 16, "a5": 32}
# Relative scale error the user accepts when checking the 100 mm ruler (±0.2 mm).
PRINT_SCALE_TOLERANCE = 0.002
PRINT_INSTRUCTIONS = (
    "Print at 100 % scale ('actual size'; turn off 'fit to page'), on matte paper. "
    "Check the 100 mm ruler with a steel rule: it must measure 100.0 ± 0.2 mm, else adjust "
    "the printer and print again. Keep the card flat and clean; do not laminate (glare)."
)


@dataclass(frozen=True)
class CardLayout:
    card_id: str
    paper: str
    width: float  # card size, mm
    height: float
    marker_size: float
    markers: tuple[tuple[int, float, float], ...]  # (aruco id, x, y of top-left corner), mm
    area: tuple[float, float, float, float]  # measuring area x0, y0, x1, y1, mm
    ruler: tuple[float, float, float]  # x start, x end, y of the ruler baseline, mm

    @property
    def ids(self) -> frozenset[int]:
        return frozenset(m[0] for m in self.markers)

    def marker_corners(self, marker_id: int) -> np.ndarray:
        """4x2 corners in card mm, in ArUco order (TL, TR, BR, BL)."""
        for mid, x, y in self.markers:
            if mid == marker_id:
                s = self.marker_size
                return np.array([[x, y], [x + s, y], [x + s, y + s], [x, y + s]], np.float64)
        raise KeyError(marker_id)

    @property
    def area_size(self) -> tuple[float, float]:
        x0, y0, x1, y1 = self.area
        return x1 - x0, y1 - y0


@cache
def card_layout(paper: str = "a4") -> CardLayout:
    if paper not in PAPERS:
        raise ValueError(f"paper must be one of {', '.join(PAPERS)}; got {paper!r}")
    pw, ph = PAPERS[paper]
    w, h = pw - 2 * _MARGIN_MM, ph - 2 * _MARGIN_MM
    s = 12.0 if paper == "a5" else 16.0
    base = _ID_BASE[paper]
    pos: list[tuple[float, float]] = [(0, 0), ((w - s) / 2, 0), (w - s, 0)]  # top row
    rows = 5
    for i in range(1, rows - 1):  # side columns between the corners
        y = i * (h - s) / (rows - 1)
        pos += [(0, y), (w - s, y)]
    pos += [(0, h - s), (w - s, h - s)]  # bottom corners; the ruler runs between them
    markers = tuple((base + i, round(x, 3), round(y, 3)) for i, (x, y) in enumerate(pos))
    gap = 4.0
    area = (s + gap, s + gap, w - s - gap, h - s - gap)
    ruler = ((w - 100.0) / 2, (w + 100.0) / 2, h - s / 2)
    return CardLayout(f"KIPIMO-{paper.upper()}-1", paper, w, h, s, markers, area, ruler)


def layout_for_ids(ids: np.ndarray | list[int]) -> CardLayout | None:
    """The card whose id block holds most of the detected markers."""
    best, best_n = None, 0
    for paper in PAPERS:
        lay = card_layout(paper)
        n = sum(1 for i in ids if int(i) in lay.ids)
        if n > best_n:
            best, best_n = lay, n
    return best


@cache
def _dictionary() -> cv2.aruco.Dictionary:
    return cv2.aruco.getPredefinedDictionary(_ARUCO_DICT)


def _marker_bits(marker_id: int) -> np.ndarray:
    img = cv2.aruco.generateImageMarker(_dictionary(), marker_id, _MARKER_CELLS, borderBits=1)
    return img > 127  # True = white cell


def _coverage(a: float, b: float, n: int) -> tuple[int, np.ndarray]:
    """Fraction of each pixel k (covering [k, k+1)) inside [a, b]: first index, weights."""
    k0 = max(0, int(math.floor(a)))
    k1 = min(n, int(math.ceil(b)))
    if k1 <= k0:
        return k0, np.zeros(0)
    k = np.arange(k0, k1, dtype=np.float64)
    return k0, np.clip(np.minimum(b, k + 1) - np.maximum(a, k), 0.0, 1.0)


def _fill_rect(canvas: np.ndarray, x0: float, y0: float, x1: float, y1: float, value: int) -> None:
    """Axis-aligned rectangle with exact area coverage at its edges (pixel k spans
    [k, k+1), so a pixel centre sits at k + 0.5). OpenCV's anti-aliased polygons
    are off by up to a pixel, too much for a calibration target."""
    h, w = canvas.shape[:2]
    cx, wx = _coverage(x0, x1, w)
    cy, wy = _coverage(y0, y1, h)
    if not len(wx) or not len(wy):
        return
    cov = np.outer(wy, wx)
    region = canvas[cy : cy + len(wy), cx : cx + len(wx)].astype(np.float64)
    if region.ndim == 3:
        cov = cov[..., None]
    canvas[cy : cy + len(wy), cx : cx + len(wx)] = np.round(region * (1 - cov) + value * cov).astype(canvas.dtype)


def draw_card(canvas: np.ndarray, layout: CardLayout, px_per_mm: float,
              origin: tuple[float, float] = (0.0, 0.0), *, text: bool = True) -> None:
    """Draw the card onto a white grey-level ``canvas`` (in place) at ``px_per_mm``."""
    ox, oy = origin

    def p(x: float, y: float) -> tuple[float, float]:
        return (ox + x) * px_per_mm, (oy + y) * px_per_mm

    cell = layout.marker_size / _MARKER_CELLS
    for mid, mx, my in layout.markers:
        bits = _marker_bits(mid)
        for r in range(_MARKER_CELLS):
            for c in range(_MARKER_CELLS):
                if not bits[r, c]:
                    x0, y0 = p(mx + c * cell, my + r * cell)
                    x1, y1 = p(mx + (c + 1) * cell, my + (r + 1) * cell)
                    _fill_rect(canvas, x0, y0, x1, y1, 0)
    # 100 mm check ruler: baseline and ticks every mm (5 and 10 mm longer).
    rx0, rx1, ry = layout.ruler
    lw = 0.25
    _fill_rect(canvas, *p(rx0 - lw / 2, ry - lw / 2), *p(rx1 + lw / 2, ry + lw / 2), 0)
    for k in range(101):
        tl = 4.0 if k % 10 == 0 else (2.5 if k % 5 == 0 else 1.5)
        x = rx0 + k
        _fill_rect(canvas, *p(x - lw / 2, ry - tl), *p(x + lw / 2, ry), 0)
    # Corner ticks around the measuring area (outside it, so segmentation never sees them).
    ax0, ay0, ax1, ay1 = layout.area
    t = 0.4
    for cx, dx in ((ax0, -1), (ax1, 1)):
        for cy, dy in ((ay0, -1), (ay1, 1)):
            px_, py_ = cx + dx * 2, cy + dy * 2  # 2 mm outside the area's corner
            xa, xb = sorted((px_, px_ - dx * 6))
            ya, yb = sorted((py_, py_ - dy * 6))
            _fill_rect(canvas, *p(xa, py_ - t / 2), *p(xb, py_ + t / 2), 150)
            _fill_rect(canvas, *p(px_ - t / 2, ya), *p(px_ + t / 2, yb), 150)
    if text and px_per_mm >= 4:
        scale = px_per_mm * 0.11
        thick = max(1, round(px_per_mm * 0.25))
        lines = [(f"{layout.card_id}   measuring area {layout.area_size[0]:.0f} x "
                  f"{layout.area_size[1]:.0f} mm", layout.marker_size * 0.45),
                 ("Print at 100 % (actual size), matte paper. Ruler must read 100.0 +/- 0.2 mm.",
                  layout.marker_size * 0.85)]
        for txt, y in lines:
            org = p(layout.marker_size + 3, y)
            cv2.putText(canvas, txt, (round(org[0]), round(org[1])), cv2.FONT_HERSHEY_SIMPLEX,
                        scale * 0.35, 90, thick, cv2.LINE_AA)
        for k in (0, 50, 100):
            label = f"{k} mm" if k == 100 else str(k)
            fs = scale * 0.3
            (tw, _), _ = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, fs, thick)
            org = p(rx0 + k, ry - 5)
            cv2.putText(canvas, label, (round(org[0] - (tw / 2 if k < 100 else tw * 0.15)),
                                        round(org[1])),
                        cv2.FONT_HERSHEY_SIMPLEX, fs, 60, thick, cv2.LINE_AA)


def render_card(paper: str = "a4", dpi: float = 300.0) -> tuple[np.ndarray, CardLayout, tuple[float, float]]:
    """The printable page (grey uint8) at ``dpi``; also the layout and the card's
    offset on the page in mm (the card is centred on the paper)."""
    layout = card_layout(paper)
    pw, ph = PAPERS[paper]
    ppm = dpi / 25.4
    page = np.full((round(ph * ppm), round(pw * ppm)), 255, np.uint8)
    origin = ((pw - layout.width) / 2, (ph - layout.height) / 2)
    draw_card(page, layout, ppm, origin)
    return page, layout, origin


@dataclass(frozen=True)
class CardDetection:
    found: bool
    layout: CardLayout | None
    marker_ids: tuple[int, ...]
    homography: np.ndarray | None  # 3x3, image px -> card mm
    reprojection_px: float  # RMS distance of marker corners, image px
    reprojection_mm: float
    px_per_mm: float  # image scale at the centre of the measuring area
    tilt_deg: float  # angle between the camera axis and the card normal
    corners: dict[int, np.ndarray]  # marker id -> 4x2 image px
    corners_used: int = 0  # marker corners in the final fit
    corners_rejected: int = 0  # corners whose first refinement disagreed with the others (outliers)
    preview: np.ndarray | None = field(default=None, repr=False, compare=False)  # photo reduced by preview_k
    preview_k: int = 1

    def preview_homography(self) -> np.ndarray:
        """Preview px -> card mm (preview pixel centre i is photo (i + 0.5) * k - 0.5)."""
        assert self.homography is not None
        k = self.preview_k
        return self.homography @ np.array([[k, 0, 0.5 * k - 0.5], [0, k, 0.5 * k - 0.5], [0, 0, 1.0]])

    @property
    def markers_found(self) -> int:
        return len(self.marker_ids)

    @property
    def inverse(self) -> np.ndarray:
        assert self.homography is not None
        return np.linalg.inv(self.homography)


_NOT_FOUND = CardDetection(False, None, (), None, float("nan"), float("nan"), 0.0, float("nan"), {})


def _detector() -> cv2.aruco.ArucoDetector:
    # Default thresholding windows suit markers of 30-80 px (the reduced copy); corners
    # are refined afterwards in the full-resolution photo, so none is done here.
    return cv2.aruco.ArucoDetector(_dictionary(), cv2.aruco.DetectorParameters())


def _to_gray(image: np.ndarray) -> np.ndarray:
    return image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)


def detect_card(image: np.ndarray, *, max_detect_side: int = 1100) -> CardDetection:
    """Find the card in a BGR or grey photo; markers are searched on a copy
    reduced by a whole factor (fast) and their corners refined in the
    full-resolution photo (accurate)."""
    h, w = image.shape[:2]
    k = max(1, math.ceil(max(h, w) / max_detect_side))
    if k > 1:  # bilinear at a whole factor: each preview pixel averages 2x2 photo pixels, 4x cheaper than area
        preview = cv2.resize(image[: h // k * k, : w // k * k], (w // k, h // k), interpolation=cv2.INTER_LINEAR)
    else:
        preview = image
    small = _to_gray(preview)
    k_preview = k
    corners, ids, _ = _detector().detectMarkers(small)
    if k > 1 and (ids is None or len(ids) < 6):  # small markers: look again at full size
        corners_full, ids_full, _ = _detector().detectMarkers(_to_gray(image))
        if ids_full is not None and (ids is None or len(ids_full) > len(ids)):
            corners, ids, k = corners_full, ids_full, 1
    if ids is None or len(ids) == 0:
        return _NOT_FOUND
    layout = layout_for_ids(ids.ravel())
    if layout is None:
        return _NOT_FOUND
    found: dict[int, np.ndarray] = {}
    for c, i in zip(corners, ids.ravel(), strict=True):
        if int(i) in layout.ids and int(i) not in found:
            # small-image pixel centre i is full-image (i + 0.5) * k - 0.5
            found[int(i)] = (c.reshape(4, 2).astype(np.float64) + 0.5) * k - 0.5
    if len(found) < 2:
        return _NOT_FOUND
    side = float(np.median([np.linalg.norm(c[0] - c[1]) for c in found.values()]))
    win = _refine_window(side)
    refined = {i: _refine(image, found[i], win) for i in sorted(found)}
    return card_from_corners(layout, refined, (w, h), image=image, preview=preview, preview_k=k_preview)


def card_from_corners(layout: CardLayout, corners: dict[int, np.ndarray], image_size: tuple[int, int], *,
                      image: np.ndarray | None = None, preview: np.ndarray | None = None,
                      preview_k: int = 1) -> CardDetection:
    """The detection from refined marker corners (image px): a robust fit in image
    pixels. With ``image``, outlying corners are refined once more from where the
    fit of the others puts them, and kept if they then agree."""
    ids_sorted = tuple(sorted(corners))
    card_pts = np.concatenate([layout.marker_corners(i) for i in ids_sorted])
    img_pts = np.concatenate([np.asarray(corners[i], np.float64).reshape(4, 2) for i in ids_sorted])
    fit = _robust_fit(card_pts, img_pts)
    if fit is None:
        return _NOT_FOUND
    G, inl, tau = fit
    rejected = int((~inl).sum())
    if rejected and image is not None:
        # Refine each outlier again, from its predicted place with a smaller window (it
        # had locked onto something else); it rejoins only if it then lands where predicted.
        pred = cv2.perspectiveTransform(card_pts.reshape(-1, 1, 2), G).reshape(-1, 2)
        side = float(np.median([np.linalg.norm(c[0] - c[1]) for c in corners.values()]))
        win = max(2, _refine_window(side) // 2)
        for j in np.flatnonzero(~inl):
            again = _refine(image, pred[j : j + 1], win)[0]
            if np.linalg.norm(again - pred[j]) <= tau:
                img_pts[j], inl[j] = again, True
        G, _ = cv2.findHomography(card_pts[inl], img_pts[inl], 0)
    proj = cv2.perspectiveTransform(card_pts.reshape(-1, 1, 2), G).reshape(-1, 2)
    err_px = float(np.sqrt(np.mean(np.sum((proj - img_pts) ** 2, axis=1)[inl])))
    w, h = image_size
    ax0, ay0, ax1, ay1 = layout.area
    ppm = local_scale(G, ((ax0 + ax1) / 2, (ay0 + ay1) / 2))
    refined = {i: img_pts[n * 4 : n * 4 + 4] for n, i in enumerate(ids_sorted)}
    return CardDetection(True, layout, ids_sorted, np.linalg.inv(G), err_px, err_px / ppm, ppm,
                         viewing_tilt(G, (w, h)), refined, int(inl.sum()), rejected, preview, preview_k)


_RANSAC_PX = 2.0  # first cut: good corners sit within a few tenths of a pixel
_OUTLIER_SIGMAS = 3.5  # a good corner's residual (2-D normal) exceeds 3.5 sigma once in 450
_OUTLIER_FLOOR_PX = 0.5  # never cut tighter than this: below it every corner is sub-pixel noise


def _robust_fit(card_pts: np.ndarray, img_pts: np.ndarray) -> tuple[np.ndarray, np.ndarray, float] | None:
    """Card mm -> image px homography with residuals in image px: RANSAC, then
    trimming at ``max(floor, 3.5 sigma)`` with sigma from the median residual,
    until nothing changes. Keeps at least half the corners (and 8).
    Returns (homography, inlier mask, final threshold px)."""
    n = len(card_pts)
    G, mask = cv2.findHomography(card_pts, img_pts, cv2.RANSAC, _RANSAC_PX)
    if G is None:
        return None
    inl = mask.ravel().astype(bool)
    if inl.sum() < 4:
        return None
    keep_min = max(min(8, n), n // 2)
    tau = _RANSAC_PX
    for _ in range(5):
        G, _ = cv2.findHomography(card_pts[inl], img_pts[inl], 0)
        if G is None:
            return None
        proj = cv2.perspectiveTransform(card_pts.reshape(-1, 1, 2), G).reshape(-1, 2)
        res = np.linalg.norm(proj - img_pts, axis=1)
        # median of a 2-D normal's radius is 1.1774 sigma
        tau = max(_OUTLIER_FLOOR_PX, _OUTLIER_SIGMAS * float(np.median(res[inl])) / 1.1774)
        new = res <= tau
        if new.sum() < keep_min:  # too many disagree to call them outliers: keep the best half
            new = res <= np.sort(res)[keep_min - 1]
        if np.array_equal(new, inl):
            break
        inl = new
    G, _ = cv2.findHomography(card_pts[inl], img_pts[inl], 0)
    return (None if G is None else (G, inl, tau))


def _refine_window(marker_side_px: float) -> int:
    return int(np.clip(marker_side_px / _MARKER_CELLS * 0.4, 2, 12))


def _refine(image: np.ndarray, pts: np.ndarray, win: int) -> np.ndarray:
    """Sub-pixel corners in the full-resolution photo, on a grey crop around one marker."""
    h, w = image.shape[:2]
    m = win + 3
    x0, y0 = max(0, int(pts[:, 0].min()) - m), max(0, int(pts[:, 1].min()) - m)
    x1, y1 = min(w, int(pts[:, 0].max()) + m + 1), min(h, int(pts[:, 1].max()) + m + 1)
    crop = _to_gray(image[y0:y1, x0:x1])
    p = (pts - [x0, y0]).astype(np.float32).reshape(-1, 1, 2)
    crit = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 40, 0.01)
    cv2.cornerSubPix(crop, p, (win, win), (-1, -1), crit)
    return p.reshape(-1, 2).astype(np.float64) + [x0, y0]


def local_scale(card_to_img: np.ndarray, at_mm: tuple[float, float]) -> float:
    """Image px per card mm at a point (geometric mean of the two directions)."""
    x, y = at_mm
    pts = np.array([[[x, y]], [[x + 1, y]], [[x, y + 1]]], np.float64)
    q = cv2.perspectiveTransform(pts, card_to_img).reshape(3, 2)
    jx, jy = q[1] - q[0], q[2] - q[0]
    return float(math.sqrt(abs(jx[0] * jy[1] - jx[1] * jy[0])))


def viewing_tilt(card_to_img: np.ndarray, image_size: tuple[int, int]) -> float:
    """Tilt of the card plane to the image plane, degrees.

    The focal length is estimated from the homography (orthonormality of the
    rotation's first two columns, principal point at the image centre); when
    the view is nearly frontal that estimate is ill-conditioned, so a typical
    phone focal length (0.8 x long side) is used instead — the tilt is then
    small and insensitive to it.
    """
    w, h = image_size
    T = np.array([[1, 0, -w / 2], [0, 1, -h / 2], [0, 0, 1]], np.float64)
    G = T @ card_to_img
    g1, g2 = G[:, 0], G[:, 1]
    rows = []
    rhs = []
    # unknown a = 1/f^2: a*(x1x2 + y1y2) + z1z2 = 0; a*(|xy1|^2 - |xy2|^2) + z1^2 - z2^2 = 0
    rows.append(g1[0] * g2[0] + g1[1] * g2[1])
    rhs.append(-g1[2] * g2[2])
    rows.append(g1[0] ** 2 + g1[1] ** 2 - g2[0] ** 2 - g2[1] ** 2)
    rhs.append(-(g1[2] ** 2 - g2[2] ** 2))
    A = np.array(rows)
    b = np.array(rhs)
    f_default = 0.8 * max(w, h)
    f = f_default
    denom = float(A @ A)
    if denom > 0:
        a = float(A @ b) / denom
        if a > 0:
            f_est = 1 / math.sqrt(a)
            if 0.4 * max(w, h) < f_est < 3 * max(w, h):
                f = f_est
    K_inv = np.diag([1 / f, 1 / f, 1.0])
    r1 = K_inv @ g1
    r2 = K_inv @ g2
    n = np.cross(r1 / np.linalg.norm(r1), r2 / np.linalg.norm(r2))
    n /= np.linalg.norm(n)
    return float(math.degrees(math.acos(min(1.0, abs(n[2])))))


def card_pdf(paper: str = "a4", dpi: float = 300.0) -> bytes:
    """A one-page PDF of the card: the page is the paper size exactly, and the
    card image (lossless, Flate) is placed at ``dpi`` so it prints at 100 %."""
    import zlib  # noqa: PLC0415

    page, _layout, _origin = render_card(paper, dpi)
    h, w = page.shape
    pw_pt, ph_pt = (v / 25.4 * 72 for v in PAPERS[paper])
    iw_pt, ih_pt = w / dpi * 72, h / dpi * 72  # image size at its dpi, points
    # the rendered page has whole pixels; centre it so the card's centre is the paper's
    x0, y0 = (pw_pt - iw_pt) / 2, (ph_pt - ih_pt) / 2
    content = f"q {iw_pt:.4f} 0 0 {ih_pt:.4f} {x0:.4f} {y0:.4f} cm /Card Do Q".encode()
    data = zlib.compress(page.tobytes(), 9)
    objs = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        (f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {pw_pt:.4f} {ph_pt:.4f}] "
         f"/Resources << /XObject << /Card 4 0 R >> >> /Contents 5 0 R >>").encode(),
        (f"<< /Type /XObject /Subtype /Image /Width {w} /Height {h} /ColorSpace /DeviceGray "
         f"/BitsPerComponent 8 /Filter /FlateDecode /Length {len(data)} >>\nstream\n").encode()
        + data + b"\nendstream",
        f"<< /Length {len(content)} >>\nstream\n".encode() + content + b"\nendstream",
        (f"<< /Title (Kipimo calibration card {paper.upper()}) "
         f"/Subject ({PRINT_INSTRUCTIONS.replace('(', '[').replace(')', ']')}) >>").encode("latin-1", "replace"),
    ]
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for i, body in enumerate(objs, start=1):
        offsets.append(len(out))
        out += f"{i} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objs) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{o:010d} 00000 n \n".encode() for o in offsets)
    out += (f"trailer\n<< /Size {len(objs) + 1} /Root 1 0 R /Info 6 0 R >>\n"
            f"startxref\n{xref}\n%%EOF\n").encode()
    return bytes(out)
