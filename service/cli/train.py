"""``qc train anomaly`` (fit a model folder from good photos) and ``qc score`` (run one)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import click
import cv2
import numpy as np
import yaml

from qc.errors import CorruptImage, KipimoError
from service.settings import Settings

from .base import cli
from .db import now_utc

_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff"}


def _read(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise CorruptImage(f"{path}: not a readable image")
    return image


def _images(folder: Path) -> list[Path]:
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in _SUFFIXES and p.is_file())
    if not files:
        raise click.BadParameter(f"no images (*.jpg, *.png, ...) under {folder}")
    return files


def _code_version() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                             cwd=Path(__file__).resolve().parent, timeout=5, check=False)
    except OSError:
        return "unknown"
    return out.stdout.strip() or "unknown"


@cli.group("train")
def train() -> None:
    """Train inspection models from example photos."""


@train.command("anomaly")
@click.option("--good", "good_dir", required=True, type=click.Path(file_okay=False, exists=True, path_type=Path),
              help="Folder of photos of good parts (searched recursively).")
@click.option("--defects", "defect_dir", type=click.Path(file_okay=False, exists=True, path_type=Path),
              help="Optional folder of defective parts, used only to report validation metrics.")
@click.option("--name", required=True, help="Model name ([a-z0-9-]+), as standards cite it.")
@click.option("--version", "version", required=True, type=click.IntRange(1), help="Model version.")
@click.option("--out", "out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Model folder to write (model.onnx + card.yaml).")
@click.option("--seed", default=0, show_default=True, type=int, help="Seed of the split and coreset.")
@click.option("--size", default=32, show_default=True, type=click.IntRange(16, 1024),
              help="Short side (px) of the coarsest pyramid level for the median photo.")
@click.option("--levels", default=3, show_default=True, type=click.IntRange(1, 4),
              help="Pyramid levels; each doubles the finest resolution (raise for defects of a few pixels).")
@click.pass_obj
def train_anomaly_cmd(settings: Settings, good_dir: Path, defect_dir: Path | None, name: str, version: int,
                      out: Path, seed: int, size: int, levels: int) -> None:
    """Fit an anomaly model on good photos; score >= 1.0 then means defect."""
    from tqdm import tqdm  # noqa: PLC0415

    from inspection.anomaly_graph import BACKBONE_PATH  # noqa: PLC0415
    from inspection.train import train_anomaly  # noqa: PLC0415

    bars: dict[str, tqdm] = {}

    def progress(stage: str, done: int, total: int) -> None:
        bar = bars.get(stage)
        if bar is None:
            bar = bars[stage] = tqdm(total=total, desc=stage)
        bar.update(done - bar.n)

    try:
        good_files = _images(good_dir)
        good = [_read(p) for p in tqdm(good_files, desc="read good", unit="img")]
        defects = ([_read(p) for p in tqdm(_images(defect_dir), desc="read defects", unit="img")]
                   if defect_dir else None)
        trained = train_anomaly(good, name=name, version=version, seed=seed, defect_images=defects, size=size,
                                levels=levels, progress=progress, code_version=_code_version(),
                                data=str(good_dir), created=now_utc(settings).isoformat(timespec="seconds"),
                                backbone=settings.models_dir / "backbones" / BACKBONE_PATH.name)
    except KipimoError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        for bar in bars.values():
            bar.close()
    out.mkdir(parents=True, exist_ok=True)
    (out / "model.onnx").write_bytes(trained.onnx_bytes)
    (out / "card.yaml").write_text(yaml.safe_dump(trained.card, sort_keys=False), encoding="utf-8")
    v = trained.card["validation"]
    click.echo(f"wrote {out}/model.onnx ({len(trained.onnx_bytes) / 1e6:.1f} MB) and card.yaml")
    click.echo("validation: " + ", ".join(f"{k}={val}" for k, val in v.items() if k != "holdout_suspects"))
    for i in trained.suspects:
        click.echo(f"warning: held-out good photo {good_files[i]} scores far above the other held-out photos and "
                   "lifts the threshold; if it is not a good part, remove it and train again", err=True)


@cli.command("score")
@click.argument("model_dir", type=click.Path(file_okay=False, exists=True, path_type=Path))
@click.argument("images", nargs=-1, required=True, type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list instead of a table.")
@click.option("--overlay-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Write each image with its anomaly heat map blended in here.")
def score(model_dir: Path, images: tuple[Path, ...], as_json: bool, overlay_dir: Path | None) -> None:
    """Score photos with a model folder (its SHA-256 is verified before it runs)."""
    from inspection.models import load_model  # noqa: PLC0415
    from inspection.overlay import heat_overlay  # noqa: PLC0415

    try:
        model = load_model(model_dir)
    except KipimoError as exc:
        raise click.ClickException(str(exc)) from None
    rows = []
    for path in images:
        try:
            image = _read(path)
        except KipimoError as exc:
            raise click.ClickException(str(exc)) from None
        out = model.run(image)
        r = out.result
        if r.score is None:
            raise click.ClickException(f"{model_dir} is not an anomaly model (it gives no score); "
                                       "`qc score` scores anomaly models, `qc inspect` runs any standard's checks")
        rows.append({"image": str(path), "score": round(float(r.score), 4), "label": r.label,
                     "threshold": r.threshold})
        if overlay_dir is not None and out.anomaly_map is not None:
            overlay_dir.mkdir(parents=True, exist_ok=True)
            view = heat_overlay(image, out.anomaly_map, r.threshold)  # the same picture as the service's
            cv2.imwrite(str(overlay_dir / f"{path.stem}.overlay.png"), view)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
    else:
        for row in rows:
            click.echo(f"{row['label']:7s} {row['score']:8.4f}  {row['image']}")
