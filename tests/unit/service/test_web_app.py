"""The technician app's static shell: message catalogs, size budget, offline precache list,
and how ``service.web`` serves it. (The app's behaviour is tested in a browser: tests/e2e.)"""

from __future__ import annotations

import glob
import json
import re
import tomllib
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from service.settings import Settings
from service.web import mount_web
from service.web.dashboard.pages import TEMPLATES
from service.web.technician import APP_DIR, shell_files

LANGS = ("en", "fr", "pt")
SHELL_BUDGET = 200 * 1024  # issue #5: the shell must load on slow 3G


def catalog(lang: str) -> dict[str, str]:
    return json.loads((APP_DIR / "i18n" / f"{lang}.json").read_text(encoding="utf-8"))


def sources() -> str:
    files = [APP_DIR / "index.html", APP_DIR / "app.js", *sorted((APP_DIR / "js").glob("*.js"))]
    return "\n".join(p.read_text(encoding="utf-8") for p in files)


def test_catalogs_have_identical_keys() -> None:
    keys = {lang: set(catalog(lang)) for lang in LANGS}
    for lang in LANGS[1:]:
        assert keys[lang] == keys["en"], (
            f"{lang}.json: missing {sorted(keys['en'] - keys[lang])}, extra {sorted(keys[lang] - keys['en'])}"
        )


@pytest.mark.parametrize("lang", LANGS)
def test_catalog_has_no_empty_strings_and_same_placeholders(lang: str) -> None:
    en, other = catalog("en"), catalog(lang)
    empty = [k for k, v in other.items() if not isinstance(v, str) or not v.strip()]
    assert not empty, f"{lang}.json: empty messages {empty}"
    placeholders = re.compile(r"\{(\w+)\}")
    wrong = [k for k in en if set(placeholders.findall(en[k])) != set(placeholders.findall(other.get(k, "")))]
    assert not wrong, f"{lang}.json: placeholders differ from English in {wrong}"


def test_every_key_the_code_uses_is_in_the_catalog() -> None:
    src = sources()
    used = set(re.findall(r"\bt\('([a-z_]+(?:\.[a-z_]+)+)'", src))
    used |= set(re.findall(r'data-i18n(?:-aria-label)?="([a-z_.]+)"', src))
    # keys built at run time: t(`status.${status}`) and friends
    used |= {f"status.{s}" for s in ("pass", "fail", "inconclusive", "not_applicable")}
    used |= {f"verdict.{v}" for v in ("pass", "fail", "review")}
    used |= {f"outbox.status.{s}" for s in ("pending", "sending", "sent", "failed", "conflict")}
    metrics = re.search(r"KNOWN_METRICS = \[([^\]]+)\]", src)
    assert metrics, "verdict.js lists the quality metrics it translates"
    used |= {f"retake.{m}" for m in re.findall(r"'(\w+)'", metrics.group(1))}
    assert len(used) > 100
    missing = sorted(used - set(catalog("en")))
    assert not missing, f"keys used in the app but not in en.json: {missing}"


def test_shell_is_under_200_kb() -> None:
    total = sum(p.stat().st_size for p in shell_files())
    assert total < SHELL_BUDGET, f"app shell is {total} bytes, budget {SHELL_BUDGET}"


def test_service_worker_precaches_every_shell_file() -> None:
    sw = (APP_DIR / "sw.js").read_text(encoding="utf-8")
    listed = set(re.findall(r"'([^']+\.(?:html|js|css|json|webmanifest|png|svg))'", sw.split("];")[0]))
    present = {p.relative_to(APP_DIR).as_posix() for p in shell_files()} - {"sw.js"}
    assert present - listed == set(), f"not precached (the app would break offline): {sorted(present - listed)}"
    assert listed - present == set(), f"precache names missing files (install would fail): {sorted(listed - present)}"


def test_no_third_party_urls_in_the_shell() -> None:
    for path in shell_files():
        if path.suffix in {".png"}:
            continue
        text = path.read_text(encoding="utf-8")
        hits = [u for u in re.findall(r"https?://[^\s'\"<>)]+", text) if not u.startswith("http://www.w3.org/")]
        assert not hits, f"{path.name} loads from another origin: {hits}"


def test_manifest_makes_the_app_installable() -> None:
    manifest = json.loads((APP_DIR / "manifest.webmanifest").read_text(encoding="utf-8"))
    assert manifest["start_url"] == manifest["scope"] == "/app/"
    assert manifest["display"] == "standalone"
    sizes = {i["sizes"] for i in manifest["icons"] if i["type"] == "image/png"}
    assert {"192x192", "512x512"} <= sizes
    from PIL import Image  # noqa: PLC0415

    for icon in manifest["icons"]:
        path = APP_DIR / icon["src"]
        assert path.is_file(), icon["src"]
        if icon["type"] == "image/png":
            w, h = icon["sizes"].split("x")
            with Image.open(path) as icon:
                assert icon.size == (int(w), int(h))


@pytest.fixture()
def client(tmp_path: Path) -> TestClient:
    app = FastAPI()
    mount_web(app, Settings(data_dir=tmp_path))
    return TestClient(app)


def test_app_is_served_with_types_and_headers(client: TestClient) -> None:
    res = client.get("/app/")
    assert res.status_code == 200
    assert res.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in res.headers["content-security-policy"]
    assert res.headers["cache-control"] == "no-cache"
    assert client.get("/app/manifest.webmanifest").headers["content-type"].startswith("application/manifest+json")
    assert client.get("/app/js/outbox.js").headers["content-type"].startswith("text/javascript")
    sw = client.get("/app/sw.js")
    assert sw.headers["service-worker-allowed"] == "/app/"
    again = client.get("/app/sw.js", headers={"If-None-Match": sw.headers["etag"]})
    assert again.status_code == 304


def test_bare_app_path_redirects_to_the_folder(client: TestClient) -> None:
    res = client.get("/app", follow_redirects=False)
    assert res.status_code == 308 and res.headers["location"] == "/app/"


@pytest.mark.parametrize("path", ["/app/../settings.py", "/app/%2e%2e/technician.py", "/app/nope.js",
                                  "/app/i18n/../../technician.py", "/app/js/"])
def test_nothing_outside_the_app_folder_is_served(client: TestClient, path: str) -> None:
    res = client.get(path)
    assert res.status_code == 404
    assert "import" not in res.text  # no Python source leaks


def test_dashboard_pages_are_served_without_script(client: TestClient) -> None:
    res = client.get("/dashboard/login?next=/dashboard/alerts")
    assert res.status_code == 200 and res.headers["content-type"].startswith("text/html")
    csp = res.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "script-src" not in csp
    assert 'name="next" value="/dashboard/alerts"' in res.text
    assert "<script" not in res.text
    css = client.get("/dashboard/static/dashboard.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")


def test_dashboard_templates_hold_no_script_and_mark_nothing_safe() -> None:
    """The CSP allows no script; the only unescaped markup is chart SVG, which figures.py hands over as Markup."""
    templates = sorted(TEMPLATES.glob("*.html"))
    assert len(templates) >= 8
    for path in templates:
        text = path.read_text(encoding="utf-8")
        assert "<script" not in text.lower(), path.name
        assert not re.search(r"\son\w+\s*=", text), f"{path.name}: an event-handler attribute"
        assert not re.search(r"\|\s*safe\b|autoescape\s+false|Markup", text), f"{path.name}: escaping turned off"


def test_dashboard_templates_are_package_data() -> None:
    """pyproject's package-data globs for ``service`` (expanded as setuptools does, recursively) cover every
    template, so an installed wheel can render the dashboard."""
    pyproject = tomllib.loads((Path(__file__).parents[3] / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = pyproject["tool"]["setuptools"]["package-data"]["service"]
    service_dir = TEMPLATES.parents[2]
    shipped = {p for pattern in patterns for p in glob.glob(pattern, root_dir=service_dir, recursive=True)}
    templates = {p.relative_to(service_dir).as_posix() for p in TEMPLATES.rglob("*.html")}
    assert templates and templates <= shipped, sorted(templates - shipped)


def _relative_luminance(hex_colour: str) -> float:
    """WCAG 2.x relative luminance of an sRGB colour."""
    channels = [int(hex_colour.lstrip("#")[i:i + 2], 16) / 255 for i in (0, 2, 4)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(a: str, b: str) -> float:
    hi, lo = sorted((_relative_luminance(a), _relative_luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def test_contrast_formula_matches_wcag_reference_values() -> None:
    assert contrast("#000000", "#ffffff") == pytest.approx(21.0)
    assert contrast("#767676", "#ffffff") == pytest.approx(4.54, abs=0.01)  # the classic AA grey


# Text colour on background colour, as styles.css pairs them (by CSS variable).
TEXT_PAIRS = [("fg", "bg"), ("muted", "bg"), ("muted", "card"), ("brand-fg", "brand"), ("brand", "card"),
              ("pass", "pass-bg"), ("fail", "fail-bg"), ("review", "review-bg"), ("na", "na-bg"),
              ("fail", "bg"), ("review", "bg"), ("fg", "pass-bg")]


@pytest.mark.parametrize(("text", "background"), TEXT_PAIRS)
def test_text_colours_meet_wcag_aa(text: str, background: str) -> None:
    css = (APP_DIR / "styles.css").read_text(encoding="utf-8")
    colours = dict(re.findall(r"--([\w-]+):\s*(#[0-9a-fA-F]{6})", css))
    assert contrast(colours[text], colours[background]) >= 4.5
