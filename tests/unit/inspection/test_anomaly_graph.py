"""The anomaly graph: local standardisation (against OpenCV's full-resolution Gaussian) and view map sizes."""

from __future__ import annotations

import cv2
import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

from inspection.anomaly_graph import _MEAN, _STD, PyramidSpec, _Builder, _standardise, build_embedding


def standardised(image: np.ndarray, spec: PyramidSpec) -> np.ndarray:
    """Run the graph's standardisation alone; back to grey levels (undo the ImageNet normalisation)."""
    graph = helper.make_graph([], "lsd", [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, "H", "W"])],
                              [helper.make_tensor_value_info("out", TensorProto.FLOAT, None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    b = _Builder(model.graph)
    b.op("Identity", [_standardise(b, "image", spec)], "out")
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    x = np.repeat(image.astype(np.float32)[None, None], 3, axis=1)
    out = session.run(None, {"image": x})[0][0, 0]
    return out * _STD[0] * 255.0 + _MEAN[0] * 255.0


def reference(image: np.ndarray, spec: PyramidSpec) -> np.ndarray:
    """(x - local mean) / sqrt(local variance + eps), Gaussian-weighted at full resolution."""
    x = image.astype(np.float64)
    mu = cv2.GaussianBlur(x, (0, 0), spec.sigma, borderType=cv2.BORDER_REPLICATE)
    m2 = cv2.GaussianBlur(x * x, (0, 0), spec.sigma, borderType=cv2.BORDER_REPLICATE)
    z = (x - mu) / np.sqrt(np.maximum(m2 - mu * mu, 0) + spec.eps)
    return np.clip(128.0 + spec.gain * z, 0, 255)


@pytest.mark.parametrize("sigma", [1.6, 6.4, 12.8])
def test_standardisation_matches_a_full_resolution_gaussian(sigma):
    spec = PyramidSpec(sigma=sigma)
    rng = np.random.default_rng(0)
    h, w = 128, 256
    grain = cv2.GaussianBlur(rng.normal(0, 1, (h, w)), (0, 0), 1.0)
    yy, xx = np.mgrid[0:h, 0:w]
    image = np.clip(60 + 0.5 * xx + 0.2 * yy + 12 * grain / grain.std(), 0, 255)  # grain under a light gradient
    ours, ref = standardised(image, spec), reference(image, spec)
    inner = (slice(16, -16), slice(16, -16))  # the two pad the border differently
    assert np.corrcoef(ours[inner].ravel(), ref[inner].ravel())[0, 1] > 0.99
    assert np.median(np.abs(ours[inner] - ref[inner])) < 3.0  # grey levels, on a +-40 per sd scale


def test_standardisation_removes_slow_illumination_changes():
    spec = PyramidSpec(sigma=12.8)
    rng = np.random.default_rng(1)
    h, w = 128, 256
    grain = 12 * cv2.GaussianBlur(rng.normal(0, 1, (h, w)), (0, 0), 1.0)
    grain /= grain.std() / 12
    xx = np.mgrid[0:h, 0:w][1]
    flat, lit = 100 + grain, 35 + 0.25 * xx + grain  # the same part under even and under sloping light
    inner = (slice(16, -16), slice(16, -16))
    assert np.abs(standardised(flat, spec) - standardised(lit, spec))[inner].mean() < 2.0
    assert np.abs(flat - lit)[inner].mean() > 20.0  # the raw photos differ a lot


def test_every_view_has_the_map_size_its_scale_promises():
    """Octave levels, then jittered views (level 0 included when asked), each a stride-8 map of its image."""
    spec = PyramidSpec(levels=2, jitter=(1.125,), jitter_levels=(0, 1))
    assert spec.views() == [1.0, 0.5, 1.125, 0.5625]
    session = ort.InferenceSession(build_embedding(spec).SerializeToString(), providers=["CPUExecutionProvider"])
    h, w = 128, 192  # a multiple of spec.multiple (64)
    outs = session.run(None, {"image": np.full((1, 3, h, w), 128, np.float32)})
    # worked by hand, stride-8 cells: the octaves 128 x 192 and 64 x 96 px; the jittered image
    # 144 x 216 px padded to the backbone's stride 32 (160 x 224), and its half 72 x 108 (96 x 128)
    assert [o.shape[2:] for o in outs] == [(16, 24), (8, 12), (20, 28), (12, 16)]
