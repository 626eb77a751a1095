"""Vision: image intake, quality gate, calibration card, measurement, ONNX models."""
