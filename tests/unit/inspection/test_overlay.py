"""The overlay is drawn from the evaluated results: its colours follow each result's status, not the limits.

The same inspected photo is drawn twice with the same measurements and checks; only the results
``qc.evaluate`` would have given differ, so any change in colour comes from the results alone.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from demo.scenes import Camera, Hole, Part, Scene, encode_jpeg, render_scene
from inspection.card import card_layout
from inspection.overlay import AMBER, GREEN, RED
from qc.evaluate import CheckResult, CheckStatus
from qc.standards import DimensionCheck, PhotoSlot, Severity
from service.core.vision import PhotoInspection, inspect_photo
from service.settings import Settings

_LAY = card_layout("a4")
_PART = Part("rect", (_LAY.area[0] + _LAY.area[2]) / 2, (_LAY.area[1] + _LAY.area[3]) / 2, 80.0, 30.0,
             angle=91.0, corner_radius=2.0, holes=(Hole(-30.0, 0.0, 6.2), Hole(30.0, 0.0, 6.2)),
             color=(150, 80, 30))
_CHECKS = (DimensionCheck(id="len", feature="length", nominal=80.0, tolerance=(-0.3, 0.3)),
           DimensionCheck(id="wid", feature="width", nominal=30.0, tolerance=(-0.3, 0.3)))


@pytest.fixture(scope="module")
def inspected(tmp_path_factory: pytest.TempPathFactory) -> PhotoInspection:
    image, _ = render_scene(Scene(_PART, Camera(megapixels=8, roll=90.0, blur=0.8), seed=3))
    tmp = tmp_path_factory.mktemp("overlay")
    settings = Settings(models_dir=tmp / "none", data_dir=tmp)
    res = inspect_photo(encode_jpeg(image, 90), PhotoSlot(id="top", prompt="Part", checks=_CHECKS),
                        settings=settings)
    assert res.findings.measurement("length") is not None and res.findings.measurement("width") is not None
    return res


def _results(status: CheckStatus) -> list[CheckResult]:
    return [CheckResult(check_id=c.id, kind="dimension", slot="top", status=status, severity=Severity.MAJOR,
                        message="", lower=c.limits[0], upper=c.limits[1]) for c in _CHECKS]


def _pixels(png: bytes, colour: tuple[int, int, int]) -> int:
    img = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)
    return int(np.all(img == np.array(colour, np.uint8), axis=2).sum())


def test_dimension_lines_take_the_colour_of_their_result(inspected: PhotoInspection) -> None:
    passed = inspected.draw_overlay(_results(CheckStatus.PASS))
    failed = inspected.draw_overlay(_results(CheckStatus.FAIL))
    review = inspected.draw_overlay(_results(CheckStatus.INCONCLUSIVE))
    # The part measures 80 x 30 mm, inside both tolerances; a FAIL result still draws red, because the
    # overlay shows what the record says rather than judging the limits itself.
    assert _pixels(passed, GREEN) > 200 and _pixels(passed, RED) < _pixels(failed, RED) / 10
    assert _pixels(failed, RED) > 200 and _pixels(failed, GREEN) < _pixels(passed, GREEN) / 10
    assert _pixels(review, AMBER) > 200 and _pixels(review, AMBER) > 10 * _pixels(passed, AMBER)


def test_a_measurement_no_result_judged_is_drawn_neutral(inspected: PhotoInspection) -> None:
    unjudged = inspected.draw_overlay([])
    assert _pixels(unjudged, GREEN) < _pixels(inspected.draw_overlay(_results(CheckStatus.PASS)), GREEN) / 10
    assert _pixels(unjudged, RED) < _pixels(inspected.draw_overlay(_results(CheckStatus.FAIL)), RED) / 10
