"""The annotated picture the technician sees for each photo, drawn from the evaluated results.

Card photos: the rectified measuring area with the part outline, dimension
lines and values, holes outlined and numbered, and the anomaly heat map of any
anomaly model. Colours and limits come from the results ``qc.evaluate`` gave
the slot's checks (green pass, red fail, amber inconclusive, blue when no check
judged the value), so the picture can never disagree with the record. A photo
that fails the quality gate shows the photo itself with the retake advice across it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import cv2
import numpy as np

from inspection.pipeline import InspectionResult
from qc.evaluate import CheckResult, CheckStatus
from qc.findings import Measurement

__all__ = ["encode_png", "heat_overlay", "render_overlay"]

GREEN, RED, AMBER, BLUE, WHITE = (40, 170, 40), (30, 30, 220), (0, 160, 240), (200, 120, 0), (255, 255, 255)
_MAX_SIDE = 1600
_MIN_SIDE = 900
_STATUS_COLOURS = {CheckStatus.PASS: GREEN, CheckStatus.FAIL: RED, CheckStatus.INCONCLUSIVE: AMBER}
_SEVERITY_ORDER = (CheckStatus.FAIL, CheckStatus.INCONCLUSIVE, CheckStatus.PASS)


def _status_colour(result: CheckResult | None) -> tuple[int, int, int]:
    return BLUE if result is None else _STATUS_COLOURS.get(result.status, BLUE)


def _result_for(m: Measurement, checks: Sequence[Any], results: Mapping[str, CheckResult]) -> CheckResult | None:
    """The evaluated result of the slot's dimension check on this measurement, if any."""
    for c in checks:
        if getattr(c, "kind", None) != "dimension" or str(c.feature) != m.feature:
            continue
        if m.feature == "hole_diameter" and c.index != m.index:
            continue
        return results.get(c.id)
    return None


def _colour(m: Measurement, checks: Sequence[Any],
            results: Mapping[str, CheckResult]) -> tuple[tuple[int, int, int], str]:
    """Colour and short limit text for a measurement, from its check's evaluated result."""
    r = _result_for(m, checks, results)
    if r is None:
        return BLUE, ""
    return _status_colour(r), _limit_text(r.lower, r.upper)


def _limit_text(lo: float | None, hi: float | None) -> str:
    if lo is not None and hi is not None:
        return f" [{lo:g}..{hi:g}]"
    return f" [>= {lo:g}]" if lo is not None else (f" [<= {hi:g}]" if hi is not None else "")


def _text(img: np.ndarray, txt: str, org: tuple[int, int], colour: tuple[int, int, int],
          scale: float = 0.6) -> None:
    cv2.putText(img, txt, org, cv2.FONT_HERSHEY_SIMPLEX, scale, WHITE, 4, cv2.LINE_AA)
    cv2.putText(img, txt, org, cv2.FONT_HERSHEY_SIMPLEX, scale, colour, 2, cv2.LINE_AA)


def heat_overlay(view: np.ndarray, amap: np.ndarray, threshold: float | None) -> np.ndarray:
    """Blend an anomaly map (any size; resized to the view) into a BGR view as a JET heat map."""
    m = cv2.resize(amap, (view.shape[1], view.shape[0]))
    # colour rises from the photo's own typical level (median) to 1.5 x the threshold or the peak:
    # a uniformly "busy" map stays faint, a spot that stands out is red
    lo = float(np.median(m))
    top = max(float(threshold or 0) * 1.5, float(m.max()), lo + 1e-6)
    norm = np.clip((m - lo) / (top - lo), 0, 1)
    colour = cv2.applyColorMap((norm * 255).astype(np.uint8), cv2.COLORMAP_JET)
    alpha = (0.55 * norm)[..., None]
    return (view * (1 - alpha) + colour * alpha).astype(np.uint8)


def _banner(img: np.ndarray, lines: list[str], colour: tuple[int, int, int]) -> np.ndarray:
    scale = max(0.5, img.shape[1] / 1400)
    h = int(34 * scale) * (len(lines) + 1)
    out = np.vstack([np.full((h, img.shape[1], 3), 255, np.uint8), img])
    for i, line in enumerate(lines):
        _text(out, line, (10, int(34 * scale) * (i + 1)), colour, scale * 0.8)
    return out


def _fit(img: np.ndarray) -> tuple[np.ndarray, float]:
    """Shrink large photos; enlarge small ones so the labels stay legible."""
    long_side = max(img.shape[:2])
    s = min(1.0, _MAX_SIDE / long_side) if long_side > _MIN_SIDE else _MIN_SIDE / long_side
    if s != 1.0:
        img = cv2.resize(img, None, fx=s, fy=s, interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR)
    return np.ascontiguousarray(img), s


def render_overlay(res: InspectionResult, *, checks: Sequence[Any] = (),
                   results: Sequence[CheckResult] = ()) -> np.ndarray:
    """BGR overlay image for one inspected photo.

    ``checks``: the slot's checks (which check judged which measurement); ``results``: what
    ``qc.evaluate`` made of them, the only source of pass/fail colours.
    """
    by_id = {r.check_id: r for r in results}
    q = res.findings.quality
    if q is not None and not q.usable:
        img, _ = _fit(res.image.copy())
        msgs = [m.message for m in q.metrics if not m.passed]
        return _banner(img, ["RETAKE PHOTO"] + msgs, RED)
    part = res.part
    if part is None:
        base = res.model_view if res.model_view is not None else res.image
        img, s = _fit(base.copy() if base.ndim == 3 else cv2.cvtColor(base, cv2.COLOR_GRAY2BGR))
        img = _models_layer(img, res)
        model_lines = _model_lines(res, checks, by_id)
        texts = [t for t, _ in model_lines]
        if res.findings.error:
            texts.insert(0, res.findings.error)
        colour = RED if res.findings.error else _worst_colour([c for _, c in model_lines])
        return _banner(img, texts or ["photo accepted"], colour)
    view, s = _fit(part.rectified.copy())
    view = _models_layer(view, res)
    r = part.px_per_mm * s
    ox, oy = part.origin

    def px(x: float, y: float) -> tuple[int, int]:
        return int(round((x - ox) * r)), int(round((y - oy) * r))

    g = part.geometry
    outline = np.array([px(x, y) for x, y in g.outline[:: max(1, len(g.outline) // 2000)]], np.int32)
    cv2.polylines(view, [outline], True, BLUE, 2, cv2.LINE_AA)
    box = cv2.boxPoints(g.rect)
    (rcx, rcy), (rw, rh), _ = g.rect
    # dimension lines: along the rectangle's two axes through its centre
    # boxPoints: box[0] -> box[1] runs along the rect's height, box[1] -> box[2] along its width
    e_long = (box[2] - box[1]) if rw >= rh else (box[1] - box[0])
    e_short = (box[1] - box[0]) if rw >= rh else (box[2] - box[1])
    lines: list[tuple[str, tuple[int, int, int]]] = []
    for feat, edge, at in (("length", e_long, 0.3), ("width", e_short, 0.75)):
        m = part.get(feat)
        if m is None:
            continue
        col, lim = _colour(m, checks, by_id)
        a = np.array([rcx, rcy]) - edge / 2
        b = np.array([rcx, rcy]) + edge / 2
        cv2.arrowedLine(view, px(*a), px(*b), col, 2, cv2.LINE_AA, tipLength=0.03)
        cv2.arrowedLine(view, px(*b), px(*a), col, 2, cv2.LINE_AA, tipLength=0.03)
        label = f"{feat} {m.value:.2f} ± {m.uncertainty:.2f} mm{lim}".replace("±", "+/-")
        mid = px(*(a + at * (b - a) + np.array([1.5, -1.5])))
        _text(view, f"{m.value:.2f}", mid, col)
        lines.append((label, col))
    for i, c in enumerate(g.holes, start=1):
        m = part.get("hole_diameter", i)
        col, lim = _colour(m, checks, by_id) if m is not None else (BLUE, "")
        cv2.circle(view, px(c.cx, c.cy), max(1, int(round(c.r * r))), col, 2, cv2.LINE_AA)
        _text(view, f"H{i} {2 * c.r:.2f}", px(c.cx + c.r * 0.8, c.cy - c.r * 0.8), col, 0.5)
        if m is not None:
            lines.append((f"hole {i} diameter {m.value:.2f} +/- {m.uncertainty:.2f} mm{lim}", col))
    for feat in ("hole_spacing", "diameter", "area"):
        m = part.get(feat)
        if m is None or (feat == "diameter" and not _checked(feat, checks)):
            continue
        col, lim = _colour(m, checks, by_id)
        if feat == "hole_spacing" and len(g.holes) >= 2:
            cv2.line(view, px(g.holes[0].cx, g.holes[0].cy), px(g.holes[1].cx, g.holes[1].cy), col, 1,
                     cv2.LINE_AA)
        lines.append((f"{feat} {m.value:.2f} +/- {m.uncertainty:.2f} {m.unit}{lim}", col))
    return _legend(view, lines + _model_lines(res, checks, by_id))


def _checked(feature: str, checks: Sequence[Any]) -> bool:
    return any(getattr(c, "kind", None) == "dimension" and str(c.feature) == feature for c in checks)


def _models_layer(img: np.ndarray, res: InspectionResult) -> np.ndarray:
    for out in res.model_outputs:
        if out.anomaly_map is not None:
            img = heat_overlay(img, out.anomaly_map, out.result.threshold)
        if out.result.detections and res.model_view is not None:
            s = img.shape[1] / res.model_view.shape[1]
            for d in out.result.detections:
                x1, y1, x2, y2 = (int(round(v * s)) for v in d.box)
                cv2.rectangle(img, (x1, y1), (x2, y2), RED, 2)
                _text(img, f"{d.label} {d.confidence:.2f}", (x1, max(12, y1 - 4)), RED, 0.5)
    return img


def _model_lines(res: InspectionResult, checks: Sequence[Any],
                 results: Mapping[str, CheckResult]) -> list[tuple[str, tuple[int, int, int]]]:
    """One line per model output, coloured by the result of the check that read it."""
    out = []
    for o in res.model_outputs:
        r = o.result
        score = "" if r.score is None else f" score {r.score:.3f}"
        thr = "" if r.threshold is None else f" (threshold {r.threshold:g})"
        judged = [results[c.id] for c in checks if getattr(c, "kind", None) == "model" and c.model == r.model
                  and c.id in results and results[c.id].model_sha256 == r.sha256]
        verdicts = ", ".join(f"{j.check_id} {j.status}" for j in judged)
        colour = _worst_colour([_status_colour(j) for j in judged])
        out.append((f"{r.model} [{r.sha256[:12]}]: {r.label or '-'}{score}{thr}"
                    + (f" -> {verdicts}" if verdicts else ""), colour))
    return out


def _worst_colour(colours: Sequence[tuple[int, int, int]]) -> tuple[int, int, int]:
    """Red over amber over green; blue when nothing was judged."""
    for status in _SEVERITY_ORDER:
        if _STATUS_COLOURS[status] in colours:
            return _STATUS_COLOURS[status]
    return BLUE


def _legend(view: np.ndarray, lines: list[tuple[str, tuple[int, int, int]]]) -> np.ndarray:
    scale = max(0.45, min(0.7, view.shape[1] / 1600))
    step = int(30 * scale / 0.6)
    panel = np.full((step * (len(lines) + 1), view.shape[1], 3), 255, np.uint8)
    for i, (txt, col) in enumerate(lines):
        _text(panel, txt, (10, step * (i + 1)), col, scale)
    return np.vstack([view, panel]) if lines else view


def encode_png(image: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", image, [cv2.IMWRITE_PNG_COMPRESSION, 3])
    if not ok:
        raise ValueError("PNG encoding failed")
    return buf.tobytes()

