"""Helpers for tests that talk to the service (importable: ``from tests.integration.support import ...``).

- ``TEST_STANDARD``: a small standard (product ``test-widget``) whose verdicts follow from its limits:
  diameter 9.5..10.5 mm (major), clean must be true (major), colour red passes (minor),
  an optional note, and one required photo slot ``top`` without checks (no card).
- ``jpeg(w, h)`` / ``png(w, h)``: decodable images of a given size (random noise, seeded).
- ``record(**overrides)``: a valid record for ``TEST_STANDARD`` with a fresh UUID (verdict pass).
- ``upload(client, token, record, photos)``: POST a multipart submission.
- ``count_rows(ctx)`` / ``stored_blobs(ctx)``: what the database and the photo store hold.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
from PIL import Image
from sqlalchemy import func, select

from service.core.context import ServiceContext
from service.storage.orm import AuditEvent, CheckResultRow, PhotoRow, Submission
from tests.clock import TEST_NOW

TEST_PRODUCT = "test-widget"

TEST_STANDARD = """\
product: test-widget
name: Test widget
version: 1
status: released
items:
  - {id: diameter, prompt: Outer diameter, type: number, unit: mm, min: 9.5, max: 10.5, severity: major}
  - {id: clean, prompt: Free of swarf, type: boolean, pass_if: true, severity: major}
  - {id: colour, prompt: Colour, type: choice, options: [red, blue], pass_if: [red], severity: minor}
  - {id: note, prompt: Note, type: text, required: false}
photos:
  - {id: top, prompt: Top view, card: false}
"""

ITEM_IDS = ["diameter", "clean", "colour", "note"]


def _noise(w: int, h: int, seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8))


def jpeg(w: int = 640, h: int = 480, seed: int = 0, quality: int = 85) -> bytes:
    buf = io.BytesIO()
    _noise(w, h, seed).save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def png(w: int = 64, h: int = 48, seed: int = 0) -> bytes:
    buf = io.BytesIO()
    _noise(w, h, seed).save(buf, "PNG")
    return buf.getvalue()


# records are captured a little before the suite's "now", whichever instant that is
CAPTURED_AT = (TEST_NOW - dt.timedelta(hours=4)).isoformat().replace("+00:00", "Z")


def record(**overrides: Any) -> dict[str, Any]:
    rec: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "product": TEST_PRODUCT,
        "lot": "L-001",
        "unit": "U-1",
        "technician": "Amina",
        "captured_at": CAPTURED_AT,
        "answers": {"diameter": 10.0, "clean": True, "colour": "red"},
    }
    rec.update(overrides)
    return rec


def upload(client: Any, token: str, rec: dict[str, Any] | str, photos: dict[str, bytes] | None = None,
           **kwargs: Any) -> Any:
    photos = {"top": jpeg()} if photos is None else photos
    body = rec if isinstance(rec, str) else json.dumps(rec)
    files = [("record", (None, body, "application/json"))]
    files += [(slot, (f"{slot}.jpg", data, "image/jpeg")) for slot, data in photos.items()]
    return client.post("/api/v1/submissions", headers=auth(token), files=files, **kwargs)


def passing_answers(standard: Any) -> dict[str, Any]:
    """An answer to every item of a ``qc.standards.Standard`` that meets the item's own acceptance rule."""
    answers: dict[str, Any] = {}
    for item in standard.items:
        if item.type == "number":
            low, high = item.min, item.max
            answers[item.id] = (low + high) / 2 if low is not None and high is not None else (
                low if low is not None else high if high is not None else 1.0)
        elif item.type == "boolean":
            answers[item.id] = item.pass_if if item.pass_if is not None else True
        elif item.type == "choice":
            answers[item.id] = item.pass_if[0] if item.pass_if else item.options[0]
        elif item.type == "date":
            answers[item.id] = (TEST_NOW.date() - dt.timedelta(days=1)).isoformat()
        else:
            answers[item.id] = "LOT-7"
    return answers


@contextmanager
def received_at(client: Any, when: dt.datetime) -> Iterator[None]:
    """The block runs with the app's (frozen) clock at ``when``: a record captured weeks ago arrives when it was
    captured, as from a connected phone, instead of breaching the standard's offline allowance."""
    clock = client.app.state.ctx.clock
    before = clock.at
    clock.at = when
    try:
        yield
    finally:
        clock.at = before


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def count_rows(ctx: ServiceContext) -> dict[str, int]:
    with ctx.db.session() as session:
        return {
            table.__tablename__: session.scalar(select(func.count()).select_from(table)) or 0
            for table in (Submission, PhotoRow, CheckResultRow, AuditEvent)
        }


def stored_blobs(ctx: ServiceContext) -> set[str]:
    return {sha for sha, _ in ctx.store.iter_blobs()}
