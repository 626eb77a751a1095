"""Synthetic phone photos of a part lying on the printed calibration card.

Independent of the measuring code: a scene is described by physical sizes (mm)
and a camera pose, drawn with exact area coverage on the card plane, projected
through a pinhole camera, then degraded like a phone photo (defocus blur,
lighting gradient, sensor noise, JPEG). The ground truth comes from the
description, never from ``inspection.measure``. The only thing shared with
``inspection`` is the printed card design (``inspection.card.draw_card``), as a
real photo shares the printed card.

Used by bench/measure.py, bench/inspect.py, the unit tests and the demo
(``bench/scenes.py`` re-exports it; it lives in the package so the installed
the demo can draw its photos).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import cv2
import numpy as np

from inspection.card import card_layout, draw_card

__all__ = ["Hole", "Part", "Camera", "Scene", "render_scene", "random_scene", "truth", "encode_jpeg"]

PAPER_WHITE = 232  # grey level of the printed card's paper under the reference light
SENSORS = {8: (3264, 2448), 12: (4000, 3000), 3: (2000, 1500), 2: (1600, 1200)}


@dataclass(frozen=True)
class Hole:
    x: float  # centre, mm, in the part's own frame (relative to the part centre)
    y: float
    diameter: float


@dataclass(frozen=True)
class Part:
    """A flat part: a (rounded) rectangle or a disc, with circular through-holes."""

    shape: str  # "rect" | "disc"
    cx: float  # centre on the card, mm
    cy: float
    length: float  # rect: long side; disc: diameter
    width: float = 0.0  # rect: short side
    angle: float = 0.0  # rotation on the card, degrees
    corner_radius: float = 0.0
    holes: tuple[Hole, ...] = ()
    color: tuple[int, int, int] = (40, 40, 45)  # BGR reflectance (0-255) of the part


@dataclass(frozen=True)
class Camera:
    megapixels: int = 12
    tilt: float = 0.0  # degrees between the camera axis and the card normal
    tilt_axis: float = 0.0  # direction of the tilt axis in the card plane, degrees
    roll: float = 0.0  # rotation of the card in the image, degrees
    fill: float = 0.9  # fraction of the frame the card's projected outline spans
    focal: float = 0.8  # focal length / long side of the sensor
    blur: float = 0.8  # Gaussian defocus sigma, image px
    noise: float = 2.0  # sensor noise sigma, grey levels
    light: tuple[float, float] = (1.0, 1.0)  # illumination at left and right edge (gradient)
    exposure: float = 1.0
    glare: float = 0.0  # peak added brightness of a specular spot on the card
    jpeg_quality: int = 90


@dataclass(frozen=True)
class Scene:
    part: Part | None
    camera: Camera = field(default_factory=Camera)
    paper: str = "a4"
    print_scale: float = 1.0  # printer's scale error (1.0 = exact)
    seed: int = 0


def truth(part: Part) -> dict[str, float | list[float]]:
    """Ground truth straight from the part's description."""
    holes = sorted(part.holes, key=lambda h: -h.diameter)
    hole_area = sum(math.pi * h.diameter**2 / 4 for h in holes)
    if part.shape == "disc":
        outer = math.pi * part.length**2 / 4
        t: dict[str, float | list[float]] = {"diameter": part.length, "length": part.length,
                                             "width": part.length}
    else:
        r = part.corner_radius
        outer = part.length * part.width - (4 - math.pi) * r * r
        t = {"length": part.length, "width": part.width}
    t["area"] = outer - hole_area
    t["hole_count"] = float(len(holes))
    t["hole_diameter"] = [h.diameter for h in holes]
    if len(holes) >= 2:
        t["hole_spacing"] = math.hypot(holes[0].x - holes[1].x, holes[0].y - holes[1].y)
    return t


def _part_coverage(part: Part, ppm: float, shape: tuple[int, int],
                   scale: float) -> tuple[tuple[slice, slice], np.ndarray]:
    """Fraction of each canvas pixel covered by the part (signed-distance AA)."""
    half = 0.5 * math.hypot(part.length, part.width or part.length) + 2
    x0 = max(0, int((part.cx - half) * scale * ppm))
    x1 = min(shape[1], int((part.cx + half) * scale * ppm) + 2)
    y0 = max(0, int((part.cy - half) * scale * ppm))
    y1 = min(shape[0], int((part.cy + half) * scale * ppm) + 2)
    ys, xs = np.mgrid[y0:y1, x0:x1].astype(np.float32)
    # pixel centres -> part frame, mm (the printer's scale applies to the card only)
    X = (xs + 0.5) / (scale * ppm) - part.cx
    Y = (ys + 0.5) / (scale * ppm) - part.cy
    a = math.radians(part.angle)
    u = X * math.cos(a) + Y * math.sin(a)
    v = -X * math.sin(a) + Y * math.cos(a)
    if part.shape == "disc":
        sd = np.hypot(u, v) - part.length / 2
    else:
        r = part.corner_radius
        qx = np.abs(u) - (part.length / 2 - r)
        qy = np.abs(v) - (part.width / 2 - r)
        sd = (np.hypot(np.maximum(qx, 0), np.maximum(qy, 0))
              + np.minimum(np.maximum(qx, qy), 0) - r)
    for h in part.holes:
        sd = np.maximum(sd, h.diameter / 2 - np.hypot(u - h.x, v - h.y))
    px_mm = 1.0 / (scale * ppm)
    cov = np.clip(0.5 - sd / px_mm, 0.0, 1.0)
    return (slice(y0, y1), slice(x0, x1)), cov


def _camera_homography(cam: Camera, card_w: float, card_h: float,
                       size: tuple[int, int]) -> np.ndarray:
    """Card mm -> image px for a pinhole camera looking at the tilted card."""
    W, H = size
    f = cam.focal * max(W, H)
    K = np.array([[f, 0, W / 2], [0, f, H / 2], [0, 0, 1]])
    ax = math.radians(cam.tilt_axis)
    axis = np.array([math.cos(ax), math.sin(ax), 0.0])
    R_tilt, _ = cv2.Rodrigues(axis * math.radians(cam.tilt))
    R_roll, _ = cv2.Rodrigues(np.array([0, 0, math.radians(cam.roll)]))
    R = R_tilt @ R_roll
    C = np.array([[1, 0, -card_w / 2], [0, 1, -card_h / 2], [0, 0, 1]])  # card centre at origin
    corners = np.array([[0, 0], [card_w, 0], [card_w, card_h], [0, card_h]], np.float64)
    z = f * max(card_w, card_h) / max(W, H)
    tx = ty = 0.0
    for _ in range(6):  # move the card (not the image) until it spans `fill` and is centred
        Hm = K @ np.column_stack([R[:, 0], R[:, 1], [tx, ty, z]]) @ C
        p = cv2.perspectiveTransform(corners.reshape(-1, 1, 2), Hm).reshape(-1, 2)
        span = max((p[:, 0].max() - p[:, 0].min()) / W, (p[:, 1].max() - p[:, 1].min()) / H)
        du = (p[:, 0].max() + p[:, 0].min()) / 2 - W / 2
        dv = (p[:, 1].max() + p[:, 1].min()) / 2 - H / 2
        tx -= du * z / f
        ty -= dv * z / f
        z *= span / cam.fill
        tx *= span / cam.fill
        ty *= span / cam.fill
    return K @ np.column_stack([R[:, 0], R[:, 1], [tx, ty, z]]) @ C


def render_scene(scene: Scene) -> tuple[np.ndarray, np.ndarray]:
    """(BGR uint8 photo, 3x3 homography nominal card mm -> image px)."""
    cam = scene.camera
    rng = np.random.default_rng(scene.seed)
    layout = card_layout(scene.paper)
    W, H = SENSORS[cam.megapixels]
    Hm = _camera_homography(cam, layout.width, layout.height, (W, H))
    # Card-plane canvas somewhat finer than the photo, so the warp mostly shrinks.
    ppm_img = math.sqrt(abs(np.linalg.det(Hm[:2, :2] / Hm[2, 2])))
    ppm = min(24.0, 1.25 * ppm_img * (1 + 0.5 * math.sin(math.radians(cam.tilt))))
    pad = 10.0  # mm of table visible around the card in the canvas
    cw, ch = round((layout.width + 2 * pad) * ppm), round((layout.height + 2 * pad) * ppm)
    s = scene.print_scale
    canvas = np.full((ch, cw), 255, np.uint8)
    draw_card(canvas, layout, ppm * s, (pad / s, pad / s))
    table = 110
    paper = cv2.convertScaleAbs(canvas, alpha=PAPER_WHITE / 255.0)
    x0, y0 = round(pad * ppm), round(pad * ppm)
    x1, y1 = x0 + round(layout.width * s * ppm), y0 + round(layout.height * s * ppm)
    card_mask = np.zeros_like(paper, dtype=bool)
    card_mask[y0:y1, x0:x1] = True
    paper[~card_mask] = table
    shrink = ppm / ppm_img
    aa = max(0.3, 0.45 * shrink)
    paper = cv2.GaussianBlur(paper, (0, 0), aa)
    # canvas px -> card mm -> image px (pixel centres at integers on both sides)
    A = np.array([[1 / ppm, 0, -pad + 0.5 / ppm], [0, 1 / ppm, -pad + 0.5 / ppm], [0, 0, 1]])
    to_img = np.array([[1, 0, -0.5], [0, 1, -0.5], [0, 0, 1]]) @ Hm @ A
    gray = cv2.warpPerspective(paper, to_img, (W, H), flags=cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_CONSTANT, borderValue=table)
    photo = np.repeat(gray[..., None].astype(np.float32), 3, axis=2)
    if scene.part is not None:
        part = scene.part
        shifted = Part(**{**part.__dict__, "cx": part.cx + pad, "cy": part.cy + pad})
        (sy, sx), cov = _part_coverage(shifted, ppm, (ch, cw), 1.0)
        cov = cv2.GaussianBlur(cov, (0, 0), aa)
        # warp only the part's region: canvas ROI -> image ROI
        corners = np.array([[sx.start, sy.start], [sx.stop, sy.start], [sx.stop, sy.stop],
                            [sx.start, sy.stop]], np.float64).reshape(-1, 1, 2)
        q = cv2.perspectiveTransform(corners, to_img).reshape(-1, 2)
        ix0, iy0 = max(0, int(q[:, 0].min()) - 2), max(0, int(q[:, 1].min()) - 2)
        ix1, iy1 = min(W, int(q[:, 0].max()) + 3), min(H, int(q[:, 1].max()) + 3)
        roi = (np.array([[1, 0, -ix0], [0, 1, -iy0], [0, 0, 1]]) @ to_img
               @ np.array([[1, 0, sx.start], [0, 1, sy.start], [0, 0, 1]]))
        cw_img = cv2.warpPerspective(cov, roi, (ix1 - ix0, iy1 - iy0), flags=cv2.INTER_LINEAR,
                                     borderMode=cv2.BORDER_CONSTANT, borderValue=0)[..., None]
        col = np.asarray(part.color, np.float32)
        region = photo[iy0:iy1, ix0:ix1]
        photo[iy0:iy1, ix0:ix1] = (region * (1 - cw_img) + col * cw_img).astype(np.float32)
    # Optics and light: defocus, illumination gradient, glare, exposure, noise.
    if cam.blur > 0:
        photo = np.asarray(cv2.GaussianBlur(photo, (0, 0), cam.blur), np.float32)
    ramp = np.linspace(cam.light[0], cam.light[1], W, dtype=np.float32)[None, :, None]
    photo *= ramp * np.float32(cam.exposure)
    if cam.glare > 0:
        gx, gy = rng.uniform(0.3, 0.7) * W, rng.uniform(0.3, 0.7) * H
        yy, xx = np.ogrid[:H, :W]
        spot = np.exp(-(((xx - gx) ** 2 + (yy - gy) ** 2) / (2 * (0.06 * W) ** 2))).astype(np.float32)
        photo += (cam.glare * spot)[..., None]
    if cam.noise > 0:
        photo += rng.standard_normal(photo.shape, dtype=np.float32) * np.float32(cam.noise)
    photo = np.clip(photo, 0, 255).astype(np.uint8)
    # Nominal card mm -> image px (OpenCV convention: pixel centres at integers).
    return photo, np.array([[1, 0, -0.5], [0, 1, -0.5], [0, 0, 1]]) @ Hm @ np.diag([s, s, 1.0])


def encode_jpeg(image: np.ndarray, quality: int) -> bytes:
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    assert ok
    return buf.tobytes()


def random_part(rng: np.random.Generator, paper: str = "a4") -> Part:
    """A random part whose features span 10-200 mm, placed inside the measuring area."""
    lay = card_layout(paper)
    ax0, ay0, ax1, ay1 = lay.area
    aw, ah = ax1 - ax0, ay1 - ay0
    colors = [(40, 40, 45), (30, 30, 150), (140, 60, 20), (30, 110, 30), (70, 70, 70)]
    color = colors[int(rng.integers(len(colors)))]
    if rng.random() < 0.3:
        d = float(rng.uniform(10, min(aw, ah) - 10))
        holes: list[Hole] = []
        if d > 30 and rng.random() < 0.7:
            holes.append(Hole(0.0, 0.0, float(rng.uniform(3, d * 0.4))))
        return Part("disc", (ax0 + ax1) / 2 + rng.uniform(-3, 3), (ay0 + ay1) / 2 + rng.uniform(-3, 3),
                    d, holes=tuple(holes), color=color)
    while True:
        length = float(rng.uniform(10, min(200, ah - 15)))
        width = float(rng.uniform(10, min(length, aw - 40)))
        # angle 0 puts the length along the card's x (the area's short side)
        angle = float(rng.uniform(-20, 20)) + (90.0 if length > aw - 25 or rng.random() < 0.5 else 0.0)
        a = math.radians(angle)
        bw = abs(length * math.cos(a)) + abs(width * math.sin(a))
        bh = abs(length * math.sin(a)) + abs(width * math.cos(a))
        if bw < aw - 8 and bh < ah - 8:
            break
    holes = []
    n_holes = int(rng.integers(0, 4)) if width >= 14 else 0
    for k in range(n_holes):
        dmax = min(width * 0.5, 25.0)
        d = float(rng.uniform(3, max(3.5, dmax)))
        xk = (k - (n_holes - 1) / 2) * (length / max(1, n_holes)) * 0.8
        if abs(xk) + d / 2 > length / 2 - 3:
            continue
        holes.append(Hole(xk, 0.0, d))
    # holes must not overlap
    holes = [h for i, h in enumerate(holes)
             if all(math.hypot(h.x - o.x, h.y - o.y) > (h.diameter + o.diameter) / 2 + 2 for o in holes[:i])]
    cr = float(rng.uniform(0, min(3.0, width / 4))) if rng.random() < 0.3 else 0.0
    return Part("rect", (ax0 + ax1) / 2, (ay0 + ay1) / 2, length, width, angle, cr, tuple(holes), color)


def random_scene(seed: int, *, megapixels: int = 12, max_tilt: float = 35.0, paper: str = "a4") -> Scene:
    """One scene with random part, pose and degradations in the benchmark's ranges."""
    rng = np.random.default_rng(seed)
    part = random_part(rng, paper)
    left = float(rng.uniform(0.65, 1.0))
    cam = Camera(
        megapixels=megapixels,
        tilt=float(rng.uniform(0, max_tilt)),
        tilt_axis=float(rng.uniform(0, 180)),
        roll=float(rng.choice([0.0, 90.0, 180.0, -90.0]) + rng.uniform(-8, 8)),
        fill=float(rng.uniform(0.85, 0.95)),
        focal=float(rng.uniform(0.7, 0.9)),
        blur=float(rng.uniform(0.5, 1.5)),
        noise=float(rng.uniform(1.0, 4.0)),
        light=(left, float(rng.uniform(0.85, 1.1))) if rng.random() < 0.5 else (1.0, left),
        jpeg_quality=int(rng.integers(70, 96)),
    )
    return Scene(part, cam, paper, seed=seed)
