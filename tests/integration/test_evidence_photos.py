"""A photo with no measurement or model check is evidence, and is judged too (issue 13 §2).

The enzyme batch's gel photo (shipped standard: card-free slot, min_pixels 1,000,000) must never make a
record ``pass`` when the quality gate finds it unusable: all black (the gate's "too dark": more than 20 %
of pixels below grey 20) or below 1.0 MP.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pytest
from PIL import Image

from service.cli.init import InitReport, publish_shipped_standards, register_shipped_models, shipped_standards
from service.storage import repository as repo
from tests.clock import TEST_NOW
from tests.integration.support import passing_answers, record, upload


def gel_photo(width: int, height: int, *, black: bool = False) -> bytes:
    """A light-box gel: mid-grey background with dark bands (or all black), as a JPEG."""
    rng = np.random.default_rng(7)
    img = np.zeros((height, width), np.uint8) if black else \
        np.clip(rng.normal(170, 12, (height, width)), 0, 255).astype(np.uint8)
    if not black:
        for lane in range(8):
            x = width // 10 * (lane + 1)
            img[height // 3 : height // 3 + height // 40, x : x + width // 14] = 60
    buf = io.BytesIO()
    Image.fromarray(img).convert("RGB").save(buf, "JPEG", quality=90)
    return buf.getvalue()


@pytest.fixture
def enzyme(make_client: Any, seed: Any, ctx: Any, settings: Any) -> Any:
    register_shipped_models(ctx, by="test", report=InitReport())
    publish_shipped_standards(ctx, shipped_standards(settings.checklists_dir), by="test", report=InitReport())
    with ctx.db.session() as session:
        standard = repo.standard_from_row(repo.current_standard(session, product="enzyme-batch"))
    client = make_client(vision=True)

    def send(photo: bytes) -> dict[str, Any]:
        res = upload(client, seed.tech_a, record(product="enzyme-batch", answers=passing_answers(standard)),
                     {"gel": photo})
        assert res.status_code == 201, res.text
        return res.json()

    return send


def gel_result(body: dict[str, Any]) -> dict[str, Any]:
    return next(r for r in body["results"] if r["kind"] == "photo" and r["slot"] == "gel")


def test_a_good_gel_photo_passes_as_evidence(enzyme: Any) -> None:
    body = enzyme(gel_photo(1280, 960))  # 1.23 MP
    assert gel_result(body)["status"] == "pass"
    assert body["verdict"] == "pass"


def test_an_all_black_undersized_gel_photo_never_passes(enzyme: Any) -> None:
    body = enzyme(gel_photo(1032, 774, black=True))  # 0.80 MP, every pixel 0
    gel = gel_result(body)
    assert gel["status"] == "inconclusive" and gel["severity"] == "major"  # a required slot
    assert "too dark" in gel["message"] and "needs 1.0 MP" in gel["message"] and "retake" in gel["message"]
    assert body["verdict"] == "review"


def test_an_undersized_but_well_lit_gel_photo_never_passes(enzyme: Any) -> None:
    body = enzyme(gel_photo(1000, 750))  # 0.75 MP
    gel = gel_result(body)
    assert gel["status"] == "inconclusive" and "needs 1.0 MP" in gel["message"]
    assert "too dark" not in gel["message"]
    assert body["verdict"] == "review"


def test_a_slot_can_make_an_unusable_photo_fail_the_record(make_client: Any, seed: Any, ctx: Any) -> None:
    from qc.standards import parse_standard  # noqa: PLC0415

    text = ("product: gel-strict\nname: Gel strict\nversion: 1\nphotos:\n"
            "  - {id: gel, prompt: Gel, card: false, min_pixels: 1000000, on_unusable: fail}\n")
    with ctx.db.write_session() as session:
        repo.publish_standard(session, standard=parse_standard(text), by="test", now=TEST_NOW)
    client = make_client(vision=True)
    res = upload(client, seed.tech_a, record(product="gel-strict", answers={}),
                 {"gel": gel_photo(1032, 774, black=True)})
    assert res.status_code == 201, res.text
    assert gel_result(res.json())["status"] == "fail" and res.json()["verdict"] == "fail"
