"""Measurement accuracy on synthetic photos with known ground truth.

    .venv/bin/python bench/measure.py [--n 200] [--workers 2] [--json out.json]

Each scene: a random part (rectangle or disc, 10-200 mm, with 0-3 holes) on
the A4 card, photographed at 8 or 12 MP with tilt 0-35 degrees, defocus blur,
sensor noise, a lighting gradient and JPEG quality 70-95. The scene generator
(inspection/synthetic.py) draws from physical sizes; it never calls the
measurer. Reports, per feature, the absolute error distribution and how often
the stated expanded uncertainty U (k = 2) covers the true value.

Targets (12 MP, card filling most of the frame): P95 |error| <= 0.2 mm for
length/width/diameter, <= 0.15 mm for hole diameters; coverage >= 95 %.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from demo.scenes import encode_jpeg, random_scene, render_scene, truth  # noqa: E402
from inspection.card import detect_card  # noqa: E402
from inspection.images import decode_image  # noqa: E402
from inspection.measure import MeasureError, measure_part  # noqa: E402

TARGETS = {"length": 0.2, "width": 0.2, "diameter": 0.2, "hole_diameter": 0.15}
FEATURES = ["length", "width", "diameter", "hole_diameter", "hole_spacing", "area", "hole_count"]


def run_scene(seed: int) -> list[dict]:
    megapixels = 12 if seed % 2 == 0 else 8
    scene = random_scene(seed, megapixels=megapixels, max_tilt=35.0)
    assert scene.part is not None
    image, _ = render_scene(scene)
    photo = decode_image(encode_jpeg(image, scene.camera.jpeg_quality))
    t0 = time.perf_counter()
    det = detect_card(photo)
    try:
        pm = measure_part(photo, det)
    except MeasureError as exc:
        return [{"seed": seed, "mp": megapixels, "feature": "failed", "error": str(exc)}]
    dt = time.perf_counter() - t0
    t = truth(scene.part)
    rows = []
    for m in pm.measurements:
        if m.feature == "diameter" and scene.part.shape != "disc":
            continue  # outer circle of a rectangle has no ground truth
        if m.feature == "hole_diameter":
            holes = t["hole_diameter"]
            assert isinstance(holes, list)
            if m.index > len(holes):
                rows.append({"seed": seed, "mp": megapixels, "feature": "spurious_hole"})
                continue
            expected = holes[m.index - 1]
        elif m.feature in t:
            expected = t[m.feature]
        else:
            continue
        rows.append({"seed": seed, "mp": megapixels, "feature": m.feature, "value": m.value,
                     "truth": expected, "error": m.value - float(expected), "U": m.uncertainty,
                     "tilt": scene.camera.tilt, "seconds": dt})
    return rows


def summarise(rows: list[dict], mp: int | None) -> dict[str, dict]:
    out = {}
    for feat in FEATURES:
        sel = [r for r in rows if r.get("feature") == feat and (mp is None or r["mp"] == mp)]
        if not sel:
            continue
        err = np.abs([r["error"] for r in sel])
        cover = np.mean([abs(r["error"]) <= r["U"] for r in sel])
        out[feat] = {"n": len(sel), "median": float(np.median(err)), "p95": float(np.percentile(err, 95)),
                     "max": float(err.max()), "mean_U": float(np.mean([r["U"] for r in sel])),
                     "coverage": float(cover), "bias": float(np.mean([r["error"] for r in sel]))}
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=200, help="number of scenes (half 12 MP, half 8 MP)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--json", type=Path, help="also write all rows and the summary here")
    args = ap.parse_args()
    t0 = time.perf_counter()
    rows: list[dict] = []
    with ProcessPoolExecutor(max_workers=args.workers) as pool:
        for r in pool.map(run_scene, range(args.n), chunksize=4):
            rows.extend(r)
    wall = time.perf_counter() - t0
    failed = [r for r in rows if r.get("feature") == "failed"]
    spurious = [r for r in rows if r.get("feature") == "spurious_hole"]
    print(f"{args.n} scenes in {wall:.0f} s; measurement failed on {len(failed)}, spurious holes {len(spurious)}")
    for f in failed:
        print(f"  seed {f['seed']}: {f['error']}")
    ok = not failed
    summary = {}
    for mp in (12, 8):
        s = summarise(rows, mp)
        summary[f"{mp}MP"] = s
        print(f"\n{mp} MP  {'feature':<14} {'n':>4} {'median':>8} {'P95':>8} {'max':>8} {'bias':>8} "
              f"{'mean U':>8} {'coverage':>9}  target")
        for feat, v in s.items():
            target = TARGETS.get(feat)
            verdict = ""
            if mp == 12 and target is not None:
                good = v["p95"] <= target and v["coverage"] >= 0.95
                ok &= good
                verdict = f"P95 <= {target} mm: {'OK' if v['p95'] <= target else 'MISSED'}"
            elif mp == 12 and feat != "hole_count":
                ok &= v["coverage"] >= 0.95
            unit = "mm2" if feat == "area" else ("" if feat == "hole_count" else "mm")
            print(f"      {feat:<14} {v['n']:>4} {v['median']:>8.4f} {v['p95']:>8.4f} {v['max']:>8.4f} "
                  f"{v['bias']:>+8.4f} {v['mean_U']:>8.4f} {v['coverage']:>8.1%}  {unit} {verdict}")
    secs = [r["seconds"] for r in rows if "seconds" in r]
    print(f"\ncard detection + measurement: median {np.median(secs):.2f} s per photo (per worker)")
    print("coverage = share of measurements whose |error| <= stated U (k = 2); target >= 95 %")
    print("RESULT:", "all targets met" if ok else "targets MISSED")
    if args.json:
        args.json.write_text(json.dumps({"summary": summary, "rows": rows}, indent=1))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
