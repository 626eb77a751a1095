"""Decoding the QR codes `qc tokens create --qr` writes, as a phone's camera app would."""

from __future__ import annotations

from pathlib import Path

import cv2


def decode_qr(path: Path) -> str:
    """The text in the QR code PNG at ``path`` ('' if none is found at any scale)."""
    image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    for scale in (4, 3, 6, 2, 1, 8):
        big = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST)
        text, _, _ = cv2.QRCodeDetector().detectAndDecode(big)
        if text:
            return text
    return ""
