"""Quality gate against outcomes: is a photo refused exactly when its result would be unreliable?

    .venv/bin/python bench/quality_gate.py [--n 140] [--workers 2] [--quick] [--json out.json]

Each scene (``demo.scenes``, which never calls the measurer): a random flat part
on the A4 card at 12, 8 or 3 MP, with one condition pushed across its range —
light (exposure 0.15-2.6: from dim to white paper clipped far over), defocus
blur, tilt, sensor noise, resolution (2-3 MP, card filling 40-95 % of the
frame) or glare — or none. Every photo is measured with the gate relaxed
(``inspection.pipeline.inspect_image``), so its outcome is known: the errors
against the scene's truth and the stated U of each measurement. Then:

- within U: every measurement within its U and the hole count right. Refusing
  such a photo is a *false retake*; rate = refused / all within-U photos.
- beyond U: a measurement more than 1.5 U off (3 standard uncertainties: a
  calibrated k = 2 U is exceeded that far by chance in 0.3 % of measurements),
  or a wrong hole count. Accepting one is a *missed retake*; rate = such photos
  / all accepted photos. The literal count (any measurement beyond U) is
  printed beside it, with its floor: the share of nominal photos beyond U,
  which a 95 % U implies and no gate can remove.

The thresholds are calibrated on the first set of seeds (a sweep over the
recorded gate quantities) and the rates reported on a second, disjoint set
with the gate as the code has it (``inspection.quality``). Targets: false
retakes <= 5 %, missed retakes <= 1 %.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from demo.scenes import encode_jpeg, random_scene, render_scene, truth  # noqa: E402
from inspection import quality  # noqa: E402
from inspection.images import decode_image  # noqa: E402
from inspection.pipeline import inspect_image  # noqa: E402
from inspection.quality import DEFAULT_LIMITS, QualityLimits, assess_quality, part_light  # noqa: E402

CALIBRATION_SEED0, REPORT_SEED0 = 0, 100_000
FAMILIES = ("nominal", "light", "light", "blur", "tilt", "noise", "resolution", "glare")
RELAXED = QualityLimits(min_markers=1, min_px_per_mm=0.0, min_sharpness=0.0, max_dark_fraction=1.0,
                        max_bright_fraction=1.0, max_glare_fraction=1.0, max_tilt_deg=90.0)
BEYOND = 1.5  # x U
TARGET_FALSE, TARGET_MISSED = 0.05, 0.01


def scene_for(seed: int):  # type: ignore[no-untyped-def]
    rng = np.random.default_rng([seed, 14])
    family = FAMILIES[int(rng.integers(len(FAMILIES)))]
    mp = int(rng.choice([12, 8, 3]))
    scene = random_scene(seed, megapixels=mp)
    cam = scene.camera
    if family == "light":
        cam = dataclasses.replace(cam, exposure=float(rng.uniform(0.15, 2.6)))
    elif family == "blur":
        cam = dataclasses.replace(cam, blur=float(rng.uniform(0.5, 4.5)))
    elif family == "tilt":
        cam = dataclasses.replace(cam, tilt=float(rng.uniform(0, 45)))
    elif family == "noise":
        cam = dataclasses.replace(cam, noise=float(rng.uniform(1, 16)))
    elif family == "resolution":
        cam = dataclasses.replace(cam, megapixels=int(rng.choice([2, 3])), fill=float(rng.uniform(0.4, 0.95)))
    elif family == "glare":
        cam = dataclasses.replace(cam, glare=float(rng.uniform(0, 250)))
    if family != "light" and rng.random() < 0.5:  # white paper that clips, under any other condition
        cam = dataclasses.replace(cam, exposure=float(rng.uniform(1.0, 1.6)))
    return family, dataclasses.replace(scene, camera=cam)


def outcome(part, measurements) -> tuple[float, bool]:  # type: ignore[no-untyped-def]
    """(worst |error| / U over the measurements with a truth, hole count right)."""
    t = truth(part)
    worst = 0.0
    holes = t["hole_diameter"]
    assert isinstance(holes, list)
    count_ok = True
    for m in measurements:
        if m.feature == "hole_count":
            count_ok = int(m.value) == len(holes)
            continue
        if m.feature == "diameter" and part.shape != "disc":
            continue  # a rectangle's outer circle has no truth
        if m.feature == "hole_diameter":
            if m.index > len(holes):
                continue
            expected = float(holes[m.index - 1])
        elif m.feature in t:
            expected = float(t[m.feature])  # type: ignore[arg-type]
        else:
            continue
        err = abs(m.value - expected)
        worst = max(worst, err / m.uncertainty if m.uncertainty > 0 else (math.inf if err > 0 else 0.0))
    return worst, count_ok


def run_scene(seed: int) -> dict:
    family, scene = scene_for(seed)
    assert scene.part is not None
    image, _ = render_scene(scene)
    photo = decode_image(encode_jpeg(image, scene.camera.jpeg_quality))
    res = inspect_image(photo, "top", limits=RELAXED, measure=True)
    row: dict = {"seed": seed, "family": family, "mp": scene.camera.megapixels,
                 "exposure": scene.camera.exposure, "blur": scene.camera.blur, "tilt": scene.camera.tilt,
                 "noise": scene.camera.noise, "glare_in": scene.camera.glare}
    det = res.detection
    if res.findings.error is not None or not res.findings.measurements:
        row.update(measured=False, error=res.findings.error or "card not found")
    else:
        worst, count_ok = outcome(scene.part, res.findings.measurements)
        row.update(measured=True, worst=worst, count_ok=count_ok)
    gate = assess_quality(photo, det, DEFAULT_LIMITS, measure=True)
    row["refused"] = not gate.usable
    row["failed"] = sorted(m.name for m in gate.metrics if not m.passed)
    row["metrics"] = {m.name: m.value for m in gate.metrics}
    if det is not None and det.found:
        pl = part_light(photo, det)
        row["part"] = {"found": pl.found, "contrast_q20": pl.contrast_q20,
                       "clipped_paper": pl.clipped_paper, "marker_shift": pl.marker_shift, "glare": pl.glare,
                       "paper_dark": pl.paper_dark}
    return row


def label(r: dict) -> str:
    if not r["measured"]:
        return "failed"
    if r["worst"] <= 1.0 and r["count_ok"]:
        return "within"
    if r["worst"] > BEYOND or not r["count_ok"]:
        return "beyond"
    return "between"


def rates(rows: list[dict], refused: list[bool]) -> dict:
    lab = [label(r) for r in rows]
    within = [rf for rf, lb in zip(refused, lab, strict=True) if lb == "within"]
    accepted = [(lb, r) for rf, lb, r in zip(refused, lab, rows, strict=True) if not rf]
    acc_measured = [(lb, r) for lb, r in accepted if lb != "failed"]
    return {
        "photos": len(rows), "within": len(within), "refused": int(sum(refused)),
        "false_retakes": int(sum(within)), "false_rate": float(np.mean(within)) if within else 0.0,
        "accepted": len(accepted),
        "missed": sum(lb == "beyond" for lb, _ in accepted),
        "missed_rate": (sum(lb == "beyond" for lb, _ in accepted) / len(accepted)) if accepted else 0.0,
        "accepted_beyond_U": sum(r["worst"] > 1.0 or not r["count_ok"] for _, r in acc_measured),
        "accepted_failed": sum(lb == "failed" for lb, _ in accepted),
    }


# --- calibration: the gate's decision replayed from the recorded quantities -------------------

PARAMS = {  # name: (grid, refuse(row, value) -> bool)
    "min_px_per_mm": (np.arange(2.0, 7.01, 0.25), lambda r, v: r["metrics"].get("resolution", 0) < v),
    "min_sharpness": (np.arange(0.0, 400.1, 10.0), lambda r, v: r["metrics"].get("sharpness", 0) < v),
    "max_tilt_deg": (np.arange(20.0, 50.1, 1.0), lambda r, v: r["metrics"].get("tilt", 90) > v),
    "_MIN_EDGE_CONTRAST": (np.arange(0.0, 80.1, 5.0),
                           lambda r, v: _part(r, "contrast_q20", 255.0) < v and _part(r, "found", False)),
    "_MAX_CLIP_SHIFT_MM": (np.arange(0.0, 0.20, 0.005),
                           lambda r, v: _part(r, "marker_shift", 0.0) > v and _part(r, "clipped_paper", 0.0) > 0.25),
    "max_glare_fraction": (np.arange(0.0, 0.2, 0.005), lambda r, v: _part(r, "glare", 0.0) > v),
}


def _part(r: dict, key: str, default):  # type: ignore[no-untyped-def]
    return r.get("part", {}).get(key, default)


def current() -> dict[str, float]:
    return {"min_px_per_mm": DEFAULT_LIMITS.min_px_per_mm, "min_sharpness": DEFAULT_LIMITS.min_sharpness,
            "max_tilt_deg": DEFAULT_LIMITS.max_tilt_deg, "_MIN_EDGE_CONTRAST": quality._MIN_EDGE_CONTRAST,
            "_MAX_CLIP_SHIFT_MM": quality._MAX_CLIP_SHIFT_MM,
            "max_glare_fraction": DEFAULT_LIMITS.max_glare_fraction}


def replay(rows: list[dict], values: dict[str, float]) -> list[bool]:
    out = []
    for r in rows:
        m = r["metrics"]
        refuse = m.get("card_markers", 0) < DEFAULT_LIMITS.min_markers
        refuse |= any(PARAMS[k][1](r, v) for k, v in values.items()) if "resolution" in m else False
        out.append(bool(refuse))
    return out


def calibrate(rows: list[dict]) -> dict[str, float]:
    """Coordinate sweeps from a gate that refuses nothing: each threshold in turn takes
    the value that misses fewest (x 4) plus refuses fewest within-U photos, keeping false
    retakes under 80 % of their target; three rounds."""
    values = {k: float(g[0] if k.startswith(("min_", "_MIN")) else g[-1]) for k, (g, _f) in PARAMS.items()}

    def cost(v: dict[str, float]) -> float:
        s = rates(rows, replay(rows, v))
        return s["missed_rate"] * 4 + s["false_rate"] + 10 * max(0.0, s["false_rate"] - 0.8 * TARGET_FALSE)

    for _ in range(3):
        for k, (grid, _f) in PARAMS.items():
            # ties: the least strict value (fewest needless retakes on photos unlike these)
            order = grid if k.startswith(("min_", "_MIN")) else grid[::-1]
            values[k] = float(min(order, key=lambda g: cost({**values, k: float(g)})))
    return values


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=140, help="scenes per set (calibration and report)")
    ap.add_argument("--quick", action="store_true", help="40 scenes per set")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--json", type=Path, help="also write every row here")
    args = ap.parse_args()
    n = 40 if args.quick else args.n
    t0 = time.perf_counter()
    with ProcessPoolExecutor(max_workers=args.workers) as pool:
        cal = list(pool.map(run_scene, range(CALIBRATION_SEED0, CALIBRATION_SEED0 + n), chunksize=2))
        rep = list(pool.map(run_scene, range(REPORT_SEED0, REPORT_SEED0 + n), chunksize=2))
    wall = time.perf_counter() - t0
    print(f"{2 * n} scenes ({n} calibration seeds {CALIBRATION_SEED0}.., {n} report seeds {REPORT_SEED0}..) "
          f"in {wall:.0f} s")
    fitted = calibrate(cal)
    now = current()
    print("\nthresholds    calibrated   in the code")
    for k in PARAMS:
        print(f"  {k:<22} {fitted[k]:>8.3g} {now[k]:>12.3g}")
    cal_s = rates(cal, replay(cal, fitted))
    print(f"calibration seeds, calibrated thresholds: false retakes {cal_s['false_rate']:.1%}, "
          f"missed {cal_s['missed_rate']:.1%}")
    fr = rates(rep, replay(rep, fitted))
    print(f"report seeds, calibrated thresholds (replayed): false retakes {fr['false_rate']:.1%} "
          f"({fr['false_retakes']} / {fr['within']}), missed {fr['missed_rate']:.1%} "
          f"({fr['missed']} / {fr['accepted']})")
    s = rates(rep, [r["refused"] for r in rep])
    nominal = [r for r in rep if r["family"] == "nominal" and r["measured"]]
    floor = np.mean([r["worst"] > 1.0 or not r["count_ok"] for r in nominal]) if nominal else float("nan")
    print(f"\nreport seeds, the gate in the code ({s['photos']} photos):")
    print(f"  within U {s['within']}, refused {s['refused']}, accepted {s['accepted']} "
          f"(measurement failed on {s['accepted_failed']} accepted: they get the measurer's advice)")
    print(f"  false retakes  {s['false_retakes']:>3} / {s['within']:<4} = {s['false_rate']:6.1%}   target <= 5 %")
    print(f"  missed retakes {s['missed']:>3} / {s['accepted']:<4} = {s['missed_rate']:6.1%}   target <= 1 % "
          f"(beyond {BEYOND} U or wrong hole count)")
    print(f"  accepted with any measurement beyond U: {s['accepted_beyond_U']} / {s['accepted']} "
          f"(nominal photos beyond U: {floor:.0%}, the floor a 95 % U implies)")
    print(f"\n  {'condition':<11} {'photos':>6} {'within':>6} {'refused':>7} {'false':>5} {'beyond':>6} "
          f"{'missed':>6}  refused for")
    for fam in dict.fromkeys(FAMILIES):
        sel = [r for r in rep if r["family"] == fam]
        if not sel:
            continue
        lab = [label(r) for r in sel]
        why: dict[str, int] = {}
        for r in sel:
            for m in r["failed"]:
                why[m] = why.get(m, 0) + 1
        print(f"  {fam:<11} {len(sel):>6} {lab.count('within'):>6} {sum(r['refused'] for r in sel):>7} "
              f"{sum(r['refused'] and lb == 'within' for r, lb in zip(sel, lab, strict=True)):>5} "
              f"{lab.count('beyond'):>6} "
              f"{sum((not r['refused']) and lb == 'beyond' for r, lb in zip(sel, lab, strict=True)):>6}  "
              + ", ".join(f"{k} {v}" for k, v in sorted(why.items())))
    clipped = [r for r in rep if r["exposure"] * 232 * 1.1 > 255]
    if clipped:
        print(f"\n  photos whose white paper clips: {len(clipped)}, refused {sum(r['refused'] for r in clipped)} "
              f"({sum('bright' in r['failed'] for r in clipped)} as overexposed)")
    ok = s["false_rate"] <= TARGET_FALSE and s["missed_rate"] <= TARGET_MISSED
    print("RESULT:", "targets met" if ok else "targets MISSED")
    if args.json:
        args.json.write_text(json.dumps({"calibration": cal, "report": rep, "fitted": fitted,
                                         "summary": s}, indent=1, default=float))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
