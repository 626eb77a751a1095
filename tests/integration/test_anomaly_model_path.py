"""The shipped magnetic-tile model judges real tiles through the API, and the overlay shows where.

Uses the magnetic-tile data set (skipped when ``../shared/datasets/magnetic-tile`` and
``KIPIMO_MT_DATASET`` are both absent). The photos are from the benchmark's held-out test
split, never from the model's training images. What "defect" means comes from the data set's
own pixel masks, not from the model.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from demo.photos import dataset_dir, held_out_good_tiles
from inspection.models import load_model
from service.cli.init import InitReport, publish_shipped_standards, register_shipped_models, shipped_standards
from service.settings import REPO_ROOT
from tests.integration.support import auth, record, upload

MODEL_DIR = REPO_ROOT / "models" / "magnetic-tile-surface-2"  # the one the current standard (v3) names
DATASET = dataset_dir()
pytestmark = pytest.mark.skipif(DATASET is None, reason="magnetic-tile data set not available")


def _submit(make_client, seed, ctx, settings, photo: Path) -> tuple[dict, object]:
    register_shipped_models(ctx, by="test", report=InitReport())  # a standard may name only registered models
    publish_shipped_standards(ctx, shipped_standards(settings.checklists_dir), by="test", report=InitReport())
    client = make_client(vision=True)
    r = upload(client, seed.tech_a, record(product="magnetic-tile", answers={"chipped_corner": True}),
               {"surface": photo.read_bytes()})
    assert r.status_code == 201, r.text
    return r.json(), client


def _model_check(body: dict) -> dict:
    (check,) = [x for x in body["results"] if x["check_id"] == "surface_anomaly"]
    return check


def test_good_tile_passes_with_the_shipped_model(make_client, seed, ctx, settings):
    model = load_model(MODEL_DIR)
    # the first held-out good tile the model finds clearly normal (below the standard's review band)
    photo = next(p for p in held_out_good_tiles() if model.run(cv2.imread(str(p))).result.score < 0.9)
    body, _ = _submit(make_client, seed, ctx, settings, photo)
    check = _model_check(body)
    assert check["status"] == "pass" and check["model_sha256"] == model.sha256
    assert body["verdict"] == "pass"


def test_borderline_tile_goes_to_review(make_client, seed, ctx, settings):
    """magnetic-tile v3 (band since v2): scores in [0.9, 1.0) are neither passed nor failed by the model alone."""
    model = load_model(MODEL_DIR)
    photo = next(p for p in held_out_good_tiles() if 0.9 <= model.run(cv2.imread(str(p))).result.score < 1.0)
    body, _ = _submit(make_client, seed, ctx, settings, photo)
    assert body["standard"]["version"] == 3
    assert _model_check(body)["status"] == "inconclusive"
    assert body["verdict"] == "review"


def test_defect_is_failed_and_the_heat_map_sits_on_it(make_client, seed, ctx, settings):
    """A fray (large dark patch, outlined in the data set's mask) fails the critical check."""
    model = load_model(MODEL_DIR)
    frays = sorted((DATASET / "MT_Fray" / "Imgs").glob("*.jpg"))
    masks = {p: cv2.imread(str(p.with_suffix(".png")), cv2.IMREAD_GRAYSCALE) > 127 for p in frays}
    # among the frays the model flags and whose mark covers under a third of the photo, the strongest
    scores = {p: model.run(cv2.imread(str(p))).result.score for p in frays}
    photo = max((p for p in frays if scores[p] >= 1.0 and masks[p].mean() < 1 / 3), key=scores.__getitem__)
    mask = masks[photo]
    body, client = _submit(make_client, seed, ctx, settings, photo)
    check = _model_check(body)
    direct = model.run(cv2.imread(str(photo))).result.score
    assert check["status"] == "fail" and check["value"] == pytest.approx(direct, rel=1e-4)
    assert body["verdict"] == "fail"

    png = client.get(body["photos"][0]["overlay_url"], headers=auth(seed.tech_a))
    assert png.status_code == 200
    overlay = cv2.imdecode(np.frombuffer(png.content, np.uint8), cv2.IMREAD_COLOR)
    h, w = mask.shape
    view = overlay[-round(h * overlay.shape[1] / w):]  # the photo sits under the text banner
    colour = cv2.cvtColor(view, cv2.COLOR_BGR2HSV)[..., 1].astype(float)  # the tile is grey: colour = heat
    inside = cv2.resize(mask.astype(np.uint8), (view.shape[1], view.shape[0])) > 0
    assert colour[inside].mean() > 2 * colour[~inside].mean()
