"""Safe image intake: sniff the type from magic bytes, check the pixel count in
the header before decoding, then decode strictly, within a memory budget.

Everything a phone or a hostile client can send ends in one of these errors
(``qc.errors``): ``UnsupportedImageType`` (not JPEG/PNG/WebP, with what it
actually is), ``ImageTooLarge`` (above the pixel limit, refused from the header
alone so a decompression bomb never allocates), ``CorruptImage`` (truncated or
undecodable), ``ServerBusy`` (the decode budget stayed full; retry).

Integrity is judged by decoding, never by looking for end markers (a JPEG cut in
half with ``FF D9`` appended has one). JPEG is decoded by libjpeg-turbo
(``simplejpeg``) with its warnings as errors: "premature end of data", a header
that claims more rows than the data holds, extraneous bytes all refuse the photo,
where a lenient decoder pads the missing rows with grey. A progressive JPEG must
also carry every scan its coefficients need (one cut at a scan boundary and given
an EOI decodes cleanly but blurred). PNG and WebP go through OpenCV (libpng,
libwebp), which refuse missing image data; Pillow is not used, as it accepts a
PNG whose rows stop short.

The width and height a ``DecodedPhoto`` reports are what the decoder produced
(upright, full size), never the header's claim alone.
"""

from __future__ import annotations

import math
import os
import re
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
import simplejpeg  # noqa: E402

from inspection.budget import Lease, MemoryBudget  # noqa: E402

__all__ = ["DEFAULT_MAX_PIXELS", "DecodedPhoto", "ImageInfo", "decode_image", "decode_photo", "decode_reduction",
           "probe_image"]

_HEIF_BRANDS = {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1"}
_HEIC_ADVICE = (
    "HEIC/HEIF photo (iPhone default) is not supported; send JPEG instead: on the iPhone set "
    "Settings > Camera > Formats > Most Compatible, or share/export the photo as JPEG"
)
_SOF_MARKERS = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
_PROGRESSIVE_SOF = {0xC2, 0xC6, 0xCA, 0xCE}
_REDUCTIONS = (1, 2, 4, 8)
# Photos off the card (judged by the quality gate and models only) need no more than this long side.
_MODEL_ONLY_LONG_SIDE = 1600
_CHANNELS = 3  # every decode ends as BGR uint8


@dataclass(frozen=True)
class ImageInfo:
    format: str  # jpeg | png | webp
    width: int
    height: int

    @property
    def pixels(self) -> int:
        return self.width * self.height


@dataclass(frozen=True)
class DecodedPhoto:
    """A decoded photo: BGR uint8 (H, W, 3), upright, at 1/``reduce`` of its size.

    ``width``/``height``: its full upright size, verified by the decode (every row the
    header claims was decoded from the data, or the decode failed).
    """

    image: np.ndarray
    format: str
    width: int
    height: int
    reduce: int = 1

    @property
    def pixels(self) -> int:
        return self.width * self.height

    @property
    def info(self) -> ImageInfo:
        return ImageInfo(self.format, self.width, self.height)


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


@dataclass(frozen=True)
class _JpegHeader:
    width: int
    height: int
    sos: int  # offset of the first start-of-scan marker
    progressive: bool
    components: tuple[tuple[int, int, int], ...]  # (id, horizontal, vertical sampling factor)
    orientation: int  # EXIF orientation 1..8 (1: as stored)


def _exif_orientation(segment: bytes) -> int:
    """The orientation tag (0x0112) of IFD0 in an APP1 Exif payload; 1 when absent or malformed."""
    if not segment.startswith(b"Exif\x00\x00") or len(segment) < 14:
        return 1
    tiff = segment[6:]
    order = {b"II": "<", b"MM": ">"}.get(tiff[:2])
    if order is None:
        return 1
    try:
        (ifd,) = struct.unpack(order + "I", tiff[4:8])
        (count,) = struct.unpack(order + "H", tiff[ifd : ifd + 2])
        for k in range(count):
            entry = tiff[ifd + 2 + 12 * k : ifd + 14 + 12 * k]
            tag, kind = struct.unpack(order + "HH", entry[:4])
            if tag == 0x0112 and kind == 3:  # SHORT, stored in the first two value bytes
                (value,) = struct.unpack(order + "H", entry[8:10])
                return value if 1 <= value <= 8 else 1
    except struct.error:
        return 1
    return 1


def _jpeg_header(data: bytes) -> _JpegHeader:
    """Frame size, components, EXIF orientation and first SOS of a JPEG, from its segments."""
    i, n = 2, len(data)
    frame: tuple[int, int, bool, tuple[tuple[int, int, int], ...]] | None = None
    orientation = 0
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
        body = data[i + 4 : i + 2 + length]
        if marker in _SOF_MARKERS:
            if length < 8 or len(body) < 6 + 3 * body[5]:
                raise CorruptImage("JPEG frame header is too short")
            h, w = struct.unpack(">HH", body[1:5])
            comps = tuple((body[6 + 3 * k], body[7 + 3 * k] >> 4, body[7 + 3 * k] & 15) for k in range(body[5]))
            frame = (w, h, marker in _PROGRESSIVE_SOF, comps)
        elif marker == 0xE1 and not orientation and body.startswith(b"Exif\x00\x00"):
            orientation = _exif_orientation(body)  # the first Exif segment counts, as in OpenCV
        if marker == 0xDA:  # start of scan: image data follows
            if frame is None:
                raise CorruptImage("JPEG has image data but no frame header (SOF)")
            return _JpegHeader(frame[0], frame[1], i, frame[2], frame[3], orientation or 1)
        if marker == 0xD9:
            break
        i += 2 + length
    raise CorruptImage("JPEG is truncated: no image data (SOS) found")


# A marker inside entropy-coded data: FF followed by neither a stuffed 00, a restart marker, nor more fill.
_MARKER = re.compile(rb"\xff[\x01-\xcf\xd8-\xfe]")


def _scans_cover_every_coefficient(data: bytes, header: _JpegHeader) -> bool:
    """Whether the scans bring every coefficient of every component to full precision (Al = 0).

    A sequential JPEG has that in each scan; a progressive one only once its last
    refinement scan arrived. libjpeg decodes a progressive JPEG that stops after any
    complete scan without a warning (the picture is merely coarse), so this is checked here.
    """
    need = {cid: set(range(64)) for cid, _, _ in header.components}
    i, n = header.sos, len(data)
    while i + 4 <= n and data[i] == 0xFF:
        marker = data[i + 1]
        if marker == 0xD9:
            break
        if marker == 0xFF:
            i += 1
            continue
        (length,) = struct.unpack(">H", data[i + 2 : i + 4])
        if marker == 0xDA:
            body = data[i + 4 : i + 2 + length]
            ns = body[0] if body else 0
            if len(body) < 1 + 2 * ns + 3:
                return False
            ss, se, al = body[1 + 2 * ns], body[2 + 2 * ns], body[3 + 2 * ns] & 15
            if al == 0:
                for k in range(ns):
                    need.get(body[1 + 2 * k], set()).difference_update(range(ss, min(se, 63) + 1))
            found = _MARKER.search(data, i + 2 + length)  # skip the entropy-coded data
            if found is None:
                break
            i = found.start()
        else:
            i += 2 + length
    return not any(need.values())


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
    """Type and declared size from the header alone; raises before any pixel is decoded.

    The size is the header's claim: only ``decode_photo`` establishes that the data holds it.
    """
    if data[:3] == b"\xff\xd8\xff":
        jpeg = _jpeg_header(data)
        w, h, fmt = jpeg.width, jpeg.height, "jpeg"
    elif data[:8] == b"\x89PNG\r\n\x1a\n":
        w, h = _png_info(data)
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


def _check_pixels(w: int, h: int, max_pixels: int) -> None:
    pixels = w * h
    if pixels > max_pixels:
        raise ImageTooLarge(
            f"photo is {w}x{h} = {pixels / 1e6:.1f} MP, above the limit of "
            f"{max_pixels / 1e6:g} MP; resize it on the phone (e.g. 3000 px long side)"
        )
    if pixels > _OPENCV_MAX_PIXELS:
        raise ImageTooLarge(
            f"photo is {pixels / 1e6:.1f} MP, above this process's decoder limit of "
            f"{_OPENCV_MAX_PIXELS / 1e6:g} MP (raise KIPIMO_MAX_PIXELS)"
        )


def _orient(image: np.ndarray, orientation: int) -> np.ndarray:
    """Apply an EXIF orientation (1..8) the way OpenCV's imread does (transpose, then flip)."""
    if orientation == 2:
        return cv2.flip(image, 1)
    if orientation == 3:
        return cv2.rotate(image, cv2.ROTATE_180)
    if orientation == 4:
        return cv2.flip(image, 0)
    if orientation == 6:  # transpose + horizontal flip
        return cv2.rotate(image, cv2.ROTATE_90_CLOCKWISE)
    if orientation == 8:  # transpose + vertical flip
        return cv2.rotate(image, cv2.ROTATE_90_COUNTERCLOCKWISE)
    if orientation in (5, 7):
        t = cv2.transpose(image)
        return t if orientation == 5 else cv2.flip(t, -1, dst=t)
    return image


def _jpeg_coefficient_bytes(header: _JpegHeader) -> int:
    """What libjpeg buffers for a progressive JPEG: every DCT coefficient (2 bytes) of every component."""
    if not header.progressive:
        return 0
    hmax = max(c[1] for c in header.components) or 1
    vmax = max(c[2] for c in header.components) or 1
    total = 0
    for _, hs, vs in header.components:
        total += math.ceil(header.width * hs / hmax / 8) * math.ceil(header.height * vs / vmax / 8) * 64 * 2
    return total


def _reserve(budget: MemoryBudget | None, peak: int, keep: int) -> Lease | None:
    """Reserve what the decode needs at its peak, or what will be kept if that is more."""
    return budget.reserve(max(peak, keep), what="this photo") if budget is not None else None


def _keep(lease: Lease | None, image: np.ndarray, hold: float) -> None:
    """Give back the intermediates; keep ``hold`` x the output while the array lives."""
    if lease is not None:
        lease.shrink(math.ceil(hold * image.nbytes))
        lease.bind(image)


def _decode_jpeg(data: bytes, reduce: int, max_pixels: int, budget: MemoryBudget | None,
                 hold: float) -> DecodedPhoto:
    header = _jpeg_header(data)
    try:  # the decoder's own reading of the frame size: the one it will allocate for
        h, w, _colour, _sub = simplejpeg.decode_jpeg_header(data)
    except ValueError as exc:
        raise CorruptImage(f"JPEG could not be decoded: its header is corrupt ({exc})") from None
    _check_pixels(w, h, max_pixels)
    if not _scans_cover_every_coefficient(data, header):
        raise CorruptImage("JPEG is truncated: its scans end before the picture is complete; "
                           "send the original photo again")
    oh, ow = -(-h // reduce), -(-w // reduce)  # libjpeg's scaled size rounds up
    out = oh * ow * _CHANNELS
    turned = out if header.orientation != 1 else 0
    lease = _reserve(budget, out + turned + _jpeg_coefficient_bytes(header), math.ceil(hold * out))
    try:
        try:
            image = simplejpeg.decode_jpeg(data, colorspace="BGR", min_height=oh, min_width=ow,
                                           min_factor=reduce, strict=True)
        except ValueError as exc:
            raise CorruptImage(f"JPEG could not be decoded: {exc} (the file is truncated or corrupt; "
                               "send the original photo again)") from None
        if image.shape[:2] != (oh, ow):  # cannot happen with libjpeg's M/8 scaling; never hand on a surprise
            raise CorruptImage(f"JPEG decoded to {image.shape[1]}x{image.shape[0]}, expected {ow}x{oh}")
        image = _orient(image, header.orientation)
    except BaseException:
        if lease is not None:
            lease.release()
        raise
    _keep(lease, image, hold)
    full_w, full_h = (h, w) if header.orientation >= 5 else (w, h)
    return DecodedPhoto(image, "jpeg", full_w, full_h, reduce)


def _decode_other(data: bytes, info: ImageInfo, reduce: int, max_pixels: int,
                  budget: MemoryBudget | None, hold: float) -> DecodedPhoto:
    """PNG and WebP through OpenCV, which applies EXIF orientation itself; reduced by resizing."""
    _check_pixels(info.width, info.height, max_pixels)
    full = info.pixels * _CHANNELS
    out = (info.width // reduce) * (info.height // reduce) * _CHANNELS
    # OpenCV's decode peaks at twice the picture (measured: bench/decode_bombs.py), then the reduced copy
    lease = _reserve(budget, 2 * full + (out if reduce > 1 else 0), math.ceil(hold * out))
    try:
        try:
            image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
        except cv2.error as exc:
            raise CorruptImage(f"{info.format.upper()} could not be decoded: {exc.err}") from None
        if image is None or image.size == 0:
            raise CorruptImage(f"{info.format.upper()} could not be decoded: its image data is truncated or "
                               "corrupt; send the original photo again")
        if image.ndim == 2:
            image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
        full_h, full_w = image.shape[:2]
        if {full_w, full_h} != {info.width, info.height}:
            raise CorruptImage(f"{info.format.upper()} decoded to {full_w}x{full_h}, but its header says "
                               f"{info.width}x{info.height}")
        if reduce > 1:  # as OpenCV's IMREAD_REDUCED_* does for these formats
            image = cv2.resize(image, (full_w // reduce, full_h // reduce), interpolation=cv2.INTER_LINEAR_EXACT)
    except BaseException:
        if lease is not None:
            lease.release()
        raise
    _keep(lease, image, hold)
    return DecodedPhoto(image, info.format, full_w, full_h, reduce)


def decode_reduction(width: int, height: int, *, card: bool) -> int:
    """The 1/n a photo is decoded at for its checks: full size on the card (measurement needs every
    pixel), else the largest power of two (up to 8) that keeps the long side at ``_MODEL_ONLY_LONG_SIDE``."""
    reduce = 1
    if not card:
        long_side = max(width, height)
        while reduce < 8 and long_side / (reduce * 2) >= _MODEL_ONLY_LONG_SIDE:
            reduce *= 2
    return reduce


def decode_photo(data: bytes, *, max_pixels: int = DEFAULT_MAX_PIXELS, reduce: int = 1,
                 info: ImageInfo | None = None, budget: MemoryBudget | None = None,
                 hold: float = 1.0) -> DecodedPhoto:
    """Decode a JPEG/PNG/WebP photo strictly to BGR uint8, upright per EXIF.

    ``reduce`` (1, 2, 4, 8) decodes at 1/reduce of the size; for JPEG libjpeg
    does this while decoding (DCT scaling), which is several times faster and
    allocates only the reduced picture.
    ``info``: the ``probe_image`` of these bytes when the caller already has it (probe once).
    ``budget``: the process's decode memory budget; the decode reserves its peak before it
    allocates, then keeps ``hold`` x the output's bytes for as long as the decoded array lives
    (``hold`` > 1 leaves room for the copies the caller's work on the array will make).
    """
    if reduce not in _REDUCTIONS:
        raise ValueError(f"reduce must be one of 1, 2, 4, 8; got {reduce}")
    data = bytes(data)
    info = info if info is not None else probe_image(data)
    if info.format == "jpeg":
        return _decode_jpeg(data, reduce, max_pixels, budget, hold)
    return _decode_other(data, info, reduce, max_pixels, budget, hold)


def decode_image(data: bytes, *, max_pixels: int = DEFAULT_MAX_PIXELS, reduce: int = 1,
                 info: ImageInfo | None = None, budget: MemoryBudget | None = None) -> np.ndarray:
    """``decode_photo(...).image``: the BGR array alone."""
    return decode_photo(data, max_pixels=max_pixels, reduce=reduce, info=info, budget=budget).image
