"""The model card: one pydantic model; every rule names its field, what it expects and what it got."""

from __future__ import annotations

import copy
import hashlib
from pathlib import Path
from typing import Any

import pydantic
import pytest
import yaml

from inspection.model_card import AnomalyCard, ClassifierCard, ScaleInput, SizedInput, parse_card, read_card
from qc.errors import ModelError
from service.settings import REPO_ROOT

# The committed cards, byte for byte: a model version is immutable, and reading a card never rewrites it.
COMMITTED_CARDS = {
    "magnetic-tile-surface": "b5241e0f25d62e3e4df7ccac5fbe871ab291bcd86434d3c7286a472fc09a51ae",
    "magnetic-tile-surface-2": "a183cfbf98be9e536d31c5caaababadbbd556fb38458b40b191e35c76fada775",
}


def _card(**changes: Any) -> dict[str, Any]:
    card: dict[str, Any] = {
        "name": "toy", "version": 1, "task": "anomaly", "sha256": "ab" * 32,
        "input": {"height": 32, "width": 32},
        "output": {"format": "anomaly-score-map", "score": "pred_score"},
    }
    for path, value in changes.items():
        *parents, leaf = path.split("__")
        node = card
        for p in parents:
            node = node.setdefault(p, {})
        if value is _DROP:
            node.pop(leaf, None)
        else:
            node[leaf] = value
    return card


_DROP = object()


def _problems(doc: Any) -> dict[str, str]:
    with pytest.raises(ModelError) as err:
        parse_card(doc)
    return {p.field: p.reason for p in err.value.problems}


def test_every_committed_card_validates_and_stays_byte_identical() -> None:
    folders = sorted(p.parent for p in (REPO_ROOT / "models").glob("*/card.yaml"))
    assert [f.name for f in folders] == sorted(COMMITTED_CARDS)
    for folder in folders:
        before = (folder / "card.yaml").read_bytes()
        card = read_card(folder)
        assert isinstance(card, AnomalyCard) and isinstance(card.input, ScaleInput)
        assert card.ref.startswith("magnetic-tile-surface@") and len(card.output.levels) == 7
        assert hashlib.sha256((folder / "card.yaml").read_bytes()).hexdigest() == COMMITTED_CARDS[folder.name]
        assert (folder / "card.yaml").read_bytes() == before


def test_a_card_as_the_first_trainer_wrote_it_still_loads() -> None:
    # inspection/train.py before the pyramid (git history): a fixed square input, no levels, no free-form blocks
    old = {"name": "tile", "version": 1, "task": "anomaly", "file": "model.onnx", "sha256": "0" * 64,
           "input": {"name": "image", "layout": "NCHW", "height": 256, "width": 256, "color": "rgb",
                     "scale": 255.0, "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225],
                     "resize": "letterbox", "batch": "dynamic"},
           "output": {"format": "anomaly-score-map", "score": "pred_score", "map": "anomaly_map"},
           "threshold": 1.0, "labels": [], "training": {"method": "PatchCore", "seed": 0}}
    card = parse_card(old)
    assert isinstance(card.input, SizedInput) and card.input.resize == "letterbox"
    assert card.training == {"method": "PatchCore", "seed": 0} and card.output.levels == ()


def test_an_invalid_card_lists_every_problem_with_expected_and_actual() -> None:
    doc = _card(name="Bad Name", version="2", sha256="xyz", input__resize="sideways",
                output={"format": "yolov8"}, input__layout="CHW")
    problems = _problems(doc)
    assert set(problems) == {"name", "version", "sha256", "input.resize", "input.layout", "output.format",
                             "output.score"}
    assert "got 'Bad Name'" in problems["name"]
    assert "'anomaly-score-map'" in problems["output.format"] and "got 'yolov8'" in problems["output.format"]
    assert "'NCHW' or 'NHWC'" in problems["input.layout"] and "got 'CHW'" in problems["input.layout"]
    assert "got '2'" in problems["version"]


@pytest.mark.parametrize("changes,field,words", [
    ({"task": "features"}, "task", "anomaly, classification or detection; got 'features'"),
    ({"input__color": "cmyk"}, "input.color", "got 'cmyk'"),
    ({"input__batch": 4}, "input.batch", "got '4'"),
    ({"input__height": _DROP}, "input.height", "required"),
    ({"input__width": "32"}, "input.width", "integer"),
    ({"input__mean": [0.1, 0.2]}, "input.mean", "1 or 3 numbers"),
    ({"input__std": 0}, "input.std", "must not be 0"),
    ({"input__resize": "scale", "input__factor": 0, "input__multiple": 32}, "input.factor", "greater than 0"),
    ({"input__resize": "scale", "input__factor": 0.5}, "input.multiple", "required"),
    ({"output__levels": [{"map": "level_map0", "cell": 8}]}, "output.levels", "needs output.map"),
    ({"output__map": "m", "output__levels": [{"map": "level_map0"}]}, "output.levels.0.cell", "required"),
    ({"output__levels": [{"map": "level_map0", "cell": -1}], "output__map": "m"}, "output.levels.0.cell",
     "greater than 0"),
    ({"task": "classification", "output": {"format": "logits"}}, "labels", "required"),
    ({"task": "detection", "output": {"format": "yolov8"}, "labels": []}, "labels", "at least 1"),
    ({"nms": {"iou": 1.5}}, "nms.iou", "less than or equal to 1"),
    ({"treshold": 0.5}, "treshold", "unknown key"),
    ({"input__mena": [0, 0, 0]}, "input.mena", "unknown key"),
])
def test_each_rule_names_its_field(changes: dict[str, Any], field: str, words: str) -> None:
    problems = _problems(_card(**changes))
    assert field in problems, problems
    assert words in problems[field]


def test_the_card_must_be_a_mapping() -> None:
    with pytest.raises(ModelError, match="must be a mapping"):
        parse_card(["name", "toy"])


def test_defaults_and_per_channel_values() -> None:
    card = parse_card(_card(input__color="gray", input__mean=0.5, input__batch=1, sha256="AB" * 32))
    assert card.input.channel_mean == (0.5,) and card.input.channel_std == (1.0,)
    assert card.input.batch == "1" and card.sha256 == "ab" * 32
    assert card.file == "model.onnx" and card.threshold is None and card.nms.iou == 0.45
    rgb = parse_card(_card(input__mean=0.5))
    assert rgb.input.channel_mean == (0.5, 0.5, 0.5)
    cls = parse_card(_card(task="classification", output={"format": "probabilities"}, labels=["ok", "bad"]))
    assert isinstance(cls, ClassifierCard) and cls.labels == ("ok", "bad")


def test_a_card_is_frozen() -> None:
    card = parse_card(_card())
    with pytest.raises(pydantic.ValidationError):
        card.name = "other"  # type: ignore[misc]


def test_read_card_reads_the_folder(tmp_path: Path) -> None:
    (tmp_path / "card.yaml").write_text(yaml.safe_dump(copy.deepcopy(_card(version=4))))
    assert read_card(tmp_path).ref == "toy@4"
    (tmp_path / "card.yaml").write_text("name: [unclosed")
    with pytest.raises(ModelError, match="not valid YAML"):
        read_card(tmp_path)
