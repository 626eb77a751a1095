"""Dimensional measurement against synthetic photos of parts of known size.

The scenes are drawn from physical sizes (inspection/synthetic.py) and never
from the measurer; the full error/coverage study is bench/measure.py.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from demo.scenes import Camera, Hole, Part, Scene, encode_jpeg, render_scene, truth
from inspection.card import card_layout, detect_card
from inspection.images import decode_image
from inspection.measure import MeasureError, fit_circle, measure_part

_LAY = card_layout("a4")
_CX, _CY = (_LAY.area[0] + _LAY.area[2]) / 2, (_LAY.area[1] + _LAY.area[3]) / 2


def _measure(scene: Scene):  # type: ignore[no-untyped-def]
    image, _ = render_scene(scene)
    photo = decode_image(encode_jpeg(image, scene.camera.jpeg_quality))
    return measure_part(photo, detect_card(photo))


def test_circle_fit_recovers_a_known_circle() -> None:
    rng = np.random.default_rng(0)
    t = np.linspace(0, 2 * math.pi, 400, endpoint=False)
    pts = np.column_stack([12.5 + 7.0 * np.cos(t), -3.0 + 7.0 * np.sin(t)]) + rng.normal(0, 0.01, (400, 2))
    cx, cy, r, rms = fit_circle(pts)
    assert (cx, cy, r) == pytest.approx((12.5, -3.0, 7.0), abs=0.003)
    assert rms == pytest.approx(0.01, rel=0.3)


def test_circle_fit_on_a_short_arc() -> None:
    t = np.linspace(0.2, 1.4, 60)
    pts = np.column_stack([5 + 20 * np.cos(t), 5 + 20 * np.sin(t)])
    assert fit_circle(pts)[:3] == pytest.approx((5.0, 5.0, 20.0), abs=1e-6)


BRACKET = Part("rect", _CX, _CY, 80.0, 30.0, angle=93.0, corner_radius=2.0,
               holes=(Hole(-30.0, 0.0, 6.2), Hole(30.0, 0.0, 6.4)), color=(150, 80, 30))


@pytest.mark.parametrize("scene", [
    Scene(BRACKET, Camera(megapixels=12, tilt=25.0, tilt_axis=20.0, blur=1.2, noise=3.0, jpeg_quality=80), seed=1),
    Scene(Part("disc", _CX + 4, _CY - 6, 120.0, holes=(Hole(0.0, 0.0, 22.0),), color=(40, 40, 45)),
          Camera(megapixels=8, tilt=12.0, roll=90.0, light=(0.65, 1.0), jpeg_quality=75), seed=2),
    Scene(Part("rect", _CX, _CY, 180.0, 95.0, angle=82.0, holes=(Hole(-50, 10, 12.0), Hole(40, -20, 9.0),
                                                                  Hole(10, 25, 4.0)), color=(30, 110, 30)),
          Camera(megapixels=12, tilt=33.0, tilt_axis=110.0, roll=-90.0, blur=1.5, noise=4.0), seed=3),
], ids=["bracket-12MP-tilt25", "disc-8MP-gradient", "plate-12MP-tilt33"])
def test_measurements_match_the_drawn_sizes_within_their_uncertainty(scene: Scene) -> None:
    assert scene.part is not None
    pm = _measure(scene)
    t = truth(scene.part)
    checked = 0
    for m in pm.measurements:
        if m.feature == "hole_diameter":
            expected = t["hole_diameter"][m.index - 1]  # type: ignore[index]
        elif m.feature == "diameter" and scene.part.shape != "disc":
            continue
        else:
            expected = t[m.feature]
        assert abs(m.value - expected) <= m.uncertainty, (m, expected)
        if m.unit == "mm":
            assert abs(m.value - expected) < 0.12, (m, expected)
            assert 0.01 < m.uncertainty < 0.5, m
            checked += 1
    assert pm.get("hole_count") is not None and pm.get("hole_count").value == len(scene.part.holes)  # type: ignore[union-attr]
    assert checked >= 3


def test_printer_scale_error_stays_inside_the_stated_uncertainty() -> None:
    part = Part("rect", _CX, _CY, 150.0, 60.0, angle=88.0)
    scene = Scene(part, Camera(megapixels=8, tilt=5.0, roll=90.0), print_scale=1.002, seed=5)
    m = _measure(scene).get("length")
    assert m is not None
    # a card printed 0.2 % large makes parts read 0.2 % small; the budget allows for it
    assert m.value == pytest.approx(150.0 / 1.002, abs=0.08)
    assert abs(m.value - 150.0) <= m.uncertainty


def test_card_without_part_is_reported() -> None:
    with pytest.raises(MeasureError, match="no part found"):
        _measure(Scene(None, Camera(megapixels=3, roll=90.0), seed=1))


def test_part_touching_the_edge_of_the_area_is_reported() -> None:
    part = Part("rect", _LAY.area[0] + 10, _CY, 60.0, 30.0, angle=0.0)  # sticks out on the left
    with pytest.raises(MeasureError, match="touches the edge"):
        _measure(Scene(part, Camera(megapixels=3, roll=90.0), seed=1))
