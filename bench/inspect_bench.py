"""Full inspection of one 12 MP JPEG vs. the floor measured in the same run.

    .venv/bin/python bench/inspect.py [--repeat 7] [--model name@version]

(bench/inspect.py is a thin entry point; this module holds the benchmark.)

Full: decode, card detection, quality gate, measurement, one ONNX model
(``inspection.pipeline.inspect_bytes``), single thread. Floor: the work no
inspection can avoid - a full decode of the same JPEG plus one raw
``InferenceSession.run`` of the same model on the same input tensor. Target:
full <= 2.0 x floor. Also prints photos/s per core and the stage breakdown.

The model is the installed one named by --model when present (default
magnetic-tile-surface@1); otherwise an anomaly model built here from the
repository's EfficientNet-Lite0 feature backbone (channel-mean of the stride-8
features as the anomaly map), so the workload is a real CNN either way.
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import onnx
import yaml
from onnx import helper

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from demo.scenes import Camera, Hole, Part, Scene, encode_jpeg, render_scene  # noqa: E402
from inspection.card import card_layout, detect_card  # noqa: E402
from inspection.images import decode_image  # noqa: E402
from inspection.measure import measure_part  # noqa: E402
from inspection.models import LoadedModel, ModelRegistry, load_model  # noqa: E402
from inspection.pipeline import inspect_bytes  # noqa: E402
from inspection.quality import assess_quality  # noqa: E402
from qc.errors import ModelNotInstalled  # noqa: E402

BACKBONE = ROOT / "models" / "backbones" / "efficientnet-lite0-features.onnx"


def backbone_anomaly_model(folder: Path) -> LoadedModel:
    m = onnx.load(str(BACKBONE))
    g = m.graph
    g.node.append(helper.make_node("ReduceMean", ["feat8"], ["anomaly_map"], axes=[1], keepdims=1))
    g.node.append(helper.make_node("ReduceMax", ["anomaly_map"], ["pred_score"], axes=[1, 2, 3], keepdims=0))
    del g.output[:]
    g.output.extend([helper.make_tensor_value_info("pred_score", onnx.TensorProto.FLOAT, None),
                     helper.make_tensor_value_info("anomaly_map", onnx.TensorProto.FLOAT, None)])
    data = m.SerializeToString()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model.onnx").write_bytes(data)
    card = {"name": "bench-backbone-anomaly", "version": 1, "task": "anomaly", "file": "model.onnx",
            "sha256": hashlib.sha256(data).hexdigest(),
            "input": {"name": "image", "layout": "NCHW", "height": 256, "width": 256, "color": "rgb",
                      "scale": 255.0, "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225],
                      "resize": "stretch", "batch": "dynamic"},
            "output": {"format": "anomaly-score-map", "score": "pred_score", "map": "anomaly_map"},
            "threshold": 1.0}
    (folder / "card.yaml").write_text(yaml.safe_dump(card))
    return load_model(folder, threads=1)


def photo_12mp() -> bytes:
    lay = card_layout("a4")
    cx, cy = (lay.area[0] + lay.area[2]) / 2, (lay.area[1] + lay.area[3]) / 2
    part = Part("rect", cx, cy, 80.0, 30.0, angle=91.0, corner_radius=2.0,
                holes=(Hole(-30, 0, 6.2), Hole(30, 0, 6.2)), color=(150, 80, 30))
    image, _ = render_scene(Scene(part, Camera(megapixels=12, tilt=15.0, tilt_axis=40.0, roll=90.0,
                                               fill=0.9, blur=0.9, noise=2.5), seed=7))
    return encode_jpeg(image, 90)


def timed(fn, repeat: int) -> tuple[float, object]:  # type: ignore[no-untyped-def]
    times, out = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--model", default="magnetic-tile-surface@1")
    args = ap.parse_args()
    cv2.setNumThreads(1)
    try:
        model = ModelRegistry(ROOT / "models", threads=1).get(args.model)
    except ModelNotInstalled:
        model = backbone_anomaly_model(Path(tempfile.mkdtemp()) / "bench-model")
    data = photo_12mp()
    image = decode_image(data)
    print(f"photo: {image.shape[1]}x{image.shape[0]} JPEG, {len(data) / 1e6:.1f} MB; "
          f"model: {model.ref} ({model.sha256[:12]}), single thread")

    # what the model sees in the full run: the rectified measuring area
    det = detect_card(image)
    view = measure_part(image, det).rectified
    tensor, _ = model.prepare(view)
    feed = {model.input_name: tensor}
    for _ in range(2):  # warm up caches and the session
        inspect_bytes(data, "top", models=[model])
        model.session.run(None, feed)

    # Interleaved, so that load from other processes hits both sides alike. The
    # ratio uses CPU time of this (single-threaded) process: work per photo per
    # core, unaffected by other jobs on the machine; wall time is printed too.
    clocks = {"cpu": time.process_time, "wall": time.perf_counter}
    samples: dict[str, dict[str, list[float]]] = {c: {"full": [], "dec": [], "run": []} for c in clocks}

    def lap(key: str, fn) -> object:  # type: ignore[no-untyped-def]
        c0, w0 = time.process_time(), time.perf_counter()
        out = fn()
        samples["cpu"][key].append(time.process_time() - c0)
        samples["wall"][key].append(time.perf_counter() - w0)
        return out

    res = None
    for _ in range(args.repeat):
        res = lap("full", lambda: inspect_bytes(data, "top", models=[model]))
        lap("dec", lambda: cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR))
        lap("run", lambda: model.session.run(None, feed))
    med = {c: {k: statistics.median(v) for k, v in d.items()} for c, d in samples.items()}
    full_t, dec_t, run_t = med["cpu"]["full"], med["cpu"]["dec"], med["cpu"]["run"]
    floor = dec_t + run_t
    wall_ratio = med["wall"]["full"] / (med["wall"]["dec"] + med["wall"]["run"])
    # stage breakdown
    ours_dec, img = timed(lambda: decode_image(data), args.repeat)
    det_t, det = timed(lambda: detect_card(img), args.repeat)
    gate_t, _ = timed(lambda: assess_quality(img, det), args.repeat)
    meas_t, pm = timed(lambda: measure_part(img, det), args.repeat)
    mod_t, _ = timed(lambda: model.run(pm.rectified), args.repeat)

    findings = res.findings  # type: ignore[attr-defined]
    assert findings.quality.usable and findings.measurements and findings.models, "inspection did not complete"
    print(f"\nfloor (CPU): decode {dec_t * 1e3:.0f} ms + session.run {run_t * 1e3:.0f} ms = {floor * 1e3:.0f} ms")
    print(f"full inspection (CPU): {full_t * 1e3:.0f} ms")
    print(f"stages (wall, median): decode {ours_dec * 1e3:.0f}, card {det_t * 1e3:.0f}, gate {gate_t * 1e3:.0f}, "
          f"measure {meas_t * 1e3:.0f}, model incl. pre/post {mod_t * 1e3:.0f} ms")
    ratio = full_t / floor
    print(f"\nratio full / floor: {ratio:.2f}x CPU time (median of {args.repeat}); {wall_ratio:.2f}x wall  "
          f"(target <= 2.0x: {'OK' if ratio <= 2.0 else 'MISSED'})")
    print(f"throughput: {1 / full_t:.2f} photos/s per core (floor {1 / floor:.2f})")
    return 0 if ratio <= 2.0 else 1


if __name__ == "__main__":
    sys.exit(main())
