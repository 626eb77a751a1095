"""The annotated picture the technician sees for each photo.

Card photos: the rectified measuring area with the part outline, dimension
lines and values (green inside the limits, red outside, amber when the
uncertainty straddles a limit under the guarded rule), holes outlined and numbered, and the anomaly
heat map of any anomaly model. A photo that fails the quality gate shows the
photo itself with the retake advice across it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np

from inspection.pipeline import InspectionResult
from qc.findings import Measurement

__all__ = ["encode_png", "heat_overlay", "render_overlay"]

GREEN, RED, AMBER, BLUE, WHITE = (40, 170, 40), (30, 30, 220), (0, 160, 240), (200, 120, 0), (255, 255, 255)
_MAX_SIDE = 1600
_MIN_SIDE = 900


def _limits_of(check: Any) -> tuple[float | None, float | None]:
    lim = getattr(check, "limits", None)
    if lim is not None:
        return lim
    return getattr(check, "min", None), getattr(check, "max", None)


def _colour(m: Measurement, checks: Sequence[Any]) -> tuple[tuple[int, int, int], str]:
    """Colour and short limit text for a measurement given the slot's checks."""
    for c in checks:
        if getattr(c, "kind", None) != "dimension" or str(c.feature) != m.feature:
            continue
        if m.feature == "hole_diameter" and c.index != m.index:
            continue
        lo, hi = _limits_of(c)
        v, u = m.value, m.uncertainty
        if (lo is not None and v < lo) or (hi is not None and v > hi):
            return RED, _limit_text(lo, hi)
        guarded = str(getattr(c, "decision_rule", "simple")) == "guarded"
        if guarded and ((lo is not None and v - u < lo) or (hi is not None and v + u > hi)):
            return AMBER, _limit_text(lo, hi)
        return GREEN, _limit_text(lo, hi)
    return BLUE, ""


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


def render_overlay(res: InspectionResult, *, checks: Sequence[Any] = ()) -> np.ndarray:
    """BGR overlay image for one inspected photo."""
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
        texts = _model_lines(res)
        if res.findings.error:
            texts.insert(0, res.findings.error)
        return _banner(img, texts or ["photo accepted"], RED if res.findings.error else BLUE)
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
        col, lim = _colour(m, checks)
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
        col, lim = _colour(m, checks) if m is not None else (BLUE, "")
        cv2.circle(view, px(c.cx, c.cy), max(1, int(round(c.r * r))), col, 2, cv2.LINE_AA)
        _text(view, f"H{i} {2 * c.r:.2f}", px(c.cx + c.r * 0.8, c.cy - c.r * 0.8), col, 0.5)
        if m is not None:
            lines.append((f"hole {i} diameter {m.value:.2f} +/- {m.uncertainty:.2f} mm{lim}", col))
    for feat in ("hole_spacing", "diameter", "area"):
        m = part.get(feat)
        if m is None or (feat == "diameter" and not _checked(feat, checks)):
            continue
        col, lim = _colour(m, checks)
        if feat == "hole_spacing" and len(g.holes) >= 2:
            cv2.line(view, px(g.holes[0].cx, g.holes[0].cy), px(g.holes[1].cx, g.holes[1].cy), col, 1,
                     cv2.LINE_AA)
        lines.append((f"{feat} {m.value:.2f} +/- {m.uncertainty:.2f} {m.unit}{lim}", col))
    return _legend(view, lines + [(t, BLUE) for t in _model_lines(res)])


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


def _model_lines(res: InspectionResult) -> list[str]:
    out = []
    for o in res.model_outputs:
        r = o.result
        score = "" if r.score is None else f" score {r.score:.3f}"
        thr = "" if r.threshold is None else f" (threshold {r.threshold:g})"
        out.append(f"{r.model} [{r.sha256[:12]}]: {r.label or '-'}{score}{thr}")
    return out


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

