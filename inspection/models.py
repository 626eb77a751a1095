"""ONNX model runner: a model is a folder with ``model.onnx`` and ``card.yaml``.

The card (``inspection/model_card.py``, schema in models/README.md) states the task, the input contract and
how to read the outputs. The ONNX file's SHA-256 is checked against the card on
load, and every result names ``name@version`` and that hash, so a record proves
which model judged. Output adapters cover what users bring: Anomalib-style
exports (image score + anomaly map), classifiers (logits or probabilities) and
Ultralytics YOLOv8 detection exports (1 x (4+nc) x N, NMS done here).

Inputs reach the model one of four ways (``input.resize``): ``stretch`` to the
card's size, ``letterbox`` (aspect kept, grey bands), ``tiles`` (overlapping
crops at native resolution) or ``scale`` (one fixed factor for every photo, so
a millimetre is the same number of pixels whatever the crop; padded by
reflection to a multiple of ``input.multiple``; Kipimo-trained models).
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import onnxruntime as ort

from inspection.model_card import AnomalyOutput, ModelCard, ScaleInput, check_file, file_sha256, read_card
from qc.errors import ModelError, ModelNotInstalled
from qc.findings import Detection, ModelResult

__all__ = ["LoadedModel", "ModelCard", "ModelOutput", "ModelRegistry", "file_sha256", "load_model",
           "photo_cells", "photo_peak", "read_card", "scale_and_pad", "tile_starts"]

@dataclass(frozen=True)
class ModelOutput:
    result: ModelResult
    anomaly_map: np.ndarray | None = None  # float32, image-sized (anomaly models only)


@dataclass
class _Geometry:
    """How one model input maps back to the image (for boxes and maps)."""

    x0: int
    y0: int
    sx: float  # image px per model px
    sy: float
    pad_x: float = 0.0
    pad_y: float = 0.0
    valid: tuple[int, int] | None = None  # resize: scale: the unpadded (h, w) of the model input


class LoadedModel:
    """A verified ONNX session plus its card; ``run`` is safe to call from threads."""

    def __init__(self, card: ModelCard, path: Path, sha256: str, session: ort.InferenceSession) -> None:
        self.card = card
        self.path = path
        self.sha256 = sha256
        self.session = session
        names = [i.name for i in session.get_inputs()]
        self.input_name = card.input.name or names[0]
        if self.input_name not in names:
            raise ModelError(f"{card.ref}: card names input {self.input_name!r}; model has {names}")

    @property
    def ref(self) -> str:
        return self.card.ref

    # -- pre-processing -------------------------------------------------------------
    def _to_model_color(self, image: np.ndarray) -> np.ndarray:
        c = self.card.input.color
        if image.ndim == 2:
            return image if c == "gray" else cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
        if c == "gray":
            return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        return cv2.cvtColor(image, cv2.COLOR_BGR2RGB) if c == "rgb" else image

    def prepare(self, image: np.ndarray) -> tuple[np.ndarray, list[_Geometry]]:
        """Image -> (batch tensor, geometry per batch item)."""
        inp = self.card.input
        img = self._to_model_color(image)
        h, w = img.shape[:2]
        th, tw = inp.height, inp.width
        crops: list[np.ndarray] = []
        geos: list[_Geometry] = []
        if isinstance(inp, ScaleInput):
            padded, (nh, nw) = scale_and_pad(img, inp.factor, inp.multiple)
            crops.append(padded)
            geos.append(_Geometry(0, 0, w / nw, h / nh, valid=(nh, nw)))
        elif inp.resize == "tiles" and (h > th or w > tw):
            ys = tile_starts(h, th)
            xs = tile_starts(w, tw)
            for y in ys:
                for x in xs:
                    crop = img[y : y + th, x : x + tw]
                    if crop.shape[:2] != (th, tw):
                        crop = cv2.resize(crop, (tw, th), interpolation=cv2.INTER_AREA)
                    crops.append(crop)
                    geos.append(_Geometry(x, y, min(tw, w) / tw, min(th, h) / th))
        elif inp.resize == "letterbox":
            s = min(tw / w, th / h)
            nw, nh = max(1, round(w * s)), max(1, round(h * s))
            interp = cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR
            resized = cv2.resize(img, (nw, nh), interpolation=interp)
            px, py = (tw - nw) // 2, (th - nh) // 2
            canvas = np.full((th, tw) + img.shape[2:], 114, img.dtype)
            canvas[py : py + nh, px : px + nw] = resized
            crops.append(canvas)
            geos.append(_Geometry(0, 0, w / nw, h / nh, px, py))
        else:
            interp = cv2.INTER_AREA if (w > tw or h > th) else cv2.INTER_LINEAR
            crops.append(cv2.resize(img, (tw, th), interpolation=interp))
            geos.append(_Geometry(0, 0, w / tw, h / th))
        batch = np.stack(crops).astype(np.float32)
        if batch.ndim == 3:
            batch = batch[..., None]
        batch /= inp.scale
        batch -= np.asarray(inp.channel_mean, np.float32)
        batch /= np.asarray(inp.channel_std, np.float32)
        if inp.layout == "NCHW":
            batch = batch.transpose(0, 3, 1, 2)
        return np.ascontiguousarray(batch), geos

    def _infer(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        names = [o.name for o in self.session.get_outputs()]
        if self.card.input.batch == "dynamic" or len(batch) == 1:
            outs = self.session.run(None, {self.input_name: batch})
        else:
            parts = [self.session.run(None, {self.input_name: batch[i : i + 1]}) for i in range(len(batch))]
            outs = [np.concatenate([p[k] for p in parts]) for k in range(len(names))]
        return dict(zip(names, outs, strict=True))

    # -- running --------------------------------------------------------------------
    def run(self, image: np.ndarray) -> ModelOutput:
        if image.dtype != np.uint8 or image.ndim not in (2, 3):
            raise ValueError(f"expected a uint8 BGR or grey image, got {image.dtype} {image.shape}")
        batch, geos = self.prepare(image)
        outs = self._infer(batch)
        fmt = self.card.output.format
        if fmt == "anomaly-score-map":
            return self._anomaly(outs, geos, image.shape[:2])
        if fmt in ("logits", "probabilities"):
            return self._classify(outs)
        return self._detect(outs, geos)

    def _base(self, **kw: Any) -> ModelResult:
        return ModelResult(model=self.ref, sha256=self.sha256, task=self.card.task, **kw)

    def _output(self, outs: dict[str, np.ndarray], name: str | None) -> np.ndarray:
        if name is None:
            return next(iter(outs.values()))
        if name not in outs:
            raise ModelError(f"{self.ref}: card names output {name!r}; model has {list(outs)}")
        return outs[name]

    def _anomaly(self, outs: dict[str, np.ndarray], geos: list[_Geometry],
                 shape: tuple[int, int]) -> ModelOutput:
        out = self.card.output
        assert isinstance(out, AnomalyOutput)  # the card's task says so
        scores = self._output(outs, out.score).reshape(len(geos), -1)
        score = float(scores.max())  # a defect anywhere (any tile) makes the photo a defect
        amap = None
        if isinstance(self.card.input, ScaleInput) and out.map:
            # the reflected padding is not the part: score and map cover the photo only
            nh, nw = geos[0].valid or (1, 1)
            m = self._output(outs, out.map).astype(np.float32)[0, 0, :nh, :nw]
            if out.levels:  # Kipimo pyramids: the sum of each view's peak over the photo
                score = sum(photo_peak(self._output(outs, level.map), (nh, nw), level.cell) for level in out.levels)
            else:
                score = float(m.max())
            amap = cv2.resize(m, (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR)
        elif out.map:
            maps = self._output(outs, out.map).astype(np.float32)
            maps = maps.reshape(len(geos), maps.shape[-2], maps.shape[-1])
            amap = _paste_maps(maps, geos, shape, (self.card.input.height, self.card.input.width))
        thr = self.card.threshold if self.card.threshold is not None else 0.5
        label = "defect" if score >= thr else "good"
        return ModelOutput(self._base(score=score, label=label, threshold=thr), amap)

    def _classify(self, outs: dict[str, np.ndarray]) -> ModelOutput:
        raw = self._output(outs, self.card.output.score).astype(np.float64)
        raw = raw.reshape(raw.shape[0], -1)
        if self.card.output.format == "logits":
            raw = np.exp(raw - raw.max(axis=1, keepdims=True))
            raw /= raw.sum(axis=1, keepdims=True)
        probs = raw.mean(axis=0)
        if len(probs) != len(self.card.labels):
            raise ModelError(f"{self.ref}: {len(probs)} outputs but {len(self.card.labels)} labels")
        top = int(np.argmax(probs))
        pairs = tuple((lab, float(p)) for lab, p in zip(self.card.labels, probs, strict=True))
        return ModelOutput(self._base(score=float(probs[top]), label=self.card.labels[top],
                                      threshold=self.card.threshold, probabilities=pairs))

    def _detect(self, outs: dict[str, np.ndarray], geos: list[_Geometry]) -> ModelOutput:
        pred = self._output(outs, self.card.output.score)
        nc = len(self.card.labels)
        if pred.ndim != 3 or pred.shape[1] != 4 + nc:
            raise ModelError(f"{self.ref}: expected YOLOv8 output 1x{4 + nc}xN, got {pred.shape}")
        boxes, scores, classes = [], [], []
        for b, g in enumerate(geos):
            p = pred[b].T  # N x (4 + nc)
            cls = p[:, 4:].argmax(axis=1)
            conf = p[np.arange(len(p)), 4 + cls]
            keep = conf >= self.card.nms.confidence
            p, cls, conf = p[keep], cls[keep], conf[keep]
            cx, cy, bw, bh = p[:, 0], p[:, 1], p[:, 2], p[:, 3]
            x1 = (cx - bw / 2 - g.pad_x) * g.sx + g.x0
            y1 = (cy - bh / 2 - g.pad_y) * g.sy + g.y0
            boxes.append(np.stack([x1, y1, bw * g.sx, bh * g.sy], axis=1))
            scores.append(conf)
            classes.append(cls)
        xywh = np.concatenate(boxes) if boxes else np.zeros((0, 4))
        sc = np.concatenate(scores) if scores else np.zeros(0)
        cl = np.concatenate(classes) if classes else np.zeros(0, int)
        dets: list[Detection] = []
        if len(sc):
            idx = cv2.dnn.NMSBoxesBatched(xywh.tolist(), sc.tolist(), cl.tolist(),
                                          self.card.nms.confidence, self.card.nms.iou)
            for i in sorted(np.asarray(idx).reshape(-1).tolist(), key=lambda k: -sc[k]):
                x, y, bw, bh = (float(v) for v in xywh[i])
                dets.append(Detection(self.card.labels[int(cl[i])], float(sc[i]), (x, y, x + bw, y + bh)))
        best = dets[0] if dets else None
        return ModelOutput(self._base(score=best.confidence if best else 0.0,
                                      label=best.label if best else None,
                                      threshold=self.card.nms.confidence, detections=tuple(dets)))


def scale_and_pad(image: np.ndarray, factor: float, multiple: int) -> tuple[np.ndarray, tuple[int, int]]:
    """Resize by ``factor`` (aspect kept), then reflect-pad bottom and right to multiples of ``multiple``.

    Returns the padded image and the (h, w) of the part that is the photo.
    """
    h, w = image.shape[:2]
    nh, nw = max(1, round(h * factor)), max(1, round(w * factor))
    interp = cv2.INTER_AREA if factor < 1 else cv2.INTER_LINEAR
    img = image if (nh, nw) == (h, w) else cv2.resize(image, (nw, nh), interpolation=interp)
    ph, pw = -nh % multiple, -nw % multiple
    if ph or pw:
        # reflection needs 2 px to reflect; a 1-px strip is replicated instead
        mode = cv2.BORDER_REFLECT_101 if min(nh, nw) > 1 else cv2.BORDER_REPLICATE
        while ph or pw:  # one reflection covers at most the image itself
            sh, sw = min(ph, img.shape[0] - 1) or ph, min(pw, img.shape[1] - 1) or pw
            img = cv2.copyMakeBorder(img, 0, sh, 0, sw, mode)
            ph, pw = ph - sh, pw - sw
    return img, (nh, nw)


def tile_starts(size: int, tile: int) -> list[int]:
    if size <= tile:
        return [0]
    n = int(np.ceil(size / tile))
    return [round(i * (size - tile) / (n - 1)) for i in range(n)]


def photo_cells(valid: tuple[int, int] | None, cell: float) -> tuple[int, int]:
    """Rows and columns of a feature map that cover the photo (``valid`` input pixels, ``cell`` px per cell)."""
    nh, nw = valid or (1, 1)
    return max(1, math.ceil(nh / cell - 1e-6)), max(1, math.ceil(nw / cell - 1e-6))


def photo_peak(level_map: np.ndarray, valid: tuple[int, int] | None, cell: float) -> float:
    """Maximum of a 1 x 1 x h x w map over the cells that cover the photo."""
    vh, vw = photo_cells(valid, cell)
    return float(level_map[0, 0, :vh, :vw].max())


def _paste_maps(maps: np.ndarray, geos: list[_Geometry], shape: tuple[int, int],
                model_hw: tuple[int, int]) -> np.ndarray:
    """Bring per-input anomaly maps back to image pixels (max where tiles overlap)."""
    h, w = shape
    out = np.full((h, w), -np.inf, np.float32)
    mh, mw = model_hw
    for m, g in zip(maps, geos, strict=True):
        m = cv2.resize(m, (mw, mh), interpolation=cv2.INTER_LINEAR)
        # crop away letterbox padding, then scale to the covered image region
        ph, pw = round(g.pad_y), round(g.pad_x)
        m = m[ph : mh - ph or None, pw : mw - pw or None]
        rw, rh = min(w - g.x0, round(m.shape[1] * g.sx)), min(h - g.y0, round(m.shape[0] * g.sy))
        m = cv2.resize(m, (rw, rh), interpolation=cv2.INTER_LINEAR)
        region = out[g.y0 : g.y0 + rh, g.x0 : g.x0 + rw]
        np.maximum(region, m, out=region)
    out[~np.isfinite(out)] = 0.0
    return out


_cache: dict[tuple[str, int, int, int], LoadedModel] = {}
_cache_lock = threading.Lock()


def load_model(model_dir: Path | str, *, threads: int = 1) -> LoadedModel:
    """Load (or reuse) a model folder; the ONNX file must have the card's SHA-256."""
    model_dir = Path(model_dir).resolve()
    card = read_card(model_dir)
    onnx_path = model_dir / card.file
    if not onnx_path.is_file():
        raise ModelNotInstalled(f"{card.ref}: {onnx_path} is missing")
    st = onnx_path.stat()
    key = (str(onnx_path), st.st_mtime_ns, st.st_size, threads)
    with _cache_lock:
        hit = _cache.get(key)
        if hit is not None and hit.card == card:
            return hit
    digest = check_file(card, onnx_path)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = max(1, threads)
    opts.inter_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    try:
        session = ort.InferenceSession(str(onnx_path), opts, providers=["CPUExecutionProvider"])
    except Exception as exc:  # noqa: BLE001  (ONNX Runtime raises several private types)
        raise ModelError(f"{card.ref}: ONNX Runtime cannot load {onnx_path.name}: {exc}") from None
    model = LoadedModel(card, onnx_path, digest, session)
    with _cache_lock:
        _cache[key] = model
    return model


class ModelRegistry:
    """Finds models by ``name@version`` among the folders of ``models_dir``."""

    def __init__(self, models_dir: Path | str, *, threads: int = 1) -> None:
        self.models_dir = Path(models_dir)
        self.threads = threads
        self._index: dict[str, Path] | None = None

    def refs(self) -> dict[str, Path]:
        if self._index is None:
            index: dict[str, Path] = {}
            if self.models_dir.is_dir():
                for card_path in sorted(self.models_dir.glob("*/card.yaml")):
                    try:
                        card = read_card(card_path.parent)
                    except ModelError:
                        continue
                    index[card.ref] = card_path.parent
            self._index = index
        return self._index

    def get(self, ref: str) -> LoadedModel:
        folder = self.refs().get(ref)
        if folder is None:
            known = ", ".join(sorted(self.refs())) or "none"
            raise ModelNotInstalled(f"model {ref} is not installed in {self.models_dir} (installed: {known})")
        return load_model(folder, threads=self.threads)
