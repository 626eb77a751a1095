"""The service's photo inspection and the offline CLI, end to end on synthetic photos."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml
from click.testing import CliRunner
from onnx import TensorProto, helper

from demo.scenes import Camera, Hole, Part, Scene, encode_jpeg, render_scene
from inspection.card import card_layout
from qc.errors import ModelHashMismatch, UnsupportedImageType
from qc.standards import DimensionCheck, ModelCheck, PhotoSlot
from service.cli import cli
from service.core.vision import inspect_photo
from service.settings import Settings

_LAY = card_layout("a4")
_CX, _CY = (_LAY.area[0] + _LAY.area[2]) / 2, (_LAY.area[1] + _LAY.area[3]) / 2
BRACKET = Part("rect", _CX, _CY, 80.0, 30.0, angle=91.0, corner_radius=2.0,
               holes=(Hole(-30.0, 0.0, 6.2), Hole(30.0, 0.0, 6.2)), color=(150, 80, 30))


@pytest.fixture(scope="module")
def bracket_jpeg() -> bytes:
    image, _ = render_scene(Scene(BRACKET, Camera(megapixels=8, tilt=12.0, roll=90.0, blur=0.8), seed=4))
    return encode_jpeg(image, 88)


@pytest.fixture(scope="module")
def blurred_jpeg() -> bytes:
    image, _ = render_scene(Scene(BRACKET, Camera(megapixels=3, roll=90.0, blur=5.0), seed=4))
    return encode_jpeg(image, 88)


def _install_anomaly_model(models_dir: Path, *, corrupt: bool = False) -> str:
    """A tiny anomaly model: map = channel mean, score = max of the map."""
    x = helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 3, 64, 64])
    outs = [helper.make_tensor_value_info("pred_score", TensorProto.FLOAT, ["N"]),
            helper.make_tensor_value_info("anomaly_map", TensorProto.FLOAT, ["N", 1, 64, 64])]
    inits = [helper.make_tensor("a1", TensorProto.INT64, [1], [1]),
             helper.make_tensor("a123", TensorProto.INT64, [3], [1, 2, 3])]
    nodes = [helper.make_node("ReduceMean", ["image", "a1"], ["anomaly_map"], keepdims=1),
             helper.make_node("ReduceMax", ["anomaly_map", "a123"], ["pred_score"], keepdims=0)]
    model = helper.make_model(helper.make_graph(nodes, "toy", [x], outs, initializer=inits),
                              opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 10
    folder = models_dir / "toy-surface"
    folder.mkdir(parents=True)
    data = model.SerializeToString()
    (folder / "model.onnx").write_bytes(data)
    card = {"name": "toy-surface", "version": 1, "task": "anomaly", "file": "model.onnx",
            "sha256": hashlib.sha256(data + (b"x" if corrupt else b"")).hexdigest(),
            "input": {"name": "image", "layout": "NCHW", "height": 64, "width": 64, "color": "rgb",
                      "scale": 255.0, "mean": [0, 0, 0], "std": [1, 1, 1], "resize": "stretch"},
            "output": {"format": "anomaly-score-map", "score": "pred_score", "map": "anomaly_map"},
            "threshold": 2.0}
    (folder / "card.yaml").write_text(yaml.safe_dump(card))
    return hashlib.sha256(data).hexdigest()


def _slot(*checks: object, card: bool = True) -> PhotoSlot:
    return PhotoSlot(id="top", prompt="Part on the card", card=card, checks=list(checks))


def test_service_measures_the_part_and_names_the_model(tmp_path: Path, bracket_jpeg: bytes) -> None:
    sha = _install_anomaly_model(tmp_path / "models")
    settings = Settings(models_dir=tmp_path / "models", data_dir=tmp_path)
    slot = _slot(DimensionCheck(id="len", feature="length", nominal=80.0, tolerance=(-0.3, 0.3)),
                 DimensionCheck(id="h1", feature="hole_diameter", index=1, nominal=6.2, tolerance=(-0.15, 0.15)),
                 ModelCheck(id="surface", model="toy-surface@1"),
                 ModelCheck(id="absent", model="not-installed@3"))
    res = inspect_photo(bracket_jpeg, slot, settings=settings)
    f = res.findings
    assert f.slot == "top" and f.quality is not None and f.quality.usable
    length = f.measurement("length")
    assert length is not None and length.value == pytest.approx(80.0, abs=0.1)
    assert f.measurement("hole_diameter", 2).value == pytest.approx(6.2, abs=0.05)  # type: ignore[union-attr]
    assert [m.model for m in f.models] == ["toy-surface@1"]  # the missing model yields nothing
    assert f.models[0].sha256 == sha and f.models[0].label == "good"
    png = cv2.imdecode(np.frombuffer(res.draw_overlay([]), np.uint8), cv2.IMREAD_COLOR)
    assert png is not None and png.shape[0] > 500


def test_service_refuses_a_model_whose_file_does_not_match_its_card(tmp_path: Path, bracket_jpeg: bytes) -> None:
    _install_anomaly_model(tmp_path / "models", corrupt=True)
    settings = Settings(models_dir=tmp_path / "models", data_dir=tmp_path)
    with pytest.raises(ModelHashMismatch):
        inspect_photo(bracket_jpeg, _slot(ModelCheck(id="s", model="toy-surface@1")), settings=settings)


def test_blurred_photo_gives_an_overlay_with_the_retake_advice(tmp_path: Path, blurred_jpeg: bytes) -> None:
    settings = Settings(models_dir=tmp_path / "none", data_dir=tmp_path)
    res = inspect_photo(blurred_jpeg, _slot(DimensionCheck(id="len", feature="length", min=70, max=90)),
                        settings=settings)
    assert res.findings.quality is not None and not res.findings.quality.usable
    assert "too blurred" in (res.findings.quality.retake_message or "")
    assert res.findings.measurements == ()
    assert res.draw_overlay([]).startswith(b"\x89PNG")


def test_service_rejects_files_that_are_not_photos(tmp_path: Path) -> None:
    settings = Settings(models_dir=tmp_path, data_dir=tmp_path)
    with pytest.raises(UnsupportedImageType):
        inspect_photo(b"%PDF-1.4 not a photo", _slot(), settings=settings)


def test_print_card_writes_png_with_dpi_and_pdf(tmp_path: Path) -> None:
    from PIL import Image

    runner = CliRunner()
    r = runner.invoke(cli, ["print-card", "--out", str(tmp_path / "card.png"), "--paper", "a5", "--dpi", "200"])
    assert r.exit_code == 0, r.output
    assert "100 %" in r.output and "matte" in r.output
    with Image.open(tmp_path / "card.png") as img:
        assert img.info["dpi"] == pytest.approx((200, 200), abs=0.01)
        assert img.size == (round(148 / 25.4 * 200), round(210 / 25.4 * 200))
    r = runner.invoke(cli, ["print-card", "--out", str(tmp_path / "card.pdf")])
    assert r.exit_code == 0 and (tmp_path / "card.pdf").read_bytes().startswith(b"%PDF")
    r = runner.invoke(cli, ["print-card", "--out", str(tmp_path / "card.jpg")])
    assert r.exit_code != 0 and ".pdf or .png" in r.output


def test_cli_inspect_prints_one_json_object_per_photo(tmp_path: Path, bracket_jpeg: bytes,
                                                      blurred_jpeg: bytes) -> None:
    good, blurred, junk = tmp_path / "good.jpg", tmp_path / "blurred.jpg", tmp_path / "junk.jpg"
    good.write_bytes(bracket_jpeg)
    blurred.write_bytes(blurred_jpeg)
    junk.write_bytes(b"GIF89a not really")
    runner = CliRunner()
    r = runner.invoke(cli, ["inspect", str(good), str(blurred), str(junk), "--product", "spare-part-bracket",
                            "--json", "--overlay-dir", str(tmp_path / "ov")])
    assert r.exit_code == 2  # one photo was refused
    out = json.loads(r.stdout)
    assert [o["image"] for o in out] == [str(good), str(blurred), str(junk)]
    by_id = {x["check_id"]: x for x in out[0]["results"]}
    assert by_id["bracket_length"]["status"] == "pass"
    assert by_id["bracket_length"]["value"] == pytest.approx(80.0, abs=0.1)
    assert by_id["hole_count"]["value"] == 2
    for key in ("kind", "status", "value", "unit", "uncertainty", "lower", "upper", "message"):
        assert key in by_id["screw_hole_1"]
    assert {x["status"] for x in out[1]["results"]} == {"inconclusive"}
    assert "too blurred" in out[1]["results"][0]["message"]
    assert "GIF" in out[2]["error"] and out[2]["results"] == []
    assert (tmp_path / "ov" / "good.overlay.png").is_file()


def test_photo_without_card_is_decoded_reduced_but_judged_on_its_full_size(tmp_path: Path) -> None:
    from inspection.pipeline import inspect_bytes
    from inspection.quality import QualityLimits

    rng = np.random.default_rng(3)
    big = cv2.resize(rng.integers(60, 200, (300, 400, 3), dtype=np.uint8), (4000, 3000))
    ok, enc = cv2.imencode(".jpg", big, [cv2.IMWRITE_JPEG_QUALITY, 80])
    assert ok
    res = inspect_bytes(enc.tobytes(), "surface", card=False, limits=QualityLimits(min_pixels=10_000_000))
    assert res.image.shape[:2] == (1500, 2000)  # libjpeg decoded it at half size
    assert res.findings.quality is not None and res.findings.quality.usable
    pixels = next(m for m in res.findings.quality.metrics if m.name == "pixels")
    assert pixels.value == pytest.approx(12.0)


REPO_CHECKLISTS = Path(__file__).resolve().parents[3] / "checklists"


def test_cli_inspect_takes_the_product_from_the_standard_file(tmp_path: Path, bracket_jpeg: bytes) -> None:
    photo = tmp_path / "good.jpg"
    photo.write_bytes(bracket_jpeg)
    r = CliRunner().invoke(cli, ["inspect", str(photo), "--standard",
                                 str(REPO_CHECKLISTS / "spare-part-bracket" / "v1.yaml"), "--json"])
    assert r.exit_code == 0, r.output
    checks = {x["check_id"] for x in json.loads(r.stdout)[0]["results"]}
    assert {"bracket_length", "hole_count"} <= checks  # the bracket's checks, with no --product given


def test_cli_inspect_refuses_a_product_that_disagrees_with_the_file_or_no_standard_at_all(tmp_path: Path) -> None:
    photo = tmp_path / "junk.jpg"
    photo.write_bytes(b"GIF89a not really")
    bracket = REPO_CHECKLISTS / "spare-part-bracket" / "v1.yaml"
    r = CliRunner().invoke(cli, ["inspect", str(photo), "--standard", str(bracket), "--product", "magnetic-tile"])
    assert r.exit_code == 2  # a usage error, before any photo is read
    assert "'spare-part-bracket', but --product says 'magnetic-tile'" in r.output
    agree = CliRunner().invoke(cli, ["inspect", str(photo), "--standard", str(bracket), "--product",
                                     "spare-part-bracket", "--json"])
    assert agree.exit_code == 2 and "GIF" in json.loads(agree.stdout)[0]["error"]  # 2: the photo was refused
    r = CliRunner().invoke(cli, ["inspect", str(photo)])
    assert r.exit_code == 2 and "--standard FILE, or --product SLUG" in r.output


def test_cli_inspect_with_a_product_alone_uses_its_newest_released_standard(tmp_path: Path) -> None:
    shipped = tmp_path / "checklists"
    (shipped / "_library").mkdir(parents=True)
    (shipped / "gasket").mkdir()
    base = ("product: gasket\nname: Gasket\nversion: {v}\nstatus: {status}\n"
            "items:\n  - {{id: ok, prompt: Looks right, type: boolean, pass_if: true, severity: major}}\n"
            "photos:\n  - {{id: {slot}, prompt: A view, card: false}}\n")
    for v, status, slot in ((1, "released", "top"), (2, "released", "face"), (3, "draft", "side")):
        (shipped / "gasket" / f"v{v}.yaml").write_text(base.format(v=v, status=status, slot=slot))
    photo = tmp_path / "junk.jpg"
    photo.write_bytes(b"GIF89a not really")
    env = {"KIPIMO_CHECKLISTS_DIR": str(shipped), "KIPIMO_DATA_DIR": str(tmp_path / "data")}
    # the slot names tell the versions apart: v2 (newest released) has "face"; the v3 draft's "side" is not offered
    r = CliRunner().invoke(cli, ["inspect", str(photo), "--product", "gasket", "--slot", "side"], env=env)
    assert r.exit_code == 2 and "no photo slot 'side' (slots: face)" in r.output
    r = CliRunner().invoke(cli, ["inspect", str(photo), "--product", "gasket", "--slot", "face", "--json"], env=env)
    assert r.exit_code == 2 and json.loads(r.stdout)[0]["results"] == []  # refused photo, v2's slot accepted
