"""``python -m demo``'s first-run guards: a taken port and a folder in use are refused at once, before
anything is built or deleted; the progress bar is up (with its total) before the first photo is rendered."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

import demo.cli as demo_cli
from demo.guard import LOCK_NAME, claim_folder, reserve_port
from demo.network import plan_demo
from service.core.checklists import load_shipped_standards
from service.settings import REPO_ROOT, Settings
from tests.clock import TEST_NOW

HOLD_FOLDER = """
import sys
from pathlib import Path
from demo.guard import claim_folder
lock = claim_folder(Path(sys.argv[1]))
(Path(sys.argv[1]) / "kipimo.sqlite3").write_text("the running demo's database")
print("held", flush=True)
sys.stdin.read()  # hold until the test closes our stdin
"""


@pytest.fixture
def listener() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    yield sock
    sock.close()


def test_a_taken_port_is_refused_before_anything_is_built(listener: socket.socket, tmp_path: Path) -> None:
    port = listener.getsockname()[1]
    folder = tmp_path / "demo-data"
    result = CliRunner().invoke(demo_cli.demo, ["--port", str(port), "--data-dir", str(folder)])
    assert result.exit_code == 1
    assert f"port {port} on 127.0.0.1 is already in use" in result.output and "--port" in result.output
    assert not folder.exists()  # refused before the folder was even created


def test_the_reserved_port_stays_taken_until_the_server_takes_it() -> None:
    sock = reserve_port("127.0.0.1", 0)
    port = sock.getsockname()[1]
    try:
        with pytest.raises(Exception, match=f"port {port} on 127.0.0.1 is already in use"):
            reserve_port("127.0.0.1", port)  # a second demo, while the first is still rendering
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            pass  # connecting meanwhile waits in the backlog instead of being refused
    finally:
        sock.close()


def test_a_folder_a_running_demo_holds_is_refused_and_kept(tmp_path: Path) -> None:
    folder = tmp_path / "kipimo-demo"
    holder = subprocess.Popen([sys.executable, "-c", HOLD_FOLDER, str(folder)], cwd=REPO_ROOT,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        result = CliRunner().invoke(demo_cli.demo, ["--no-serve", "--weeks", "1", "--data-dir", str(folder)])
        assert result.exit_code == 1
        assert f"in use by a running demo (process {holder.pid})" in result.output
        assert "--data-dir" in result.output
        assert (folder / "kipimo.sqlite3").read_text() == "the running demo's database"
    finally:
        holder.communicate("", timeout=30)
    # once that demo has stopped, the folder is free again: claimed, emptied, lock kept
    with claim_folder(folder) as lock:
        assert sorted(p.name for p in folder.iterdir()) == [LOCK_NAME]
        assert Path(lock.name).read_text().strip().isdigit()


def test_a_folder_with_files_a_demo_did_not_write_is_never_emptied(tmp_path: Path) -> None:
    (tmp_path / "thesis.tex").write_text("years of work")
    (tmp_path / "photos").mkdir()
    result = CliRunner().invoke(demo_cli.demo, ["--no-serve", "--data-dir", str(tmp_path)])
    assert result.exit_code == 1 and "thesis.tex" in result.output and "--data-dir" in result.output
    assert (tmp_path / "thesis.tex").read_text() == "years of work" and (tmp_path / "photos").is_dir()
    assert not (tmp_path / LOCK_NAME).exists()


def test_the_plan_does_not_depend_on_the_photo_maker() -> None:
    standards = load_shipped_standards(REPO_ROOT / "checklists")

    def blank(*_: object) -> bytes:
        return b""

    def noisy(standard, slot, node, week, rng: np.random.Generator) -> bytes:
        return rng.bytes(int(rng.integers(1, 50)))  # draws from its stream, as the real renderer does

    plain = [s.record for s in plan_demo(standards, now=TEST_NOW, make_photo=blank, weeks=3)]
    drawn = [s.record for s in plan_demo(standards, now=TEST_NOW, make_photo=noisy, weeks=3)]
    assert plain == drawn and len(plain) > 20


def test_the_progress_bar_is_up_before_the_first_photo_is_rendered(tmp_path: Path, monkeypatch) -> None:
    events: list[tuple[str, object]] = []
    ok, jpg = cv2.imencode(".jpg", np.full((64, 64, 3), 128, np.uint8))
    assert ok

    class CountingPhotos:
        has_real_tiles = False

        def __call__(self, *_: object) -> bytes:
            events.append(("render", None))
            return jpg.tobytes()

    def recording_tqdm(iterable, *, total, **kwargs):
        events.append(("bar", total))
        for item in iterable:
            yield item
            events.append(("step", None))

    monkeypatch.setattr(demo_cli, "DemoPhotos", CountingPhotos)
    monkeypatch.setattr(demo_cli, "tqdm", recording_tqdm)
    monkeypatch.setenv("KIPIMO_FROZEN_TIME", TEST_NOW.isoformat())
    settings = Settings(data_dir=tmp_path, database_url=None, vision=False)
    demo_cli.build_demo(settings, weeks=1, seed=7)
    kinds = [kind for kind, _ in events]
    assert kinds[0] == "bar" and "render" in kinds
    assert events[0][1] == kinds.count("step") > 0  # the total announced is the number of records made
