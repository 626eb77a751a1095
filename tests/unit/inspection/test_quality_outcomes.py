"""The gate refuses a photo when its result would be unreliable, not because the paper clips.

Each case is a generated scene (``demo.scenes``: truth from the part's description)
measured with the gate relaxed, so the test knows independently whether the photo
would have measured within its stated U; the gate must agree.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from demo.scenes import Camera, Hole, Part, Scene, render_scene, truth
from inspection.card import card_layout, detect_card
from inspection.pipeline import inspect_image
from inspection.quality import QualityLimits, assess_quality

_LAY = card_layout("a4")
_CX, _CY = (_LAY.area[0] + _LAY.area[2]) / 2, (_LAY.area[1] + _LAY.area[3]) / 2
_PART = Part("rect", _CX, _CY, 80.0, 30.0, angle=10, holes=(Hole(-20.0, 0.0, 8.0), Hole(20.0, 0.0, 6.0)))
_CAMERA = Camera(megapixels=3, tilt=10.0, tilt_axis=40.0, roll=90.0, blur=0.7, noise=2.0)  # ~7 px/mm
_RELAXED = QualityLimits(min_markers=1, min_px_per_mm=0.0, min_sharpness=0.0, max_dark_fraction=1.0,
                         max_bright_fraction=1.0, max_glare_fraction=1.0, max_tilt_deg=90.0)


def _photo(**camera: object) -> np.ndarray:
    image, _ = render_scene(Scene(_PART, dataclasses.replace(_CAMERA, **camera), seed=3))
    return image


def _errors(image: np.ndarray) -> list[tuple[str, float, float]]:
    """(feature, |error| against the scene's truth, stated U) measured with the gate relaxed."""
    res = inspect_image(image, "top", limits=_RELAXED)
    t = truth(_PART)
    holes = t["hole_diameter"]
    assert isinstance(holes, list) and res.findings.error is None
    out = []
    for m in res.findings.measurements:
        if m.feature in ("length", "width"):
            out.append((m.feature, abs(m.value - float(t[m.feature])), m.uncertainty))  # type: ignore[arg-type]
        elif m.feature == "hole_diameter":
            out.append((f"hole {m.index}", abs(m.value - holes[m.index - 1]), m.uncertainty))
        elif m.feature == "hole_count":
            assert m.value == len(holes)
    return out


def _failed(image: np.ndarray) -> set[str]:
    q = assess_quality(image, detect_card(image), measure=True)
    return {m.name for m in q.metrics if not m.passed}


def test_clipped_white_paper_around_a_sharp_well_lit_part_is_not_refused() -> None:
    image = _photo(exposure=1.1)  # paper 232 x 1.1: the white around the part clips
    gray = image.min(axis=2)
    assert np.mean(gray >= 250) > 0.5  # most of the photo is clipped paper (the old gate said overexposed)
    assert all(e <= 0.05 and e <= u for _f, e, u in _errors(image))  # yet it measures within U and 0.05 mm
    assert _failed(image) == set()


def test_overexposure_that_moves_the_edges_is_refused() -> None:
    image = _photo(exposure=2.2, blur=1.8)  # paper far over: the half-way level slides onto the part
    assert any(e > u for _f, e, u in _errors(image))
    assert "bright" in _failed(image)


def test_part_too_dark_to_see_its_edges_is_refused() -> None:
    image = _photo(exposure=0.13, noise=3.0)  # paper 30, part 5: edges of ~25 grey levels in noise
    gray = image.min(axis=2)
    assert np.median(gray) < 40
    assert "dark" in _failed(image)


def test_blurred_part_is_refused() -> None:
    image = _photo(blur=6.0)
    assert any(e > u for _f, e, u in _errors(image))
    assert "sharpness" in _failed(image)


def test_model_slot_judges_the_part_surface_not_its_edges() -> None:
    image = _photo(exposure=2.2, blur=1.8)  # edges moved (refused above for dimensions)
    det = detect_card(image)
    surface = assess_quality(image, det, measure=False, models=True)
    assert surface.usable  # the dark part's surface is neither crushed nor clipped
    crushed = assess_quality(_photo(exposure=0.25), detect_card(_photo(exposure=0.25)), measure=False, models=True)
    assert {m.name for m in crushed.metrics if not m.passed} == {"dark"}  # part at grey 10: no detail left
