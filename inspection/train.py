"""Few-shot anomaly training: good images in, one ONNX model + its card out.

Pure (arrays in, bytes and a dict out; no files). The method, chosen by
measurement on the magnetic-tile bench (bench/anomaly.py, figures in the README):

1. Every photo is brought to one working scale (``size`` px on the short side
   of the coarsest level for the median training photo; aspect kept, never
   squashed, reflect-padded) and looked at through a three-level pyramid
   (32, 64 and 128 px for that photo), so small defects keep their pixels at
   the fine level and large, faint ones show at the coarse levels. The two
   coarse levels are also seen at x0.875 and x1.125 (seven views in all): a
   coarse level has only a few feature cells across the part, and where they
   fall changes its verdict; the extra views cost 40 % more backbone time and
   raised the bench AUROC on all three splits (+0.003 to +0.006).
2. Inside the graph: local standardisation, then the committed EfficientNet-Lite2
   backbone and PatchCore's locally aware patch features (all three exported
   layers: feat8, feat16a, feat16) for each view.
3. Per view, the patches of a seeded 80 % of the good photos are whitened
   (their own covariance, ridge-regularised; only the 96 principal directions
   of largest variance of the backbone's 256 are kept: the rest added noise;
   measured with Lite0, whose 232 they cut to 96, it raised the bench AUROC
   on four of five splits and cut inference by a quarter) and a greedy
   coreset of them (2000) is kept as the memory bank. A patch's anomaly is
   its distance to the nearest bank patch.
4. A photo's score is the sum over views of each view map's maximum, each
   divided by its typical maximum on the held-out 20 % (so a defect need only
   stand out where it is seen best; measured against the maximum of the
   averaged maps: AUROC +0.002 to +0.004 on each of three bench splits).
   The threshold, from the same held-out photos, is baked into the graph so
   that ``score >= 1.0`` means defect.

Preprocessing is exactly the runner's (``LoadedModel.prepare``), so training
sees what inference sees. The same seed gives the same ONNX bytes.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort

from inspection.anomaly_fit import auroc, calibrate_threshold, greedy_coreset, outliers, split_holdout, whitening
from inspection.anomaly_graph import BACKBONE_PATH, LevelHead, PyramidSpec, build_embedding, build_model
from inspection.model_card import parse_card
from inspection.models import LoadedModel, photo_cells, photo_peak
from qc.errors import InvalidInput

__all__ = ["TrainedModel", "image_sha256", "train_anomaly"]

Progress = Callable[[str, int, int], None]  # (stage, done, total)


@dataclass(frozen=True)
class TrainedModel:
    onnx_bytes: bytes
    card: dict[str, Any]
    holdout_scores: tuple[float, ...] = field(default=())  # normalised (threshold 1.0)
    suspects: tuple[int, ...] = field(default=())  # good_images indices of held-out photos far above the rest


def image_sha256(image: np.ndarray) -> str:
    """Hash of the pixels (shape and dtype included), independent of the file encoding."""
    h = hashlib.sha256(f"{image.shape}{image.dtype}".encode())
    h.update(np.ascontiguousarray(image).tobytes())
    return h.hexdigest()


def _session(model: onnx.ModelProto, threads: int) -> ort.InferenceSession:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    return ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])


def _input_card(factor: float, spec: PyramidSpec) -> dict[str, Any]:
    # raw 0-255 RGB in: standardisation and ImageNet normalisation are in the graph
    return {"name": "image", "layout": "NCHW", "color": "rgb", "scale": 1.0, "mean": [0.0, 0.0, 0.0],
            "std": [1.0, 1.0, 1.0], "resize": "scale", "factor": round(factor, 6), "multiple": spec.multiple,
            "batch": "dynamic"}


def _runner(card: dict[str, Any], model: onnx.ModelProto, threads: int) -> LoadedModel:
    """The production runner around an in-memory graph (no file, no hash to check yet)."""
    parsed = parse_card({**card, "sha256": "0" * 64}, source="the card in training")
    return LoadedModel(parsed, Path("<memory>"), "", _session(model, threads))


def train_anomaly(good_images: list[np.ndarray], *, name: str, version: int, seed: int = 0,
                  defect_images: list[np.ndarray] | None = None, progress: Progress | None = None,
                  size: int = 32, levels: int = 3, patches_per_image: int = 400, bank_size: int = 2000, dims: int = 96,
                  holdout: float = 0.2, threads: int = 2, code_version: str = "unknown",
                  data: str = "", created: str | None = None, backbone: Path | None = None) -> TrainedModel:
    """Fit, calibrate and export an anomaly model from good (and optionally defect) images.

    ``size``: short side, in pixels, of the coarsest pyramid level for the median training photo;
    each further level doubles it (raise ``levels`` when defects are only a few pixels at that scale).
    ``dims``: principal directions of the whitened patch features kept for the nearest-neighbour
    distance (of the backbone's 256).
    ``created``: the card's provenance date (the caller's clock; inspection never reads the wall clock).
    ``backbone``: the exported feature layers (default: the checkout's ``models/backbones/``; an installed
    ``qc`` passes its settings' models folder).
    ``defect_images`` are never used for fitting or the threshold, only to report validation
    AUROC and recall in the card.
    """
    if len(good_images) < 3:
        raise InvalidInput(f"need at least 3 good images (fit + held-out calibration), got {len(good_images)}")
    if not 16 <= size <= 1024:
        raise InvalidInput(f"size must be between 16 and 1024 px, got {size}")
    if dims < 1:
        raise InvalidInput(f"dims must be at least 1, got {dims}")
    if not 1 <= levels <= 4:
        raise InvalidInput(f"levels must be between 1 and 4, got {levels}")
    bad = [i for i, im in enumerate(good_images)
           if im.dtype != np.uint8 or im.ndim not in (2, 3) or min(im.shape[:2]) < 2]
    if bad:
        raise InvalidInput(f"good image #{bad[0]} is not a uint8 photo of at least 2 x 2 px")
    start = time.perf_counter()
    # standardise over a tenth of the finest level's short side: measured best of 1/4..1/12 on the bench
    spec = PyramidSpec(levels=levels, sigma=size * 2 ** (levels - 1) / 10)
    cells = spec.cells()  # input pixels per map cell, per view
    short = float(np.median([min(im.shape[:2]) for im in good_images]))
    factor = size * 2 ** (levels - 1) / short
    card: dict[str, Any] = {
        "name": name, "version": int(version), "task": "anomaly", "file": "model.onnx",
        "input": _input_card(factor, spec),
        "output": {"format": "anomaly-score-map", "score": "pred_score", "map": "anomaly_map",
                   "levels": [{"map": f"level_map{v}", "cell": round(cell, 6)} for v, cell in enumerate(cells)]},
        "threshold": 1.0, "labels": [],
    }
    fit_idx, hold_idx = split_holdout(len(good_images), holdout, seed)
    rng = np.random.default_rng(seed)

    # 1. patches of the fit images, per view, from the photo's part of each map (not the padding)
    embed = _runner(card, build_embedding(spec, backbone=backbone), threads)
    pools: list[list[np.ndarray]] = [[] for _ in cells]
    for n, i in enumerate(fit_idx, 1):
        batch, geos = embed.prepare(good_images[i])
        outs = embed.session.run(None, {"image": batch})
        for view, e in enumerate(outs):
            vh, vw = photo_cells(geos[0].valid, cells[view])
            x = e[0][:, :vh, :vw].reshape(e.shape[1], -1).T
            k = min(patches_per_image, len(x))
            pools[view].append(x[np.sort(rng.choice(len(x), k, replace=False))])
        if progress is not None:
            progress("embed", n, len(fit_idx))

    # 2. per view: whitening, then a coreset of the whitened patches as memory bank
    heads = []
    n_patches = []
    for view, pool in enumerate(pools):
        patches = np.concatenate(pool)
        n_patches.append(len(patches))
        mean, white = whitening(patches, dims=dims)
        z = ((patches - mean) @ white).astype(np.float32)
        k = min(bank_size, len(z))
        step = None if progress is None else _counter(progress, f"coreset view {view}", k)
        heads.append(LevelHead(mean=mean, whitening=white, bank=z[greedy_coreset(z, k, seed=seed + view,
                                                                                  progress=step)]))

    # 3. held-out good photos: each view's typical maximum, then the threshold
    hold_imgs = [good_images[i] for i in hold_idx]
    probe = _runner(card, build_model(spec, heads, backbone=backbone), threads)  # scale 1: view maps are raw distances
    maxima = np.zeros((len(hold_imgs), len(cells)))
    for n, im in enumerate(hold_imgs):
        batch, geos = probe.prepare(im)
        outs = dict(zip([o.name for o in probe.session.get_outputs()], probe.session.run(None, {"image": batch}),
                        strict=True))
        maxima[n] = [photo_peak(outs[f"level_map{view}"], geos[0].valid, cell) for view, cell in enumerate(cells)]
    scales = np.maximum(maxima.mean(axis=0), 1e-6)
    heads = [replace(h, scale=float(scale)) for h, scale in zip(heads, scales, strict=True)]
    hold_raw = (maxima / scales).sum(axis=1)  # the runner's score (sum of view peaks), without a second pass
    if progress is not None:
        progress("calibrate", 1, 1)
    threshold = calibrate_threshold(hold_raw)
    final = build_model(spec, heads, threshold=threshold, backbone=backbone)
    onnx_bytes = final.SerializeToString()
    train_s = time.perf_counter() - start

    hashes = [image_sha256(im) for im in good_images]
    hold = hold_raw / threshold
    odd = outliers(hold_raw)  # held-out "good" photos far above the rest: a person should look at them
    suspects = tuple(int(hold_idx[j]) for j in odd)
    validation: dict[str, Any] = {
        "holdout_good": len(hold_idx),
        "holdout_suspects": [{"image_sha256": hashes[hold_idx[j]], "score": round(float(hold[j]), 4)} for j in odd],
        "holdout_false_reject_rate": float(np.mean(hold >= 1.0)),
        "holdout_max_score": round(float(hold.max()), 4),
        "raw_threshold": round(threshold, 6),
        "train_seconds": round(train_s, 1),
    }
    if defect_images:
        model = _runner(card, final, threads)
        d = np.array([model.run(im).result.score for im in defect_images])
        validation.update(defect_images=len(defect_images), auroc=round(auroc(hold, d), 4),
                          recall_at_threshold=round(float(np.mean(d >= 1.0)), 4))
    card.update({
        "sha256": hashlib.sha256(onnx_bytes).hexdigest(),
        "training": {
            "method": "PatchCore-style memory bank (greedy coreset) on whitened EfficientNet-Lite2 "
                      f"{'+'.join(spec.layers)} patches, {levels}-level pyramid + coarse levels at x{spec.jitter}, "
                      "local standardisation in the graph, score = sum of the views' peaks",
            "seed": seed, "good_images": len(good_images), "fit_images": len(fit_idx),
            "holdout_images": len(hold_idx), "working_size": size, "levels": levels,
            "local_standardisation_sigma_px": spec.sigma, "patches": n_patches, "bank_size": bank_size,
            "whitened_dims": int(heads[0].bank.shape[1]),
            "view_scales": [round(h.scale, 6) for h in heads],
            "image_sha256": hashes,
        },
        "provenance": {"data": data, "date": created,
                       "code_version": code_version,
                       "backbone": f"models/backbones/{(backbone or BACKBONE_PATH).name} (Apache-2.0)",
                       "licence": "Apache-2.0"},
        "validation": validation,
    })
    parse_card(card, source="the trained card")  # the card written is one every reader accepts
    return TrainedModel(onnx_bytes=onnx_bytes, card=card, holdout_scores=tuple(float(s) for s in hold),
                        suspects=suspects)


def _counter(progress: Progress, stage: str, total: int) -> Callable[[int], None]:
    done = [0]

    def step(n: int) -> None:
        done[0] += n
        progress(stage, min(done[0], total), total)

    return step
