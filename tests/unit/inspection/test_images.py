"""Image intake: real well-formed and malformed files, built here byte by byte."""

from __future__ import annotations

import gc
import io
import re
import struct
import zlib

import cv2
import numpy as np
import pytest
from PIL import Image

from inspection import images
from inspection.budget import MemoryBudget
from inspection.images import decode_image, decode_photo, probe_image
from qc.errors import CorruptImage, ImageTooLarge, UnsupportedImageType


def _pattern(h: int = 120, w: int = 200) -> np.ndarray:
    """BGR test picture with an asymmetric mark so orientation is checkable."""
    img = np.full((h, w, 3), 200, np.uint8)
    img[: h // 3, : w // 4] = (0, 0, 255)  # red block at top-left
    return img


def _jpeg(img: np.ndarray, orientation: int | None = None, quality: int = 92) -> bytes:
    pil = Image.fromarray(img[:, :, ::-1])
    buf = io.BytesIO()
    kwargs: dict = {"quality": quality}
    if orientation is not None:
        exif = Image.Exif()
        exif[0x0112] = orientation
        kwargs["exif"] = exif.tobytes()
    pil.save(buf, "JPEG", **kwargs)
    return buf.getvalue()


def _encode(img: np.ndarray, ext: str, *params: int) -> bytes:
    ok, enc = cv2.imencode(ext, img, list(params))
    assert ok
    return enc.tobytes()


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def _png_bomb(w: int, h: int) -> bytes:
    """A valid 8-bit grey PNG of w x h zeros: tiny file, huge when decoded."""
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)
    comp = zlib.compressobj(9)
    row = b"\x00" * (w + 1)  # filter byte + pixels
    idat = b"".join(comp.compress(row) for _ in range(h)) + comp.flush()
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", idat)
            + _png_chunk(b"IEND", b""))


@pytest.mark.parametrize("ext,params", [
    (".jpg", (cv2.IMWRITE_JPEG_QUALITY, 95)),
    (".png", ()),
    (".webp", (cv2.IMWRITE_WEBP_QUALITY, 90)),
    (".webp", (cv2.IMWRITE_WEBP_QUALITY, 101)),  # > 100 means lossless (VP8L)
])
def test_supported_formats_decode_to_bgr_with_header_size(ext: str, params: tuple) -> None:
    img = _pattern()
    data = _encode(img, ext, *params)
    info = probe_image(data)
    assert (info.width, info.height) == (200, 120)
    out = decode_image(data)
    assert out.shape == (120, 200, 3) and out.dtype == np.uint8
    # Colour order is BGR: the red block stays in channel 2.
    assert out[10, 10, 2] > 200 and out[10, 10, 0] < 60


def test_type_is_sniffed_from_bytes_not_name() -> None:
    data = _encode(_pattern(), ".png")
    assert probe_image(data).format == "png"


def test_exif_orientation_is_applied() -> None:
    img = _pattern()  # 120 x 200, red at top-left
    out = decode_image(_jpeg(img, orientation=6))  # 6 = rotate 90 deg clockwise to display
    assert out.shape == (200, 120, 3)
    # After a clockwise turn the top-left block sits at the top-right.
    assert out[5, 115, 2] > 200 and out[5, 115, 0] < 80
    assert out[195, 5, 2] < 230 and out[195, 5, 0] > 150


@pytest.mark.parametrize("reduce", [2, 4, 8])
def test_reduced_decode_scales_size(reduce: int) -> None:
    data = _jpeg(_pattern(480, 800))
    out = decode_image(data, reduce=reduce)
    assert out.shape == (480 // reduce, 800 // reduce, 3)


def test_reduce_must_be_power_of_two_up_to_8() -> None:
    with pytest.raises(ValueError):
        decode_image(_jpeg(_pattern()), reduce=3)


@pytest.mark.parametrize("data,expect", [
    (b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 64, "HEIC"),
    (b"\x00\x00\x00\x18ftypmif1\x00\x00\x00\x00mif1heic" + b"\x00" * 64, "Most Compatible"),
    (b"GIF89a\x01\x00\x01\x00\x00\x00\x00;", "GIF"),
    (b"%PDF-1.7\n%...", "PDF"),
    (b"BM" + b"\x00" * 60, "BMP"),
    (b"II*\x00" + b"\x00" * 60, "TIFF"),
    (b"", "empty"),
    (b"hello, this is not an image at all", "unrecognised"),
])
def test_other_types_are_refused_naming_what_was_received(data: bytes, expect: str) -> None:
    with pytest.raises(UnsupportedImageType) as err:
        decode_image(data)
    assert expect in str(err.value)
    assert "JPEG" in str(err.value)


def test_truncated_jpeg_fails_although_libjpeg_would_pad_it() -> None:
    rng = np.random.default_rng(1)
    data = _encode(rng.integers(0, 255, (300, 300, 3), dtype=np.uint8), ".jpg")
    with pytest.raises(CorruptImage, match="truncated"):
        decode_image(data[: len(data) * 2 // 3])


def test_jpeg_cut_inside_header_is_corrupt() -> None:
    data = _jpeg(_pattern(), orientation=1)
    with pytest.raises(CorruptImage):
        decode_image(data[:40])


def test_jpeg_with_trailer_after_end_marker_is_accepted() -> None:
    data = _jpeg(_pattern()) + b"SAMSUNG-TRAILER" * 10
    assert decode_image(data).shape == (120, 200, 3)


def test_truncated_png_and_webp_are_corrupt() -> None:
    png = _encode(_pattern(), ".png")
    with pytest.raises(CorruptImage):
        decode_image(png[: len(png) // 2])
    webp = _encode(_pattern(), ".webp", cv2.IMWRITE_WEBP_QUALITY, 90)
    with pytest.raises(CorruptImage, match="truncated"):
        decode_image(webp[: len(webp) - 10])


def test_png_with_garbage_image_data_is_corrupt() -> None:
    png = bytearray(_encode(_pattern(), ".png"))
    start = png.find(b"IDAT") + 4
    png[start : start + 200] = bytes(range(200))
    with pytest.raises(CorruptImage):
        decode_image(bytes(png))


def test_jpeg_with_bogus_huffman_table_is_corrupt() -> None:
    data = bytearray(_jpeg(_pattern()))
    dht = data.find(b"\xff\xc4")
    data[dht + 5 : dht + 21] = b"\xff" * 16  # code counts that cannot form a table
    with pytest.raises(CorruptImage, match="could not be decoded"):
        decode_image(bytes(data))


def test_png_decompression_bomb_is_refused_before_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    bomb = _png_bomb(10_000, 6_000)  # 60 MP of zeros in ~60 kB
    assert len(bomb) < 200_000

    def no_decode(*_a: object, **_k: object) -> None:
        raise AssertionError("decoder must not run on a bomb")

    monkeypatch.setattr(images.cv2, "imdecode", no_decode)
    with pytest.raises(ImageTooLarge, match="60.0 MP"):
        decode_image(bomb)


def test_jpeg_header_declaring_huge_size_is_refused() -> None:
    data = bytearray(_jpeg(_pattern()))
    sof = data.find(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", 40_000, 40_000)
    with pytest.raises(ImageTooLarge, match="1600.0 MP"):
        decode_image(bytes(data))


def test_pixel_limit_is_configurable() -> None:
    data = _encode(_pattern(), ".png")  # 24 000 px
    with pytest.raises(ImageTooLarge):
        decode_image(data, max_pixels=20_000)
    assert decode_image(data, max_pixels=24_000).shape == (120, 200, 3)


def test_opencv_own_limit_is_set() -> None:
    import os

    assert int(os.environ["OPENCV_IO_MAX_IMAGE_PIXELS"]) >= images.DEFAULT_MAX_PIXELS


@pytest.mark.parametrize("fmt", ["PNG", "WEBP"])
def test_exif_orientation_is_applied_to_png_and_webp_too(fmt: str) -> None:
    exif = Image.Exif()
    exif[0x0112] = 8  # 8 = rotate 90 deg counter-clockwise to display
    buf = io.BytesIO()
    Image.fromarray(_pattern()[:, :, ::-1]).save(buf, fmt, exif=exif.tobytes(), lossless=True)
    out = decode_image(buf.getvalue())
    assert out.shape == (200, 120, 3)
    # after a counter-clockwise turn the top-left block sits at the bottom-left
    assert out[195, 5, 2] > 200 and out[195, 5, 0] < 80


# --- integrity by decoding, decoded sizes, the memory budget ---------------------------------------


def _photo(h: int = 1000, w: int = 1400) -> np.ndarray:
    """A photo-like picture (smooth light, texture, a red mark at top-left): 1.4 MP by default."""
    rng = np.random.default_rng(5)
    y, x = np.mgrid[0:h, 0:w]
    light = np.stack([x * 200 / w + 30, y * 200 / h + 30, (x + y) * 100 / (w + h) + 60], -1)
    img = np.clip(light + rng.normal(0, 12, (h, w, 3)), 0, 255).astype(np.uint8)
    img[: h // 5, : w // 5] = (0, 0, 255)
    return img


@pytest.fixture(scope="module")
def photo_jpeg() -> bytes:
    return _encode(_photo(), ".jpg", cv2.IMWRITE_JPEG_QUALITY, 90)


def test_jpeg_cut_in_half_with_end_marker_appended_is_corrupt(photo_jpeg: bytes) -> None:
    cut = photo_jpeg[: len(photo_jpeg) // 2] + b"\xff\xd9"  # has an EOI, so a marker search passes it
    with pytest.raises(CorruptImage, match="truncated"):
        decode_image(cut)
    with pytest.raises(CorruptImage):  # also when only a reduced picture is asked for
        decode_image(cut, reduce=8)


def test_jpeg_whose_frame_header_claims_more_than_its_data_is_refused(photo_jpeg: bytes) -> None:
    lying = bytearray(photo_jpeg)
    sof = lying.find(b"\xff\xc0")
    lying[sof + 5 : sof + 9] = struct.pack(">HH", 7071, 7071)  # 1.4 MP of data claiming 50.0 MP
    assert probe_image(bytes(lying)).pixels == 7071 * 7071  # the header alone believes it
    budget = MemoryBudget(1 << 30)
    with pytest.raises(CorruptImage, match="could not be decoded"):
        decode_photo(bytes(lying), budget=budget)
    assert budget.in_use == 0  # what the decode reserved is given back on refusal


def test_progressive_jpeg_cut_at_a_scan_boundary_is_corrupt() -> None:
    buf = io.BytesIO()
    Image.fromarray(_photo(200, 300)[:, :, ::-1]).save(buf, "JPEG", quality=90, progressive=True)
    data = buf.getvalue()
    scans = [m.start() for m in re.finditer(rb"\xff\xda", data)]
    assert len(scans) > 4
    assert decode_image(data).shape == (200, 300, 3)
    # libjpeg decodes the first scans alone without a warning: a coarse picture, not a complete one
    with pytest.raises(CorruptImage, match="scans end before the picture is complete"):
        decode_image(data[: scans[3]] + b"\xff\xd9")


def _png_chunks(w: int, h: int, rows: bytes) -> bytes:
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
            + _png_chunk(b"IDAT", rows) + _png_chunk(b"IEND", b""))


def test_png_with_well_formed_chunks_but_missing_rows_is_corrupt() -> None:
    img = _photo(80, 120)
    raw = b"".join(b"\x00" + img[r, :, ::-1].tobytes() for r in range(80))
    z = zlib.compress(raw)
    assert decode_image(_png_chunks(120, 80, z)).shape == (80, 120, 3)
    with pytest.raises(CorruptImage, match="truncated"):  # the compressed rows cut, then IEND: CRCs all fine
        decode_image(_png_chunks(120, 80, z[: len(z) // 2]))
    with pytest.raises(CorruptImage, match="truncated"):  # a complete zlib stream of half the rows
        decode_image(_png_chunks(120, 80, zlib.compress(raw[: len(raw) // 2])))


@pytest.mark.parametrize("orientation", range(1, 9))
def test_intact_jpeg_decodes_to_opencvs_pixels_upright(orientation: int) -> None:
    pil = Image.fromarray(_photo(300, 420)[:, :, ::-1])
    exif = Image.Exif()
    exif[0x0112] = orientation
    buf = io.BytesIO()
    pil.save(buf, "JPEG", quality=90, exif=exif.tobytes())
    data = np.frombuffer(buf.getvalue(), np.uint8)
    for reduce, flag in ((1, cv2.IMREAD_COLOR), (2, cv2.IMREAD_REDUCED_COLOR_2), (8, cv2.IMREAD_REDUCED_COLOR_8)):
        expected = cv2.imdecode(data, flag)  # OpenCV: its own libjpeg, its own EXIF handling
        got = decode_photo(data.tobytes(), reduce=reduce)
        assert got.image.shape == expected.shape
        diff = np.abs(got.image.astype(int) - expected)
        assert diff.max() <= 2 and diff.mean() < 0.05  # two libjpeg builds agree within rounding
        # the full size, upright: turned for orientations 5..8 (transposed), whatever the reduction
        assert (got.width, got.height) == ((300, 420) if orientation >= 5 else (420, 300))


def test_png_decodes_to_the_same_pixels_and_reports_its_decoded_size() -> None:
    img = _photo(90, 130)
    got = decode_photo(_encode(img, ".png"))
    assert np.array_equal(got.image, img)
    assert (got.format, got.width, got.height, got.info.pixels) == ("png", 130, 90, 130 * 90)


def test_a_decode_holds_its_share_of_the_budget_while_the_pixels_live(photo_jpeg: bytes) -> None:
    budget = MemoryBudget(1 << 30)
    photo = decode_photo(photo_jpeg, budget=budget, hold=3.0)
    assert photo.image.nbytes == 1000 * 1400 * 3
    assert budget.in_use == 3 * photo.image.nbytes
    reduced = decode_photo(photo_jpeg, budget=budget, reduce=4)
    assert budget.in_use == 3 * photo.image.nbytes + reduced.image.nbytes
    del photo, reduced
    gc.collect()
    assert budget.in_use == 0


def test_png_bomb_that_does_not_fit_the_budget_is_refused_before_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    bomb = _png_bomb(4000, 3000)  # 12 MP, 36 MB decoded, inside the pixel limit

    def no_decode(*_a: object, **_k: object) -> None:
        raise AssertionError("decoder must not run when the budget cannot hold it")

    monkeypatch.setattr(images.cv2, "imdecode", no_decode)
    with pytest.raises(ImageTooLarge, match="decode budget of 32 MB"):
        decode_photo(bomb, budget=MemoryBudget(32 * 1024 * 1024))
