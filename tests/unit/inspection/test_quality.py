"""Quality gate: bad photos are refused with advice a technician can follow."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from demo.scenes import Camera, Part, Scene, render_scene
from inspection.card import card_layout, detect_card
from inspection.quality import QualityLimits, assess_quality
from qc.standards import PhotoSlot, QualityThresholds

_LAY = card_layout("a4")
_PART = Part("rect", (_LAY.area[0] + _LAY.area[2]) / 2, (_LAY.area[1] + _LAY.area[3]) / 2, 80.0, 30.0, angle=10)
_GOOD = Camera(megapixels=3, tilt=10.0, tilt_axis=40.0, roll=90.0, blur=0.7, noise=2.0)  # ~7 px/mm


def _assess(limits: QualityLimits = QualityLimits(), **camera: object):  # type: ignore[no-untyped-def]
    image, _ = render_scene(Scene(_PART, dataclasses.replace(_GOOD, **camera), seed=2))
    return assess_quality(image, detect_card(image), limits)


def _failed(q) -> set[str]:  # type: ignore[no-untyped-def]
    return {m.name for m in q.metrics if not m.passed}


def test_good_photo_passes_every_metric() -> None:
    q = _assess()
    assert q.usable and q.retake_message is None
    names = {m.name for m in q.metrics}
    assert {"card_markers", "resolution", "sharpness", "dark", "bright", "glare", "tilt"} <= names


def test_blurred_photo_is_refused_with_sharpness_value_and_limit() -> None:
    q = _assess(blur=4.0)
    assert _failed(q) == {"sharpness"}
    msg = q.retake_message or ""
    assert msg.startswith("too blurred — hold the phone steady")
    m = next(m for m in q.metrics if m.name == "sharpness")
    assert m.value < m.limit == 150 and f"sharpness {m.value:.0f}, needs 150" in msg


def test_dark_photo_is_refused() -> None:
    q = _assess(exposure=0.13, noise=3.0)  # the part's edges fade into the noise
    assert "dark" in _failed(q)
    assert "too dark" in (q.retake_message or "")


def test_overexposed_photo_and_glare_are_refused() -> None:
    assert "bright" in _failed(_assess(exposure=1.8))
    q = _assess(glare=220.0)
    assert "glare" in _failed(q) and "reflection" in (q.retake_message or "")


def test_photo_without_card_is_refused() -> None:
    image = np.full((1500, 2000, 3), 128, np.uint8)
    q = assess_quality(image, detect_card(image))
    assert not q.usable and _failed(q) == {"card_markers"}
    assert "calibration card not found" in (q.retake_message or "")


def test_too_far_and_too_small_photos_are_refused() -> None:
    q = _assess(fill=0.3)
    assert "resolution" in _failed(q)
    assert "move closer" in (q.retake_message or "")
    small = _assess(QualityLimits(min_pixels=8_000_000))
    assert _failed(small) == {"pixels"}
    assert "3.0 MP, needs 8.0 MP" in (small.retake_message or "")


def test_tilted_photo_is_refused() -> None:
    q = _assess(QualityLimits(max_tilt_deg=20.0), tilt=28.0)
    assert _failed(q) == {"tilt"}
    assert "hold it parallel" in (q.retake_message or "")


def test_limits_come_from_the_standard_with_defaults() -> None:
    slot = PhotoSlot(id="top", prompt="Top", min_pixels=4_000_000,
                     quality=QualityThresholds(min_sharpness=300, max_tilt_deg=20))
    lim = QualityLimits.from_slot(slot)
    assert lim.min_sharpness == 300 and lim.max_tilt_deg == 20 and lim.min_pixels == 4_000_000
    assert lim.min_markers == QualityLimits().min_markers
    assert lim.min_px_per_mm == QualityLimits().min_px_per_mm


@pytest.mark.parametrize("value,expected", [(10, False), (200, True)])
def test_photo_without_card_checks_sharpness_only_when_the_standard_asks(value: int, expected: bool) -> None:
    rng = np.random.default_rng(1)
    sharp = rng.integers(0, 255, (300, 300, 3), dtype=np.uint8)  # Laplacian variance in the thousands
    flat = np.full((300, 300, 3), 120, np.uint8)
    default = assess_quality(flat, None, card=False)
    assert default.usable and "sharpness" not in {m.name for m in default.metrics}
    slot = PhotoSlot(id="surface", prompt="Surface", card=False, quality=QualityThresholds(min_sharpness=value))
    image = sharp if expected else flat  # flat: Laplacian variance 0, below any limit
    q = assess_quality(image, None, QualityLimits.from_slot(slot), card=False)
    assert "sharpness" in {m.name for m in q.metrics}
    assert ("sharpness" not in _failed(q)) is expected
