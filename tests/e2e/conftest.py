"""Browser tests: Debian's Chromium driven by Playwright against a real ``qc serve``.

Each session starts one server on a free loopback port with a temporary
KIPIMO_DATA_DIR, set up the way a node is: ``qc init --node``, test standards
published through the API with a manager token, tokens from ``qc tokens create``.
Without Chromium the tests skip, except under KIPIMO_REQUIRE_BROWSER=1 (CI),
where a missing browser is a failure.
"""

from __future__ import annotations

import io
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.clock import TEST_NOW

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts"
STANDARDS = Path(__file__).with_name("standards")
CHROMIUM = os.environ.get("KIPIMO_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
NODE = "e2e-node"
# bypass_csp: Playwright's own string predicates (wait_for_function) need eval, which the app's strict CSP
# forbids on pages served from the service worker's cache. The CSP header itself is checked in
# tests/unit/service/test_web_app.py.
PHONE = {"viewport": {"width": 360, "height": 640}, "device_scale_factor": 1, "is_mobile": True,
         "has_touch": True, "locale": "en-GB", "bypass_csp": True}

pytestmark = pytest.mark.e2e


def _qc() -> list[str]:
    exe = Path(sys.executable).with_name("qc")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "service.cli"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class KipimoServer:
    """A ``qc serve`` subprocess on its own data folder; can be stopped and started again."""

    data_dir: Path
    port: int = field(default_factory=_free_port)
    technician: str = ""
    manager: str = ""
    proc: subprocess.Popen[bytes] | None = None

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "KIPIMO_DATA_DIR": str(self.data_dir), "KIPIMO_PORT": str(self.port),
                "KIPIMO_HOST": "127.0.0.1", "KIPIMO_FROZEN_TIME": TEST_NOW.isoformat()}

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def qc(self, *args: str) -> str:
        done = subprocess.run([*_qc(), *args], env=self.env, capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"qc {' '.join(args)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
        return done.stdout

    def setup(self) -> None:
        self.qc("init", "--node", NODE)
        qr = self.data_dir / "technician-qr.png"
        self.technician = self.qc("tokens", "create", "--role", "technician", "--node", NODE, "--name", "Amina",
                                  "--qr", str(qr), "--url", self.url).split()[0]
        self.manager = self.qc("tokens", "create", "--role", "manager", "--name", "e2e manager").split()[0]

    def start(self) -> None:
        with open(self.data_dir / "serve.log", "ab") as log:  # the child keeps its own copy of the descriptor
            self.proc = subprocess.Popen([*_qc(), "serve", "--host", "127.0.0.1", "--port", str(self.port),
                                          "--log-level", "warning"], env=self.env, stdout=log, stderr=log)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"qc serve exited: {(self.data_dir / 'serve.log').read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.url}/api/v1/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError("qc serve did not answer /api/v1/health within 60 s")

    def publish_standard(self, yaml_text: str) -> dict:
        """What a quality manager does: POST a standard (YAML) to the API."""
        res = httpx.post(f"{self.url}/api/v1/standards", content=yaml_text.encode(), timeout=30,
                         headers={"Authorization": f"Bearer {self.manager}", "Content-Type": "application/yaml"})
        if res.status_code not in (200, 201):
            raise RuntimeError(f"publishing a standard failed: {res.status_code} {res.text}")
        return res.json()

    def publish_test_standards(self) -> None:
        for path in sorted(STANDARDS.glob("*.yaml")):
            self.publish_standard(path.read_text(encoding="utf-8"))

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def api(self, path: str, *, token: str | None = None, **params: object) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token or self.manager}"}
        return httpx.get(f"{self.url}{path}", headers=headers, params=params, timeout=30)

    def submissions(self, **filters: object) -> list[dict]:
        res = self.api("/api/v1/submissions", limit=500, **filters)
        res.raise_for_status()
        return res.json()["items"]

    def sign_in_url(self) -> str:
        return f"{self.url}/app/#token={self.technician}"


def _launch_or_skip():  # noqa: ANN202 - a Playwright object
    required = os.environ.get("KIPIMO_REQUIRE_BROWSER") == "1"
    why = None
    try:
        from playwright.sync_api import sync_playwright  # noqa: PLC0415
    except ImportError:
        why = "playwright is not installed (pip install -e '.[test]')"
    if why is None and not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        why = f"Chromium not found at {CHROMIUM} (apt-get install -y chromium, or `make chromium`)"
    if why:
        if required:
            pytest.fail(f"KIPIMO_REQUIRE_BROWSER=1 but {why}")
        pytest.skip(why)
    return sync_playwright


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    sync_playwright = _launch_or_skip()
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory, browser: object) -> Iterator[KipimoServer]:
    srv = KipimoServer(tmp_path_factory.mktemp("kipimo-e2e"))
    srv.setup()
    srv.start()
    srv.publish_test_standards()
    yield srv
    srv.stop()


@pytest.fixture()
def phone(browser) -> Iterator[object]:  # noqa: ANN001
    """A fresh phone-sized browser context (empty storage, no service worker yet)."""
    context = browser.new_context(**PHONE)
    context.set_default_timeout(20_000)
    # The phone's clock reads the server's frozen now (and then ticks): its records' captured_at must be
    # plausible to a server that judges them against TEST_NOW (qc.judging).
    context.clock.install(time=TEST_NOW)
    yield context
    context.close()


@pytest.fixture()
def page(phone, server: KipimoServer):  # noqa: ANN001, ANN201
    """A page signed in as the technician (by the QR link's #token fragment)."""
    pg = phone.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.goto(server.sign_in_url())
    pg.wait_for_selector("body[data-ready='1']")
    yield pg
    assert not errors, f"JavaScript errors on the page: {errors}"


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


# --- photos --------------------------------------------------------------------------------


def jpeg_with_gps(width: int, height: int) -> bytes:
    """A phone-like JPEG (gradient and shapes) whose EXIF carries a GPS position."""
    from PIL import Image, ImageDraw  # noqa: PLC0415

    img = Image.linear_gradient("L").resize((width, height)).convert("RGB")
    draw = ImageDraw.Draw(img)
    draw.rectangle([width // 4, height // 4, 3 * width // 4, 3 * height // 4], outline=(200, 30, 30), width=25)
    draw.ellipse([width // 3, height // 3, width // 2, height // 2], fill=(30, 90, 200))
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"
    exif[0x8825] = {1: "S", 2: (1.0, 17.0, 0.0), 3: "E", 4: (36.0, 49.0, 0.0)}  # GPS IFD: Nairobi
    out = io.BytesIO()
    img.save(out, "JPEG", quality=92, exif=exif)
    return out.getvalue()


def card_photo(*, blur: float, seed: int = 3) -> bytes:
    """A rendered photo of an 80 x 30 mm bracket on the calibration card (bench/scenes.py)."""
    sys.path.insert(0, str(REPO))
    from bench.scenes import Camera, Part, Scene, encode_jpeg, render_scene  # noqa: PLC0415
    from inspection.card import card_layout  # noqa: PLC0415

    lay = card_layout("a4")
    ax0, ay0, ax1, ay1 = lay.area
    part = Part("rect", (ax0 + ax1) / 2, (ay0 + ay1) / 2, 80.0, 30.0, angle=5.0)
    image, _ = render_scene(Scene(part, Camera(megapixels=8, blur=blur, tilt=5.0), seed=seed))
    return encode_jpeg(image, 92)
