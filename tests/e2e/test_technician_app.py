"""The technician app in a real Chromium, against a real ``qc serve`` (see conftest.py)."""

from __future__ import annotations

import io
import json
import re
import uuid
from pathlib import Path

import httpx
import pytest
from PIL import Image

from tests.e2e.conftest import PHONE, REPO, KipimoServer, card_photo, jpeg_with_gps

pytestmark = pytest.mark.e2e

APP = REPO / "service" / "web" / "app"
PHONE_PHOTO = (4000, 3000)  # what a 12 MP phone camera produces
VISOR_LONG_SIDE = 1600  # capture.long_side in tests/e2e/standards/e2e-visor.yaml


def expect(locator):  # noqa: ANN001, ANN201 - Playwright's assertion helper
    from playwright.sync_api import expect as _expect  # noqa: PLC0415

    return _expect(locator)


@pytest.fixture(scope="module")
def phone_photo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("photos") / "IMG_0001.jpg"
    path.write_bytes(jpeg_with_gps(*PHONE_PHOTO))
    return path


def lot_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6].upper()}"


def wait_for_service_worker(page) -> None:  # noqa: ANN001
    page.wait_for_function("navigator.serviceWorker && navigator.serviceWorker.controller !== null")


def start_visor(page, lot: str, unit: str = "U1") -> None:  # noqa: ANN001
    page.click("button.product[data-product='e2e-visor']")
    page.fill("#id-lot", lot)
    page.fill("#id-unit", unit)
    page.click("#next")


def take_photo(page, slot: str, path: Path) -> None:  # noqa: ANN001
    page.set_input_files(f"#photo-{slot}", str(path))
    expect(page.locator("img.preview")).to_be_visible()


def answer_visor(page, *, thickness: str | None = "0.50", material: str = "PETG") -> None:  # noqa: ANN001
    page.check(f"[data-item=material] input[value='{material}']")
    if thickness is not None:
        page.fill("#item-thickness", thickness)
    page.check("[data-item=edges_smooth] input[value='true']")


def complete_visor(page, lot: str, photo: Path, unit: str = "U1") -> None:  # noqa: ANN001
    """From the product list to the review screen, everything answered."""
    start_visor(page, lot, unit)
    take_photo(page, "front", photo)
    page.click("#next")
    answer_visor(page)
    page.click("#next")
    expect(page.locator("h1")).to_have_text("Check and submit")


# 1 -------------------------------------------------------------------------------------------
def test_sign_in_complete_checklist_with_photo_and_see_verdict(page, server: KipimoServer, phone_photo: Path) -> None:
    assert "token=" not in page.url, "the token must be removed from the address bar"
    expect(page.locator("#who")).to_have_text("Amina · e2e-node")
    lot = lot_id("L1")
    complete_visor(page, lot, phone_photo, unit="U-7")
    page.click("#submit")
    verdict = page.locator("#verdict")
    expect(verdict).to_have_attribute("data-verdict", "pass")
    expect(verdict).to_contain_text("PASS")
    expect(page.locator("li.result[data-check='thickness']")).to_contain_text("0.4 to 0.6 mm")

    stored = server.submissions(lot=lot)
    assert len(stored) == 1
    rec = stored[0]
    assert (rec["product"], rec["unit"], rec["technician"], rec["verdict"]) == ("e2e-visor", "U-7", "Amina", "pass")
    assert rec["standard"]["version"] == 1
    assert rec["answers"] == {"material": "PETG", "thickness": 0.5, "edges_smooth": True}
    uuid.UUID(rec["id"])  # client-generated


def test_photo_is_resized_on_the_phone_and_loses_its_gps(page, server: KipimoServer, phone_photo: Path) -> None:
    lot = lot_id("RS")
    complete_visor(page, lot, phone_photo)
    page.click("#submit")
    expect(page.locator("#verdict")).to_be_visible()
    (rec,) = server.submissions(lot=lot)
    (photo,) = rec["photos"]
    res = server.api(photo["url"])
    assert res.status_code == 200
    img = Image.open(io.BytesIO(res.content))
    # capture.long_side 1600 applied to a 4000 x 3000 photo: scale 0.4, aspect kept.
    scale = VISOR_LONG_SIDE / max(PHONE_PHOTO)
    assert img.format == "JPEG"
    assert img.size == (round(PHONE_PHOTO[0] * scale), round(PHONE_PHOTO[1] * scale)) == (1600, 1200)
    assert len(res.content) < len(phone_photo.read_bytes())
    exif = img.getexif()
    assert 0x8825 not in exif, "GPS position from the phone's EXIF was uploaded"
    with Image.open(phone_photo) as original:
        assert original.getexif().get(0x8825), "test photo should carry GPS to begin with"


def test_sign_in_from_the_printed_qr_code_or_a_pasted_token(phone, server: KipimoServer) -> None:
    from tests.qr import decode_qr  # noqa: PLC0415

    url = decode_qr(server.data_dir / "technician-qr.png")
    assert url == server.sign_in_url()  # what `qc tokens create --qr` printed is what a phone scans
    page = phone.new_page()
    page.goto(url)
    page.wait_for_selector("body[data-ready='1']")
    expect(page.locator("#who")).to_have_text("Amina · e2e-node")

    other = phone.browser.new_context(**PHONE)
    try:
        pasted = other.new_page()
        pasted.goto(f"{server.url}/app")
        pasted.wait_for_selector("body[data-ready='1']")
        expect(pasted.locator("#tabs")).to_be_hidden()
        pasted.fill("#token-input", "not a token")
        pasted.click("#token-submit")
        expect(pasted.locator("#token-error")).to_have_text("That does not look like a token. Check it and try again.")
        pasted.fill("#token-input", f"  {server.technician}\n")
        pasted.click("#token-submit")
        expect(pasted.locator("#who")).to_have_text("Amina · e2e-node")
        expect(pasted.locator("button.product[data-product='e2e-visor']")).to_be_visible()
    finally:
        other.close()


# 2 -------------------------------------------------------------------------------------------
def test_offline_submissions_wait_in_outbox_survive_reload_and_arrive_once(
    page, phone, server: KipimoServer, phone_photo: Path, artifacts: Path
) -> None:
    wait_for_service_worker(page)
    lot = lot_id("OFF")
    phone.set_offline(True)
    expect(page.locator("#net")).to_have_text("Offline")
    for unit in ("A", "B"):
        page.click("a[data-tab=home]")
        complete_visor(page, lot, phone_photo, unit=unit)
        page.click("#submit")
        expect(page.locator("h1")).to_have_text("Saved on this phone")
        expect(page.get_by_role("status").filter(has_text="saved on this phone")).to_be_visible()
    page.click("a[href='#/outbox']")
    expect(page.locator("#outbox-list li[data-status=pending]")).to_have_count(2)
    expect(page.locator("#outbox-count")).to_have_text("2")
    page.screenshot(path=str(artifacts / "outbox-offline-360x640.png"))
    assert server.submissions(lot=lot) == []

    page.reload()  # still offline: the service worker serves the app, IndexedDB keeps the records
    page.wait_for_selector("body[data-ready='1']")
    expect(page.locator("#outbox-list li[data-status=pending]")).to_have_count(2)
    ids = sorted(page.locator("#outbox-list li").evaluate_all("els => els.map(e => e.dataset.id)"))

    phone.set_offline(False)  # the 'online' event starts the sync
    expect(page.locator("#outbox-summary")).to_have_text("Everything has been sent.", timeout=30_000)
    expect(page.locator("#sent-list li[data-status=sent]")).to_have_count(2)
    stored = server.submissions(lot=lot)
    assert sorted(r["id"] for r in stored) == ids
    assert sorted(r["unit"] for r in stored) == ["A", "B"]

    page.reload()  # app start syncs again: nothing is sent twice
    page.wait_for_selector("body[data-ready='1']")
    page.wait_for_timeout(500)
    assert len(server.submissions(lot=lot)) == 2


CAP = """product: e2e-cap-{tag}
name: Test cap {tag}
version: {version}
status: released
{supersedes}
items:
  - id: diameter
    prompt: Cap diameter
    type: number
    unit: mm
    min: {low}
    max: {high}
"""


def test_new_standard_version_replaces_the_cached_one_at_next_sync(page, phone, server: KipimoServer) -> None:
    tag = uuid.uuid4().hex[:6]
    product = f"e2e-cap-{tag}"
    server.publish_standard(CAP.format(tag=tag, version=1, supersedes="", low=30, high=32))
    page.click("#sync-now")
    card = page.locator(f"button.product[data-product='{product}']")
    expect(card).to_contain_text("standard version 1")
    phone.set_offline(True)
    page.reload()  # offline: the cached standard is still there
    page.wait_for_selector("body[data-ready='1']")
    expect(card).to_contain_text("standard version 1")
    phone.set_offline(False)

    server.publish_standard(CAP.format(tag=tag, version=2, supersedes="supersedes: 1", low=31, high=33))
    page.click("#sync-now")
    expect(card).to_contain_text("standard version 2")
    card.click()
    lot = lot_id("V2")
    page.fill("#id-lot", lot)
    page.click("#next")
    expect(page.locator("[data-item=diameter] .accept")).to_have_text("Acceptable: 31 to 33 mm")
    page.fill("#item-diameter", "32.5")
    page.click("#next")
    page.click("#submit")
    expect(page.locator("#verdict")).to_have_attribute("data-verdict", "pass")  # would fail under v1
    (rec,) = server.submissions(lot=lot)
    assert rec["standard"]["version"] == 2


# 3 -------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def card_photos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("card")
    out = {}
    for name, blur in (("sharp", 0.8), ("blurred", 4.5)):  # Gaussian defocus sigma, px
        out[name] = folder / f"{name}.jpg"
        out[name].write_bytes(card_photo(blur=blur))
    return out


def test_blurred_photo_gets_retake_and_retaking_fixes_it(
    page, server: KipimoServer, card_photos, artifacts: Path  # noqa: ANN001
) -> None:
    lot = lot_id("BL")
    page.click("button.product[data-product='e2e-bracket']")
    page.fill("#id-lot", lot)
    page.click("#next")
    take_photo(page, "top", card_photos["blurred"])
    page.click("#next")
    page.check("[data-item=clean] input[value='true']")
    page.click("#next")
    page.click("#submit")
    expect(page.locator("#verdict")).to_have_attribute("data-verdict", "review")
    retake = page.locator("[data-retake=top]")
    expect(retake).to_contain_text("Photo not usable: Bracket flat on the calibration card")
    expect(retake).to_contain_text("Too blurred: hold the phone steady")
    page.screenshot(path=str(artifacts / "retake-360x640.png"))
    retake.get_by_role("button").click()

    expect(page.locator("h1")).to_contain_text("Bracket flat on the calibration card")
    take_photo(page, "top", card_photos["sharp"])
    page.click("#next")
    expect(page.locator("[data-item=clean] input[value='true']")).to_be_checked()  # answers kept
    page.click("#next")
    page.click("#submit")
    expect(page.locator("#verdict")).to_be_visible()
    expect(page.locator("[data-retake]")).to_have_count(0)
    results = server.submissions(lot=lot)
    assert len(results) == 2  # the rejected photo's record stays; the retake is a new record
    newest = results[0]
    gate = [r for r in newest["results"] if r["slot"] == "top"]
    assert gate and not any("retake" in (r["message"] or "") for r in gate)


# 4 -------------------------------------------------------------------------------------------
def test_required_item_left_empty_cannot_be_submitted(page, server: KipimoServer, phone_photo: Path) -> None:
    lot = lot_id("RQ")
    start_visor(page, lot)
    take_photo(page, "front", phone_photo)
    page.click("#next")
    answer_visor(page, thickness=None)
    page.click("#next")
    problems = page.locator("#step-problems")
    expect(problems).to_contain_text("Answer required: Sheet thickness")
    expect(page.locator("[data-item=thickness] .error")).to_have_text("Answer required: Sheet thickness")
    expect(page.locator("#item-thickness")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("h1")).to_have_text("Checklist")  # did not move on
    assert not page.locator("#submit").count()

    page.fill("#item-thickness", "abc")
    page.click("#next")
    expect(problems).to_contain_text("Not a number: Sheet thickness")
    page.fill("#item-thickness", "0,55")  # a decimal comma is a number too
    page.click("#next")
    expect(page.locator("h1")).to_have_text("Check and submit")
    expect(page.locator("#problems")).to_have_count(0)
    assert server.submissions(lot=lot) == []


# 5 -------------------------------------------------------------------------------------------
def _catalog(lang: str) -> dict[str, str]:
    return json.loads((APP / "i18n" / f"{lang}.json").read_text(encoding="utf-8"))


VISIBLE_TEXTS = """() => {
  const out = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const n = walker.currentNode, el = n.parentElement, s = n.textContent.trim();
    if (!s || !el || el.closest('[hidden]') || el.closest('script')) continue;
    const cs = getComputedStyle(el);
    if (cs.display === 'none' || cs.visibility === 'hidden') continue;
    out.push(s);
  }
  for (const el of document.querySelectorAll('[aria-label], [alt], [placeholder]')) {
    for (const a of ['aria-label', 'alt', 'placeholder']) if (el.getAttribute(a)) out.push(el.getAttribute(a).trim());
  }
  out.push(document.title);
  return out;
}"""


def test_switching_to_french_changes_every_visible_string(page, server: KipimoServer, phone_photo: Path) -> None:
    en, fr = _catalog("en"), _catalog("fr")
    english_only = {v for k, v in en.items() if fr[k] != v and "{" not in v}
    key_like = re.compile(r"^[a-z]+(\.[a-z_]+)+$")

    def check(screen: str) -> None:
        texts = page.evaluate(VISIBLE_TEXTS)
        leftover = sorted({t for t in texts if t in english_only})
        keys = sorted({t for t in texts if key_like.match(t) and (t in en)})
        assert not leftover, f"{screen}: English strings left after switching to French: {leftover}"
        assert not keys, f"{screen}: untranslated message keys: {keys}"

    page.click("a[href='#/settings']")
    page.select_option("select", "fr")
    expect(page.locator("h1")).to_have_text("Réglages")
    expect(page.locator("html")).to_have_attribute("lang", "fr")
    check("settings")
    page.click("a[href='#/']")
    expect(page.locator("h1")).to_have_text("Choisir un produit")
    check("products")
    page.click("button.product[data-product='e2e-visor']")
    check("lot and unit")
    page.click("#next")  # lot missing: the error message too
    expect(page.locator("#step-problems")).to_contain_text("Saisissez le numéro de lot")
    check("lot and unit, with error")
    page.fill("#id-lot", lot_id("FR"))
    page.click("#next")
    take_photo(page, "front", phone_photo)
    check("photo")
    page.click("#next")
    page.fill("#item-thickness", "9")  # outside the range: the warning too
    expect(page.locator("[data-item=thickness] .warn")).to_contain_text("Hors de la plage acceptable")
    page.click("#next")
    expect(page.locator("#step-problems")).to_contain_text("Réponse obligatoire")
    check("checklist, with errors")
    answer_visor(page, thickness="9")
    page.click("#next")
    expect(page.locator("h1")).to_have_text("Vérifier et envoyer")
    check("review")
    page.click("#submit")
    expect(page.locator("#verdict")).to_contain_text("NON CONFORME")
    check("verdict")
    page.click("a[href='#/outbox']")
    check("outbox")
    page.click("a[href='#/history']")
    expect(page.locator("#history-list li").first).to_be_visible()
    check("history")
    page.reload()  # the choice is remembered
    page.wait_for_selector("body[data-ready='1']")
    expect(page.locator("h1")).to_have_text("Envois récents")


def test_language_follows_the_phone_settings(browser, server: KipimoServer) -> None:  # noqa: ANN001
    context = browser.new_context(**{**PHONE, "locale": "pt-BR"})
    try:
        page = context.new_page()
        page.goto(server.sign_in_url())
        page.wait_for_selector("body[data-ready='1']")
        expect(page.locator("h1")).to_have_text("Escolha um produto")
        expect(page.locator("html")).to_have_attribute("lang", "pt")
        expect(page.locator("a[data-tab=outbox]")).to_contain_text("Envios")
    finally:
        context.close()


# 6 -------------------------------------------------------------------------------------------
UNLABELLED = """() => [...document.querySelectorAll('input, select, textarea, button, a[href]')].filter((el) => {
  if (el.closest('[hidden]') || getComputedStyle(el).display === 'none') return false;
  const byLabel = el.labels ? [...el.labels].map((l) => l.textContent).join(' ').trim() : '';
  const named = byLabel || (el.getAttribute('aria-label') || '').trim() || (el.type !== 'file' && el.tagName !== 'INPUT'
    && el.tagName !== 'SELECT' && el.tagName !== 'TEXTAREA' && el.textContent.trim());
  return !named;
}).map((el) => el.outerHTML.slice(0, 100))"""

SMALL_TARGETS = """() => [...document.querySelectorAll('button, a.btn, nav a, .choice span, input[type=text], select')]
  .filter((el) => !el.closest('[hidden]') && el.offsetParent !== null)
  .map((el) => [el.outerHTML.slice(0, 80), el.getBoundingClientRect().height])
  .filter(([, h]) => h < 44)"""


def test_screenshots_at_360x640(page, server: KipimoServer, phone_photo: Path, artifacts: Path) -> None:
    def fits(screen: str) -> None:
        assert page.evaluate(UNLABELLED) == [], f"{screen}: controls without a label"
        assert page.evaluate(SMALL_TARGETS) == [], f"{screen}: touch targets under 44 px"
        # Nothing may stick out sideways on a 360 px wide phone.
        assert page.evaluate("document.documentElement.scrollWidth") <= 360, f"{screen}: wider than the phone"

    fits("products")
    start_visor(page, lot_id("SC"), unit="17")
    take_photo(page, "front", phone_photo)
    fits("photo")
    page.click("#next")
    page.check("[data-item=material] input[value='PETG']")
    page.fill("#item-thickness", "0.52")
    page.locator("#item-thickness").blur()
    fits("checklist")
    checklist = artifacts / "checklist-360x640.png"
    page.screenshot(path=str(checklist))
    page.check("[data-item=edges_smooth] input[value='true']")
    page.click("#next")
    fits("review")
    page.click("#submit")
    expect(page.locator("#verdict")).to_be_visible()
    fits("verdict")
    verdict = artifacts / "verdict-360x640.png"
    page.screenshot(path=str(verdict))
    for shot in (checklist, verdict):
        with Image.open(shot) as picture:
            assert picture.size == (360, 640)
    for tab in ("outbox", "history", "settings"):
        page.click(f"a[data-tab={tab}]")
        fits(tab)


# Outcomes the outbox must not retry on its own.
def test_conflict_and_refusal_are_shown_not_retried(page, phone, server: KipimoServer, phone_photo: Path) -> None:
    posts: list[str] = []
    page.on("request", lambda r: posts.append(r.url) if r.method == "POST" else None)
    lot = lot_id("CF")
    phone.set_offline(True)
    complete_visor(page, lot, phone_photo, unit="C1")
    page.click("#submit")
    expect(page.locator("h1")).to_have_text("Saved on this phone")
    page.click("a[data-tab=outbox]")
    record_id = page.locator("#outbox-list li").get_attribute("data-id")
    # Meanwhile a different record with the same id reached the server.
    other = {"id": record_id, "product": "e2e-visor", "lot": f"{lot}-other", "answers":
             {"material": "PLA", "thickness": 0.5, "edges_smooth": True}}
    res = httpx.post(f"{server.url}/api/v1/submissions", headers={"Authorization": f"Bearer {server.technician}"},
                     files={"record": (None, json.dumps(other), "application/json"),
                            "front": ("f.jpg", phone_photo.read_bytes(), "image/jpeg")}, timeout=60)
    assert res.status_code == 201, res.text
    posts.clear()
    phone.set_offline(False)
    row = page.locator(f"#outbox-list li[data-id='{record_id}']")
    expect(row).to_have_attribute("data-status", "conflict", timeout=30_000)
    expect(row).to_contain_text("already has a different record with this identifier")
    assert len(posts) == 1
    page.click("#send-now")  # a conflict is not retried by "send now" or the timer
    page.wait_for_timeout(1000)
    assert len(posts) == 1
    row.get_by_role("button", name="Send as a new record").click()
    expect(page.locator("#outbox-summary")).to_have_text("Everything has been sent.", timeout=30_000)
    mine = server.submissions(lot=lot)
    assert len(mine) == 1 and mine[0]["id"] != record_id and mine[0]["unit"] == "C1"

    # Any other 4xx: failed, with the server's reason, and not retried either.
    refusal = {"error": "the record does not fit its standard",
               "problems": [{"field": "answers.thickness", "reason": "required answer missing: Sheet thickness"}]}
    page.route("**/api/v1/submissions", lambda route: route.fulfill(status=422, json=refusal)
               if route.request.method == "POST" else route.continue_())
    posts.clear()
    page.click("a[data-tab=home]")
    complete_visor(page, lot, phone_photo, unit="C2")
    page.click("#submit")
    expect(page.locator("h1")).to_have_text("The server refused this record")
    expect(page.locator("main")).to_contain_text("answers.thickness: required answer missing: Sheet thickness")
    page.click("a[data-tab=outbox]")
    failed = page.locator("#outbox-list li[data-status=failed]")
    expect(failed).to_contain_text("Reason: the record does not fit its standard")
    page.wait_for_timeout(1000)
    assert len(posts) == 1


# The "server stopped" case: not emulated offline, the process is really gone.
# Kept last in the file: it stops the shared server and starts it again on the same port.
def test_server_stopped_then_back_records_sync_without_loss_or_duplicates(
    page, server: KipimoServer, phone_photo: Path
) -> None:
    wait_for_service_worker(page)
    lot = lot_id("DOWN")
    server.stop()
    try:
        for unit in ("1", "2"):
            page.click("a[data-tab=home]")
            complete_visor(page, lot, phone_photo, unit=unit)
            page.click("#submit")
            expect(page.locator("h1")).to_have_text("Saved on this phone")
        page.reload()  # the server is down: the shell comes from the service worker
        page.wait_for_selector("body[data-ready='1']")
        page.click("a[data-tab=outbox]")
        expect(page.locator("#outbox-list li[data-status=pending]")).to_have_count(2)
    finally:
        server.start()
    page.click("#send-now")
    expect(page.locator("#outbox-summary")).to_have_text("Everything has been sent.", timeout=30_000)
    page.reload()  # app start syncs again: nothing is sent twice
    page.wait_for_selector("body[data-ready='1']")
    page.wait_for_timeout(500)
    stored = server.submissions(lot=lot)
    assert sorted(r["unit"] for r in stored) == ["1", "2"]


@pytest.mark.parametrize("locale", ["en-GB", "fr-FR", "pt-BR"])  # every language in service/web/app/i18n
def test_no_screen_shows_null_or_undefined_in_any_language(browser, server: KipimoServer, phone_photo: Path,  # noqa: ANN001
                                                           locale: str) -> None:
    from tests.clock import TEST_NOW  # noqa: PLC0415

    assert sorted(p.stem for p in (APP / "i18n").glob("*.json")) == ["en", "fr", "pt"]
    context = browser.new_context(**{**PHONE, "locale": locale})
    context.clock.install(time=TEST_NOW)
    leaked = re.compile(r"null|undefined|\bNaN\b")  # substrings: two missing lines read "nullnull"
    seen: dict[str, str] = {}
    try:
        page = context.new_page()

        def screen(name: str) -> None:
            seen[name] = page.locator("body").inner_text()

        page.goto(server.sign_in_url())
        page.wait_for_selector("body[data-ready='1']")
        screen("products")
        start_visor(page, lot_id("NL"))
        screen("photos (empty)")
        take_photo(page, "front", phone_photo)
        screen("photos")
        page.click("#next")
        screen("checklist")  # a text item and an optional one with no help text, a number item with help
        answer_visor(page)
        page.click("#next")
        screen("review")
        page.click("#submit")
        expect(page.locator("#verdict")).to_be_visible()
        screen("verdict")
        page.click("a[data-tab=outbox]")
        screen("outbox")
    finally:
        context.close()
    assert seen and not {name: leaked.findall(text) for name, text in seen.items() if leaked.search(text)}
