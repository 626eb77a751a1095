"""Content-addressed photo store: ``<root>/ab/cd/<sha256>``.

A blob is written to a temporary file in ``<root>/tmp``, fsynced, renamed into
place and its directory fsynced, so once ``put`` returns the bytes survive a
crash. Callers write blobs *before* committing the rows that reference them;
a crash in between leaves an unreferenced file, which ``gc`` sweeps (never a
row without its file).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import os
import re
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

__all__ = ["GcReport", "PhotoStore", "is_sha256"]

log = logging.getLogger(__name__)

_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def is_sha256(value: str) -> bool:
    return bool(_SHA256.match(value))


@dataclass(frozen=True)
class GcReport:
    kept: int
    removed: list[str]  # sha256 of removed blobs (or temp file names)
    skipped_young: int  # unreferenced but younger than min_age (maybe an upload in flight)
    freed_bytes: int


class PhotoStore:
    def __init__(self, root: Path, *, fsync: bool = True) -> None:
        self.root = Path(root)
        self.fsync = fsync
        self._tmp = self.root / "tmp"

    def path(self, sha256: str) -> Path:
        if not is_sha256(sha256):
            raise ValueError(f"not a SHA-256 hex digest: {sha256!r}")
        return self.root / sha256[:2] / sha256[2:4] / sha256

    def exists(self, sha256: str) -> bool:
        return is_sha256(sha256) and self.path(sha256).is_file()

    def read(self, sha256: str) -> bytes:
        return self.path(sha256).read_bytes()

    def put(self, data: bytes, known_sha256: str | None = None) -> str:
        """Store ``data`` durably; return its SHA-256. Storing the same bytes twice is a no-op.

        ``known_sha256``: the digest the caller already computed from these very bytes
        (hashing 3 MB costs ~10 ms on a small CPU; there is no need to do it twice).
        """
        digest = known_sha256 or hashlib.sha256(data).hexdigest()
        target = self.path(digest)
        if target.is_file() and target.stat().st_size == len(data):
            # Already here (maybe an orphan of a crashed upload of the same photo): make it young again so
            # `gc` leaves it alone until the row that is about to reference it has committed.
            os.utime(target)
            return digest
        new_dirs = not target.parent.is_dir()
        target.parent.mkdir(parents=True, exist_ok=True)
        self._tmp.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=self._tmp, prefix=digest[:16] + ".")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                if self.fsync:
                    os.fsync(fh.fileno())
            os.replace(tmp_name, target)
        except BaseException:
            Path(tmp_name).unlink(missing_ok=True)
            raise
        if self.fsync:
            _fsync_dir(target.parent)
            if new_dirs:  # the new ab/ and ab/cd/ entries must be durable too
                _fsync_dir(target.parent.parent)
                _fsync_dir(self.root)
        return digest

    def discard(self, sha256: str) -> None:
        """Remove one blob (the caller knows no row references it)."""
        self.path(sha256).unlink(missing_ok=True)

    def iter_blobs(self) -> Iterator[tuple[str, Path]]:
        if not self.root.is_dir():
            return
        for first in self.root.iterdir():
            if len(first.name) != 2 or not first.is_dir():
                continue
            for second in first.iterdir():
                if not second.is_dir():
                    continue
                for blob in second.iterdir():
                    if is_sha256(blob.name):
                        yield blob.name, blob

    def gc(self, referenced: Iterable[str], *, now: dt.datetime, min_age_s: float = 3600.0,
           dry_run: bool = False) -> GcReport:
        """Remove blobs no row references, and stale temp files.

        Files younger than ``min_age_s`` are kept: an upload may have written its
        photo and not yet committed its row. ``now`` comes from the caller's clock.
        """
        keep = set(referenced)
        cutoff = now.timestamp() - min_age_s
        removed: list[str] = []
        kept = young = freed = 0
        for sha, blob in self.iter_blobs():
            if sha in keep:
                kept += 1
                continue
            st = blob.stat()
            if st.st_mtime > cutoff:
                young += 1
                continue
            removed.append(sha)
            freed += st.st_size
            if not dry_run:
                blob.unlink(missing_ok=True)
        if self._tmp.is_dir():
            for tmp in self._tmp.iterdir():
                st = tmp.stat()
                if st.st_mtime <= cutoff:
                    removed.append(f"tmp/{tmp.name}")
                    freed += st.st_size
                    if not dry_run:
                        tmp.unlink(missing_ok=True)
        log.info("store gc: kept %d, removed %d, young %d", kept, len(removed), young)
        return GcReport(kept=kept, removed=removed, skipped_young=young, freed_bytes=freed)


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
