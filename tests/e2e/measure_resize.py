"""Measure what the app's phone-side resize does to a 12 MP card photo (not a test).

Runs the app's own ``js/photo.js`` in Chromium on a rendered 4000 x 3000 photo of a
part on the calibration card (bench/scenes.py), for a few capture settings, and
reports the upload size and the card's scale found by ``inspection.card`` in the
re-encoded photo. Usage::

    .venv/bin/python -m tests.e2e.measure_resize
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from bench.scenes import Camera, Part, Scene, encode_jpeg, render_scene
from inspection.card import card_layout, detect_card
from inspection.images import decode_image
from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS

APP = Path(__file__).resolve().parents[2] / "service" / "web" / "app"
SETTINGS = ((3000, 0.9), (2400, 0.9), (2000, 0.85), (1600, 0.85))

PREPARE = """async ([longSide, quality]) => {
  const m = await import('/js/photo.js');
  const p = await m.preparePhoto(document.getElementById('f').files[0], {long_side: longSide, jpeg_quality: quality});
  return {w: p.width, h: p.height, data: Array.from(new Uint8Array(await p.blob.arrayBuffer()))};
}"""


def main() -> None:
    from playwright.sync_api import sync_playwright  # noqa: PLC0415

    x0, y0, x1, y1 = card_layout("a4").area
    part = Part("rect", (x0 + x1) / 2, (y0 + y1) / 2, 80.0, 30.0, angle=5.0)
    image, _ = render_scene(Scene(part, Camera(megapixels=12, blur=0.8, noise=3.0), seed=1))
    original = encode_jpeg(image, 92)
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as pw:
        photo = Path(tmp) / "photo.jpg"
        photo.write_bytes(original)
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page()

        def serve(route) -> None:  # noqa: ANN001 - the app's modules from disk, a file input otherwise
            rel = route.request.url.split("kipimo.test/", 1)[1]
            path = APP / rel
            if rel and path.is_file():
                route.fulfill(body=path.read_bytes(), content_type="text/javascript")
            else:
                route.fulfill(body="<input type=file id=f>", content_type="text/html")

        page.route("http://kipimo.test/**", serve)
        page.goto("http://kipimo.test/")
        page.set_input_files("#f", str(photo))
        print(f"original: {image.shape[1]}x{image.shape[0]}, {len(original) / 1e6:.2f} MB, "
              f"card {detect_card(image).px_per_mm:.2f} px/mm")
        for long_side, quality in SETTINGS:
            out = page.evaluate(PREPARE, [long_side, quality])
            data = bytes(out["data"])
            scale = detect_card(decode_image(data)).px_per_mm
            print(f"long_side {long_side}, quality {quality}: {out['w']}x{out['h']}, {len(data) / 1e6:.2f} MB "
                  f"({len(original) / len(data):.1f}x smaller), card {scale:.2f} px/mm")
        browser.close()


if __name__ == "__main__":
    main()
