"""The wheel carries its data: installed into a fresh virtual environment, its ``qc init`` publishes the
shipped standards and registers the shipped models, reading its own installed files, not the checkout.

No network: the wheel is built with the test environment's setuptools (``--no-build-isolation``), and the
fresh environment borrows the test environment's site-packages for the dependencies through a ``.pth``
line (a directory named in a ``.pth`` is not a site directory, so the checkout's editable-install hook
there stays inactive). Everything runs from a folder outside the checkout. About 15 s.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.install

REPO_ROOT = Path(__file__).resolve().parents[2]
NOT_SOURCE = {".git", "build", "dist", "kipimo-data", "kipimo-demo", "test-artifacts"}


def _ignore(folder: str, names: list[str]) -> set[str]:
    return {n for n in names if n in NOT_SOURCE or n.startswith(".venv") or n.endswith(".egg-info")
            or n in ("__pycache__", ".mypy_cache", ".ruff_cache", ".pytest_cache") or n.endswith(".pyc")}


def _run(args: list[str | Path], *, cwd: Path, env: dict[str, str] | None = None,
         timeout: int = 60) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)
    assert proc.returncode == 0, f"{args} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc


def _released_standards() -> set[tuple[str, int]]:
    """What the checkout ships as released: every checklists/<product>/v<N>.yaml not marked otherwise."""
    found = set()
    for path in (REPO_ROOT / "checklists").glob("*/v*.yaml"):
        if path.parent.name.startswith("_"):
            continue
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        if doc.get("status", "released") == "released":
            found.add((doc["product"], int(doc["version"])))
    return found


def _shipped_models() -> set[tuple[str, int, str]]:
    """(name, version, SHA-256 of the checkout's model file) for every models/<name>/card.yaml."""
    found = set()
    for card_path in (REPO_ROOT / "models").glob("*/card.yaml"):
        card = yaml.safe_load(card_path.read_text(encoding="utf-8"))
        onnx = (card_path.parent / card.get("file", "model.onnx")).read_bytes()
        found.add((card["name"], int(card["version"]), hashlib.sha256(onnx).hexdigest()))
    return found


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # build from a copy: an in-place build writes build/ and *.egg-info into the shared checkout
    src = tmp_path_factory.mktemp("src") / "kipimo"
    shutil.copytree(REPO_ROOT, src, ignore=_ignore)
    out = tmp_path_factory.mktemp("dist")
    _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", out, src],
         cwd=out, timeout=120)
    (built,) = out.glob("kipimo-*.whl")
    return built


def test_the_wheel_holds_the_data_and_not_the_demo(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    assert not [n for n in names if n.startswith(("demo/", "tests/", "bench/", "scripts/"))]
    shipped = {n.removeprefix("service/_shipped/") for n in names if n.startswith("service/_shipped/")}
    for folder in ("checklists", "models"):
        in_checkout = {p.relative_to(REPO_ROOT).as_posix() for p in (REPO_ROOT / folder).rglob("*")
                       if p.is_file() and "__pycache__" not in p.parts}
        assert in_checkout and in_checkout <= shipped, f"missing from the wheel: {sorted(in_checkout - shipped)}"
    data_bytes = sum(p.stat().st_size for f in ("checklists", "models") for p in (REPO_ROOT / f).rglob("*"))
    # ONNX weights barely compress: the wheel is about its data's size, and nothing much else rides along
    assert 0.5 * data_bytes < wheel.stat().st_size < data_bytes + 5_000_000


def test_qc_init_from_the_installed_wheel_publishes_the_shipped_data(wheel: Path, tmp_path: Path) -> None:
    env_dir = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", env_dir], cwd=tmp_path)
    python = env_dir / "bin" / "python"
    purelib = Path(_run([python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                        cwd=tmp_path).stdout.strip())
    (purelib / "kipimo-test-deps.pth").write_text(sysconfig.get_path("purelib") + "\n")
    # --ignore-installed: the borrowed site-packages lists the checkout's editable kipimo; never touch it
    _run([sys.executable, "-m", "pip", "--python", python, "install", "-q", "--no-deps", "--ignore-installed",
          wheel], cwd=tmp_path, timeout=120)

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("KIPIMO_") and k != "PYTHONPATH"}
    env["KIPIMO_DATA_DIR"] = str(tmp_path / "data")
    where = _run([python, "-c", "import service.settings as s; c = s.Settings();"
                  "print(s.__file__); print(c.checklists_dir); print(c.models_dir)"], cwd=elsewhere, env=env)
    for line in where.stdout.splitlines():
        assert Path(line).resolve().is_relative_to(env_dir.resolve()), where.stdout

    out = _run([env_dir / "bin" / "qc", "init"], cwd=elsewhere, env=env, timeout=120).stdout
    db = sqlite3.connect(tmp_path / "data" / "kipimo.sqlite3")
    try:
        published = set(db.execute("SELECT p.slug, s.version FROM standards s JOIN products p ON p.id = s.product_id"))
        registered = set(db.execute("SELECT name, version, sha256 FROM models"))
    finally:
        db.close()
    assert published == _released_standards(), out
    assert registered == _shipped_models(), out
