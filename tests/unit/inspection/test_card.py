"""Calibration card: the printed file is at exact physical scale; the detector
recovers scale and tilt of known synthetic views."""

from __future__ import annotations

import dataclasses
import re
import zlib

import cv2
import numpy as np
import pytest

from demo.scenes import Camera, Scene, render_scene
from inspection.card import PAPERS, card_layout, card_pdf, detect_card, render_card

MM_PER_INCH = 25.4


def _aruco_corners(page: np.ndarray) -> dict[int, np.ndarray]:
    """Markers found by plain OpenCV ArUco (not our detector), corners refined."""
    det = cv2.aruco.ArucoDetector(cv2.aruco.getPredefinedDictionary(cv2.aruco.DICT_4X4_100))
    corners, ids, _ = det.detectMarkers(page)
    out = {}
    for c, i in zip(corners, ids.ravel(), strict=True):
        pts = c.reshape(-1, 1, 2).astype(np.float32)
        cv2.cornerSubPix(page, pts, (5, 5), (-1, -1), (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 50, 0.01))
        out[int(i)] = pts.reshape(4, 2).astype(np.float64)
    return out


@pytest.mark.parametrize("paper,dpi", [("a4", 300), ("letter", 200), ("a5", 300)])
def test_rendered_markers_sit_at_their_physical_positions(paper: str, dpi: int) -> None:
    page, layout, origin = render_card(paper, dpi)
    pw, ph = PAPERS[paper]
    assert page.shape == (round(ph * dpi / MM_PER_INCH), round(pw * dpi / MM_PER_INCH))
    found = _aruco_corners(page)
    assert set(found) == layout.ids  # every marker printed and decodable
    px_per_mm = dpi / MM_PER_INCH
    for mid, corners in found.items():
        expected_mm = layout.marker_corners(mid) + np.array(origin)
        expected_px = expected_mm * px_per_mm - 0.5  # OpenCV: pixel centres at integers
        assert np.abs(corners - expected_px).max() < 0.25, mid
    # scale between the two farthest markers, independent of the origin
    ids = sorted(found)
    a, b = found[ids[0]][0], found[ids[-1]][2]
    ea, eb = layout.marker_corners(ids[0])[0], layout.marker_corners(ids[-1])[2]
    measured_mm = np.linalg.norm(b - a) / px_per_mm
    assert measured_mm == pytest.approx(np.linalg.norm(eb - ea), abs=0.03)


@pytest.mark.parametrize("paper,dpi", [("a4", 300), ("a5", 600)])
def test_ruler_ticks_are_one_hundred_millimetres_apart(paper: str, dpi: int) -> None:
    page, layout, origin = render_card(paper, dpi)
    px_per_mm = dpi / MM_PER_INCH
    rx0, rx1, ry = layout.ruler
    # 3 mm above the baseline only the 10 mm ticks (4 mm tall) reach
    row = page[int(round((origin[1] + ry - 3.0) * px_per_mm))].astype(np.float64)
    x_lo = int((origin[0] + rx0 - 2) * px_per_mm)
    x_hi = int((origin[0] + rx1 + 2) * px_per_mm)
    ink = 255.0 - row[x_lo:x_hi]
    labels, n = _runs(ink > 0)
    assert n == 11
    xs = np.arange(x_lo, x_hi) + 0.5  # pixel centres, continuous coordinates
    centres = [float(np.sum(xs[labels == k] * ink[labels == k]) / np.sum(ink[labels == k])) for k in range(1, n + 1)]
    spacing_mm = np.diff(centres) / px_per_mm
    assert spacing_mm == pytest.approx(np.full(10, 10.0), abs=0.01)
    assert (centres[-1] - centres[0]) / px_per_mm == pytest.approx(100.0, abs=0.01)
    assert centres[0] / px_per_mm == pytest.approx(origin[0] + rx0, abs=0.01)


def _runs(mask: np.ndarray) -> tuple[np.ndarray, int]:
    labels = np.zeros(len(mask), int)
    n = 0
    for i, v in enumerate(mask):
        if v and (i == 0 or not mask[i - 1]):
            n += 1
        if v:
            labels[i] = n
    return labels, n


def test_pdf_page_is_the_paper_and_the_image_prints_at_its_dpi() -> None:
    dpi = 300
    pdf = card_pdf("a4", dpi)
    assert pdf.startswith(b"%PDF-1.4") and pdf.rstrip().endswith(b"%%EOF")
    media = [float(v) for v in re.search(rb"/MediaBox \[([^\]]+)\]", pdf).group(1).split()]
    assert media[2] / 72 * MM_PER_INCH == pytest.approx(210.0, abs=0.01)
    assert media[3] / 72 * MM_PER_INCH == pytest.approx(297.0, abs=0.01)
    w = int(re.search(rb"/Width (\d+)", pdf).group(1))
    h = int(re.search(rb"/Height (\d+)", pdf).group(1))
    cm = [float(v) for v in re.search(rb"q ([\d. -]+) cm", pdf).group(1).split()]
    # the image's drawn size in points equals its pixel count at 300 dpi
    assert cm[0] == pytest.approx(w / dpi * 72, rel=1e-6) and cm[3] == pytest.approx(h / dpi * 72, rel=1e-6)
    # the embedded pixels are lossless and hold the markers at their physical places
    start = pdf.index(b"stream\n") + len(b"stream\n")
    length = int(re.search(rb"/Length (\d+) >>\nstream", pdf).group(1))
    img = np.frombuffer(zlib.decompress(pdf[start : start + length]), np.uint8).reshape(h, w)
    layout = card_layout("a4")
    found = _aruco_corners(img)
    assert set(found) == layout.ids
    # page position (mm from the page's top-left) of marker corners, through the PDF placement
    px_mm = MM_PER_INCH / dpi
    off_x = cm[4] / 72 * MM_PER_INCH
    off_y = (media[3] - cm[5] - cm[3]) / 72 * MM_PER_INCH  # PDF y runs upwards
    card_origin = ((210 - layout.width) / 2, (297 - layout.height) / 2)
    for mid, corners in found.items():
        page_mm = (corners + 0.5) * px_mm + np.array([off_x, off_y])
        assert np.abs(page_mm - (layout.marker_corners(mid) + card_origin)).max() < 0.05


def test_layouts_fit_their_paper_and_keep_the_ruler_clear() -> None:
    for paper, (pw, ph) in PAPERS.items():
        lay = card_layout(paper)
        assert lay.width <= pw - 10 and lay.height <= ph - 10
        rx0, rx1, ry = lay.ruler
        assert rx1 - rx0 == pytest.approx(100.0)
        s = lay.marker_size
        for _mid, x, y in lay.markers:
            overlaps_ruler = x < rx1 and x + s > rx0 and y < ry + 1 and y + s > ry - 5
            assert not overlaps_ruler
            ax0, ay0, ax1, ay1 = lay.area
            assert x + s <= ax0 or x >= ax1 or y + s <= ay0 or y >= ay1  # markers outside the area
    ids = [card_layout(p).ids for p in PAPERS]
    assert not (ids[0] & ids[1]) and not (ids[1] & ids[2]) and not (ids[0] & ids[2])


@pytest.mark.parametrize("tilt", [0.0, 15.0, 30.0])
def test_detector_recovers_scale_and_tilt_of_a_known_view(tilt: float) -> None:
    cam = Camera(megapixels=3, tilt=tilt, tilt_axis=30.0, roll=5.0, blur=0.6, noise=1.5)
    image, card_to_img = render_scene(Scene(None, cam, "a4", seed=3))
    det = detect_card(image)
    assert det.found and det.layout is not None and det.layout.card_id == "KIPIMO-A4-1"
    assert det.markers_found >= 9
    assert det.reprojection_px < 0.5
    assert det.tilt_deg == pytest.approx(tilt, abs=1.5)
    # the fitted homography maps the measuring area's corners where the camera put them
    x0, y0, x1, y1 = det.layout.area
    pts = np.array([[[x0, y0]], [[x1, y0]], [[x1, y1]], [[x0, y1]]], np.float64)
    truth = cv2.perspectiveTransform(pts, card_to_img)
    got = cv2.perspectiveTransform(pts, det.inverse)
    assert np.abs(got - truth).max() < 0.5


def test_other_paper_sizes_are_recognised_by_their_marker_ids() -> None:
    cam = Camera(megapixels=3, tilt=10.0, blur=0.6)
    for paper in ("letter", "a5"):
        det = detect_card(render_scene(Scene(None, cam, paper, seed=1))[0])
        assert det.found and det.layout is not None and det.layout.paper == paper


def test_photo_without_card_finds_nothing() -> None:
    rng = np.random.default_rng(0)
    image = cv2.GaussianBlur(rng.integers(0, 255, (1200, 1600, 3), dtype=np.uint8), (0, 0), 3)
    det = detect_card(image)
    assert not det.found and det.markers_found == 0


def test_scene_camera_is_a_true_pinhole() -> None:
    """Guards the generator the other tests rely on: its homography has a pure rotation."""
    cam = dataclasses.replace(Camera(megapixels=3), tilt=25.0, focal=0.8)
    from inspection.card import viewing_tilt

    _, card_to_img = render_scene(Scene(None, cam, "a4"))
    assert viewing_tilt(card_to_img, (2000, 1500)) == pytest.approx(25.0, abs=0.2)


def test_pdf_cross_reference_table_points_at_its_objects() -> None:
    pdf = card_pdf("a5", 150)
    startxref = int(re.search(rb"startxref\n(\d+)\n%%EOF", pdf).group(1))
    assert pdf[startxref:].startswith(b"xref\n")
    header = re.match(rb"xref\n0 (\d+)\n", pdf[startxref:])
    count = int(header.group(1))
    entries = pdf[startxref + header.end() :].split(b"\n")[:count]
    assert entries[0].startswith(b"0000000000 65535 f")
    for i, line in enumerate(entries[1:], start=1):
        offset = int(line[:10])
        assert pdf[offset:].startswith(f"{i} 0 obj".encode())
