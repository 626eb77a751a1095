"""``qc print-card`` and ``qc inspect``: the calibration card and offline photo inspection."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from inspection.card import PAPERS, PRINT_INSTRUCTIONS, card_pdf, render_card
from qc.errors import KipimoError
from qc.evaluate import CheckResult, evaluate
from qc.standards import PhotoSlot, Standard, Status
from service.settings import Settings

from .base import cli


def write_card(out: Path, *, paper: str = "a4", dpi: int = 300) -> None:
    """Render the card at exact physical scale to PNG (with its DPI) or PDF (page = paper)."""
    from PIL import Image  # noqa: PLC0415

    suffix = out.suffix.lower()
    if suffix == ".png":
        page, _layout, _origin = render_card(paper, float(dpi))
        Image.fromarray(page).save(out, format="PNG", dpi=(dpi, dpi))
    elif suffix == ".pdf":
        out.write_bytes(card_pdf(paper, float(dpi)))  # lossless; Pillow's PDF would be JPEG
    else:
        raise click.BadParameter("the card is written as .pdf or .png", param_hint="--out")


@cli.command("print-card")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Output file: card.pdf or card.png.")
@click.option("--paper", type=click.Choice(sorted(PAPERS)), default="a4", show_default=True,
              help="Paper size the card is laid out for.")
@click.option("--dpi", type=click.IntRange(150, 1200), default=300, show_default=True,
              help="Resolution of the rendered card.")
def print_card(out: Path, paper: str, dpi: int) -> None:
    """Write the calibration card at exact physical scale, with printing instructions.

    Print at 100 % scale (actual size, not 'fit to page') on matte paper, then
    check the 100 mm ruler with a steel rule before using the card.
    """
    write_card(out, paper=paper, dpi=dpi)
    click.echo(f"wrote {out} ({paper}, {dpi} dpi)")
    click.echo(PRINT_INSTRUCTIONS)


def _load_standard(settings: Settings, product: str | None, path: Path | None) -> Standard:
    """``--standard FILE`` names its product itself; ``--product`` alone picks the product's newest released
    shipped standard; both must agree."""
    from service.core.checklists import load_shipped_standards, load_standard_file  # noqa: PLC0415

    if path is not None:
        standard = load_standard_file(path)
        if product is not None and standard.product != product:
            raise click.UsageError(f"--standard {path} is the standard for {standard.product!r}, but --product "
                                   f"says {product!r}; give one of them (the file names its product)")
        return standard
    if product is None:
        raise click.UsageError("say which standard applies: --standard FILE, or --product SLUG for its newest "
                               "shipped version")
    found = [s for s in load_shipped_standards(Path(settings.checklists_dir)) if s.product == product]
    if not found:
        raise click.BadParameter(f"no standard for product {product!r} in {settings.checklists_dir}",
                                 param_hint="--product")
    released = [s for s in found if s.status == Status.RELEASED]
    if not released:
        raise click.BadParameter(f"{product!r} has only drafts in {settings.checklists_dir} "
                                 f"(v{', v'.join(str(s.version) for s in found)}); pass one with --standard FILE",
                                 param_hint="--product")
    return max(released, key=lambda s: s.version)


def _pick_slot(standard: Standard, slot_id: str | None) -> PhotoSlot:
    if slot_id is None:
        if not standard.photos:
            raise click.BadParameter(f"{standard.product} v{standard.version} has no photo slots")
        return standard.photos[0]
    for slot in standard.photos:
        if slot.id == slot_id:
            return slot
    names = ", ".join(s.id for s in standard.photos) or "none"
    raise click.BadParameter(f"no photo slot {slot_id!r} (slots: {names})", param_hint="--slot")


def _slot_results(standard: Standard, slot: PhotoSlot, findings: Any) -> list[CheckResult]:
    verdict = evaluate(standard, {}, {slot.id: findings})
    return [r for r in verdict.results if r.slot == slot.id]


@cli.command("inspect")
@click.argument("photos", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--product", help="Product whose newest released shipped standard applies (not needed with --standard).")
@click.option("--standard", "standard_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Standard file to apply (its product is the one inspected).")
@click.option("--slot", "slot_id", help="Photo slot of the standard (default: its first).")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list, one object per photo.")
@click.option("--overlay-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Write each photo's annotated overlay (PNG) here.")
@click.pass_obj
def inspect_cmd(settings: Settings, photos: tuple[Path, ...], product: str | None, standard_path: Path | None,
                slot_id: str | None, as_json: bool, overlay_dir: Path | None) -> None:
    """Inspect PHOTOS offline exactly as the service does: quality gate, card,
    measurements with uncertainty, models, and the checks of one photo slot.

    Exit status 2 when any file is refused as an image (wrong type, corrupt, too large).
    """
    from tqdm import tqdm  # noqa: PLC0415

    from service.core.vision import inspect_photo  # noqa: PLC0415

    settings = settings or Settings()
    standard = _load_standard(settings, product, standard_path)
    slot = _pick_slot(standard, slot_id)
    if overlay_dir is not None:
        overlay_dir.mkdir(parents=True, exist_ok=True)
    out: list[dict[str, Any]] = []
    failed = 0
    bar = tqdm(photos, unit="photo", disable=len(photos) < 2, file=sys.stderr)
    for path in bar:
        entry: dict[str, Any] = {"image": str(path)}
        try:
            res = inspect_photo(path.read_bytes(), slot, settings=settings)
        except KipimoError as exc:
            failed += 1
            entry.update(error=str(exc), results=[])
            out.append(entry)
            if not as_json:
                tqdm.write(f"{path}: REJECTED {exc}", file=sys.stderr)
            continue
        results = _slot_results(standard, slot, res.findings)
        entry["results"] = [r.to_dict() for r in results]
        q = res.findings.quality
        entry["quality"] = {"usable": q.usable if q else None,
                            "retake": q.retake_message if q else None,
                            "metrics": [m.__dict__ for m in q.metrics] if q else []}
        if res.findings.error:
            entry["error"] = res.findings.error
        if overlay_dir is not None:  # drawn from the evaluated results, as the service does
            target = overlay_dir / f"{path.stem}.overlay.png"
            target.write_bytes(res.draw_overlay(results))
            entry["overlay"] = str(target)
        out.append(entry)
        if not as_json:
            _print_human(entry, bar)
    if as_json:
        click.echo(json.dumps(out, indent=2, ensure_ascii=False, default=str))
    if failed:
        sys.exit(2)


def _print_human(entry: dict[str, Any], bar: Any) -> None:
    lines = [f"{entry['image']}:"]
    retake = entry.get("quality", {}).get("retake")
    if retake:
        lines.append(f"  RETAKE: {retake}")
    if entry.get("error"):
        lines.append(f"  {entry['error']}")
    for r in entry["results"]:
        lines.append(f"  {r['status']:<13} {r['check_id']}: {r['message']}")
    bar.write("\n".join(lines))
