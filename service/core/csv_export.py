"""The submissions CSV (``GET /api/v1/submissions.csv``): cells safe to open in a spreadsheet, and a file
that is sent only once it is complete.

Formula injection (OWASP "CSV Injection"): a spreadsheet may evaluate a text cell that begins with ``=``,
``+``, ``-``, ``@``, a tab or a carriage return (``=HYPERLINK(…)``, ``@SUM(…)``, ``-2+3+cmd|…``). Such a
cell is written with a leading ``'``, which spreadsheets take as "this is text" and do not evaluate. Only
text is neutralised: the numeric columns (``standard_version``, ``minor_defects``) are written from numbers
and stay numbers, so a number such as -0.05 in a numeric column would be written as ``-0.05``; the same
characters typed into a text field (a unit "-0.05") are text and get the quote. Times and hashes begin with
a digit or a letter. The ``csv`` module quotes a cell holding a comma, a quote or a line break, so no cell
spills into the next.

A failure while the rows are read must not end as a truncated file behind ``200 OK``. The export is
therefore written to a temporary file first (in memory up to ``SPOOL_BYTES``, then an unnamed file in the
data folder, which the operating system removes when it is closed or the process ends) and sent only when
it is complete, with its ``Content-Length``; a failure before that is an error status. The price: the
first byte waits for the last row, and the export briefly takes its size on disk.
"""

from __future__ import annotations

import csv
import io
import tempfile
from collections.abc import Iterator
from typing import IO

from service.core.context import ServiceContext
from service.storage import repository as repo
from service.storage.orm import Submission

__all__ = ["COLUMNS", "FORMULA_START", "export_csv_file", "iter_file", "spreadsheet_safe"]

COLUMNS = ["id", "received_at", "captured_at", "node", "product", "standard_version", "standard_sha256",
           "lot", "unit", "technician", "verdict", "minor_defects", "failed_checks", "record_sha256"]
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")  # OWASP's list
PAGE = 500  # rows read per database session
SPOOL_BYTES = 1024 * 1024
CHUNK = 64 * 1024


def spreadsheet_safe(value: str | int | float) -> str | int | float:
    """A cell as written: text a spreadsheet would read as a formula gets a leading ``'``; numbers as they are."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def _row(s: Submission) -> list[str | int | float]:
    failed = ";".join(r.check_id for r in s.results if r.status == "fail")
    return [s.id, s.received_at.isoformat(), s.captured_at.isoformat(), s.node.name, s.product.slug,
            s.standard.version, s.standard.sha256, s.lot.code if s.lot else "", s.unit or "", s.technician,
            s.verdict, s.minor_defects, failed, s.record_sha256]


def _submissions(ctx: ServiceContext, where: repo.SubmissionFilter) -> Iterator[Submission]:
    """Every matching submission, newest first, a page per session, so the export never sits in memory."""
    before: int | None = None
    while True:
        count = 0
        with ctx.db.session() as session:
            for s in repo.list_submissions(session, where=where, before_seq=before, limit=PAGE):
                count += 1
                before = s.seq
                yield s
        if count < PAGE:
            return


def export_csv_file(ctx: ServiceContext, where: repo.SubmissionFilter) -> tuple[IO[bytes], int]:
    """The whole export as an open file positioned at its start, and its size in bytes; the caller closes it.

    Raises whatever reading the rows raised, with nothing sent and the file already closed."""
    out = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES, dir=str(ctx.settings.data_dir))
    try:
        buf = io.StringIO()
        writer = csv.writer(buf)
        writer.writerow(COLUMNS)
        for s in _submissions(ctx, where):
            writer.writerow([spreadsheet_safe(v) for v in _row(s)])
            if buf.tell() >= CHUNK:
                out.write(buf.getvalue().encode("utf-8"))
                buf.seek(0)
                buf.truncate()
        out.write(buf.getvalue().encode("utf-8"))
        size = out.tell()
        out.seek(0)
    except BaseException:
        out.close()
        raise
    return out, size


def iter_file(file: IO[bytes]) -> Iterator[bytes]:
    """The file's bytes in chunks; closes it when done (or when the client goes away and this is dropped)."""
    try:
        while chunk := file.read(CHUNK):
            yield chunk
    finally:
        file.close()
