"""Demo photos of parts on the calibration card, drawn from the standard's nominal sizes.

The part's true size is the nominal plus manufacturing scatter (a tenth of the
tolerance) plus the node's story: Yaoundé's bracket holes shrink from week 8
on (a worn nozzle). The scene generator draws it; the real inspection then
measures it, so the demo's dimensions and verdicts are produced by the same
code a real photo goes through.
"""

from __future__ import annotations

import numpy as np

from demo.scenes import Camera, Hole, Part, Scene, encode_jpeg, render_scene
from inspection.card import card_layout
from qc.standards import DimensionCheck, PhotoSlot, Standard

__all__ = ["render_part_photo", "DEMO_MEGAPIXELS"]

DEMO_MEGAPIXELS = 8
DRIFT_START_WEEK = 7
DRIFT_MM_PER_WEEK = 0.04


def _nominal(checks: dict[str, DimensionCheck], feature: str, default: float, index: int = 1) -> tuple[float, float]:
    """(nominal, scatter sigma) for a feature from the slot's checks."""
    for c in checks.values():
        if c.feature == feature and c.index == index:
            lo, hi = c.limits
            centre = c.nominal if c.nominal is not None else ((lo or 0) + (hi if hi is not None else lo or 0)) / 2
            width = (hi - lo) if lo is not None and hi is not None else 0.0
            return float(centre), width / 10
    return default, 0.0


def render_part_photo(standard: Standard, slot: PhotoSlot, *, node: str, week: int,
                      rng: np.random.Generator) -> bytes:
    checks = {c.id: c for c in slot.checks if isinstance(c, DimensionCheck)}
    length, s_len = _nominal(checks, "length", 80.0)
    width, s_wid = _nominal(checks, "width", 40.0)
    count, _ = _nominal(checks, "hole_count", 0.0)
    spacing, s_sp = _nominal(checks, "hole_spacing", 0.0)
    hole_d, s_hole = _nominal(checks, "hole_diameter", 5.0)
    if node == "yaounde" and standard.product == "spare-part-bracket" and week >= DRIFT_START_WEEK:
        hole_d -= DRIFT_MM_PER_WEEK * (week - DRIFT_START_WEEK + 1)
    length += rng.normal(0, s_len)
    width += rng.normal(0, s_wid)
    holes = _holes(int(round(count)), length, width, spacing + rng.normal(0, s_sp), hole_d, s_hole, rng)
    lay = card_layout("a4")
    ax0, ay0, ax1, ay1 = lay.area
    part = Part("rect", (ax0 + ax1) / 2 + rng.uniform(-3, 3), (ay0 + ay1) / 2 + rng.uniform(-3, 3),
                length, width, angle=float(rng.uniform(-3, 3)) + 90.0, corner_radius=2.0, holes=holes,
                color=(150, 80, 30) if standard.product == "spare-part-bracket" else (60, 60, 60))
    camera = Camera(megapixels=DEMO_MEGAPIXELS, tilt=float(rng.uniform(0, 20)), tilt_axis=float(rng.uniform(0, 180)),
                    roll=float(rng.uniform(-6, 6)), fill=0.9, blur=float(rng.uniform(0.5, 1.2)),
                    noise=float(rng.uniform(1.0, 3.0)), light=(float(rng.uniform(0.75, 1.0)), 1.0),
                    jpeg_quality=88)
    image, _ = render_scene(Scene(part, camera, "a4", seed=int(rng.integers(2**31))))
    return encode_jpeg(image, camera.jpeg_quality)


def _holes(count: int, length: float, width: float, spacing: float, diameter: float, sigma: float,
           rng: np.random.Generator) -> tuple[Hole, ...]:
    if count <= 0:
        return ()
    if count == 2 and spacing > 0:
        xs = [-spacing / 2, spacing / 2]
        ys = [0.0, 0.0]
    else:  # corners, inset by 12 mm (visor pin holes)
        xs = [s * (length / 2 - 12) for s in (-1, 1, -1, 1)][:count]
        ys = [s * (width / 2 - 12) for s in (-1, -1, 1, 1)][:count]
    return tuple(Hole(x, y, diameter + rng.normal(0, sigma)) for x, y in zip(xs, ys, strict=True))
