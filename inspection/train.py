"""Few-shot anomaly training: good images in, one ONNX model + its card out.

Pure (arrays in, bytes and a dict out; no files): the patches of the good
images are embedded with the committed EfficientNet-Lite0 backbone through
ONNX Runtime, a PatchCore memory bank (greedy coreset) is fitted on a seeded
part of them, and the threshold is calibrated on the held-out rest, then baked
into the graph so that ``score >= 1.0`` means defect. The same seed gives the
same ONNX bytes.

Images are cut exactly as the runner (inspection/models.py) does: ``tiles``
(default) covers the photo with overlapping square tiles at native resolution;
``letterbox`` fits the long side into the square input with grey 114 bands
(seen in training, so they score as normal). Neither squashes the aspect ratio.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import cv2
import numpy as np
import onnx
import onnxruntime as ort

from inspection.anomaly_fit import auroc, calibrate_threshold, greedy_coreset, split_holdout
from inspection.anomaly_graph import EmbeddingSpec, MemoryBankHead, build_embedding, build_model
from inspection.models import tile_starts  # the runner's tiling: training sees what inference sees
from qc.errors import InvalidInput

__all__ = ["MEAN", "STD", "TrainedModel", "letterbox", "score_images", "train_anomaly"]

MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
_PAD = 114

Progress = Callable[[str, int, int], None]  # (stage, done, total)


@dataclass(frozen=True)
class TrainedModel:
    onnx_bytes: bytes
    card: dict[str, Any]
    holdout_scores: tuple[float, ...] = field(default=())  # normalised (threshold 1.0)


def letterbox(image: np.ndarray, size: int) -> np.ndarray:
    """BGR/grey uint8 -> size x size RGB, aspect kept, grey bands (as the runner's letterbox)."""
    if image.ndim == 2:
        img = cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    else:
        img = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    h, w = img.shape[:2]
    s = min(size / w, size / h)
    nw, nh = max(1, round(w * s)), max(1, round(h * s))
    resized = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR)
    px, py = (size - nw) // 2, (size - nh) // 2
    canvas = np.full((size, size, 3), _PAD, np.uint8)
    canvas[py : py + nh, px : px + nw] = resized
    return canvas


def tiles(image: np.ndarray, size: int) -> list[np.ndarray]:
    """Overlapping size x size RGB crops at native resolution (as the runner's ``resize: tiles``)."""
    img = cv2.cvtColor(image, cv2.COLOR_GRAY2RGB if image.ndim == 2 else cv2.COLOR_BGR2RGB)
    h, w = img.shape[:2]
    if h <= size and w <= size:
        return [cv2.resize(img, (size, size), interpolation=cv2.INTER_LINEAR)]
    crops = []
    for y in tile_starts(h, size):
        for x in tile_starts(w, size):
            crop = img[y : y + size, x : x + size]
            if crop.shape[:2] != (size, size):
                crop = cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA)
            crops.append(crop)
    return crops


def _crops(image: np.ndarray, size: int, resize: str) -> list[np.ndarray]:
    return tiles(image, size) if resize == "tiles" else [letterbox(image, size)]


def _tensor(images: Sequence[np.ndarray], size: int, resize: str = "letterbox") -> np.ndarray:
    crops = [c for im in images for c in _crops(im, size, resize)]
    batch: np.ndarray = np.stack(crops).astype(np.float32) / 255.0
    batch = (batch - np.asarray(MEAN, np.float32)) / np.asarray(STD, np.float32)
    return np.ascontiguousarray(batch.transpose(0, 3, 1, 2))


def _session(model: onnx.ModelProto, threads: int) -> ort.InferenceSession:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    return ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])


def _run(session: ort.InferenceSession, images: Sequence[np.ndarray], size: int, resize: str, stage: str,
         progress: Progress | None, batch: int = 8) -> list[np.ndarray]:
    outs: list[np.ndarray] = []
    for i in range(0, len(images), batch):
        res = session.run(None, {"image": _tensor(images[i : i + batch], size, resize)})
        outs.append(res[0])
        if progress is not None:
            progress(stage, min(i + batch, len(images)), len(images))
    return outs


def image_sha256(image: np.ndarray) -> str:
    """Hash of the pixels (shape and dtype included), independent of the file encoding."""
    h = hashlib.sha256(f"{image.shape}{image.dtype}".encode())
    h.update(np.ascontiguousarray(image).tobytes())
    return h.hexdigest()


def score_images(session: ort.InferenceSession, images: Sequence[np.ndarray], size: int,
                 resize: str = "letterbox") -> np.ndarray:
    """pred_score of each image under a built anomaly graph (max over its tiles)."""
    scores = [session.run(["pred_score"], {"image": _tensor([im], size, resize)})[0].max() for im in images]
    return np.asarray(scores, np.float64)


def train_anomaly(good_images: list[np.ndarray], *, name: str, version: int, seed: int = 0,
                  defect_images: list[np.ndarray] | None = None, progress: Progress | None = None,
                  size: int = 128, resize: str = "tiles", patches_per_image: int = 96, bank_size: int = 4000,
                  holdout: float = 0.2, threads: int = 2, code_version: str = "unknown",
                  data: str = "", created: str | None = None) -> TrainedModel:
    """Fit, calibrate and export an anomaly model from good (and optionally defect) images.

    Defaults are the ones measured best on the magnetic-tile bench (bench/anomaly.py):
    native-resolution 128 px tiles beat letterboxing the whole photo down.
    ``defect_images`` are never used for fitting or the threshold, only to
    report validation AUROC and recall in the card.
    """
    if resize not in ("letterbox", "tiles"):
        raise InvalidInput(f"resize must be letterbox or tiles, got {resize!r}")
    if size % 32:
        raise InvalidInput(f"size must be a multiple of 32 (the backbone's stride), got {size}")
    if len(good_images) < 3:
        raise InvalidInput(f"need at least 3 good images (fit + held-out calibration), got {len(good_images)}")
    start = time.perf_counter()
    fit_idx, hold_idx = split_holdout(len(good_images), holdout, seed)
    spec = EmbeddingSpec()
    embed = _session(build_embedding(spec, height=size, width=size), threads)
    fit_imgs = [good_images[i] for i in fit_idx]
    feats = _run(embed, fit_imgs, size, resize, "embed", progress)
    rng = np.random.default_rng(seed)
    pool = []
    for f in feats:  # N x C x h x w; patches_per_image is drawn from each tile
        x = f.transpose(0, 2, 3, 1).reshape(f.shape[0], -1, f.shape[1])
        for per in x:
            k = min(patches_per_image, len(per))
            pool.append(per[np.sort(rng.choice(len(per), k, replace=False))])
    patches = np.concatenate(pool).astype(np.float32)
    size_k = min(bank_size, len(patches))
    chosen = greedy_coreset(patches, size_k, seed=seed,
                            progress=None if progress is None else _counter(progress, "coreset", size_k))
    head = MemoryBankHead(bank=patches[chosen])

    raw = _session(build_model(spec, head, height=size, width=size, threshold=1.0), threads)
    hold_imgs = [good_images[i] for i in hold_idx]
    hold_raw = score_images(raw, hold_imgs, size, resize)
    if progress is not None:
        progress("calibrate", 1, 1)
    threshold = calibrate_threshold(hold_raw)
    model = build_model(spec, head, height=size, width=size, threshold=threshold)
    onnx_bytes = model.SerializeToString()
    train_s = time.perf_counter() - start

    hold = hold_raw / threshold
    validation: dict[str, Any] = {
        "holdout_good": len(hold_idx),
        "holdout_false_reject_rate": float(np.mean(hold >= 1.0)),
        "holdout_max_score": round(float(hold.max()), 4),
        "raw_threshold": round(threshold, 6),
        "train_seconds": round(train_s, 1),
    }
    if defect_images:
        d = score_images(raw, defect_images, size, resize) / threshold
        validation.update(defect_images=len(defect_images), auroc=round(auroc(hold, d), 4),
                          recall_at_threshold=round(float(np.mean(d >= 1.0)), 4))
    card = {
        "name": name, "version": int(version), "task": "anomaly", "file": "model.onnx",
        "sha256": hashlib.sha256(onnx_bytes).hexdigest(),
        "input": {"name": "image", "layout": "NCHW", "height": size, "width": size, "color": "rgb",
                  "scale": 255.0, "mean": list(MEAN), "std": list(STD), "resize": resize,
                  "batch": "dynamic"},
        "output": {"format": "anomaly-score-map", "score": "pred_score", "map": "anomaly_map"},
        "threshold": 1.0,
        "labels": [],
        "training": {
            "method": "PatchCore memory bank (greedy coreset) on EfficientNet-Lite0 feat8+feat16",
            "seed": seed, "good_images": len(good_images), "fit_images": len(fit_idx),
            "holdout_images": len(hold_idx), "patches": int(len(patches)), "bank_size": int(size_k),
            "image_sha256": [image_sha256(im) for im in good_images],
        },
        "provenance": {"data": data, "date": created or datetime.now(UTC).isoformat(timespec="seconds"),
                       "code_version": code_version,
                       "backbone": "models/backbones/efficientnet-lite0-features.onnx (Apache-2.0)",
                       "licence": "Apache-2.0"},
        "validation": validation,
    }
    return TrainedModel(onnx_bytes=onnx_bytes, card=card, holdout_scores=tuple(float(s) for s in hold))


def _counter(progress: Progress, stage: str, total: int) -> Callable[[int], None]:
    done = [0]

    def step(n: int) -> None:
        done[0] += n
        progress(stage, min(done[0], total), total)

    return step
