"""ONNX runner: tiny models built here with onnx.helper, one per adapter."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import onnx
import pytest
import yaml
from onnx import TensorProto, helper

from inspection.models import ModelRegistry, load_model
from qc.errors import ModelError, ModelHashMismatch, ModelNotInstalled
from qc.standards import ModelCheck
from service.core.checklists import load_shipped_standards
from service.settings import REPO_ROOT


def _save(model: onnx.ModelProto, folder: Path, card: dict, *, wrong_hash: bool = False) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    model.ir_version = 10
    onnx.checker.check_model(model)
    (folder / "model.onnx").write_bytes(model.SerializeToString())
    digest = hashlib.sha256((folder / "model.onnx").read_bytes()).hexdigest()
    card = {"file": "model.onnx", "sha256": "0" * 64 if wrong_hash else digest, **card}
    (folder / "card.yaml").write_text(yaml.safe_dump(card))
    return folder


def _anomaly_model(size: int) -> onnx.ModelProto:
    """anomaly_map = channel mean of the input; pred_score = max of the map."""
    x = helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 3, size, size])
    amap = helper.make_tensor_value_info("anomaly_map", TensorProto.FLOAT, ["N", 1, size, size])
    score = helper.make_tensor_value_info("pred_score", TensorProto.FLOAT, ["N"])
    axes1 = helper.make_tensor("axes1", TensorProto.INT64, [1], [1])
    axes23 = helper.make_tensor("axes123", TensorProto.INT64, [3], [1, 2, 3])
    nodes = [
        helper.make_node("ReduceMean", ["image", "axes1"], ["anomaly_map"], keepdims=1),
        helper.make_node("ReduceMax", ["anomaly_map", "axes123"], ["pred_score"], keepdims=0),
    ]
    graph = helper.make_graph(nodes, "anomaly", [x], [score, amap], initializer=[axes1, axes23])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])


def _anomaly_card(resize: str, size: int) -> dict:
    return {
        "name": "toy-anomaly", "version": 1, "task": "anomaly",
        "input": {"name": "image", "layout": "NCHW", "height": size, "width": size, "color": "rgb",
                  "scale": 255.0, "mean": [0, 0, 0], "std": [1, 1, 1], "resize": resize,
                  "batch": "dynamic"},
        "output": {"format": "anomaly-score-map", "score": "pred_score", "map": "anomaly_map"},
        "threshold": 0.5,
    }


def _classifier_model() -> onnx.ModelProto:
    """logits[c] = 4 * mean of input channel c (channel order as fed)."""
    x = helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, 8, 8])
    y = helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 3])
    axes = helper.make_tensor("axes", TensorProto.INT64, [2], [2, 3])
    four = helper.make_tensor("four", TensorProto.FLOAT, [], [4.0])
    nodes = [
        helper.make_node("ReduceMean", ["input", "axes"], ["m"], keepdims=0),
        helper.make_node("Mul", ["m", "four"], ["logits"]),
    ]
    graph = helper.make_graph(nodes, "cls", [x], [y], initializer=[axes, four])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])


def _yolo_model(pred: np.ndarray) -> onnx.ModelProto:
    """Constant YOLOv8-shaped predictions (plus 0 * input so the input is used)."""
    x = helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, 64, 64])
    y = helper.make_tensor_value_info("output0", TensorProto.FLOAT, list(pred.shape))
    const = helper.make_tensor("pred", TensorProto.FLOAT, list(pred.shape), pred.ravel().tolist())
    zero = helper.make_tensor("zero", TensorProto.FLOAT, [], [0.0])
    nodes = [
        helper.make_node("ReduceSum", ["images"], ["s"], keepdims=0),
        helper.make_node("Mul", ["s", "zero"], ["z"]),
        helper.make_node("Add", ["pred", "z"], ["output0"]),
    ]
    graph = helper.make_graph(nodes, "yolo", [x], [y], initializer=[const, zero])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])


def test_anomaly_adapter_gives_score_label_and_image_sized_map(tmp_path: Path) -> None:
    folder = _save(_anomaly_model(32), tmp_path / "a", _anomaly_card("letterbox", 32))
    model = load_model(folder)
    img = np.zeros((64, 128, 3), np.uint8)  # letterboxed: 0.25 scale, 8 px padding top/bottom
    img[16:48, 96:128] = 255  # white square on the right
    out = model.run(img)
    r = out.result
    assert r.model == "toy-anomaly@1" and r.sha256 == model.sha256 and len(r.sha256) == 64
    assert r.task == "anomaly" and r.label == "defect" and r.threshold == 0.5
    assert r.score == pytest.approx(1.0, abs=1e-5)
    amap = out.anomaly_map
    assert amap is not None and amap.shape == (64, 128) and amap.dtype == np.float32
    assert amap[32, 112] == pytest.approx(1.0, abs=0.02)
    assert amap[32, 20] == pytest.approx(0.0, abs=0.02)
    good = model.run(np.full((64, 128, 3), 60, np.uint8)).result
    # the model also sees the letterbox bands, filled with grey 114 (YOLO convention)
    assert good.label == "good" and good.score == pytest.approx(114 / 255, abs=1e-4)


def test_anomaly_tiles_take_the_worst_tile(tmp_path: Path) -> None:
    folder = _save(_anomaly_model(32), tmp_path / "t", _anomaly_card("tiles", 32))
    img = np.full((64, 96, 3), 20, np.uint8)
    img[40:50, 70:80] = 250  # one defect in one tile
    out = load_model(folder).run(img)
    assert out.result.score == pytest.approx(250 / 255, abs=1e-4)
    assert out.anomaly_map is not None and out.anomaly_map.shape == (64, 96)
    assert out.anomaly_map[45, 75] == pytest.approx(250 / 255, abs=1e-3)
    assert out.anomaly_map[10, 10] == pytest.approx(20 / 255, abs=1e-3)


def _two_level_model() -> onnx.ModelProto:
    """Scale-mode anomaly model: level maps = channel mean average-pooled by 8 and by 16 (of 0-255 input)."""
    x = helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 3, "H", "W"])
    outs = [helper.make_tensor_value_info("pred_score", TensorProto.FLOAT, ["N"])]
    outs += [helper.make_tensor_value_info(n, TensorProto.FLOAT, ["N", 1, f"h{n}", f"w{n}"])
             for n in ("anomaly_map", "level_map0", "level_map1")]
    axes1 = helper.make_tensor("axes1", TensorProto.INT64, [1], [1])
    axes123 = helper.make_tensor("axes123", TensorProto.INT64, [3], [1, 2, 3])
    nodes = [
        helper.make_node("ReduceMean", ["image", "axes1"], ["anomaly_map"], keepdims=1),
        helper.make_node("AveragePool", ["anomaly_map"], ["level_map0"], kernel_shape=[8, 8], strides=[8, 8]),
        helper.make_node("AveragePool", ["anomaly_map"], ["level_map1"], kernel_shape=[16, 16], strides=[16, 16]),
        helper.make_node("ReduceMax", ["anomaly_map", "axes123"], ["pred_score"], keepdims=0),
    ]
    graph = helper.make_graph(nodes, "levels", [x], outs, initializer=[axes1, axes123])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])


def test_anomaly_levels_score_is_the_sum_of_their_peaks_over_the_photo(tmp_path: Path) -> None:
    card = {"name": "toy-levels", "version": 1, "task": "anomaly",
            "input": {"name": "image", "layout": "NCHW", "color": "rgb", "scale": 1.0, "mean": [0, 0, 0],
                      "std": [1, 1, 1], "resize": "scale", "factor": 1.0, "multiple": 32},
            "output": {"format": "anomaly-score-map", "score": "pred_score", "map": "anomaly_map",
                       "levels": [{"map": "level_map0", "cell": 8}, {"map": "level_map1", "cell": 16}]},
            "threshold": 100.0}
    model = load_model(_save(_two_level_model(), tmp_path / "l", card))
    img = np.zeros((40, 40, 3), np.uint8)  # padded to 64 x 64 (bottom and right)
    img[0:8, 0:8] = 200  # fills one 8-px cell; a quarter of one 16-px cell
    out = model.run(img)
    # level 0 peak 200 (the whole cell) + level 1 peak 200 * 64 / 256 = 50; the graph's own
    # pred_score (the map's maximum, 200) is not what the card asks for
    assert out.result.score == pytest.approx(250.0, abs=1e-3)
    assert out.result.label == "defect"
    assert out.anomaly_map is not None and out.anomaly_map.shape == (40, 40)


def test_anomaly_levels_need_a_map_and_their_cell_size(tmp_path: Path) -> None:
    card = _anomaly_card("letterbox", 32)
    card["output"] = {"format": "anomaly-score-map", "score": "pred_score", "levels": [{"map": "level_map0"}]}
    with pytest.raises(ModelError) as err:
        load_model(_save(_anomaly_model(32), tmp_path / "bad", card))
    assert "output.levels" in str(err.value.problems)


def test_classifier_adapter_softmaxes_logits_in_rgb_order(tmp_path: Path) -> None:
    card = {
        "name": "toy-cls", "version": 3, "task": "classification",
        "input": {"name": "input", "layout": "NCHW", "height": 8, "width": 8, "color": "rgb",
                  "scale": 255.0, "mean": 0.0, "std": 1.0, "resize": "stretch", "batch": "dynamic"},
        "output": {"format": "logits"},
        "labels": ["red", "green", "blue"],
    }
    model = load_model(_save(_classifier_model(), tmp_path / "c", card))
    bgr_blue = np.zeros((20, 30, 3), np.uint8)
    bgr_blue[..., 0] = 255
    r = model.run(bgr_blue).result
    e = np.exp([0.0, 0.0, 4.0])
    expected = e / e.sum()
    assert r.model == "toy-cls@3" and r.label == "blue"
    assert r.score == pytest.approx(expected[2], rel=1e-5)
    assert dict(r.probabilities) == pytest.approx(dict(zip(["red", "green", "blue"], expected, strict=True)))


def test_yolov8_adapter_filters_nms_and_maps_boxes_back(tmp_path: Path) -> None:
    # columns: cx, cy, w, h, score(scratch), score(dent) in model (64 x 64) pixels
    boxes = np.array([
        [32, 32, 20, 10, 0.90, 0.00],  # kept
        [33, 32, 20, 10, 0.80, 0.05],  # overlaps the first (same class): suppressed
        [10, 40, 8, 8, 0.00, 0.70],    # other class: kept
        [50, 50, 6, 6, 0.10, 0.05],    # below confidence
    ], np.float32)
    pred = boxes.T[None]  # 1 x 6 x 4
    card = {
        "name": "toy-yolo", "version": 1, "task": "detection",
        "input": {"name": "images", "layout": "NCHW", "height": 64, "width": 64, "color": "rgb",
                  "scale": 255.0, "mean": 0, "std": 1, "resize": "letterbox", "batch": 1},
        "output": {"format": "yolov8"},
        "labels": ["scratch", "dent"],
        "nms": {"iou": 0.45, "confidence": 0.25},
    }
    model = load_model(_save(_yolo_model(pred), tmp_path / "y", card))
    r = model.run(np.zeros((64, 128, 3), np.uint8)).result  # scale 0.5, 16 px padding top
    assert [d.label for d in r.detections] == ["scratch", "dent"]
    d0, d1 = r.detections
    assert d0.confidence == pytest.approx(0.9)
    # model box x 22..42, y 27..37 -> image ((x - 0) * 2, (y - 16) * 2)
    assert d0.box == pytest.approx((44.0, 22.0, 84.0, 42.0), abs=1e-3)
    assert d1.box == pytest.approx((12.0, 40.0, 28.0, 56.0), abs=1e-3)
    assert r.label == "scratch" and r.model == "toy-yolo@1"


def test_wrong_hash_is_refused_at_load(tmp_path: Path) -> None:
    folder = _save(_anomaly_model(32), tmp_path / "bad", _anomaly_card("stretch", 32), wrong_hash=True)
    with pytest.raises(ModelHashMismatch, match="SHA-256"):
        load_model(folder)


def test_file_swapped_after_card_was_written_is_refused(tmp_path: Path) -> None:
    folder = _save(_anomaly_model(32), tmp_path / "swap", _anomaly_card("stretch", 32))
    load_model(folder)
    (folder / "model.onnx").write_bytes(_anomaly_model(16).SerializeToString())
    with pytest.raises(ModelHashMismatch):
        load_model(folder)


def test_registry_finds_by_name_and_version(tmp_path: Path) -> None:
    _save(_anomaly_model(32), tmp_path / "toy-anomaly", _anomaly_card("stretch", 32))
    reg = ModelRegistry(tmp_path)
    assert reg.get("toy-anomaly@1").ref == "toy-anomaly@1"
    with pytest.raises(ModelNotInstalled, match="toy-anomaly@2"):
        reg.get("toy-anomaly@2")
    with pytest.raises(ModelNotInstalled):
        ModelRegistry(tmp_path / "nowhere").get("x@1")


def test_invalid_card_lists_its_problems(tmp_path: Path) -> None:
    card = _anomaly_card("sideways", 32)
    card["name"] = "Bad Name"
    card["output"] = {"format": "yolov8"}
    with pytest.raises(ModelError) as err:
        load_model(_save(_anomaly_model(32), tmp_path / "inv", card))
    fields = {p.field for p in err.value.problems}
    assert {"name", "output.format", "input.resize", "output.score"} <= fields


def test_batch_one_runs_tiles_one_by_one_with_the_same_result(tmp_path: Path) -> None:
    img = np.random.default_rng(4).integers(0, 255, (70, 100, 3), dtype=np.uint8)
    outs = []
    for batch in ("dynamic", 1):
        card = _anomaly_card("tiles", 32)
        card["input"]["batch"] = batch
        outs.append(load_model(_save(_anomaly_model(32), tmp_path / f"b{batch}", card)).run(img))
    assert outs[0].result.score == pytest.approx(outs[1].result.score)
    np.testing.assert_allclose(outs[0].anomaly_map, outs[1].anomaly_map, atol=1e-6)
    # the toy score is the brightest pixel (channel mean) anywhere: tiles cover every pixel
    assert outs[0].result.score == pytest.approx(float(img.mean(axis=2).max()) / 255, abs=1e-4)


def test_gray_nhwc_probabilities_model(tmp_path: Path) -> None:
    """probabilities = [mean, 1 - mean] of the grey input, NHWC."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 8, 8, 1])
    y = helper.make_tensor_value_info("p", TensorProto.FLOAT, ["N", 2])
    axes = helper.make_tensor("axes", TensorProto.INT64, [3], [1, 2, 3])
    one = helper.make_tensor("one", TensorProto.FLOAT, [], [1.0])
    nodes = [helper.make_node("ReduceMean", ["x", "axes"], ["m"], keepdims=0),
             helper.make_node("Unsqueeze", ["m", "ax1"], ["m1"]),
             helper.make_node("Sub", ["one", "m1"], ["q"]),
             helper.make_node("Concat", ["m1", "q"], ["p"], axis=1)]
    ax1 = helper.make_tensor("ax1", TensorProto.INT64, [1], [1])
    model = helper.make_model(helper.make_graph(nodes, "g", [x], [y], initializer=[axes, one, ax1]),
                              opset_imports=[helper.make_opsetid("", 18)])
    card = {"name": "toy-gray", "version": 1, "task": "classification",
            "input": {"name": "x", "layout": "NHWC", "height": 8, "width": 8, "color": "gray",
                      "scale": 255.0, "mean": 0.0, "std": 1.0, "resize": "stretch"},
            "output": {"format": "probabilities"}, "labels": ["bright", "dark"]}
    m = load_model(_save(model, tmp_path / "g", card))
    r = m.run(np.full((16, 16), 51, np.uint8)).result  # grey image, 51/255 = 0.2
    assert dict(r.probabilities) == pytest.approx({"bright": 0.2, "dark": 0.8}, abs=1e-5)
    assert r.label == "dark" and r.score == pytest.approx(0.8, abs=1e-5)


def test_every_model_a_shipped_standard_names_is_installed_and_intact() -> None:
    """A model version, once a released standard names it, stays in models/ byte for byte (hash-checked)."""
    registry = ModelRegistry(REPO_ROOT / "models")
    named = {c.model for s in load_shipped_standards(REPO_ROOT / "checklists") for p in s.photos for c in p.checks
             if isinstance(c, ModelCheck)}
    assert {"magnetic-tile-surface@1", "magnetic-tile-surface@2"} <= named
    for ref in sorted(named):
        model = registry.get(ref)  # raises on a missing folder or a changed file
        assert model.ref == ref
