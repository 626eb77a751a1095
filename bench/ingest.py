"""Ingest benchmark: submissions through the real HTTP stack versus the bare upload floor.

Each request is one multipart submission with one phone-size JPEG (~3 MB, 12 MP, made
unique per request so the store really writes it). The same bodies go to

- ``floor``: a bare uvicorn endpoint that only reads and discards the body, and
- ``kipimo``: ``qc serve`` (uvicorn) on SQLite, and on PostgreSQL when
  KIPIMO_TEST_POSTGRES_URL or ``--postgres URL`` is given,

with vision off (KIPIMO_VISION=off: photos are probed and stored, not inspected) unless
``--vision``. Prints submissions/s, p50/p99 latency and the cost ratio to the floor.

    .venv/bin/python bench/ingest.py                 # 100 uploads per target
    .venv/bin/python bench/ingest.py -n 300 --postgres postgresql+psycopg://postgres@127.0.0.1/postgres
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

BENCH_STANDARD = """\
product: bench-part
name: Benchmark part
version: 1
items:
  - {id: length, prompt: Length, type: number, unit: mm, min: 99, max: 101}
  - {id: clean, prompt: Clean, type: boolean, pass_if: true}
photos:
  - {id: top, prompt: Top view, card: false}
"""


# --- the floor: a bare endpoint (run in its own process, like the real server) ----------------


def floor_app():  # pragma: no cover - runs in the floor subprocess
    async def app(scope, receive, send):
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        more = True
        while more:  # read and discard the body
            message = await receive()
            more = message.get("more_body", False)
        body = b'{"ok": true}'
        await send({"type": "http.response.start", "status": 201,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", b"12")]})
        await send({"type": "http.response.body", "body": body})

    return app


# --- photos and requests -----------------------------------------------------------------------


def phone_jpeg(target_mb: float = 3.0) -> bytes:
    """A 4000x3000 JPEG of a smooth scene with sensor-like noise, about ``target_mb`` MB."""
    import cv2

    rng = np.random.default_rng(7)
    low = rng.integers(40, 220, size=(30, 40, 3), dtype=np.uint8)
    img = cv2.resize(low, (4000, 3000), interpolation=cv2.INTER_CUBIC).astype(np.int16)
    best = b""
    for sigma in (4, 6, 8, 10, 12, 14):
        noisy = np.clip(img + rng.normal(0, sigma, img.shape), 0, 255).astype(np.uint8)
        ok, buf = cv2.imencode(".jpg", noisy, [cv2.IMWRITE_JPEG_QUALITY, 90])
        best = buf.tobytes()
        if len(best) >= target_mb * 1e6:
            break
    return best


def unique_jpeg(base: bytes) -> bytes:
    """The same picture with a random comment segment, so every upload has a new hash."""
    comment = uuid.uuid4().hex.encode()
    return base[:2] + b"\xff\xfe" + (len(comment) + 2).to_bytes(2, "big") + comment + base[2:]


def multipart(photo: bytes, product: str = "bench-part") -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    rec = {"id": str(uuid.uuid4()), "product": product, "lot": "B-1", "unit": "1",
           "captured_at": dt.datetime.now(dt.UTC).isoformat(), "answers": {"length": 100.2, "clean": True}}
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"record\"\r\n"
            f"Content-Type: application/json\r\n\r\n{json.dumps(rec)}\r\n"
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"top\"; filename=\"top.jpg\"\r\n"
            "Content-Type: image/jpeg\r\n\r\n").encode()
    return head + photo + f"\r\n--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


# --- servers -----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_up(url: str, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited:\n{log.read_text()}")
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise SystemExit(f"server did not start:\n{log.read_text()}")


def start_floor(port: int, log: Path) -> subprocess.Popen:
    code = (f"import sys; sys.path.insert(0, {str(REPO)!r}); import uvicorn; from bench.ingest import floor_app; "
            f"uvicorn.run(floor_app(), host='127.0.0.1', port={port}, log_level='warning')")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=log.open("ab"), stderr=subprocess.STDOUT)
    wait_up(f"http://127.0.0.1:{port}/", proc, log)
    return proc


def prepare_kipimo(data_dir: Path, database_url: str, standard: str = BENCH_STANDARD) -> str:
    """Migrate, add a node, a technician token and the bench ``standard`` (YAML); return the token."""
    from qc.standards import parse_standard
    from service.core.auth import create_token
    from service.core.context import open_context
    from service.settings import Settings
    from service.storage import repository as repo
    from service.storage.db import upgrade_database

    settings = Settings(data_dir=data_dir, database_url=database_url)
    upgrade_database(settings.resolved_database_url)
    ctx = open_context(settings)
    now = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)  # published before the records it judges
    try:
        with ctx.db.write_session() as session:
            repo.create_node(session, name="bench", now=now)
            token, _ = create_token(session, actor="bench", role="technician", node="bench", name="bench", now=now)
            repo.publish_standard(session, standard=parse_standard(standard), by="bench", now=now)
    finally:
        ctx.close()
    return token


def start_kipimo(port: int, data_dir: Path, database_url: str, vision: bool, log: Path) -> subprocess.Popen:
    env = os.environ | {"KIPIMO_DATA_DIR": str(data_dir), "KIPIMO_DATABASE_URL": database_url,
                        "KIPIMO_VISION": "on" if vision else "off"}
    cmd = [sys.executable, "-c", "from service.cli import main; main()", "serve", "--port", str(port),
           "--log-level", "warning"]
    proc = subprocess.Popen(cmd, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT, cwd=REPO)
    wait_up(f"http://127.0.0.1:{port}/api/v1/health", proc, log)
    return proc


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()


# --- measuring ---------------------------------------------------------------------------------


@dataclass
class Result:
    name: str
    n: int
    seconds: float
    latencies: list[float]

    @property
    def rate(self) -> float:
        return self.n / self.seconds

    def pct(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]

    @property
    def mean(self) -> float:
        return statistics.fmean(self.latencies)


def drive(name: str, url: str, bodies: list[tuple[bytes, str]], token: str | None, warmup: int,
          concurrency: int = 1) -> Result:
    """Warm up, then send the rest from ``concurrency`` threads; time each request and the whole run."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}

    def send(http: httpx.Client, body: bytes, ctype: str) -> float:
        t0 = time.perf_counter()
        r = http.post(url, content=body, headers=headers | {"Content-Type": ctype})
        elapsed = time.perf_counter() - t0
        if r.status_code != 201:
            raise SystemExit(f"{name}: HTTP {r.status_code}: {r.text[:500]}")
        return elapsed

    with httpx.Client(timeout=120, trust_env=False) as http:
        for body, ctype in bodies[:warmup]:
            send(http, body, ctype)
    measured = bodies[warmup:]
    latencies: list[float] = []
    lock = threading.Lock()

    def worker(share: list[tuple[bytes, str]]) -> None:
        with httpx.Client(timeout=120, trust_env=False) as http:
            for body, ctype in share:
                elapsed = send(http, body, ctype)
                with lock:
                    latencies.append(elapsed)

    threads = [threading.Thread(target=worker, args=(measured[i::concurrency],)) for i in range(concurrency)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return Result(name, len(latencies), time.perf_counter() - t0, latencies)


def durability_cost(work: Path, photo: bytes, reps: int = 20) -> dict[str, float]:
    """What any durable ingest pays on this disk, per upload: hash + fsynced photo + fsynced commit (ms)."""
    import hashlib
    import sqlite3

    from service.storage.store import PhotoStore

    store = PhotoStore(work / "fsync-probe")
    db = sqlite3.connect(work / "fsync-probe.sqlite3", isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("CREATE TABLE t (x TEXT)")
    sha, put, commit = [], [], []
    for _ in range(reps):
        data = unique_jpeg(photo)
        t0 = time.perf_counter()
        digest = hashlib.sha256(data).hexdigest()
        t1 = time.perf_counter()
        store.put(data, digest)
        t2 = time.perf_counter()
        db.execute("BEGIN IMMEDIATE")
        db.execute("INSERT INTO t VALUES (?)", (digest,))
        db.execute("COMMIT")
        t3 = time.perf_counter()
        sha.append(t1 - t0)
        put.append(t2 - t1)
        commit.append(t3 - t2)
    db.close()
    med = statistics.median
    return {"sha256_ms": med(sha) * 1e3, "photo_put_ms": med(put) * 1e3, "sqlite_commit_ms": med(commit) * 1e3}


def report(results: list[Result], floor: Result) -> None:
    print(f"{'target':<22}{'n':>6}{'subm/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'mean ms':>10}{'× floor':>10}")
    for r in [floor, *results]:
        ratio = r.mean / floor.mean
        print(f"{r.name:<22}{r.n:>6}{r.rate:>10.1f}{r.pct(0.5) * 1e3:>10.1f}{r.pct(0.99) * 1e3:>10.1f}"
              f"{r.mean * 1e3:>10.1f}{ratio:>10.2f}")
    for r in results:
        print(f"{r.name}: ingest costs {r.mean / floor.mean:.2f}× the floor (mean latency), "
              f"p50 {r.pct(0.5) / floor.pct(0.5):.2f}×; target ≤ 1.5×")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=100, help="measured uploads per target (default 100)")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("-c", "--concurrency", type=int, default=1, help="parallel clients (default 1)")
    parser.add_argument("--photo-mb", type=float, default=3.0)
    parser.add_argument("--postgres", default=os.environ.get("KIPIMO_TEST_POSTGRES_URL"),
                        help="PostgreSQL server URL (a scratch database is created and dropped)")
    parser.add_argument("--vision", action="store_true", help="run full vision on each photo")
    parser.add_argument("--json", type=Path, help="also write the figures as JSON")
    args = parser.parse_args()

    base_photo = phone_jpeg(args.photo_mb)
    total = args.n + args.warmup
    print(f"photo: 4000x3000 JPEG, {len(base_photo) / 1e6:.2f} MB; {args.n} measured uploads per target "
          f"(+{args.warmup} warm-up), {args.concurrency} client(s) in parallel; "
          f"vision {'on' if args.vision else 'off'}")
    work = Path(tempfile.mkdtemp(prefix="kipimo-bench-"))
    log = work / "servers.log"
    results: list[Result] = []
    pg_admin = pg_name = None
    try:
        port = free_port()
        floor_proc = start_floor(port, log)
        try:
            bodies = [multipart(unique_jpeg(base_photo)) for _ in range(total)]
            floor = drive("floor (read+discard)", f"http://127.0.0.1:{port}/", bodies, None, args.warmup,
                          args.concurrency)
        finally:
            stop(floor_proc)

        targets = [("kipimo sqlite", f"sqlite:///{work / 'sqlite' / 'kipimo.sqlite3'}", work / "sqlite")]
        if args.postgres:
            from sqlalchemy import create_engine, text
            from sqlalchemy.engine import make_url

            url = make_url(args.postgres)
            pg_name = f"kipimo_bench_{uuid.uuid4().hex[:8]}"
            pg_admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
            with pg_admin.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{pg_name}"'))
            targets.append(("kipimo postgresql", url.set(database=pg_name).render_as_string(hide_password=False),
                            work / "pg"))
        for name, db_url, data_dir in targets:
            token = prepare_kipimo(data_dir, db_url)
            port = free_port()
            proc = start_kipimo(port, data_dir, db_url, args.vision, log)
            try:
                bodies = [multipart(unique_jpeg(base_photo)) for _ in range(total)]
                results.append(drive(name, f"http://127.0.0.1:{port}/api/v1/submissions", bodies, token,
                                     args.warmup, args.concurrency))
            finally:
                stop(proc)
        report(results, floor)
        cost = durability_cost(work, base_photo)
        durable = floor.mean * 1e3 + sum(cost.values())
        print(f"durability on this disk (median per upload): SHA-256 {cost['sha256_ms']:.1f} ms, photo write+fsync "
              f"(file and directories) {cost['photo_put_ms']:.1f} ms, SQLite commit (synchronous=FULL) "
              f"{cost['sqlite_commit_ms']:.1f} ms; floor + these = {durable:.1f} ms = "
              f"{durable / (floor.mean * 1e3):.1f}× the floor before any parsing or validation")
        if args.json:
            args.json.write_text(json.dumps({r.name: {"n": r.n, "per_s": r.rate, "p50_ms": r.pct(0.5) * 1e3,
                                                      "p99_ms": r.pct(0.99) * 1e3, "mean_ms": r.mean * 1e3,
                                                      "x_floor": r.mean / floor.mean}
                                             for r in [floor, *results]}, indent=2))
    finally:
        if pg_admin is not None:
            from sqlalchemy import text

            with pg_admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)'))
            pg_admin.dispose()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
