"""SIGKILL during a burst of uploads: every acknowledged record survives, no row lacks its photo.

Starts the real server (`qc serve`) as a subprocess, uploads from several threads, kills it with
SIGKILL while uploads are in flight, restarts it and checks what a client was promised.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from service.storage.orm import PhotoRow, Submission
from tests.clock import TEST_NOW
from tests.integration.support import auth, jpeg, record

THREADS = 4
ACKS_BEFORE_KILL = 12


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_server(settings, port: int, log: Path) -> subprocess.Popen:
    env = os.environ | {
        "KIPIMO_DATA_DIR": str(settings.data_dir),
        "KIPIMO_DATABASE_URL": settings.database_url,
        "KIPIMO_CHECKLISTS_DIR": str(settings.checklists_dir),
        "KIPIMO_MODELS_DIR": str(settings.models_dir),
        "KIPIMO_VISION": "off",
        # the server's now is the suite's: records captured just before TEST_NOW are plausible at every instant
        "KIPIMO_FROZEN_TIME": TEST_NOW.isoformat(),
    }
    cmd = [sys.executable, "-c", "from service.cli import main; main()", "serve", "--port", str(port),
           "--log-level", "warning"]
    with log.open("ab") as out:  # the child keeps its own copy of the descriptor
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT,
                                cwd=Path(__file__).resolve().parents[2])
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"qc serve exited with {proc.returncode}:\n{log.read_text()}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise AssertionError(f"qc serve did not come up:\n{log.read_text()}")


def test_sigkill_during_upload_burst_loses_no_acknowledged_record(settings, seed, ctx, tmp_path):
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "server.log"
    server = _start_server(settings, port, log)
    acked: dict[str, tuple[str, str]] = {}  # id -> (record_sha256, photo sha256)
    lock = threading.Lock()
    stop = threading.Event()
    interrupted: list[int] = []

    def burst(worker: int) -> None:
        with httpx.Client(base_url=base, timeout=20) as http:
            n = 0
            while not stop.is_set():
                n += 1
                photo = jpeg(480, 360, seed=worker * 10_000 + n)
                rec = record()
                files = [("record", (None, json.dumps(rec), "application/json")),
                         ("top", ("top.jpg", photo, "image/jpeg"))]
                try:
                    r = http.post("/api/v1/submissions", files=files, headers=auth(seed.tech_a))
                except httpx.HTTPError:
                    interrupted.append(worker)
                    return  # the server died under us: this upload was never acknowledged
                if r.status_code == 201:
                    with lock:
                        acked[rec["id"]] = (r.json()["record_sha256"], hashlib.sha256(photo).hexdigest())

    workers = [threading.Thread(target=burst, args=(i,), daemon=True) for i in range(THREADS)]
    for w in workers:
        w.start()
    try:
        deadline = time.monotonic() + 60
        while len(acked) < ACKS_BEFORE_KILL and time.monotonic() < deadline:
            time.sleep(0.02)
        server.send_signal(signal.SIGKILL)  # uploads are still in flight
        server.wait(timeout=10)
    finally:
        stop.set()
        for w in workers:
            w.join(timeout=30)
        if server.poll() is None:
            server.kill()
    with lock:
        promised = dict(acked)
    assert len(promised) >= ACKS_BEFORE_KILL, log.read_text()
    assert interrupted, "the kill should have cut uploads in flight"

    server = _start_server(settings, port, log)
    try:
        with httpx.Client(base_url=base, timeout=20) as http:
            for sub_id, (record_hash, photo_hash) in promised.items():
                r = http.get(f"/api/v1/submissions/{sub_id}", headers=auth(seed.tech_a))
                assert r.status_code == 200, f"acknowledged {sub_id} lost after SIGKILL"
                assert r.json()["record_sha256"] == record_hash
                img = http.get(f"/api/v1/photos/{photo_hash}", headers=auth(seed.tech_a))
                assert img.status_code == 200 and hashlib.sha256(img.content).hexdigest() == photo_hash
        # No row without its photo, anywhere (including uploads committed but never acknowledged).
        with ctx.db.session() as session:
            subs = session.scalars(select(Submission)).all()
            photos = session.scalars(select(PhotoRow)).all()
        assert len(subs) >= len(promised)
        assert {p.submission_seq for p in photos} == {s.seq for s in subs}
        for p in photos:
            assert ctx.store.exists(p.sha256), f"row for photo {p.sha256} without its file"
            assert hashlib.sha256(ctx.store.read(p.sha256)).hexdigest() == p.sha256
        # Files written for uploads that never committed are orphans; the collector removes exactly those.
        referenced = {p.sha256 for p in photos}
        before = TEST_NOW.timestamp() - 1  # files get the real clock's mtime; the test's is frozen
        for _, path in ctx.store.iter_blobs():
            os.utime(path, (before, before))
        ctx.store.gc(referenced, now=TEST_NOW, min_age_s=0)
        assert {sha for sha, _ in ctx.store.iter_blobs()} == referenced
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch):
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
