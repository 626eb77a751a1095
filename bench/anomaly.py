"""Benchmark the few-shot anomaly trainer on the magnetic-tile data set.

Seeded 80/20 split of MT_Free: train on 80 %, test on the other 20 % plus every
defect image. Prints image-level AUROC (overall and per defect class), the
false-reject rate and recall at the calibrated threshold (1.0), training time
and per-image inference time through the runner (inspection.models.load_model).

    .venv/bin/python bench/anomaly.py [--dataset DIR] [--seed 0 [1 2 ...]] [--save models/magnetic-tile-surface-2]

Defaults are the trainer's (3-level pyramid, coarsest level 32 px for the median photo).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from demo.photos import good_tile_split  # noqa: E402
from inspection.anomaly_fit import auroc  # noqa: E402
from inspection.models import load_model  # noqa: E402
from inspection.train import train_anomaly  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
DEFAULT = Path(os.environ.get("KIPIMO_MT_DATASET", ROOT.parent / "shared" / "datasets" / "magnetic-tile"))


def load(folder: Path) -> tuple[list[str], list[np.ndarray]]:
    files = sorted((folder / "Imgs").glob("*.jpg"))
    return [f.name for f in files], [cv2.imread(str(f), cv2.IMREAD_GRAYSCALE) for f in files]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dataset", type=Path, default=DEFAULT)
    ap.add_argument("--seed", type=int, nargs="+", default=[0],
                    help="split seeds; with several, a summary over the splits follows")
    ap.add_argument("--size", type=int, default=32, help="short side (px) of the coarsest pyramid level")
    ap.add_argument("--levels", type=int, default=3)
    ap.add_argument("--ppi", type=int, default=400, help="patches sampled per image and level")
    ap.add_argument("--bank", type=int, default=2000)
    ap.add_argument("--dims", type=int, default=96, help="whitened principal directions kept")
    ap.add_argument("--review-from", type=float, default=0.9, help="review band's lower edge (magnetic-tile: 0.9)")
    ap.add_argument("--save", type=Path, default=None, help="write model.onnx + card.yaml here (one seed only)")
    ap.add_argument("--version", type=int, default=2, help="model version written in the card")
    args = ap.parse_args()
    if args.save is not None and len(args.seed) > 1:
        ap.error("--save takes one --seed")
    args.code_version = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                       cwd=ROOT, check=False).stdout.strip() or "unknown"
    results = []
    for seed in args.seed:
        if len(args.seed) > 1:
            print(f"== split seed {seed}")
        results.append(run_split(args, seed))
    if len(results) > 1:
        summarise(results)


def summarise(results: list[dict]) -> None:
    """Mean and worst over the splits: one split's class AUROC moves by a few hundredths."""
    overall = np.array([r["auroc"] for r in results])
    print(f"== {len(results)} splits: overall AUROC mean {overall.mean():.4f}, min {overall.min():.4f}; "
          f"splits >= 0.98: {int((overall >= 0.98).sum())}")
    for c in results[0]["per_class"]:
        a = np.array([r["per_class"][c] for r in results])
        print(f"  {c:12s} mean {a.mean():.4f}  min {a.min():.4f}  splits >= 0.95: {int((a >= 0.95).sum())}")


def run_split(args: argparse.Namespace, seed: int) -> dict:
    """Train on one seeded split, print its figures, return its AUROCs."""
    train_files, test_files = good_tile_split(args.dataset, seed)  # the demo shows only the test part
    train_good = [cv2.imread(str(f), cv2.IMREAD_GRAYSCALE) for f in train_files]
    test_good = [cv2.imread(str(f), cv2.IMREAD_GRAYSCALE) for f in test_files]
    t0 = time.perf_counter()
    trained = train_anomaly(train_good, name="magnetic-tile-surface", version=args.version, seed=seed,
                            size=args.size, bank_size=args.bank, levels=args.levels, dims=args.dims,
                            patches_per_image=args.ppi, code_version=args.code_version,
                            data=f"magnetic-tile MT_Free, seeded 80 % train split (seed {seed})")
    train_s = time.perf_counter() - t0
    print(f"training: {len(train_good)} good images, {train_s:.1f} s, model {len(trained.onnx_bytes) / 1e6:.1f} MB")

    out = args.save or Path(tempfile.mkdtemp())
    out.mkdir(parents=True, exist_ok=True)
    (out / "model.onnx").write_bytes(trained.onnx_bytes)
    (out / "card.yaml").write_text(yaml.safe_dump(trained.card, sort_keys=False), encoding="utf-8")
    model = load_model(out)

    def scores(images: list[np.ndarray]) -> np.ndarray:
        return np.array([model.run(im).result.score for im in images])

    t0 = time.perf_counter()
    good = scores(test_good)
    per_image_ms = (time.perf_counter() - t0) / len(test_good) * 1000
    # floor: the bare InferenceSession.run on already prepared tensors (no preparation, no map handling)
    batches = [model.prepare(im)[0] for im in test_good]
    t0 = time.perf_counter()
    for b in batches:
        model.session.run(None, {model.input_name: b})
    floor_ms = (time.perf_counter() - t0) / len(batches) * 1000
    classes = sorted(p.name for p in args.dataset.glob("MT_*") if p.name != "MT_Free")
    all_def = []
    per_class: dict[str, float] = {}
    print(f"test good: {len(good)}  false-reject rate @1.0: {np.mean(good >= 1.0):.3f}")
    for c in classes:
        d = scores(load(args.dataset / c)[1])
        all_def.append(d)
        per_class[c] = round(auroc(good, d), 4)
        print(f"  {c:12s} n={len(d):4d}  AUROC {auroc(good, d):.4f}  recall@1.0 {np.mean(d >= 1.0):.3f}")
    d = np.concatenate(all_def)
    if args.save is not None:  # record the held-out test figures in the shipped card
        card = dict(trained.card)
        card["validation"] = {**card["validation"], "test_split": {
            "command": "bench/anomaly.py " + " ".join(sys.argv[1:]),
            "good_images": len(good), "defect_images": len(d),
            "auroc": round(auroc(good, d), 4), "auroc_per_class": per_class,
            "false_reject_rate": round(float(np.mean(good >= 1.0)), 4),
            "recall_at_threshold": round(float(np.mean(d >= 1.0)), 4)}}
        (out / "card.yaml").write_text(yaml.safe_dump(card, sort_keys=False), encoding="utf-8")
    print(f"overall AUROC {auroc(good, d):.4f}  recall@1.0 {np.mean(d >= 1.0):.3f}")
    r = args.review_from
    print(f"review band from {r}: good tiles to review {np.mean((good >= r) & (good < 1.0)):.3f}, "
          f"defective tiles caught (fail or review) {np.mean(d >= r):.3f}")
    print(f"inference {per_image_ms:.1f} ms/image through the runner (1 thread); floor: bare "
          f"InferenceSession.run {floor_ms:.1f} ms = {per_image_ms / floor_ms:.2f}x")
    return {"auroc": auroc(good, d), "per_class": per_class}


if __name__ == "__main__":
    main()
