"""The service's decode step: the size each slot is decoded at, and the budget's size."""

from __future__ import annotations

import os

import cv2
import numpy as np
import pytest

from qc.standards import PhotoSlot
from service.core.decoding import decode_budget, decode_budget_bytes, decode_for_slot, memory_limit_bytes
from service.settings import Settings

_MB = 1024 * 1024


@pytest.fixture(scope="module")
def photo_4000x3000() -> bytes:
    rng = np.random.default_rng(2)
    img = cv2.resize(rng.integers(40, 220, (30, 40, 3), dtype=np.uint8), (4000, 3000))
    ok, enc = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 80])
    assert ok
    return enc.tobytes()


@pytest.mark.parametrize("slot,vision,shape", [
    (PhotoSlot(id="top", prompt="On the card"), True, (3000, 4000)),  # measurement needs every pixel
    (PhotoSlot(id="gel", prompt="Gel", card=False), True, (1500, 2000)),  # long side kept >= 1600
    (PhotoSlot(id="top", prompt="On the card"), False, (375, 500)),  # vision off: verified at 1/8
    (None, True, (375, 500)),  # a slot the standard lacks (refused later): verified at 1/8
])
def test_each_photo_is_decoded_at_the_size_its_slot_needs(photo_4000x3000, slot, vision, shape) -> None:
    settings = Settings(vision=vision, decode_memory_mb=512)
    photo = decode_for_slot(photo_4000x3000, slot, settings=settings)
    assert photo.image.shape[:2] == shape
    assert (photo.width, photo.height) == (4000, 3000)  # the full size, whatever was decoded


def test_the_budget_is_the_setting_when_given() -> None:
    assert decode_budget_bytes(Settings(decode_memory_mb=96)) == 96 * _MB
    assert decode_budget(Settings(decode_memory_mb=96)).capacity == 96 * _MB
    assert decode_budget(Settings(decode_memory_mb=96)) is decode_budget(Settings(decode_memory_mb=96))


def test_the_default_budget_is_a_share_of_memory_that_still_fits_one_photo_at_the_pixel_limit() -> None:
    physical = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    assert 0 < memory_limit_bytes() <= physical
    assert decode_budget_bytes(Settings(max_pixels=1_000_000)) <= memory_limit_bytes() // 2
    # a 50 MP photo on a card slot holds 3 x its 150 MB while inspected: the default never refuses it
    assert decode_budget_bytes(Settings(max_pixels=50_000_000)) >= 3 * 3 * 50_000_000
