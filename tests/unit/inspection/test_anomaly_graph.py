"""The anomaly graph's local standardisation, checked against OpenCV's full-resolution Gaussian."""

from __future__ import annotations

import cv2
import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

from inspection.anomaly_graph import _MEAN, _STD, PyramidSpec, _Builder, _standardise


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
