"""Photos for the demo's records.

- Parts on the calibration card: rendered by the synthetic scene generator
  (perspective, blur, noise, uneven light) from the part's true size, which the
  demo story sets per node and week.
- Magnetic tiles: real photographs from the magnetic-tile data set when it is
  present (``KIPIMO_MT_DATASET`` or ``../shared/datasets/magnetic-tile``), else
  a synthetic ferrite texture.
- Gels: a drawn SDS-PAGE gel with a ladder and one band.

Rendering is the slow part, so each distinct photo is made once per
(product, node, week) bucket and reused within it.
"""

from __future__ import annotations

import os
import zlib
from pathlib import Path

import cv2
import numpy as np

from demo.network import DemoNode
from qc.standards import PhotoSlot, Standard
from service.settings import REPO_ROOT

__all__ = ["DemoPhotos", "dataset_dir", "good_tile_split", "held_out_good_tiles"]


def dataset_dir() -> Path | None:
    env = os.environ.get("KIPIMO_MT_DATASET")
    path = Path(env) if env else REPO_ROOT.parent / "shared" / "datasets" / "magnetic-tile"
    return path if (path / "MT_Free").is_dir() else None


class DemoPhotos:
    """A ``PhotoMaker`` with a small cache so a few hundred records stay quick."""

    def __init__(self, *, pool_per_bucket: int = 2) -> None:
        self._cache: dict[tuple[str, str, str, int, int], bytes] = {}
        self._pool = pool_per_bucket
        self._tiles = _tile_files()

    @property
    def has_real_tiles(self) -> bool:
        """Whether the magnetic-tile data set was found (else tiles are a synthetic stand-in)."""
        return bool(self._tiles)

    def __call__(self, standard: Standard, slot: PhotoSlot, node: DemoNode, week: int,
                 rng: np.random.Generator) -> bytes:
        if standard.product == "magnetic-tile":
            return self._tile(node, rng)
        pick = int(rng.integers(self._pool))
        key = (standard.product, slot.id, node.name, week // 2, pick)
        if key not in self._cache:
            seed = zlib.crc32(repr(key).encode())  # stable across runs, unlike hash()
            self._cache[key] = self._render(standard, slot, node, week, np.random.default_rng(seed))
        return self._cache[key]

    def _render(self, standard: Standard, slot: PhotoSlot, node: DemoNode, week: int,
                rng: np.random.Generator) -> bytes:
        if not slot.card:
            return _encode(_gel(rng))
        from demo.parts import render_part_photo  # noqa: PLC0415  (needs the scene generator)

        return render_part_photo(standard, slot, node=node.name, week=week, rng=rng)

    def _tile(self, node: DemoNode, rng: np.random.Generator) -> bytes:
        if not self._tiles:
            return _encode(_ferrite_texture(rng))
        # Kathmandu's tiles come from a line with more defects (for the charts to show).
        defect_share = {"kathmandu": 0.25}.get(node.name, 0.08)
        pool = self._tiles["defect"] if rng.random() < defect_share else self._tiles["good"]
        return pool[int(rng.integers(len(pool)))].read_bytes()


def _tile_files() -> dict[str, list[Path]]:
    root = dataset_dir()
    if root is None:
        return {}
    good = held_out_good_tiles()  # never the shipped model's training images
    defect = sorted(p for d in root.glob("MT_*") if d.name != "MT_Free" for p in (d / "Imgs").glob("*.jpg"))
    return {"good": good, "defect": defect} if good and defect else {}


def good_tile_split(root: Path, seed: int = 0) -> tuple[list[Path], list[Path]]:
    """(train, test) good tiles: the seeded 80/20 split of MT_Free that bench/anomaly.py uses."""
    files = sorted((root / "MT_Free" / "Imgs").glob("*.jpg"))
    order = np.random.default_rng(seed).permutation(len(files))
    n_test = round(0.2 * len(files))
    return [files[i] for i in sorted(order[n_test:])], [files[i] for i in sorted(order[:n_test])]


def held_out_good_tiles(seed: int = 0) -> list[Path]:
    """The test half of ``good_tile_split``: the shipped magnetic-tile-surface model never saw these."""
    root = dataset_dir()
    return [] if root is None else good_tile_split(root, seed)[1]


def _encode(image: np.ndarray, quality: int = 90) -> bytes:
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return buf.tobytes()


def _gel(rng: np.random.Generator, width: int = 1400, height: int = 1000) -> np.ndarray:
    """A Coomassie-stained gel: ladder lane plus sample lanes with one ~67 kDa band."""
    img = np.full((height, width, 3), (222, 214, 205), np.uint8)
    lanes = 8
    lane_w = width // (lanes + 1)
    ladder_y = [0.18, 0.27, 0.36, 0.47, 0.58, 0.70, 0.82]
    for lane in range(lanes):
        x0 = int((lane + 0.6) * lane_w)
        ys = ladder_y if lane == 0 else [0.40 + rng.normal(0, 0.004)]
        for y in ys:
            yy = int(y * height)
            strength = 170 if lane == 0 else int(rng.uniform(120, 190))
            cv2.rectangle(img, (x0, yy - 7), (x0 + int(lane_w * 0.7), yy + 7),
                          (strength, int(strength * 0.55), 60), -1)
    img = cv2.GaussianBlur(img, (0, 0), 3)
    noise = rng.normal(0, 3, img.shape)
    return np.clip(img + noise, 0, 255).astype(np.uint8)


def _ferrite_texture(rng: np.random.Generator, size: int = 320) -> np.ndarray:
    base = rng.normal(90, 12, (size // 8, size // 8)).astype(np.float32)
    tex = cv2.resize(base, (size, size), interpolation=cv2.INTER_CUBIC)
    tex += rng.normal(0, 4, tex.shape).astype(np.float32)
    return cv2.cvtColor(np.clip(tex, 0, 255).astype(np.uint8), cv2.COLOR_GRAY2BGR)
