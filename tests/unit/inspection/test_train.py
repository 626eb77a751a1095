"""Few-shot anomaly training on synthetic textures made here (no data set needed)."""

from __future__ import annotations

import hashlib
import math

import cv2
import numpy as np
import pytest
import yaml

from inspection.anomaly_fit import auroc, split_holdout
from inspection.models import load_model
from inspection.train import train_anomaly
from qc.errors import InvalidInput, ModelHashMismatch

SIZE = 32  # coarsest level 32 px: levels of 32, 64 and 128 px


def texture(rng: np.random.Generator, h: int = 96, w: int = 96) -> np.ndarray:
    """Fine grey grain, like a sintered surface: blurred noise around mid-grey."""
    noise = rng.normal(0, 1, (h, w)).astype(np.float32)
    grain = cv2.GaussianBlur(noise, (0, 0), 1.2)
    img = 120 + 25 * grain / grain.std()
    return np.clip(img, 0, 255).astype(np.uint8)


def with_defect(img: np.ndarray, rng: np.random.Generator, kind: int) -> np.ndarray:
    out = img.copy()
    h, w = out.shape
    if kind % 2 == 0:  # dark scratch
        x0, y0 = int(rng.integers(10, w // 3)), int(rng.integers(10, h - 10))
        x1, y1 = int(rng.integers(2 * w // 3, w - 10)), int(rng.integers(10, h - 10))
        cv2.line(out, (x0, y0), (x1, y1), 20, 4)
    else:  # bright spot
        cx, cy = int(rng.integers(20, w - 20)), int(rng.integers(20, h - 20))
        cv2.circle(out, (cx, cy), 9, 250, -1)
    return out


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict:
    rng = np.random.default_rng(7)
    good = [texture(rng) for _ in range(20)]  # a fifth (4) held out: 2 photos cannot place a threshold
    test_good = [texture(rng) for _ in range(6)]
    defects = [with_defect(texture(rng), rng, k) for k in range(6)]
    wide_good = texture(rng, 120, 300)
    wide_bad = with_defect(texture(rng, 120, 300), rng, 0)
    return {"good": good, "test_good": test_good, "defects": defects, "wide": [wide_good, wide_bad],
            "tmp": tmp_path_factory.mktemp("train")}


@pytest.fixture(scope="module")
def trained(data):
    return train_anomaly(data["good"], name="synthetic-texture", version=1, seed=3, size=SIZE,
                         patches_per_image=64, bank_size=300, threads=1, defect_images=data["defects"])


@pytest.fixture(scope="module")
def model_dir(trained, tmp_path_factory):
    folder = tmp_path_factory.mktemp("model")
    (folder / "model.onnx").write_bytes(trained.onnx_bytes)
    (folder / "card.yaml").write_text(yaml.safe_dump(trained.card), encoding="utf-8")
    return folder


def test_card_follows_the_contract(trained, data):
    card = trained.card
    assert card["task"] == "anomaly" and card["threshold"] == 1.0
    out = card["output"]
    assert (out["format"], out["score"], out["map"]) == ("anomaly-score-map", "pred_score", "anomaly_map")
    # three octave levels (stride 8 at 1, 1/2, 1/4 of the working scale), then the coarse two at x0.875, x1.125
    assert [v["cell"] for v in out["levels"]] == pytest.approx(
        [8, 16, 32, 16 / 0.875, 32 / 0.875, 16 / 1.125, 32 / 1.125], rel=1e-5)
    assert [v["map"] for v in out["levels"]] == [f"level_map{v}" for v in range(7)]
    assert card["sha256"] == hashlib.sha256(trained.onnx_bytes).hexdigest()
    assert card["training"]["good_images"] == len(data["good"])
    assert len(set(card["training"]["image_sha256"])) == len(data["good"])
    assert card["training"]["seed"] == 3
    assert card["validation"]["holdout_false_reject_rate"] == 0.0  # calibration passes every held-out good


def test_separates_good_from_defective(model_dir, data):
    model = load_model(model_dir)
    good = [model.run(im).result.score for im in data["test_good"]]
    bad = [model.run(im).result.score for im in data["defects"]]
    assert auroc(good, bad) >= 0.9
    assert min(bad) >= 1.0  # injected defects are flagged at the baked-in threshold
    assert model.run(data["defects"][0]).result.label == "defect"


def test_non_square_images(model_dir, data):
    model = load_model(model_dir)
    good, bad = (model.run(im) for im in data["wide"])
    assert good.anomaly_map.shape == (120, 300)
    assert bad.result.score > good.result.score
    assert bad.result.label == "defect"


def test_score_is_the_sum_of_the_level_peaks_inside_the_photo(model_dir, data):
    """Read the level maps straight from ONNX Runtime and add their peaks over the photo's cells."""
    model = load_model(model_dir)
    image = data["wide"][1]
    batch, geos = model.prepare(image)
    names = [o.name for o in model.session.get_outputs()]
    outs = dict(zip(names, model.session.run(None, {"image": batch}), strict=True))
    nh, nw = geos[0].valid
    expected = 0.0
    for view in yaml.safe_load((model_dir / "card.yaml").read_text())["output"]["levels"]:
        cell = view["cell"]
        rows, cols = math.ceil(nh / cell - 1e-6), math.ceil(nw / cell - 1e-6)
        expected += float(outs[view["map"]][0, 0, :rows, :cols].max())
    out = model.run(image)
    assert out.result.score == pytest.approx(expected, rel=1e-6)
    assert 0 < out.anomaly_map.max() <= out.result.score * 7 / 3  # octave sum in score units


@pytest.mark.parametrize("levels", [1, 2])
def test_shallower_pyramids_still_flag_the_scratch(data, tmp_path, levels):
    """One level has no coarse views to jitter; two levels jitter only level 1 (smallest input 64 px)."""
    trained = train_anomaly(data["good"], name="shallow", version=1, seed=1, size=SIZE * 2, levels=levels,
                            patches_per_image=64, bank_size=200, threads=1)
    assert len(trained.card["output"]["levels"]) == {1: 1, 2: 4}[levels]
    (tmp_path / "model.onnx").write_bytes(trained.onnx_bytes)
    (tmp_path / "card.yaml").write_text(yaml.safe_dump(trained.card), encoding="utf-8")
    model = load_model(tmp_path)
    good, bad = (model.run(im).result.score for im in data["wide"])
    assert bad > good and bad >= 1.0


def test_same_seed_same_bytes(trained, data):
    again = train_anomaly(data["good"], name="synthetic-texture", version=1, seed=3, size=SIZE,
                          patches_per_image=64, bank_size=300, threads=1, created=trained.card["provenance"]["date"])
    assert again.onnx_bytes == trained.onnx_bytes


def test_hash_is_verified_on_load(trained, tmp_path):
    (tmp_path / "model.onnx").write_bytes(trained.onnx_bytes + b"\0")
    (tmp_path / "card.yaml").write_text(yaml.safe_dump(trained.card), encoding="utf-8")
    with pytest.raises(ModelHashMismatch):
        load_model(tmp_path)


def test_one_scale_for_every_photo(trained, model_dir, data):
    """resize: scale keeps the aspect ratio: a 120 x 300 photo is scaled, not squashed to a square."""
    inp = trained.card["input"]
    assert inp["resize"] == "scale" and inp["multiple"] == 32 * 2**2
    assert inp["factor"] == pytest.approx(SIZE * 4 / 96)  # coarsest level SIZE px for the 96 px photos
    model = load_model(model_dir)
    batch, geos = model.prepare(data["wide"][0])
    h, w = round(120 * inp["factor"]), round(300 * inp["factor"])
    assert geos[0].valid == (h, w)
    assert batch.shape[2] % 128 == 0 and batch.shape[3] % 128 == 0 and batch.shape[3] >= w


def test_cli_train_then_score(data, tmp_path):
    """``qc train anomaly`` writes a loadable folder; ``qc score --json`` labels each photo."""
    import json  # noqa: PLC0415

    from click.testing import CliRunner  # noqa: PLC0415

    from service.cli import cli  # noqa: PLC0415

    good = tmp_path / "good"
    good.mkdir()
    for i, im in enumerate(data["good"]):
        cv2.imwrite(str(good / f"g{i}.png"), im)
    cv2.imwrite(str(tmp_path / "bad.png"), data["defects"][0])
    cv2.imwrite(str(tmp_path / "ok.png"), data["test_good"][0])
    out = tmp_path / "m"
    runner = CliRunner()
    res = runner.invoke(cli, ["train", "anomaly", "--good", str(good), "--name", "cli-texture",
                              "--version", "2", "--out", str(out), "--seed", "5", "--size", "24", "--levels", "2"])
    assert res.exit_code == 0, res.output
    card = yaml.safe_load((out / "card.yaml").read_text())
    assert (card["name"], card["version"], card["training"]["seed"]) == ("cli-texture", 2, 5)
    assert (card["training"]["working_size"], card["training"]["levels"], card["input"]["multiple"]) == (24, 2, 64)
    res = runner.invoke(cli, ["score", str(out), str(tmp_path / "bad.png"), str(tmp_path / "ok.png"), "--json"])
    assert res.exit_code == 0, res.output
    rows = json.loads(res.output[res.output.index("["):])
    assert [r["image"] for r in rows] == [str(tmp_path / "bad.png"), str(tmp_path / "ok.png")]
    assert all(r["threshold"] == 1.0 and r["label"] in ("good", "defect") for r in rows)
    assert rows[0]["score"] > rows[1]["score"]


def test_too_few_good_images_is_refused(data):
    with pytest.raises(InvalidInput, match="at least 3 good images"):
        train_anomaly(data["good"][:2], name="too-few", version=1)


def test_cli_refuses_an_unreadable_photo_with_a_message(data, tmp_path):
    from click.testing import CliRunner  # noqa: PLC0415

    from service.cli import cli  # noqa: PLC0415

    good = tmp_path / "good"
    good.mkdir()
    for i, im in enumerate(data["good"][:3]):
        cv2.imwrite(str(good / f"g{i}.png"), im)
    (good / "broken.jpg").write_bytes(b"not an image")
    res = CliRunner().invoke(cli, ["train", "anomaly", "--good", str(good), "--name", "x", "--version", "1",
                                   "--out", str(tmp_path / "m")])
    assert res.exit_code == 1 and "broken.jpg: not a readable image" in res.output
    assert not (tmp_path / "m").exists()  # nothing half-written



def test_cli_names_a_defect_hidden_among_the_held_out_good_photos(data, tmp_path):
    """One scratched part in the good folder, held out for calibration: the trainer says which file it is."""
    from click.testing import CliRunner  # noqa: PLC0415

    from service.cli import cli  # noqa: PLC0415

    good = tmp_path / "good"
    good.mkdir()
    rng = np.random.default_rng(11)
    photos = [texture(rng) for _ in range(60)]  # 12 held out: enough to see one stand out
    hidden = int(split_holdout(len(photos), 0.2, 5)[1][0])  # the trainer's own held-out draw for seed 5
    for i, im in enumerate(photos):
        cv2.imwrite(str(good / f"g{i:02d}.png"), data["defects"][0] if i == hidden else im)
    res = CliRunner().invoke(cli, ["train", "anomaly", "--good", str(good), "--name", "with-a-stray", "--version", "1",
                                   "--out", str(tmp_path / "m"), "--seed", "5", "--size", "24", "--levels", "2"])
    assert res.exit_code == 0, res.output
    assert f"held-out good photo {good / f'g{hidden:02d}.png'} scores far above" in res.output
    card = yaml.safe_load((tmp_path / "m" / "card.yaml").read_text())
    (suspect,) = card["validation"]["holdout_suspects"]
    assert suspect["image_sha256"] == card["training"]["image_sha256"][hidden] and suspect["score"] >= 0.99
