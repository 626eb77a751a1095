"""Decode bombs: the server's memory under 32 concurrent uploads of a 47 kB PNG that declares 49 MP.

A PNG of zeros compresses to almost nothing and decodes to 147 MB of BGR pixels. This starts
the real server (``qc serve`` on SQLite, vision on, in a temporary data directory), warms it up
with real photos, measures its idle RSS (the floor), then fires ``--bombs`` concurrent bomb
uploads together with ``--photos`` real 12 MP phone photos, sampling the server's RSS
(``/proc/PID/status``) every few milliseconds. It prints the peak during the burst and the RSS
after it, as ratios to the floor, and the peak's growth against the decode budget.

The photos go to a calibration-card slot, which is decoded at full size (the worst case; a
model-only or evidence slot decodes reduced). ``--compare`` runs the same burst a second time
against a server whose budget is large enough never to wait (what the burst costs unbounded).

    .venv/bin/python bench/decode_bombs.py                 # budget 1280 MB, 32 bombs + 4 photos (~70 s)
    .venv/bin/python bench/decode_bombs.py --compare       # and unbounded (~2.5 min in all on 2 cores)
"""

from __future__ import annotations

import argparse
import collections
import datetime as dt
import json
import os
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.ingest import free_port, phone_jpeg, prepare_kipimo, stop, unique_jpeg, wait_up  # noqa: E402

STANDARD = """\
product: bomb-part
name: Decode bomb target
version: 1
items:
  - {id: clean, prompt: Clean, type: boolean, pass_if: true}
photos:
  - {id: top, prompt: Top view on the card}
"""
_MB = 1024 * 1024


def png_bomb(side: int) -> bytes:
    """A valid 8-bit grey PNG of side x side zeros: ~1 kB per MP on disk, 3 bytes per pixel decoded."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    comp = zlib.compressobj(9)
    row = b"\x00" * (side + 1)  # filter byte + pixels
    idat = b"".join(comp.compress(row) for _ in range(side)) + comp.flush()
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", idat) + chunk(b"IEND", b""))


def unique_png(base: bytes) -> bytes:
    """The same picture with a text chunk after IHDR, so every upload has a new hash."""
    text = b"Comment\x00" + uuid.uuid4().hex.encode()
    chunk = struct.pack(">I", len(text)) + b"tEXt" + text + struct.pack(">I", zlib.crc32(b"tEXt" + text))
    return base[:33] + chunk + base[33:]


def multipart(photo: bytes, filename: str) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    rec = {"id": str(uuid.uuid4()), "product": "bomb-part", "lot": "B-1", "unit": "1",
           "captured_at": dt.datetime.now(dt.UTC).isoformat(), "answers": {"clean": True}}
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"record\"\r\n"
            f"Content-Type: application/json\r\n\r\n{json.dumps(rec)}\r\n"
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"top\"; filename=\"{filename}\"\r\n"
            "Content-Type: application/octet-stream\r\n\r\n").encode()
    return head + photo + f"\r\n--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


class Sampler:
    """The server's RSS every ``period`` seconds, on a thread, while running."""

    def __init__(self, pid: int, period: float = 0.005) -> None:
        self.pid, self.period = pid, period
        self.samples: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append(rss_bytes(self.pid))
            self._stop.wait(self.period)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()


def idle_rss(pid: int, seconds: float) -> int:
    with Sampler(pid, 0.02) as s:
        time.sleep(seconds)
    return int(statistics.median(s.samples))


def burst(url: str, token: str, bodies: list[tuple[bytes, str]]) -> collections.Counter[int]:
    """All bodies at once, one client each; the status codes answered."""
    ready = threading.Barrier(len(bodies))

    def send(body: tuple[bytes, str]) -> int:
        with httpx.Client(timeout=300, trust_env=False) as http:
            ready.wait()
            r = http.post(url, content=body[0], headers={"Authorization": f"Bearer {token}",
                                                          "Content-Type": body[1]})
            return r.status_code

    with ThreadPoolExecutor(len(bodies)) as pool:
        return collections.Counter(pool.map(send, bodies))


def run(work: Path, name: str, budget_mb: int, bomb: bytes, photo: bytes, args: argparse.Namespace) -> dict:
    data_dir = work / name
    database_url = f"sqlite:///{data_dir / 'kipimo.sqlite3'}"
    data_dir.mkdir(parents=True)
    token = prepare_kipimo(data_dir, database_url, STANDARD)
    port = free_port()
    log = work / f"{name}.log"
    env = os.environ | {"KIPIMO_DATA_DIR": str(data_dir), "KIPIMO_DATABASE_URL": database_url,
                        "KIPIMO_VISION": "on", "KIPIMO_DECODE_MEMORY_MB": str(budget_mb),
                        "KIPIMO_DECODE_WAIT_S": str(args.wait_s)}
    cmd = [sys.executable, "-c", "from service.cli import main; main()", "serve", "--port", str(port),
           "--log-level", "warning"]
    proc = subprocess.Popen(cmd, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT, cwd=REPO)
    url = f"http://127.0.0.1:{port}/api/v1/submissions"
    try:
        wait_up(f"http://127.0.0.1:{port}/api/v1/health", proc, log)
        cold = idle_rss(proc.pid, 0.5)
        warm = burst(url, token, [multipart(unique_jpeg(photo), "warm.jpg") for _ in range(2)])
        if set(warm) != {201}:
            raise SystemExit(f"warm-up uploads answered {dict(warm)}:\n{log.read_text()[-3000:]}")
        floor = idle_rss(proc.pid, 1.0)
        bodies = [multipart(unique_png(bomb), "bomb.png") for _ in range(args.bombs)]
        bodies += [multipart(unique_jpeg(photo), "photo.jpg") for _ in range(args.photos)]
        t0 = time.perf_counter()
        with Sampler(proc.pid) as sampler:
            statuses = burst(url, token, bodies)
        seconds = time.perf_counter() - t0
        time.sleep(args.settle_s)
        after = idle_rss(proc.pid, 1.0)
    finally:
        stop(proc)
    peak = max(sampler.samples)
    return {"name": name, "budget_mb": budget_mb, "cold_mb": cold / _MB, "floor_mb": floor / _MB,
            "peak_mb": peak / _MB, "after_mb": after / _MB, "peak_x_floor": peak / floor,
            "after_x_floor": after / floor,
            "growth_x_budget": (peak - floor) / (budget_mb * _MB),
            "seconds": seconds, "statuses": dict(sorted(statuses.items()))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bombs", type=int, default=32)
    parser.add_argument("--photos", type=int, default=4, help="real 12 MP photos in the same burst")
    parser.add_argument("--side", type=int, default=7000, help="the bomb is side x side pixels (default 49 MP)")
    parser.add_argument("--budget-mb", type=int, default=1280, help="KIPIMO_DECODE_MEMORY_MB of the server")
    parser.add_argument("--wait-s", type=float, default=120.0, help="KIPIMO_DECODE_WAIT_S of the server")
    parser.add_argument("--settle-s", type=float, default=1.0, help="idle time before the after-burst RSS")
    parser.add_argument("--compare", action="store_true", help="also run with a budget that never waits")
    parser.add_argument("--json", type=Path, help="also write the figures as JSON")
    args = parser.parse_args()

    bomb = png_bomb(args.side)
    photo = phone_jpeg(3.0)
    decoded_mb = args.side * args.side * 3 / _MB
    print(f"bomb: {args.side}x{args.side} grey PNG of zeros, {len(bomb) / 1e3:.0f} kB, {decoded_mb:.0f} MB decoded "
          f"(BGR); {args.bombs} bombs + {args.photos} photos (4000x3000 JPEG, {len(photo) / 1e6:.1f} MB) at once, "
          "card slot (full-size decode), vision on")
    work = Path(tempfile.mkdtemp(prefix="kipimo-bombs-"))
    results = []
    try:
        results.append(run(work, "budgeted", args.budget_mb, bomb, photo, args))
        if args.compare:
            results.append(run(work, "unbounded", 1_000_000, bomb, photo, args))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"RSS of the server process; floor: idle after two warm-up uploads; after: {args.settle_s:g} s after "
          "the burst; growth: peak - floor")
    print(f"{'server':<11}{'budget MB':>10}{'floor MB':>9}{'peak MB':>8}{'after MB':>9}"
          f"{'peak×floor':>11}{'after×floor':>12}{'growth×budget':>14}{'burst s':>8}  statuses")
    for r in results:
        unbounded = r["budget_mb"] >= 1_000_000
        budget = "∞" if unbounded else str(r["budget_mb"])
        growth = "-" if unbounded else f"{r['growth_x_budget']:.2f}"
        print(f"{r['name']:<11}{budget:>10}{r['floor_mb']:>9.0f}{r['peak_mb']:>8.0f}{r['after_mb']:>9.0f}"
              f"{r['peak_x_floor']:>11.2f}{r['after_x_floor']:>12.2f}{growth:>14}{r['seconds']:>8.1f}  "
              f"{r['statuses']}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
