"""Runtime commands work where torch cannot be imported (torch is for the offline backbone export only).

Each command runs in a fresh interpreter whose import system refuses ``torch``; the
command must succeed and ``torch`` must not have been imported.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import cv2
import numpy as np

from service.settings import REPO_ROOT

_NO_TORCH = """
import atexit, importlib.abc, sys
class NoTorch(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ImportError("torch is not available at runtime")
        return None
sys.meta_path.insert(0, NoTorch())
atexit.register(lambda: "torch" in sys.modules and sys.stderr.write("TORCH WAS IMPORTED\\n"))
from service.cli import main
sys.argv = ["qc"] + sys.argv[1:]
main()
"""


def _env(data: Path) -> dict[str, str]:
    return {**os.environ, "KIPIMO_DATA_DIR": str(data), "KIPIMO_DATABASE_URL": ""}


def qc(*args: str, data: Path) -> subprocess.CompletedProcess[str]:
    res = subprocess.run([sys.executable, "-c", _NO_TORCH, *args], capture_output=True, text=True,
                         cwd=REPO_ROOT, env=_env(data), timeout=300, check=False)
    assert res.returncode == 0, f"qc {' '.join(args)} failed:\n{res.stdout}\n{res.stderr}"
    assert "TORCH WAS IMPORTED" not in res.stderr
    return res


def _texture(rng: np.random.Generator, h: int = 80, w: int = 120) -> np.ndarray:
    return np.clip(120 + 20 * cv2.GaussianBlur(rng.normal(0, 1, (h, w)), (0, 0), 1.5) * 3, 0, 255).astype(np.uint8)


def test_train_score_and_inspect_without_torch(tmp_path):
    rng = np.random.default_rng(0)
    good = tmp_path / "good"
    good.mkdir()
    for i in range(6):
        cv2.imwrite(str(good / f"g{i}.png"), _texture(rng))
    qc("train", "anomaly", "--good", str(good), "--name", "no-torch", "--version", "1",
       "--out", str(tmp_path / "model"), data=tmp_path / "data")
    res = qc("score", str(tmp_path / "model"), str(good / "g0.png"), "--json", data=tmp_path / "data")
    assert json.loads(res.stdout[res.stdout.index("["):])[0]["label"] in ("good", "defect")
    photo = tmp_path / "photo.jpg"
    cv2.imwrite(str(photo), cv2.cvtColor(_texture(rng, 480, 640), cv2.COLOR_GRAY2BGR))
    res = qc("inspect", "--product", "magnetic-tile", str(photo), "--json", data=tmp_path / "data")
    assert json.loads(res.stdout[res.stdout.index("["):])


def test_serve_without_torch(tmp_path):
    data = tmp_path / "data"
    qc("db", "upgrade", data=data)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-c", _NO_TORCH, "serve", "--port", str(port)], cwd=REPO_ROOT,
                            env=_env(data), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/health", timeout=2) as r:
                    assert r.status == 200
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise
                time.sleep(0.3)
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=30)
    assert "TORCH WAS IMPORTED" not in err
