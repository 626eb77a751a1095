"""Every command in the README's ```sh blocks runs, as written, against the data ``make demo`` leaves.

The test reads README.md, splits each ```sh block into commands (a trailing ``\\`` continues a line, and so
does an open quote, as in the multi-line ``curl -F 'record=...'``), and runs each with bash, in order, in a
prepared folder that looks like the checkout to the commands:

- ``.venv`` (this interpreter's environment) and ``checklists/`` are links to the real ones; ``models/``
  there is the folder's own, so ``qc train --out models/...`` writes nothing into the checkout;
- ``python -m demo --no-serve --weeks 1 --data-dir kipimo-demo`` builds the demo, and the ``export`` line
  it prints (``KIPIMO_DATA_DIR`` and the ``$TECH``, ``$MANAGER``, ``$AUDITOR`` tokens) is applied, as the
  README tells a reader to do;
- the photos the examples read (``photo1.jpg``, ``photo2.jpg``, ``bracket.jpg``, ``photos/good/``,
  ``photos/bad/``) are rendered with ``demo.scenes``;
- every command sees ``KIPIMO_FROZEN_TIME`` at ``tests.clock.TEST_NOW``.

What the test changes, and why: ``127.0.0.1:8000`` becomes a free port (so a running demo cannot
interfere), and ``qc serve`` gets it through ``KIPIMO_PORT``; ``qc serve`` runs in the background until the
last command; ``<id>`` becomes a stored submission's id; ``curl`` gets ``--fail-with-body`` so that an HTTP
error fails the test instead of printing an error document.

Skipped: ``make ...`` lines (``make demo`` and ``make test`` are what CI itself runs through ``.ci/run``),
and the benchmark table's ``bench/`` commands (not in ```sh blocks; minutes each, run by hand).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from demo.parts import render_part_photo
from demo.scenes import Camera, Hole, Part, Scene, encode_jpeg, render_scene
from service.core.checklists import load_shipped_standards
from tests.clock import TEST_NOW

pytestmark = pytest.mark.install

REPO_ROOT = Path(__file__).resolve().parents[2]
README = REPO_ROOT / "README.md"
DEFAULT_ADDRESS = "127.0.0.1:8000"


def readme_commands(text: str) -> list[str]:
    """The shell commands of every ```sh block, in order; a command may span lines."""
    commands: list[str] = []
    for block in re.findall(r"^```sh\n(.*?)^```", text, flags=re.S | re.M):
        pending = ""
        for line in block.splitlines():
            pending = f"{pending}\n{line}" if pending else line
            if not pending.strip() or pending.rstrip().endswith("\\") or not _complete(pending):
                continue
            commands.append(pending.strip())
            pending = ""
        assert not pending.strip(), f"unfinished command in a ```sh block: {pending!r}"
    return commands


def _complete(command: str) -> bool:
    try:
        shlex.split(command, comments=True)
    except ValueError:  # an open quote: the command goes on on the next line
        return False
    return True


def test_commands_are_split_as_a_shell_reads_them() -> None:
    text = "```sh\na --x 1   # note\ncurl -F 'r={\"a\":1,\n  \"b\":2}' \\\n  http://h/p\n```\n```\nnot sh\n```\n"
    assert readme_commands(text) == ["a --x 1   # note", "curl -F 'r={\"a\":1,\n  \"b\":2}' \\\n  http://h/p"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _photos(folder: Path) -> None:
    """The photos the README's examples read, drawn by the scene generator (seeded)."""
    bracket = next(s for s in load_shipped_standards(REPO_ROOT / "checklists") if s.product == "spare-part-bracket")
    slot = bracket.photos[0]
    for i, name in enumerate(("photo1.jpg", "photo2.jpg")):
        photo = render_part_photo(bracket, slot, node="kisumu", week=0, rng=np.random.default_rng(100 + i))
        (folder / name).write_bytes(photo)
    (folder / "bracket.jpg").write_bytes((folder / "photo1.jpg").read_bytes())
    # small photos for training (3 good is the least it takes), and a bad one with a hole missing
    for kind, holes, count in (("good", 2, 3), ("bad", 1, 1)):
        out = folder / "photos" / kind
        out.mkdir(parents=True)
        for i in range(count):
            rng = np.random.default_rng([holes, i])
            part = Part("rect", 105 + rng.uniform(-3, 3), 148 + rng.uniform(-3, 3), 80, 30,
                        angle=90 + rng.uniform(-3, 3), corner_radius=2,
                        holes=tuple(Hole(x, 0, 6.2) for x in (-30, 30)[:holes]), color=(150, 80, 30))
            image, _ = render_scene(Scene(part, Camera(megapixels=2, tilt=float(rng.uniform(0, 10))), seed=i))
            (out / f"{kind}-{i}.jpg").write_bytes(encode_jpeg(image, 90))


def _run_demo(folder: Path, env: dict[str, str]) -> dict[str, str]:
    """``python -m demo`` as ``make demo`` runs it (one week, no server); the variables its export line sets."""
    proc = subprocess.run([sys.executable, "-m", "demo", "--no-serve", "--weeks", "1", "--data-dir", "kipimo-demo"],
                          cwd=folder, env=env, capture_output=True, text=True, timeout=240, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (line,) = [ln.strip() for ln in proc.stdout.splitlines() if ln.strip().startswith("export ")]
    return dict(word.split("=", 1) for word in shlex.split(line)[1:])


@pytest.fixture
def workplace(tmp_path: Path) -> Iterator[tuple[Path, dict[str, str]]]:
    folder = tmp_path / "checkout"
    folder.mkdir()
    (folder / ".venv").symlink_to(Path(sys.prefix))
    (folder / "checklists").symlink_to(REPO_ROOT / "checklists")
    env = {k: v for k, v in os.environ.items() if not k.startswith("KIPIMO_")}
    env["KIPIMO_FROZEN_TIME"] = TEST_NOW.isoformat()
    env["PYTHONPATH"] = str(REPO_ROOT)  # `python -m demo` from outside the checkout, as from inside it
    _photos(folder)
    env.update(_run_demo(folder, env))
    yield folder, env


def _wait_healthy(base: str, server: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"qc serve exited {server.returncode}: {server.communicate()[0]}")
        try:
            with urllib.request.urlopen(f"{base}/api/v1/health", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    pytest.fail("qc serve did not answer /api/v1/health within 60 s")


def _a_submission_id(base: str, token: str) -> str:
    request = urllib.request.Request(f"{base}/api/v1/submissions?limit=1",
                                     headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=10) as r:
        page = json.load(r)
    return str(page["items"][0]["id"])


def test_every_readme_command_runs(workplace: tuple[Path, dict[str, str]]) -> None:
    folder, env = workplace
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**env, "KIPIMO_PORT": str(port)}
    commands = [c for c in readme_commands(README.read_text(encoding="utf-8")) if not c.startswith("make ")]
    assert any("qc report" in c for c in commands) and any(c.startswith("curl") for c in commands)
    server: subprocess.Popen[str] | None = None
    try:
        for command in commands:
            command = command.replace(DEFAULT_ADDRESS, f"127.0.0.1:{port}")
            if command.startswith("curl "):
                assert server is not None, f"the README runs {command!r} before `qc serve`"
                command = "curl --fail-with-body " + command.removeprefix("curl ")
                if "<id>" in command:
                    command = command.replace("<id>", _a_submission_id(base, env["AUDITOR"]))
            if re.search(r"\bqc serve\b", command):
                server = subprocess.Popen(["bash", "-c", f"exec {command}"], cwd=folder, env=env,
                                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
                _wait_healthy(base, server)
                continue
            proc = subprocess.run(["bash", "-c", command], cwd=folder, env=env, capture_output=True, text=True,
                                  timeout=180, check=False)
            assert proc.returncode == 0, f"README command failed ({proc.returncode}):\n{command}\n" \
                                         f"{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
    finally:
        if server is not None:
            server.terminate()
            server.communicate(timeout=30)
    # the examples' outputs are where the README says they go
    for made in ("card.pdf", "achieng.png", "report.pdf", "records.csv", "models/bracket-surface/card.yaml"):
        assert (folder / made).is_file() and (folder / made).stat().st_size > 0, made
    assert any((folder / "overlays").iterdir())
