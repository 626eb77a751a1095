"""Idle and slow clients do not stop `qc serve` answering (issue 13; service/http/serving.py).

Each test starts the real server as a subprocess with a soft open-file limit of 1,024 (the usual
default, which 1,100 held sockets exhaust) and its hard limit unchanged. No timing assertions: a
server "answers" when it does so within a generous 30 s; bench/slow_clients.py measures latencies.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import resource
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
IDLE = 1100
CHILD_SOFT_NOFILE = 1024
ANSWERS_WITHIN_S = 30.0
# A request line or headers sent in part, then nothing more (slowloris), and a silent connection.
OPENERS = (b"", b"GET /api/v1/hea", b"GET /api/v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def _serve(tmp_path: Path, template: Path, *args: str, **env: str) -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    data = tmp_path / "data"
    data.mkdir()
    shutil.copyfile(template, data / "kipimo.sqlite3")
    port = _free_port()
    log = tmp_path / "server.log"

    def soft_limit_1024() -> None:  # in the child, before exec
        _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(CHILD_SOFT_NOFILE, hard), hard))

    child_env = os.environ | {"KIPIMO_DATA_DIR": str(data), "KIPIMO_VISION": "off", **env}
    cmd = [sys.executable, "-c", "from service.cli import main; main()", "serve", "--port", str(port),
           "--log-level", "warning", *args]
    with log.open("ab") as out:
        proc = subprocess.Popen(cmd, env=child_env, stdout=out, stderr=subprocess.STDOUT, cwd=REPO_ROOT,
                                preexec_fn=soft_limit_1024)
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"qc serve exited with {proc.returncode}:\n{log.read_text()}")
            try:
                if httpx.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"qc serve did not come up:\n{log.read_text()}")
            time.sleep(0.1)
        yield port, proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextlib.contextmanager
def _idle_connections(port: int, count: int) -> Iterator[list[socket.socket]]:
    """``count`` connections, each sending one of ``OPENERS`` and then nothing."""
    sockets: list[socket.socket] = []
    try:
        for i in range(count):
            s = socket.create_connection(("127.0.0.1", port), timeout=10)  # the kernel's backlog accepts it
            if opener := OPENERS[i % len(OPENERS)]:
                s.sendall(opener)
            sockets.append(s)
        yield sockets
    finally:
        for s in sockets:
            s.close()


def _closed_by_server(s: socket.socket, within_s: float) -> bool:
    s.settimeout(within_s)
    try:
        while data := s.recv(4096):
            if data.startswith(b"HTTP/1.1 503"):
                continue  # refused politely; the close follows
        return True
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


@pytest.fixture
def fds_for_clients() -> Iterator[None]:
    """This process holds the idle sockets too: raise its own soft limit (skip where the hard one is too low)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = IDLE + 400
    if hard != resource.RLIM_INFINITY and hard < need:
        pytest.skip(f"the hard open-file limit is {hard}; {need} are needed for {IDLE} connections")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, need), hard))
    yield
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def _soft_nofile(pid: int) -> int | None:
    limits = Path(f"/proc/{pid}/limits")
    if not limits.exists():
        return None
    line = next(li for li in limits.read_text().splitlines() if li.startswith("Max open files"))
    return int(line.split()[3])


def test_health_answers_with_1100_idle_connections_open(tmp_path, _sqlite_template, fds_for_clients):
    # The header deadline is out of reach here, so what carries the load is the raised open-file limit.
    with _serve(tmp_path, _sqlite_template, KIPIMO_HEADER_TIMEOUT_S="120") as (port, proc):
        _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        soft = _soft_nofile(proc.pid)
        if soft is not None:
            assert soft == hard, "qc serve raises its soft open-file limit to the hard one"
        with _idle_connections(port, IDLE):
            response = httpx.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=ANSWERS_WITHIN_S)
            assert response.status_code == 200
            assert response.json()["status"] == "ok"


def test_connections_without_complete_headers_are_closed_after_the_header_timeout(tmp_path, _sqlite_template):
    with _serve(tmp_path, _sqlite_template, KIPIMO_HEADER_TIMEOUT_S="1") as (port, _proc):
        with _idle_connections(port, 9) as idle:
            trickler = socket.create_connection(("127.0.0.1", port), timeout=10)
            trickler.sendall(OPENERS[-1])
            closed = False
            until = time.monotonic() + ANSWERS_WITHIN_S
            while not closed and time.monotonic() < until:  # one byte every 0.2 s: each resets an idle timer
                try:
                    trickler.sendall(b"a")
                except (BrokenPipeError, ConnectionResetError):
                    closed = True
                    break
                closed = _closed_by_server(trickler, 0.2)
            trickler.close()
            assert closed, "a client trickling its headers is closed: the deadline is for all of them"
            assert all(_closed_by_server(s, ANSWERS_WITHIN_S) for s in idle)

        # A request whose headers come at once is answered, and its connection may be reused.
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=ANSWERS_WITHIN_S)
        try:
            for _ in range(2):
                conn.request("GET", "/api/v1/health")
                response = conn.getresponse()
                assert (response.status, response.read()[:14]) == (200, b'{"status":"ok"')
            assert conn.sock is not None, "the connection was kept alive"
            assert _closed_by_server(conn.sock, ANSWERS_WITHIN_S), "then, left idle, it is closed too"
        finally:
            conn.close()


def test_connections_above_the_cap_are_refused_with_503_and_the_rest_keep_working(tmp_path, _sqlite_template):
    with _serve(tmp_path, _sqlite_template, KIPIMO_MAX_CONNECTIONS="4", KIPIMO_HEADER_TIMEOUT_S="120") as (port, _):
        with _idle_connections(port, 4):
            response = httpx.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=ANSWERS_WITHIN_S)
            assert response.status_code == 503
            assert response.headers["retry-after"].isdigit()
            assert response.text.startswith("server busy"), "a whole, readable answer"
        until = time.monotonic() + ANSWERS_WITHIN_S  # the server notices the four closes as it gets to them
        while (status := httpx.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=ANSWERS_WITHIN_S)
               .status_code) != 200 and time.monotonic() < until:
            time.sleep(0.1)
        assert status == 200


def test_serve_with_proxy_headers_limits_failed_sign_ins_per_forwarded_address(tmp_path, _sqlite_template):
    # The test is the proxy on 127.0.0.1 (trusted by default); the default burst is 10 failures.
    wrong = {"Authorization": "Bearer kip_" + "x" * 43}
    with _serve(tmp_path, _sqlite_template, "--proxy-headers") as (port, _):
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=ANSWERS_WITHIN_S) as http:
            first = [http.get("/api/v1/me", headers={**wrong, "X-Forwarded-For": "203.0.113.5"}).status_code
                     for _ in range(11)]
            other = http.get("/api/v1/me", headers={**wrong, "X-Forwarded-For": "203.0.113.6"})
    assert first == [401] * 10 + [429]
    assert other.status_code == 401
