"""ONNX graphs for Kipimo anomaly models, built with ``onnx.helper``.

A Kipimo anomaly model looks at a photo through a small *pyramid*: the image
(raw 0-255 RGB, already brought to the model's working scale by the runner) is
locally standardised, then the committed backbone (models/backbones/) runs on
it at full size and at each halving (the octave levels), and on the coarse
levels of two slightly rescaled copies (x0.875 and x1.125, the jittered views:
cheap, and they even out where the few coarse feature cells fall on the part).
Two graphs grow from that:

* the *embedding* graph: pyramid + patch embedding (3x3 local average of the
  stride-8 map and the two stride-16 maps, those upsampled, concatenated:
  PatchCore's locally aware patch features), one output per view. Training
  runs it to collect the patches of the good images.
* the *model* graph: the same with one head per view. A head whitens each
  patch (mean and whitening matrix of the good patches, possibly keeping only
  their principal directions) and takes its distance
  to the nearest patch of a memory bank (coreset of good patches). The view
  maps are smoothed, divided by their typical maximum on held-out good images,
  and divided by the calibrated threshold (``level_map{v}``). ``pred_score``
  is the sum of the view maps' maxima (>= 1.0 means defect, the model card's
  convention); ``anomaly_map`` (N x 1 x H x W) shows where, in the same units.

Local standardisation (each channel minus its Gaussian-weighted local mean,
over the local standard deviation) is in the graph, so every node feeds the
same raw pixels and gets the same numbers. It removes slow illumination
changes, which otherwise dominate the feature distances between photos.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

__all__ = ["BACKBONE_PATH", "LevelHead", "PyramidSpec", "build_embedding", "build_model", "gaussian_kernel"]

# EfficientNet-Lite2 (exported by scripts/export_backbone.py); Lite0 beside it built magnetic-tile-surface@1
BACKBONE_PATH = Path(__file__).resolve().parent.parent / "models" / "backbones" / "efficientnet-lite2-features.onnx"
_STRIDES = {"feat8": 8, "feat16a": 16, "feat16": 16}
_MEAN = (0.485, 0.456, 0.406)  # ImageNet, as the backbone was trained
_STD = (0.229, 0.224, 0.225)
_P = "kq_"  # prefix of every node and tensor Kipimo adds


@dataclass(frozen=True)
class PyramidSpec:
    """How the image becomes patch embeddings."""

    layers: tuple[str, ...] = ("feat8", "feat16a", "feat16")
    pool: int = 3  # local neighbourhood (PatchCore's aggregation), in feature cells
    levels: int = 3  # full working scale, then each halving
    sigma: float = 16.0  # local standardisation scale, in working pixels of the finest level
    gain: float = 40.0  # standardised value -> grey levels around 128
    eps: float = 25.0  # added to the local variance (grey levels^2): flat areas are not amplified
    # extra pyramids at these scales of the working scale, for the coarse levels only: their
    # few feature cells fall differently on the part, and the sum of peaks evens that out
    jitter: tuple[float, ...] = (0.875, 1.125)
    jitter_levels: tuple[int, ...] = (1, 2)

    @property
    def stride(self) -> int:
        return min(_STRIDES[name] for name in self.layers)

    def views(self) -> list[float]:
        """Scale of each view's image relative to the working scale, one head each: the octave
        levels first, then the jittered ones (the order of ``_start``)."""
        return [0.5**level for level in range(self.levels)] + [
            r * 0.5**level for r in self.jitter for level in self.jitter_levels if level < self.levels]

    def cells(self) -> list[float]:
        """Input pixels per map cell, per view (the runner finds the photo's cells with it)."""
        return [self.stride / scale for scale in self.views()]

    @property
    def shrink(self) -> int:
        """Grid step (input px) of the local statistics: a power of two keeping sigma >= 2 steps,
        and dividing ``multiple`` so the grid tiles the padded input."""
        f = 1
        while f * 2 <= self.multiple and self.sigma / (f * 2) >= 2.0:
            f *= 2
        return f

    @property
    def multiple(self) -> int:
        """Input height and width must be multiples of this (the coarsest level's backbone stride)."""
        return 32 * 2 ** (self.levels - 1)


@dataclass(frozen=True)
class LevelHead:
    """Whitened nearest-neighbour distance to a memory bank of good patches, for one pyramid level."""

    mean: np.ndarray  # C
    whitening: np.ndarray  # C x D (D <= C: the principal directions kept)
    bank: np.ndarray  # K x D, already whitened
    scale: float = 1.0  # typical maximum on good images: views weigh alike in the sum
    fp16: bool = True  # store the bank as float16 (half the file, distances change < 1e-3)


def gaussian_kernel(sigma: float) -> np.ndarray:
    """Normalised 2-D Gaussian, radius 2 sigma (at least 1)."""
    k = _gauss1d(sigma, 2.0)
    k2 = np.outer(k, k)
    return (k2 / k2.sum()).astype(np.float32)


def _gauss1d(sigma: float, radius_sigmas: float) -> np.ndarray:
    radius = max(1, int(round(radius_sigmas * sigma)))
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    k = np.exp(-0.5 * (x / sigma) ** 2)
    return (k / k.sum()).astype(np.float32)


class _Builder:
    """Appends nodes and constants to one graph under the Kipimo prefix."""

    def __init__(self, graph: onnx.GraphProto) -> None:
        self.g = graph
        self.n = 0

    def const(self, name: str, array: np.ndarray) -> str:
        self.g.initializer.append(numpy_helper.from_array(np.asarray(array), name=_P + name))
        return _P + name

    def op(self, op_type: str, inputs: list[str], out: str | None = None, **attrs: Any) -> str:
        self.n += 1
        name = out or f"{_P}{op_type.lower()}_{self.n}"
        self.g.node.append(helper.make_node(op_type, inputs, [name], **attrs))
        return name


def _load_backbone(backbone: Path | None) -> onnx.ModelProto:
    return onnx.load(str(backbone or BACKBONE_PATH))


def _standardise(b: _Builder, image: str, spec: PyramidSpec) -> str:
    """Raw 0-255 RGB -> locally standardised, ImageNet-normalised input of the backbone.

    The local mean and deviation are smooth, so they are taken on a grid ``spec.shrink`` times
    coarser (average pooling, a Gaussian of sigma / shrink, bilinear upsampling): a full-resolution
    Gaussian of sigma 13 px cost a fifth of the whole model's time."""
    f = spec.shrink
    k = _gauss1d(spec.sigma / f, 3.0)
    r = len(k) // 2
    kx = b.const("lsd_kx", np.tile(k.reshape(1, 1, 1, -1), (3, 1, 1, 1)))
    ky = b.const("lsd_ky", np.tile(k.reshape(1, 1, -1, 1), (3, 1, 1, 1)))
    pads = b.const("lsd_pads", np.array([0, 0, r, r, 0, 0, r, r], np.int64))

    def blur(x: str) -> str:
        if f > 1:
            x = b.op("AveragePool", [x], kernel_shape=[f, f], strides=[f, f])
        padded = b.op("Pad", [x, pads], mode="edge")
        return b.op("Conv", [b.op("Conv", [padded, kx], group=3), ky], group=3)

    scales = b.const("lsd_up", np.array([1, 1, f, f], np.float32)) if f > 1 else ""

    def up(x: str) -> str:
        return b.op("Resize", [x, "", scales], mode="linear") if scales else x

    mu = blur(image)
    var = b.op("Relu", [b.op("Sub", [blur(b.op("Mul", [image, image])), b.op("Mul", [mu, mu])])])
    sd = b.op("Sqrt", [b.op("Add", [var, b.const("lsd_eps", np.array(spec.eps, np.float32))])])
    z = b.op("Div", [b.op("Sub", [image, up(mu)]), up(sd)])
    grey = b.op("Add", [b.op("Mul", [z, b.const("lsd_gain", np.array(spec.gain, np.float32))]),
                        b.const("lsd_mid", np.array(128.0, np.float32))])
    grey = b.op("Clip", [grey, b.const("lsd_lo", np.array(0.0, np.float32)),
                         b.const("lsd_hi", np.array(255.0, np.float32))])
    mean = np.asarray(_MEAN, np.float32).reshape(1, 3, 1, 1) * 255.0
    inv = 1.0 / (np.asarray(_STD, np.float32).reshape(1, 3, 1, 1) * 255.0)
    return b.op("Mul", [b.op("Sub", [grey, b.const("in_mean", mean)]), b.const("in_invstd", inv.astype(np.float32))])


def _backbone_copy(b: _Builder, backbone: onnx.ModelProto, x: str, level: int) -> dict[str, str]:
    """Append the backbone's nodes reading ``x``; weights are shared, activations renamed per level."""
    bg = backbone.graph
    weights = {t.name for t in bg.initializer}
    source = bg.input[0].name

    def rename(name: str) -> str:
        if not name or name in weights:
            return name
        return x if name == source else f"{_P}l{level}/{name}"

    for node in bg.node:
        copy = onnx.NodeProto()
        copy.CopyFrom(node)
        copy.name = f"{_P}l{level}/{node.name}"
        copy.input[:] = [rename(i) for i in node.input]
        copy.output[:] = [rename(o) for o in node.output]
        b.g.node.append(copy)
    return {o.name: rename(o.name) for o in bg.output}


def _embedding(b: _Builder, feats: dict[str, str], spec: PyramidSpec, level: int) -> str:
    parts = []
    for name in spec.layers:
        if name not in feats:
            raise ValueError(f"backbone has no output {name!r}; it offers {sorted(feats)}")
        pooled = b.op("AveragePool", [feats[name]], kernel_shape=[spec.pool, spec.pool], strides=[1, 1],
                      pads=[spec.pool // 2] * 4, count_include_pad=0)
        factor = _STRIDES[name] // spec.stride
        if factor > 1:
            scales = b.const(f"l{level}_{name}_up", np.array([1, 1, factor, factor], np.float32))
            pooled = b.op("Resize", [pooled, "", scales], mode="linear")
        parts.append(pooled)
    return b.op("Concat", parts, axis=1)


def _pad_to(b: _Builder, x: str, multiple: int, tag: str) -> str:
    """Pad height and width up to a multiple, bottom and right, by reflection like the runner's padding
    (mirrored context at the photo's border). The model input is at least ``spec.multiple`` (>= 64 px
    wherever there are coarse levels), so a map is always wider than its padding, as reflection needs."""
    hw = b.op("Slice", [b.op("Shape", [x]), b.const(f"{tag}_i2", np.array([2], np.int64)),
                        b.const(f"{tag}_i4", np.array([4], np.int64))])
    m = b.const(f"{tag}_mult", np.array([multiple], np.int64))
    extra = b.op("Mod", [b.op("Sub", [m, b.op("Mod", [hw, m])]), m])
    pads = b.op("Concat", [b.const(f"{tag}_zeros", np.zeros(6, np.int64)), extra], axis=0)
    return b.op("Pad", [x, pads], mode="reflect")


def _start(spec: PyramidSpec, backbone: Path | None) -> tuple[onnx.ModelProto, _Builder, list[str]]:
    """A fresh model holding the backbone weights, the image input and one embedding per view."""
    bb = _load_backbone(backbone)
    graph = helper.make_graph([], "kipimo-anomaly",
                              [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 3, "H", "W"])],
                              [], initializer=list(bb.graph.initializer))
    model = helper.make_model(graph, opset_imports=list(bb.opset_import), ir_version=bb.ir_version)
    b = _Builder(model.graph)
    x = _standardise(b, "image", spec)
    embeddings = []
    octaves = []
    for level in range(spec.levels):
        if level:
            x = b.op("AveragePool", [x], kernel_shape=[2, 2], strides=[2, 2])
        octaves.append(x)
        embeddings.append(_embedding(b, _backbone_copy(b, bb, x, level), spec, level))
    for r in spec.jitter:
        wanted = [level for level in spec.jitter_levels if level < spec.levels]
        if not wanted:
            continue
        # the working-scale image rescaled by r, then halved like the octaves
        y = b.op("Resize", [octaves[0], "", b.const(f"jitter{r}", np.array([1, 1, r, r], np.float32))],
                 mode="linear")
        for level in range(max(wanted) + 1):
            if level:
                y = b.op("AveragePool", [y], kernel_shape=[2, 2], strides=[2, 2])
            if level in wanted:
                view = len(embeddings)
                padded = _pad_to(b, y, 32, f"v{view}")  # the backbone's coarsest stride
                embeddings.append(_embedding(b, _backbone_copy(b, bb, padded, view), spec, view))
    return model, b, embeddings


def build_embedding(spec: PyramidSpec, *, backbone: Path | None = None) -> onnx.ModelProto:
    """Pyramid + patch embedding; outputs ``embedding{v}`` (N x C x h x w) per view (``spec.views()``)."""
    model, b, embeddings = _start(spec, backbone)
    for level, e in enumerate(embeddings):
        b.op("Identity", [e], f"embedding{level}")
        model.graph.output.append(helper.make_tensor_value_info(f"embedding{level}", TensorProto.FLOAT, _dims(level)))
    onnx.checker.check_model(model)
    return model


def build_model(spec: PyramidSpec, heads: list[LevelHead], *, threshold: float = 1.0, blur_sigma: float = 1.0,
                backbone: Path | None = None) -> onnx.ModelProto:
    """The complete anomaly model: image -> ``pred_score``, ``anomaly_map``, ``level_map0``.. (all / threshold).

    ``level_map{v}`` is view v's smoothed distance map over its scale (its typical maximum on held-out
    good photos); the views are the octave levels, then the jittered coarse levels (``spec.views``).
    ``pred_score`` is the sum of the views' maxima: a defect need only stand out where it is seen
    best. ``anomaly_map`` is the sum of the octave levels' maps at pixel resolution, times
    views / octave levels, so it reads in the score's units (equal to it where all views peak at one spot).
    """
    if threshold <= 0:
        raise ValueError(f"threshold must be > 0, got {threshold}")
    if len(heads) != len(spec.views()):
        raise ValueError(f"{len(spec.views())} pyramid views need as many heads, got {len(heads)}")
    model, b, embeddings = _start(spec, backbone)
    kernel = gaussian_kernel(blur_sigma)
    r = kernel.shape[0] // 2
    blur = b.const("blur", kernel[None, None])
    blur_pads = b.const("blur_pads", np.array([0, 0, r, r, 0, 0, r, r], np.int64))
    combined = score = None
    outputs = []
    for level, (emb, head) in enumerate(zip(embeddings, heads, strict=True)):
        dist = _nearest_distance(b, emb, head, level)
        smooth = b.op("Conv", [b.op("Pad", [dist, blur_pads], mode="edge"), blur])
        weighted = b.op("Mul", [smooth, b.const(f"l{level}_inv_scale",
                                                np.array(1.0 / (head.scale * threshold), np.float32))],
                        f"level_map{level}")
        outputs.append(helper.make_tensor_value_info(weighted, TensorProto.FLOAT, _dims(level)))
        peak = b.op("ReduceMax", [weighted], axes=[1, 2, 3], keepdims=0)
        score = peak if score is None else b.op("Add", [score, peak])
        if level >= spec.levels:  # jittered views add to the score only; the map shows the octaves
            continue
        if level:
            up = b.const(f"l{level}_map_up", np.array([1, 1, 2**level, 2**level], np.float32))
            weighted = b.op("Resize", [weighted, "", up], mode="linear")
        combined = weighted if combined is None else b.op("Add", [combined, weighted])
    assert combined is not None and score is not None
    b.op("Identity", [score], "pred_score")
    # in the score's units: where every view peaks at one spot the map's peak is the score
    combined = b.op("Mul", [combined, b.const("map_units", np.array(len(heads) / spec.levels, np.float32))])
    up = b.const("map_up", np.array([1, 1, spec.stride, spec.stride], np.float32))
    b.op("Resize", [combined, "", up], "anomaly_map", mode="linear")
    model.graph.output.extend([
        helper.make_tensor_value_info("pred_score", TensorProto.FLOAT, ["batch"]),
        helper.make_tensor_value_info("anomaly_map", TensorProto.FLOAT, ["batch", 1, "H", "W"]),
        *outputs,
    ])
    onnx.checker.check_model(model)
    return model


def _nearest_distance(b: _Builder, emb: str, head: LevelHead, level: int) -> str:
    """N x C x h x w embedding -> N x 1 x h x w distance of each whitened patch to its nearest bank patch."""
    channels = head.mean.shape[0]  # embedding channels (the bank may keep fewer whitened dims)
    x = b.op("Reshape", [b.op("Transpose", [emb], perm=[0, 2, 3, 1]),
                         b.const(f"l{level}_rows", np.array([0, -1, channels], np.int64))])
    x = b.op("MatMul", [b.op("Sub", [x, b.const(f"l{level}_mean", head.mean.astype(np.float32))]),
                        b.const(f"l{level}_white", head.whitening.astype(np.float32))])
    # |x - b|^2 = |x|^2 + min_k(|b_k|^2 - 2 x.b_k); |b|^2 from the stored (rounded) bank keeps it a distance
    stored = (-2.0 * head.bank.astype(np.float32).T).astype(np.float16 if head.fp16 else np.float32)
    used = -0.5 * stored.astype(np.float32).T
    bank = b.const(f"l{level}_bank_m2t", stored)
    if head.fp16:
        bank = b.op("Cast", [bank], to=TensorProto.FLOAT)
    cross = b.op("Add", [b.op("MatMul", [x, bank]), b.const(f"l{level}_bank_sq", (used**2).sum(axis=1))])
    d2 = b.op("Add", [b.op("ReduceMin", [cross], axes=[2], keepdims=0),
                      b.op("ReduceSumSquare", [x], axes=[2], keepdims=0)])
    dist = b.op("Sqrt", [b.op("Relu", [d2])])
    # N x P -> N x 1 x h x w, h and w taken from the embedding
    shape = b.op("Shape", [emb])
    i64 = {k: b.const(f"l{level}_i{k}", np.array([k], np.int64)) for k in (0, 1, 2, 4)}
    n = b.op("Slice", [shape, i64[0], i64[1]])
    hw = b.op("Slice", [shape, i64[2], i64[4]])
    return b.op("Reshape", [dist, b.op("Concat", [n, i64[1], hw], axis=0)])


def _dims(level: int) -> list[str]:
    return ["batch", f"c{level}", f"h{level}", f"w{level}"]
