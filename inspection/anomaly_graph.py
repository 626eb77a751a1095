"""ONNX graphs for Kipimo anomaly models, built with ``onnx.helper``.

Two graphs grow from the committed backbone (models/backbones/):

* the *embedding* graph: backbone + patch embedding (3x3 local average of the
  stride-8 and stride-16 feature maps, the coarse one upsampled, concatenated:
  PatchCore's locally aware patch features). Training runs it to collect the
  patches of the good images.
* the *model* graph: the same embedding graph with a head appended, so one
  ``InferenceSession`` turns the image tensor into ``pred_score`` (N) and
  ``anomaly_map`` (N x 1 x H x W). The head measures how far each patch is
  from normal (nearest neighbour in a memory bank, or Mahalanobis distance to
  one Gaussian), smooths the patch map, and divides by the calibrated
  threshold, so ``score >= 1.0`` means defect (the convention in the model
  card). The score is the maximum of the map, so the map shows where it came from.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

__all__ = ["BACKBONE_PATH", "EmbeddingSpec", "GaussianHead", "MemoryBankHead", "build_embedding",
           "build_model", "gaussian_kernel"]

BACKBONE_PATH = Path(__file__).resolve().parent.parent / "models" / "backbones" / "efficientnet-lite0-features.onnx"
_STRIDES = {"feat8": 8, "feat16a": 16, "feat16": 16}
_PREFIX = "kq_"  # names of the nodes and tensors Kipimo appends


@dataclass(frozen=True)
class EmbeddingSpec:
    """Which backbone outputs make the patch embedding, and how they are pooled."""

    layers: tuple[str, ...] = ("feat8", "feat16")
    pool: int = 3  # local neighbourhood (PatchCore's aggregation), in feature cells

    @property
    def stride(self) -> int:
        return min(_STRIDES[name] for name in self.layers)


@dataclass(frozen=True)
class MemoryBankHead:
    """Nearest-neighbour distance to a coreset of good patches (PatchCore)."""

    bank: np.ndarray  # K x C float32
    fp16: bool = True  # store the bank as float16 (half the file, distances change < 1e-3)


@dataclass(frozen=True)
class GaussianHead:
    """Mahalanobis distance to one Gaussian fitted to all good patches."""

    mean: np.ndarray  # C
    whitening: np.ndarray  # C x C, W with W W^T = inverse covariance


def gaussian_kernel(sigma: float) -> np.ndarray:
    """Normalised 2-D Gaussian, radius 2 sigma (at least 1)."""
    radius = max(1, int(round(2 * sigma)))
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    k = np.exp(-0.5 * (x / sigma) ** 2)
    k2 = np.outer(k, k)
    return (k2 / k2.sum()).astype(np.float32)


def _const(name: str, array: np.ndarray) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(array), name=_PREFIX + name)


def _load_backbone(backbone: Path | None, height: int | None, width: int | None) -> onnx.ModelProto:
    model = onnx.load(str(backbone or BACKBONE_PATH))
    if height is not None and width is not None:
        dims = model.graph.input[0].type.tensor_type.shape.dim
        dims[2].dim_value, dims[3].dim_value = height, width
    return model


def build_embedding(spec: EmbeddingSpec, *, height: int | None = None, width: int | None = None,
                    backbone: Path | None = None) -> onnx.ModelProto:
    """Backbone + patch embedding; output ``embedding``: N x C x H/stride x W/stride."""
    model = _load_backbone(backbone, height, width)
    g = model.graph
    available = {o.name for o in g.output}
    missing = [name for name in spec.layers if name not in available]
    if missing:
        raise ValueError(f"backbone has no output {missing}; it offers {sorted(available)}")
    parts = []
    for name in spec.layers:
        pooled = f"{_PREFIX}{name}_pool"
        g.node.append(helper.make_node(
            "AveragePool", [name], [pooled], kernel_shape=[spec.pool, spec.pool],
            strides=[1, 1], pads=[spec.pool // 2] * 4, count_include_pad=0))
        factor = _STRIDES[name] // spec.stride
        if factor > 1:
            scales = _const(f"{name}_scales", np.array([1, 1, factor, factor], np.float32))
            g.initializer.append(scales)
            up = f"{_PREFIX}{name}_up"
            g.node.append(helper.make_node("Resize", [pooled, "", scales.name], [up], mode="linear"))
            pooled = up
        parts.append(pooled)
    g.node.append(helper.make_node("Concat", parts, ["embedding"], axis=1))
    del g.output[:]
    g.output.append(helper.make_tensor_value_info("embedding", TensorProto.FLOAT, None))
    return model


def build_model(spec: EmbeddingSpec, head: MemoryBankHead | GaussianHead, *, height: int, width: int,
                threshold: float = 1.0, blur_sigma: float = 1.0,
                backbone: Path | None = None) -> onnx.ModelProto:
    """The complete anomaly model: image -> ``pred_score``, ``anomaly_map`` (both / threshold)."""
    if threshold <= 0:
        raise ValueError(f"threshold must be > 0, got {threshold}")
    model = build_embedding(spec, height=height, width=width, backbone=backbone)
    g = model.graph
    nodes = g.node
    init = g.initializer
    channels = head.bank.shape[1] if isinstance(head, MemoryBankHead) else head.mean.shape[0]
    # N x C x h x w -> N x P x C
    init.append(_const("perm_shape", np.array([0, -1, channels], np.int64)))
    nodes.append(helper.make_node("Transpose", ["embedding"], [_PREFIX + "nhwc"], perm=[0, 2, 3, 1]))
    nodes.append(helper.make_node("Reshape", [_PREFIX + "nhwc", _PREFIX + "perm_shape"], [_PREFIX + "x"]))
    if isinstance(head, MemoryBankHead):
        _append_memory_bank(g, head)
    else:
        _append_gaussian(g, head)
    # distance (N x P) -> N x 1 x h x w map, smoothed, divided by the threshold
    nodes.append(helper.make_node("Shape", ["embedding"], [_PREFIX + "eshape"]))
    init.append(_const("zero_i", np.array([0], np.int64)))
    init.append(_const("one_i", np.array([1], np.int64)))
    init.append(_const("two_i", np.array([2], np.int64)))
    init.append(_const("four_i", np.array([4], np.int64)))
    nodes.append(helper.make_node("Slice", [_PREFIX + "eshape", _PREFIX + "zero_i", _PREFIX + "one_i"],
                                  [_PREFIX + "n"]))
    nodes.append(helper.make_node("Slice", [_PREFIX + "eshape", _PREFIX + "two_i", _PREFIX + "four_i"],
                                  [_PREFIX + "hw"]))
    nodes.append(helper.make_node("Concat", [_PREFIX + "n", _PREFIX + "one_i", _PREFIX + "hw"],
                                  [_PREFIX + "mshape"], axis=0))
    nodes.append(helper.make_node("Reshape", [_PREFIX + "dist", _PREFIX + "mshape"], [_PREFIX + "dmap"]))
    kernel = gaussian_kernel(blur_sigma)
    r = kernel.shape[0] // 2
    init.append(_const("blur", kernel[None, None]))
    init.append(_const("blur_pads", np.array([0, 0, r, r, 0, 0, r, r], np.int64)))
    nodes.append(helper.make_node("Pad", [_PREFIX + "dmap", _PREFIX + "blur_pads"], [_PREFIX + "dpad"],
                                  mode="edge"))
    nodes.append(helper.make_node("Conv", [_PREFIX + "dpad", _PREFIX + "blur"], [_PREFIX + "smooth"]))
    init.append(_const("inv_threshold", np.array(1.0 / threshold, np.float32)))
    nodes.append(helper.make_node("Mul", [_PREFIX + "smooth", _PREFIX + "inv_threshold"], [_PREFIX + "norm"]))
    nodes.append(helper.make_node("ReduceMax", [_PREFIX + "norm"], ["pred_score"], axes=[1, 2, 3], keepdims=0))
    init.append(_const("up_scales", np.array([1, 1, spec.stride, spec.stride], np.float32)))
    nodes.append(helper.make_node("Resize", [_PREFIX + "norm", "", _PREFIX + "up_scales"], ["anomaly_map"],
                                  mode="linear"))
    del g.output[:]
    g.output.extend([
        helper.make_tensor_value_info("pred_score", TensorProto.FLOAT, ["batch"]),
        helper.make_tensor_value_info("anomaly_map", TensorProto.FLOAT, ["batch", 1, height, width]),
    ])
    model.graph.name = "kipimo-anomaly"
    onnx.checker.check_model(model)
    return model


def _append_memory_bank(g: onnx.GraphProto, head: MemoryBankHead) -> None:
    """dist = sqrt(max(0, min_k |x - b_k|^2)), as |x|^2 + min_k(|b_k|^2 - 2 x.b_k)."""
    bank = head.bank.astype(np.float32)
    stored = (-2.0 * bank.T).astype(np.float16 if head.fp16 else np.float32)
    # use the stored (rounded) bank for |b|^2 too, so the distance stays a true distance
    bank_used = -0.5 * stored.astype(np.float32).T
    g.initializer.append(_const("bank_m2t", stored))
    g.initializer.append(_const("bank_sq", (bank_used**2).sum(axis=1).astype(np.float32)))
    bank_name = _PREFIX + "bank_m2t"
    if head.fp16:
        g.node.append(helper.make_node("Cast", [bank_name], [_PREFIX + "bank_f32"], to=TensorProto.FLOAT))
        bank_name = _PREFIX + "bank_f32"
    p = _PREFIX
    g.node.extend([
        helper.make_node("MatMul", [p + "x", bank_name], [p + "xb"]),
        helper.make_node("Add", [p + "xb", p + "bank_sq"], [p + "cross"]),
        helper.make_node("ReduceMin", [p + "cross"], [p + "cmin"], axes=[2], keepdims=0),
        helper.make_node("ReduceSumSquare", [p + "x"], [p + "xsq"], axes=[2], keepdims=0),
        helper.make_node("Add", [p + "cmin", p + "xsq"], [p + "d2"]),
        helper.make_node("Relu", [p + "d2"], [p + "d2pos"]),
        helper.make_node("Sqrt", [p + "d2pos"], [p + "dist"]),
    ])


def _append_gaussian(g: onnx.GraphProto, head: GaussianHead) -> None:
    """dist = |W^T (x - mean)| (Mahalanobis distance)."""
    p = _PREFIX
    g.initializer.append(_const("g_mean", head.mean.astype(np.float32)))
    g.initializer.append(_const("g_white", head.whitening.astype(np.float32)))
    g.node.extend([
        helper.make_node("Sub", [p + "x", p + "g_mean"], [p + "xc"]),
        helper.make_node("MatMul", [p + "xc", p + "g_white"], [p + "xw"]),
        helper.make_node("ReduceSumSquare", [p + "xw"], [p + "d2"], axes=[2], keepdims=0),
        helper.make_node("Sqrt", [p + "d2"], [p + "dist"]),
    ])
