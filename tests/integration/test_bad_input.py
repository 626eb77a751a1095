"""Every kind of bad upload is refused with a 4xx naming the problem, and leaves nothing behind."""

from __future__ import annotations

import json

import pytest

from service.core.context import ServiceContext
from tests.integration.support import auth, count_rows, jpeg, png, record, stored_blobs, upload

EMPTY = {"submissions": 0, "photos": 0, "check_results": 0}


def _assert_nothing_stored(ctx: ServiceContext) -> None:
    rows = count_rows(ctx)
    assert {k: rows[k] for k in EMPTY} == EMPTY
    assert stored_blobs(ctx) == set()


def _fields(response) -> list[str]:
    body = response.json()
    assert isinstance(body["error"], str) and body["error"]
    assert all(set(p) == {"field", "reason"} and p["reason"] for p in body["problems"])
    return [p["field"] for p in body["problems"]]


CASES = {
    # name: (record or raw JSON text, photos, expected status, expected problem field)
    "malformed JSON": ('{"id": "x", "product": ', None, 422, "record"),
    "record not an object": ("[1, 2]", None, 422, "record"),
    "id not a UUID": (record(id="not-a-uuid"), None, 422, "record.id"),
    "unknown field": (record(node="node-b"), None, 422, "record.node"),
    "unknown product": (record(product="no-such-thing"), None, 422, "record.product"),
    "unknown version": (record(standard_version=9), None, 422, "record.standard_version"),
    "unknown item": (record(answers={"diameter": 10.0, "clean": True, "colour": "red", "bogus": 1}),
                     None, 422, "answers.bogus"),
    "wrong answer type": (record(answers={"diameter": "ten", "clean": True, "colour": "red"}),
                          None, 422, "answers.diameter"),
    "boolean as string": (record(answers={"diameter": 10.0, "clean": "yes", "colour": "red"}),
                          None, 422, "answers.clean"),
    "choice outside options": (record(answers={"diameter": 10.0, "clean": True, "colour": "green"}),
                               None, 422, "answers.colour"),
    "missing required answer": (record(answers={"diameter": 10.0, "colour": "red"}), None, 422, "answers.clean"),
    "missing required photo": (record(), {}, 422, "photos.top"),
    "unknown photo slot": (record(), {"top": jpeg(), "side": jpeg(seed=1)}, 422, "photos.side"),
    "not an image": (record(), {"top": b"%PDF-1.7 this is not a photo" * 20}, 415, "photos.top"),
    "HEIC photo": (record(), {"top": b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(200)},
                   415, "photos.top"),
    "truncated JPEG": (record(), {"top": jpeg()[:4000]}, 422, "photos.top"),
    "empty file": (record(), {"top": b""}, 422, "photos.top"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_upload_is_refused_and_leaves_nothing(case, client, seed, ctx):
    rec, photos, status, field = CASES[case]
    r = upload(client, seed.tech_a, rec, photos)
    assert r.status_code == status, r.text
    assert field in _fields(r)
    _assert_nothing_stored(ctx)


PHOTO_CASES = [c for c in CASES if CASES[c][3].startswith("photos.")]


@pytest.mark.parametrize("case", PHOTO_CASES)
def test_bad_photo_is_refused_with_vision_on_too(case, make_client, seed, ctx):
    rec, photos, status, field = CASES[case]
    r = upload(make_client(vision=True), seed.tech_a, rec, photos)
    assert r.status_code == status, r.text
    assert field in _fields(r)
    _assert_nothing_stored(ctx)


def test_absurdly_nested_record_is_422_not_500(client, seed, ctx):
    r = upload(client, seed.tech_a, "[" * 100_000 + "]" * 100_000)
    assert r.status_code == 422 and _fields(r) == ["record"]
    _assert_nothing_stored(ctx)


@pytest.mark.parametrize("seed_", range(40))
def test_mangled_records_never_cause_a_server_error(seed_, client, seed, ctx):
    import random

    rng = random.Random(seed_)
    junk = [None, True, -1, 2**60, 1e308, "", "x" * 300, [], {}, {"a": [1]}, "2026-13-45T99:00:00Z", float("nan")]
    rec = record()
    target = rng.choice(["id", "product", "standard_version", "lot", "unit", "technician", "captured_at",
                         "answers", "notes", "location", "corrects", "answers.diameter", "answers.clean"])
    value = rng.choice(junk)
    if target.startswith("answers."):
        rec["answers"][target.split(".")[1]] = value
    else:
        rec[target] = value
    r = upload(client, seed.tech_a, json.dumps(rec))
    assert r.status_code in (200, 201) or 400 <= r.status_code < 500, r.text
    if r.status_code >= 400:
        assert r.json()["problems"], r.text
        assert count_rows(ctx)["submissions"] == 0


def test_all_answer_problems_are_listed_at_once(client, seed, ctx):
    r = upload(client, seed.tech_a, record(answers={"diameter": "x", "colour": "green"}), {})
    assert r.status_code == 422
    assert {"answers.diameter", "answers.clean", "answers.colour", "photos.top"} <= set(_fields(r))
    _assert_nothing_stored(ctx)


def test_png_and_webp_are_accepted(client, seed):
    import io

    from PIL import Image

    webp = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 10, 10)).save(webp, "WEBP")
    assert upload(client, seed.tech_a, record(), {"top": png()}).status_code == 201
    r = upload(client, seed.tech_a, record(), {"top": webp.getvalue()})
    assert r.status_code == 201 and r.json()["photos"][0]["media_type"] == "image/webp"


def test_image_above_pixel_limit_is_413(make_client, seed, ctx):
    small_limit = make_client(max_pixels=1_000_000)
    r = upload(small_limit, seed.tech_a, record(), {"top": jpeg(1200, 1000)})  # 1.2 MP > 1 MP
    assert r.status_code == 413, r.text
    assert _fields(r) == ["photos.top"]
    assert "MP" in r.json()["problems"][0]["reason"]
    _assert_nothing_stored(ctx)


def test_body_above_size_limit_is_413_by_content_length(make_client, seed, ctx):
    small = make_client(max_body_bytes=100_000)
    r = upload(small, seed.tech_a, record(), {"top": jpeg(800, 800, quality=95)})
    assert r.status_code == 413, r.text
    assert _fields(r) == ["body"]
    _assert_nothing_stored(ctx)


def test_body_above_size_limit_is_413_when_streamed_without_length(make_client, seed, ctx):
    small = make_client(max_body_bytes=100_000)
    boundary = "kipimo-test-boundary"
    photo = jpeg(800, 800, quality=95)
    parts = (
        f"--{boundary}\r\nContent-Disposition: form-data; name=\"record\"\r\n\r\n{json.dumps(record())}\r\n"
        f"--{boundary}\r\nContent-Disposition: form-data; name=\"top\"; filename=\"top.jpg\"\r\n"
        "Content-Type: image/jpeg\r\n\r\n"
    ).encode() + photo + f"\r\n--{boundary}--\r\n".encode()

    def chunks():  # no Content-Length: httpx sends this chunked
        for i in range(0, len(parts), 16_384):
            yield parts[i:i + 16_384]

    r = small.post("/api/v1/submissions", content=chunks(),
                   headers=auth(seed.tech_a) | {"Content-Type": f"multipart/form-data; boundary={boundary}"})
    assert r.status_code == 413, r.text
    _assert_nothing_stored(ctx)


def test_not_multipart_is_422(client, seed, ctx):
    r = client.post("/api/v1/submissions", json=record(), headers=auth(seed.tech_a))
    assert r.status_code == 422 and _fields(r) == ["content-type"]
    _assert_nothing_stored(ctx)


def test_missing_record_part_is_422(client, seed, ctx):
    r = client.post("/api/v1/submissions", files={"top": ("t.jpg", jpeg(), "image/jpeg")}, headers=auth(seed.tech_a))
    assert r.status_code == 422 and "record" in _fields(r)
    _assert_nothing_stored(ctx)


def test_malformed_multipart_is_4xx(client, seed, ctx):
    r = client.post("/api/v1/submissions", content=b"--nope\r\ngarbage",
                    headers=auth(seed.tech_a) | {"Content-Type": "multipart/form-data; boundary=xyz"})
    assert 400 <= r.status_code < 500
    _assert_nothing_stored(ctx)


def test_bad_query_parameter_uses_the_same_error_shape(client, seed):
    r = client.get("/api/v1/submissions", params={"limit": 0}, headers=auth(seed.manager))
    assert r.status_code == 422 and _fields(r) == ["limit"]


def _raw(client, token, body: bytes, boundary: str = "b0undary"):
    return client.post("/api/v1/submissions", content=body,
                       headers=auth(token) | {"Content-Type": f"multipart/form-data; boundary={boundary}"})


def _part(name: str, data: bytes, filename: str | None = None) -> bytes:
    disp = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
    return f"--b0undary\r\nContent-Disposition: {disp}\r\n\r\n".encode() + data + b"\r\n"


@pytest.mark.parametrize("case", ["truncated", "text for photo", "two files one slot", "record twice"])
def test_ambiguous_or_truncated_multipart_is_422(case, client, seed, ctx):
    rec = json.dumps(record()).encode()
    photo = jpeg()
    body = {
        "truncated": _part("record", rec) + _part("top", photo, "t.jpg")[:-5000],
        "text for photo": _part("record", rec) + _part("top", b"not a file") + b"--b0undary--\r\n",
        "two files one slot": _part("record", rec) + _part("top", photo, "a.jpg") + _part("top", photo, "b.jpg")
        + b"--b0undary--\r\n",
        "record twice": _part("record", rec) + _part("record", rec) + _part("top", photo, "t.jpg")
        + b"--b0undary--\r\n",
    }[case]
    r = _raw(client, seed.tech_a, body)
    assert r.status_code == 422, r.text
    expected = {"truncated": "body", "text for photo": "photos.top", "two files one slot": "photos.top",
                "record twice": "record"}[case]
    assert expected in _fields(r)
    _assert_nothing_stored(ctx)


def test_record_may_come_as_a_file_part(client, seed):
    body = _part("record", json.dumps(record()).encode(), "record.json") + _part("top", jpeg(), "t.jpg") \
        + b"--b0undary--\r\n"
    assert _raw(client, seed.tech_a, body).status_code == 201


def test_a_correction_must_name_an_earlier_record_of_the_same_node(client, seed, ctx):
    mine = upload(client, seed.tech_a, record()).json()["id"]
    theirs = upload(client, seed.tech_b, record()).json()["id"]
    fixed = upload(client, seed.tech_a, record(corrects=mine))
    assert fixed.status_code == 201, fixed.text
    assert fixed.json()["corrects"] == mine
    refusals = [upload(client, seed.tech_a, record(corrects=target)) for target in
                (theirs, "6f1c1f8e-6a43-4f7e-9a4b-0d3f8c1e2a10")]
    for res in refusals:
        assert res.status_code == 422
        assert _fields(res) == ["record.corrects"]
    # another node's record and no record at all read the same: ids of other nodes cannot be probed
    assert refusals[0].json()["error"].split(":")[0] == refusals[1].json()["error"].split(":")[0]
    assert count_rows(ctx)["submissions"] == 3


def test_an_error_body_lists_the_first_fifty_problems_and_counts_them_all(client, seed, ctx):
    bad = record(**{f"junk_{i:07d}": i for i in range(600_000)})  # a 10 MB record
    assert len(json.dumps(bad)) > 10_000_000
    res = upload(client, seed.tech_a, bad)
    assert res.status_code == 422
    body = res.json()
    assert len(body["problems"]) == 50
    assert body["problems_total"] == 600_000
    assert body["problems"][0]["field"] == "record.junk_0000000"
    assert len(res.content) < 20_000
    _assert_nothing_stored(ctx)
