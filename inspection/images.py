"""Safe image intake: sniff the type from magic bytes, check the pixel count in
the header before decoding, then decode with OpenCV (EXIF orientation applied).

Everything a phone or a hostile client can send ends in one of three errors
(``qc.errors``): ``UnsupportedImageType`` (not JPEG/PNG/WebP, with what it
actually is), ``ImageTooLarge`` (above the pixel limit, refused from the header
alone so a decompression bomb never allocates), ``CorruptImage`` (truncated or
undecodable). libjpeg happily "decodes" a truncated JPEG into grey padding, so
the end markers are checked here, not left to the decoder.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass

from qc.errors import CorruptImage, ImageTooLarge, UnsupportedImageType

DEFAULT_MAX_PIXELS = 50_000_000

# OpenCV's own ceiling (read once, lazily, by its image codecs): a second fence
# in case a header lies. It must be set before the first decode in the process.
_OPENCV_MAX_PIXELS = max(DEFAULT_MAX_PIXELS, int(os.environ.get("KIPIMO_MAX_PIXELS", "0") or 0))
os.environ.setdefault("OPENCV_IO_MAX_IMAGE_PIXELS", str(_OPENCV_MAX_PIXELS))

import cv2  # noqa: E402  (after the environment variable above)
import numpy as np  # noqa: E402

__all__ = ["DEFAULT_MAX_PIXELS", "ImageInfo", "decode_image", "probe_image"]

_HEIF_BRANDS = {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1"}
_HEIC_ADVICE = (
    "HEIC/HEIF photo (iPhone default) is not supported; send JPEG instead: on the iPhone set "
    "Settings > Camera > Formats > Most Compatible, or share/export the photo as JPEG"
)
_SOF_MARKERS = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


@dataclass(frozen=True)
class ImageInfo:
    format: str  # jpeg | png | webp
    width: int
    height: int

    @property
    def pixels(self) -> int:
        return self.width * self.height


def _describe_unknown(data: bytes) -> str:
    """Name what was received, so the message tells the sender what to change."""
    if not data:
        return "an empty file"
    head = data[:32]
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in _HEIF_BRANDS:
            return _HEIC_ADVICE
        if brand in (b"avif", b"avis"):
            return "an AVIF image (send JPEG, PNG or WebP)"
        return f"an ISO media file (brand {brand.decode('latin-1')!r}, e.g. a video)"
    known = [
        (b"GIF8", "a GIF image"),
        (b"BM", "a BMP image"),
        (b"II*\x00", "a TIFF image"),
        (b"MM\x00*", "a TIFF image"),
        (b"%PDF", "a PDF document"),
        (b"PK\x03\x04", "a ZIP archive"),
        (b"\x00\x00\x01\x00", "an ICO icon"),
        (b"<?xml", "an XML/SVG document"),
        (b"<svg", "an SVG drawing"),
    ]
    for magic, name in known:
        if head.startswith(magic):
            return name
    if head.startswith(b"RIFF"):
        return f"a RIFF file of type {head[8:12]!r}, not WebP"
    return f"unrecognised data starting with {head[:8].hex(' ')}"


def _jpeg_info(data: bytes) -> tuple[int, int, int]:
    """Width, height and offset of the first SOS of a JPEG, from its segments."""
    i, n = 2, len(data)
    size: tuple[int, int] | None = None
    while i + 4 <= n:
        if data[i] != 0xFF:
            raise CorruptImage(f"JPEG segment structure broken at byte {i}")
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            i += 2
            continue
        (length,) = struct.unpack(">H", data[i + 2 : i + 4])
        if length < 2 or i + 2 + length > n:
            raise CorruptImage("JPEG is truncated inside its header segments")
        if marker in _SOF_MARKERS:
            if length < 7:
                raise CorruptImage("JPEG frame header is too short")
            h, w = struct.unpack(">HH", data[i + 5 : i + 9])
            size = (w, h)
        if marker == 0xDA:  # start of scan: image data follows
            if size is None:
                raise CorruptImage("JPEG has image data but no frame header (SOF)")
            return size[0], size[1], i
        if marker == 0xD9:
            break
        i += 2 + length
    raise CorruptImage("JPEG is truncated: no image data (SOS) found")


def _png_info(data: bytes) -> tuple[int, int]:
    if len(data) < 33 or data[12:16] != b"IHDR":
        raise CorruptImage("PNG is truncated or has no IHDR header")
    w, h = struct.unpack(">II", data[16:24])
    return w, h


def _webp_info(data: bytes) -> tuple[int, int]:
    if len(data) < 30:
        raise CorruptImage("WebP is truncated inside its header")
    chunk = data[12:16]
    if chunk == b"VP8 ":
        if data[23:26] != b"\x9d\x01\x2a":
            raise CorruptImage("WebP (lossy) frame header is invalid")
        w, h = struct.unpack("<HH", data[26:30])
        return w & 0x3FFF, h & 0x3FFF
    if chunk == b"VP8L":
        if data[20] != 0x2F:
            raise CorruptImage("WebP (lossless) header is invalid")
        b = int.from_bytes(data[21:25], "little")
        return (b & 0x3FFF) + 1, ((b >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X":
        w = int.from_bytes(data[24:27], "little") + 1
        h = int.from_bytes(data[27:30], "little") + 1
        return w, h
    raise CorruptImage(f"WebP has an unknown first chunk {chunk!r}")


def probe_image(data: bytes) -> ImageInfo:
    """Type and size from the header alone; raises before any pixel is decoded."""
    if data[:3] == b"\xff\xd8\xff":
        w, h, sos = _jpeg_info(data)
        # The entropy-coded data must end with EOI (phones may append trailers after it).
        if data.rfind(b"\xff\xd9", sos) < 0:
            raise CorruptImage("JPEG is truncated: the end-of-image marker is missing")
        fmt = "jpeg"
    elif data[:8] == b"\x89PNG\r\n\x1a\n":
        w, h = _png_info(data)
        if data.rfind(b"IEND") < 0:
            raise CorruptImage("PNG is truncated: the IEND chunk is missing")
        fmt = "png"
    elif data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        w, h = _webp_info(data)
        (riff_size,) = struct.unpack("<I", data[4:8])
        if len(data) < riff_size + 8:
            raise CorruptImage(f"WebP is truncated: {len(data)} of {riff_size + 8} bytes")
        fmt = "webp"
    else:
        raise UnsupportedImageType(
            f"photo must be JPEG, PNG or WebP; received {_describe_unknown(data)}"
        )
    if w <= 0 or h <= 0:
        raise CorruptImage(f"{fmt.upper()} header declares an empty image ({w}x{h})")
    return ImageInfo(fmt, w, h)


_REDUCED = {1: cv2.IMREAD_COLOR, 2: cv2.IMREAD_REDUCED_COLOR_2,
            4: cv2.IMREAD_REDUCED_COLOR_4, 8: cv2.IMREAD_REDUCED_COLOR_8}


def decode_image(data: bytes, *, max_pixels: int = DEFAULT_MAX_PIXELS, reduce: int = 1,
                 info: ImageInfo | None = None) -> np.ndarray:
    """Decode a JPEG/PNG/WebP photo to BGR uint8 (H, W, 3), upright per EXIF.

    ``reduce`` (1, 2, 4, 8) decodes at 1/reduce of the size; for JPEG libjpeg
    does this while decoding (DCT scaling), which is several times faster.
    ``info``: the ``probe_image`` of these bytes when the caller already has it (probe once).
    """
    if reduce not in _REDUCED:
        raise ValueError(f"reduce must be one of 1, 2, 4, 8; got {reduce}")
    data = bytes(data)
    info = info if info is not None else probe_image(data)
    if info.pixels > max_pixels:
        raise ImageTooLarge(
            f"photo is {info.width}x{info.height} = {info.pixels / 1e6:.1f} MP, above the limit of "
            f"{max_pixels / 1e6:g} MP; resize it on the phone (e.g. 3000 px long side)"
        )
    if info.pixels > _OPENCV_MAX_PIXELS:
        raise ImageTooLarge(
            f"photo is {info.pixels / 1e6:.1f} MP, above this process's decoder limit of "
            f"{_OPENCV_MAX_PIXELS / 1e6:g} MP (raise KIPIMO_MAX_PIXELS)"
        )
    buf = np.frombuffer(data, dtype=np.uint8)
    try:
        img = cv2.imdecode(buf, _REDUCED[reduce])
    except cv2.error as exc:
        raise CorruptImage(f"{info.format.upper()} could not be decoded: {exc.err}") from None
    if img is None or img.size == 0:
        raise CorruptImage(f"{info.format.upper()} could not be decoded (corrupt data)")
    if img.ndim == 2:
        img = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
    return img
