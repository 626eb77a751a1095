"""Photo intake over HTTP: integrity judged by decoding (vision on and off), sizes as decoded, and the
decode memory budget's refusal when it stays full."""

from __future__ import annotations

import io
import struct
import zlib

import pytest
from PIL import Image

from service.core.decoding import decode_budget
from tests.integration.support import count_rows, jpeg, png, record, stored_blobs, upload

EMPTY = {"submissions": 0, "photos": 0, "check_results": 0}


def _cut_with_end_marker() -> bytes:
    data = jpeg(1400, 1000, seed=3)
    return data[: len(data) // 2] + b"\xff\xd9"  # ends in EOI, like an intact file


def _lying_frame_header() -> bytes:
    data = bytearray(jpeg(1400, 1000, seed=3))  # 1.4 MP of data
    sof = data.find(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", 7071, 7071)  # claiming 50.0 MP, just inside the pixel limit
    return bytes(data)


def _png_cut_with_end_chunk() -> bytes:
    data = png(200, 150, seed=3)
    idat = data.find(b"IDAT") - 4
    (length,) = struct.unpack(">I", data[idat : idat + 4])
    payload = data[idat + 8 : idat + 8 + length // 2]
    chunk = struct.pack(">I", len(payload)) + b"IDAT" + payload + struct.pack(">I", zlib.crc32(b"IDAT" + payload))
    end = struct.pack(">I", 0) + b"IEND" + struct.pack(">I", zlib.crc32(b"IEND"))
    return data[:idat] + chunk + end  # every chunk well formed, the image data half missing


BROKEN = {
    "JPEG cut in half, FF D9 appended": _cut_with_end_marker(),
    "JPEG whose frame header claims 7071x7071": _lying_frame_header(),
    "PNG cut in half, IEND appended": _png_cut_with_end_chunk(),
}


@pytest.mark.parametrize("vision", [False, True], ids=["vision off", "vision on"])
@pytest.mark.parametrize("case", list(BROKEN))
def test_a_broken_photo_is_refused_by_decoding_and_leaves_no_file(case, vision, make_client, seed, ctx):
    r = upload(make_client(vision=vision), seed.tech_a, record(), {"top": BROKEN[case]})
    assert r.status_code == 422, r.text
    assert [p["field"] for p in r.json()["problems"]] == ["photos.top"]
    assert "truncated or corrupt" in r.json()["problems"][0]["reason"]
    rows = count_rows(ctx)
    assert {k: rows[k] for k in EMPTY} == EMPTY
    assert stored_blobs(ctx) == set()


@pytest.mark.parametrize("vision", [False, True], ids=["vision off", "vision on"])
def test_the_stored_width_and_height_are_the_decoded_upright_ones(vision, make_client, seed):
    exif = Image.Exif()
    exif[0x0112] = 6  # stored 640 wide x 480 high; shown turned a quarter clockwise: 480 x 640
    buf = io.BytesIO()
    Image.open(io.BytesIO(jpeg(640, 480, seed=4))).save(buf, "JPEG", quality=90, exif=exif.tobytes())
    r = upload(make_client(vision=vision), seed.tech_a, record(), {"top": buf.getvalue()})
    assert r.status_code == 201, r.text
    (photo,) = r.json()["photos"]
    assert (photo["width"], photo["height"]) == (480, 640)


def test_a_decode_budget_that_stays_full_answers_503_with_retry_after(make_client, seed, ctx, settings):
    tight = {"decode_memory_mb": 1, "decode_wait_s": 0.0}
    client = make_client(**tight)
    budget = decode_budget(settings.model_copy(update=tight))  # the same process-wide budget the app uses
    with budget.reserve(budget.capacity):  # other photos are holding all of it
        r = upload(client, seed.tech_a, record(), {"top": jpeg()})
    assert r.status_code == 503, r.text
    assert r.headers["Retry-After"] == "1"
    assert "decoding other photos" in r.json()["error"]
    assert count_rows(ctx)["submissions"] == 0 and stored_blobs(ctx) == set()
    assert upload(client, seed.tech_a, record(), {"top": jpeg()}).status_code == 201  # once it is free again
