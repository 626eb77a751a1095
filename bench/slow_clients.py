"""Slow-client benchmark: does ``/api/v1/health`` still answer while 1,100 idle connections are open?

Each server option runs in its own process on a free port, with its soft file-descriptor limit
set to 1,024 (the usual Linux default, where 1,100 held sockets exhaust a process that keeps
them), on a fresh SQLite database. Per option:

1. ``unloaded``: the median latency of ``--probes`` health requests (each on a new connection);
2. ``--idle`` connections are opened and held: a quarter send nothing, a quarter half a request
   line, a quarter a request line and half a header, a quarter trickle one header byte every
   second (slowloris: each byte resets a plain idle timer, only a total header deadline ends it);
3. ``loaded``: one health request right after, then one a second (or at once after a slow one)
   for ``--window`` seconds, each with a ``--deadline`` (a probe that takes longer counts as failed);
4. how many of the idle connections the server closed by the end of the window, and when.

Printed per option: unloaded median, first loaded probe, worst loaded probe, each as ms and as a
ratio to that option's own unloaded median (same run, same machine), failed probes, and the share
of idle connections the server closed. The option named ``qc serve`` is the command as shipped.

    .venv/bin/python bench/slow_clients.py                    # every option, 1,100 idle connections
    .venv/bin/python bench/slow_clients.py --only "qc serve" --idle 3000
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import importlib.util
import math
import os
import resource
import selectors
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

CHILD_SOFT_NOFILE = 1024  # the default soft limit on most Linux systems
HARD_1024 = "qc serve, hard fd limit 1024"  # where the limit cannot be raised: the cap and the deadline must do
HEALTH = "/api/v1/health"


# --- the server options (each runs in the child process) --------------------------------------


def _app():  # pragma: no cover - runs in the child
    from service.http.app import create_app  # noqa: PLC0415
    from service.settings import Settings  # noqa: PLC0415

    return create_app(Settings())


def run_uvicorn_defaults(port: int) -> None:  # pragma: no cover - runs in the child
    """What ``qc serve`` did before issue 13: uvicorn with its defaults."""
    import uvicorn  # noqa: PLC0415

    uvicorn.run(_app(), host="127.0.0.1", port=port, log_level="warning")


def run_uvicorn_limit(port: int) -> None:  # pragma: no cover - runs in the child
    """uvicorn with ``limit_concurrency``: it counts open connections, idle ones included."""
    import uvicorn  # noqa: PLC0415

    uvicorn.run(_app(), host="127.0.0.1", port=port, log_level="warning", limit_concurrency=1000)


def run_uvicorn_nofile(port: int) -> None:  # pragma: no cover - runs in the child
    """uvicorn with its fd soft limit raised to the hard limit (and otherwise defaults)."""
    import uvicorn  # noqa: PLC0415

    _raise_nofile()
    uvicorn.run(_app(), host="127.0.0.1", port=port, log_level="warning")


def run_hypercorn(port: int) -> None:  # pragma: no cover - runs in the child
    import asyncio  # noqa: PLC0415

    from hypercorn.asyncio import serve  # noqa: PLC0415
    from hypercorn.config import Config  # noqa: PLC0415

    _raise_nofile()
    config = Config()
    config.bind = [f"127.0.0.1:{port}"]
    config.keep_alive_timeout = 5
    config.read_timeout = 10
    config.loglevel = "WARNING"
    asyncio.run(serve(_app(), config))


def run_granian(port: int) -> None:  # pragma: no cover - runs in the child
    import asyncio  # noqa: PLC0415

    from granian.constants import Interfaces  # noqa: PLC0415
    from granian.http import HTTP1Settings  # noqa: PLC0415
    from granian.server.embed import Server  # noqa: PLC0415

    _raise_nofile()
    server = Server(_app(), address="127.0.0.1", port=port, interface=Interfaces.ASGI,
                    http1_settings=HTTP1Settings(header_read_timeout=10_000), backlog=2048)
    asyncio.run(server.serve())


def run_qc_serve(port: int) -> None:  # pragma: no cover - runs in the child
    from service.cli import main  # noqa: PLC0415

    sys.argv = ["qc", "serve", "--port", str(port), "--log-level", "warning"]
    main()


def _raise_nofile() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


OPTIONS: dict[str, Callable[[int], None]] = {
    "uvicorn defaults": run_uvicorn_defaults,
    "uvicorn limit_concurrency=1000": run_uvicorn_limit,
    "uvicorn, fd limit raised": run_uvicorn_nofile,
    "hypercorn": run_hypercorn,
    "granian": run_granian,
    "qc serve": run_qc_serve,
    HARD_1024: run_qc_serve,
}
NEEDS = {"hypercorn": ("hypercorn",), "granian": ("granian",)}  # measured for comparison; not dependencies


# --- the client side ---------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def probe(port: int, deadline: float) -> float | None:
    """Seconds one health request took on a fresh connection, or None if not a 200 within ``deadline``."""
    start = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=deadline)
    try:
        conn.request("GET", HEALTH, headers={"Connection": "close"})
        response = conn.getresponse()
        response.read()
        ok = response.status == 200
    except OSError:
        ok = False
    finally:
        conn.close()
    elapsed = time.perf_counter() - start
    return elapsed if ok and elapsed <= deadline else None


SILENT, HALF_LINE, HALF_HEADER, TRICKLE = "silent", "half line", "half header", "trickle"
OPENERS = {
    SILENT: b"",
    HALF_LINE: b"GET /api/v1/hea",
    HALF_HEADER: b"GET /api/v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ",
    TRICKLE: b"GET /api/v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ",
}


class IdleLoad:
    """``count`` held connections of the four kinds; ``tick`` trickles and notices server closes."""

    def __init__(self, port: int, count: int) -> None:
        self.sel = selectors.DefaultSelector()
        self.open: dict[socket.socket, str] = {}
        self.closed_at: list[float] = []
        kinds = [SILENT, HALF_LINE, HALF_HEADER, TRICKLE]
        self.started = time.perf_counter()
        for i in range(count):
            s = socket.socket()
            s.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                s.connect(("127.0.0.1", port))
            self.open[s] = kinds[i % len(kinds)]
            self.sel.register(s, selectors.EVENT_WRITE | selectors.EVENT_READ)
        self._sent_opener: set[socket.socket] = set()
        self.tick(0.5)

    def tick(self, wait: float) -> None:
        until = time.perf_counter() + wait
        while True:
            left = until - time.perf_counter()
            if left <= 0:
                break
            for key, mask in self.sel.select(timeout=left):
                s = key.fileobj
                assert isinstance(s, socket.socket)
                if mask & selectors.EVENT_READ:
                    try:
                        data = s.recv(4096)
                    except (ConnectionError, OSError):
                        data = b""
                    if not data:  # the server closed it (or answered and closed)
                        self._drop(s)
                        continue
                if mask & selectors.EVENT_WRITE and s not in self._sent_opener:
                    opener = OPENERS[self.open[s]]
                    try:
                        if opener:
                            s.send(opener)
                    except (ConnectionError, OSError):
                        self._drop(s)
                        continue
                    self._sent_opener.add(s)
                    self.sel.modify(s, selectors.EVENT_READ)

    def trickle(self) -> None:
        for s, kind in list(self.open.items()):
            if kind == TRICKLE and s in self._sent_opener:
                try:
                    s.send(b"a")
                except (ConnectionError, OSError):
                    self._drop(s)

    def _drop(self, s: socket.socket) -> None:
        self.sel.unregister(s)
        s.close()
        del self.open[s]
        self.closed_at.append(time.perf_counter() - self.started)

    def close(self) -> None:
        for s in list(self.open):
            self.sel.unregister(s)
            s.close()
        self.open.clear()
        self.sel.close()


@dataclass
class Outcome:
    name: str
    unloaded_s: float
    first_s: float | None
    worst_s: float | None
    failed: int
    probes: int
    answering_from_s: float | None  # every probe from then on answered 200 in time
    closed: int
    idle: int
    closed_by_kind: dict[str, int]
    all_closed_after_s: float | None


def measure(name: str, *, idle: int, probes: int, window: float, deadline: float) -> Outcome:
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="kipimo-slow-") as tmp:
        from service.storage.db import upgrade_database  # noqa: PLC0415

        data = Path(tmp) / "data"
        data.mkdir()
        upgrade_database(f"sqlite:///{data / 'kipimo.sqlite3'}")
        env = {**os.environ, "KIPIMO_DATA_DIR": str(data), "KIPIMO_VISION": "off", "PYTHONPATH": str(REPO)}

        def limit_fds() -> None:
            _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
            soft = min(CHILD_SOFT_NOFILE, hard)
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, soft if name == HARD_1024 else hard))

        proc = subprocess.Popen([sys.executable, __file__, "--child", name, "--port", str(port)], env=env,
                                preexec_fn=limit_fds, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        load: IdleLoad | None = None
        try:
            started = time.monotonic()
            while probe(port, 1.0) is None:
                if proc.poll() is not None or time.monotonic() - started > 60:
                    raise SystemExit(f"{name}: the server did not start")
                time.sleep(0.2)
            unloaded = statistics.median(t for t in (probe(port, deadline) for _ in range(probes)) if t)
            load = IdleLoad(port, idle)
            kinds_total = {kind: sum(1 for i in range(idle) if i % len(OPENERS) == n) for n, kind in enumerate(OPENERS)}
            results: list[tuple[float, float | None]] = []  # (seconds since the load opened, latency or None)
            second = 0
            while (at := time.perf_counter() - load.started) < window:  # a probe a second, or after a slow one
                results.append((at, probe(port, deadline)))
                load.trickle()
                second = max(second + 1, math.ceil(time.perf_counter() - load.started))
                load.tick(max(0.0, load.started + second - time.perf_counter()))
            left = {kind: list(load.open.values()).count(kind) for kind in OPENERS}
            ok = [t for _, t in results if t is not None]
            failed_at = [at for at, t in results if t is None]
            steady = [at for at, t in results if t is not None and at > max(failed_at, default=-1.0)]
            closed = idle - len(load.open)
            return Outcome(
                name=name, unloaded_s=unloaded, first_s=results[0][1], worst_s=max(ok, default=None),
                failed=len(failed_at), probes=len(results), answering_from_s=min(steady, default=None),
                closed=closed, idle=idle, closed_by_kind={k: kinds_total[k] - left[k] for k in OPENERS},
                all_closed_after_s=max(load.closed_at) if closed == idle and load.closed_at else None,
            )
        finally:
            if load is not None:
                load.close()
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _ms(value: float | None) -> str:
    return "timeout" if value is None else f"{value * 1000:.1f}"


def _ratio(value: float | None, floor: float) -> str:
    return "-" if value is None else f"{value / floor:.1f}x"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--idle", type=int, default=1100, help="idle connections held open [1100]")
    parser.add_argument("--probes", type=int, default=20, help="unloaded health probes [20]")
    parser.add_argument("--window", type=float, default=25.0, help="seconds of loaded probing [25]")
    parser.add_argument("--deadline", type=float, default=5.0, help="a probe slower than this fails [5 s]")
    parser.add_argument("--only", action="append", choices=list(OPTIONS), help="run only this option (repeatable)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        OPTIONS[args.child](args.port)
        return

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = args.idle + 200
    if hard < need:
        raise SystemExit(f"this shell's hard fd limit is {hard}; {need} are needed for {args.idle} connections")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, need), hard))
    print(f"{args.idle} idle connections; servers start with soft fd limit {CHILD_SOFT_NOFILE} (hard {hard}); "
          f"probe deadline {args.deadline:g} s, {args.window:g} s window; {os.cpu_count()} CPUs")
    print(f"{'option':30} {'unloaded ms':>11} {'first ms':>9} {'ratio':>6} {'worst ms':>9} {'ratio':>6} "
          f"{'failed':>7} {'answers from':>12} {'closed by server':>17}  per kind ({'/'.join(OPENERS)})")
    for name in args.only or list(OPTIONS):
        missing = [m for m in NEEDS.get(name, ()) if importlib.util.find_spec(m) is None]
        if missing:
            print(f"{name:30} skipped: `pip install {' '.join(missing)}` to measure it")
            continue
        o = measure(name, idle=args.idle, probes=args.probes, window=args.window, deadline=args.deadline)
        closed = f"{o.closed}/{o.idle}" + (f" by {o.all_closed_after_s:.0f} s" if o.all_closed_after_s else "")
        since = "never" if o.answering_from_s is None else f"{o.answering_from_s:.0f} s"
        print(f"{o.name:30} {o.unloaded_s * 1000:11.1f} {_ms(o.first_s):>9} {_ratio(o.first_s, o.unloaded_s):>6} "
              f"{_ms(o.worst_s):>9} {_ratio(o.worst_s, o.unloaded_s):>6} {o.failed:>3}/{o.probes:<3} {since:>12} "
              f"{closed:>17}  {'/'.join(str(o.closed_by_kind[k]) for k in OPENERS)}", flush=True)


if __name__ == "__main__":
    main()
