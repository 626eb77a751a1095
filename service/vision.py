"""The one place the service asks ``inspection`` about a submitted photo.

PLACEHOLDER until the vision capability lands: it only checks that the bytes
decode. The vision work replaces the body (same signature).
"""

from __future__ import annotations

from dataclasses import dataclass

from qc.findings import PhotoFindings
from service.settings import Settings


@dataclass(frozen=True)
class PhotoInspection:
    findings: PhotoFindings
    overlay_png: bytes | None  # annotated picture for the technician, if any


def inspect_photo(data: bytes, slot: object, *, settings: Settings) -> PhotoInspection:
    """Decode and inspect one photo for ``slot`` (a ``qc.standards.PhotoSlot``).

    Raises ``qc.errors.ImageRejected`` subclasses for files that are not usable images.
    """
    from inspection.images import decode_image  # noqa: PLC0415

    decode_image(data, max_pixels=settings.max_pixels)
    return PhotoInspection(findings=PhotoFindings(slot=getattr(slot, "id")), overlay_png=None)
