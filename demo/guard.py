"""What ``python -m demo`` makes sure of before it builds anything: its port is free and its folder is its own.

- The port is bound (and listened on) at once and the socket is handed to the server later, so a taken port
  is refused before minutes of rendering, and nothing can take it while the demo is being built (a browser
  that connects meanwhile waits in the backlog and is answered once the server runs).
- The data folder is held with an exclusive ``flock`` on a lock file inside it, from before it is cleared
  until the demo process ends; a second demo on the same folder is refused instead of deleting it. A
  folder holding anything a demo does not write is refused too (``--data-dir ~`` must not empty a home).
"""

from __future__ import annotations

import fcntl
import os
import shutil
import socket
from pathlib import Path
from typing import IO

import click

__all__ = ["DEMO_FILES", "LOCK_NAME", "claim_folder", "reserve_port"]

LOCK_NAME = ".kipimo-demo.lock"
# everything a demo run writes at the top of its folder (SQLite and its side files, the photo store)
DEMO_FILES = frozenset({LOCK_NAME, "photos", "kipimo.sqlite3", "kipimo.sqlite3-wal", "kipimo.sqlite3-shm",
                        "kipimo.sqlite3-journal"})


def reserve_port(host: str, port: int) -> socket.socket:
    """A socket bound to HOST:PORT, for the server to listen on; a click error naming the port when taken."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except socket.gaierror as exc:
        raise click.ClickException(f"cannot serve on {host!r}: {exc.strerror}; choose another --host") from None
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does; a listener still blocks it
    try:
        sock.bind(address)
        sock.listen()  # listening now, or a second demo's bind (SO_REUSEADDR) would succeed until we listen
    except OSError as exc:
        sock.close()
        raise click.ClickException(
            f"port {port} on {host} is already in use ({exc.strerror}): stop what is serving there "
            f"(another `make demo` or `qc serve`?) or choose another port with --port, "
            f"e.g. `python -m demo --port {port + 1}`") from None
    return sock


def claim_folder(folder: Path) -> IO[str]:
    """Lock ``folder`` for this process and empty it of the last demo run; return the open lock file.

    Keep the returned file open for as long as the demo uses the folder: closing it (or the process ending)
    releases the lock.
    """
    folder.mkdir(parents=True, exist_ok=True)
    strangers = sorted(p.name for p in folder.iterdir() if p.name not in DEMO_FILES)
    if strangers:
        shown = ", ".join(strangers[:5]) + (", ..." if len(strangers) > 5 else "")
        raise click.ClickException(
            f"{folder} holds files the demo did not write ({shown}); the demo empties its folder on every run, "
            "so give it a new or empty one with --data-dir")
    lock = (folder / LOCK_NAME).open("a+", encoding="utf-8")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.seek(0)
        holder = lock.read().strip()
        lock.close()
        raise click.ClickException(
            f"{folder} is in use by a running demo{f' (process {holder})' if holder else ''}: stop it (Ctrl+C) "
            "or give this one another folder with --data-dir (and another --port)") from None
    lock.seek(0)
    lock.truncate()
    lock.write(f"{os.getpid()}\n")
    lock.flush()
    for path in folder.iterdir():
        if path.name == LOCK_NAME:
            continue
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
    return lock
