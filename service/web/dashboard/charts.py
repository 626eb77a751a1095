"""Charts for the quality manager's dashboard, rendered as self-contained SVG strings.

Pure functions: values in, an ``<svg>`` string out, no external assets (fonts,
scripts or styles), so a chart can be inlined in HTML, saved, or put in an
evidence export. Each chart has a title, axis labels and a ``viewBox``; it
scales to its container (``width="100%"``) and is readable from tablet to
laptop width. Elements carry classes (``point``, ``violation``, ``ucl``,
``lcl``, ``center``, ``bar``, ``cumulative``, ``interval``...) so pages can
restyle them and tests can count them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from xml.sax.saxutils import escape, quoteattr

from qc.compare import FunnelPoint, NodeComparison, ParetoBar
from qc.spc import RULE_NAMES, ControlChart

__all__ = ["control_chart_svg", "funnel_plot_svg", "pareto_svg", "proportions_svg"]

W, H = 800, 420
LEFT, RIGHT, TOP, BOTTOM = 78, 88, 48, 64
FONT = "font-family='system-ui, -apple-system, Segoe UI, Roboto, sans-serif'"
COLORS = {"point": "#1f4e79", "violation": "#c0392b", "limit": "#c0392b", "center": "#2e7d32",
          "bar": "#5b8db8", "line": "#e67e22", "grid": "#e3e3e3", "axis": "#444", "band": "#f3d9d5"}


def _ticks(lo: float, hi: float, count: int = 6) -> list[float]:
    """Round tick values covering [lo, hi]."""
    if not math.isfinite(lo) or not math.isfinite(hi):
        return [0.0]
    if hi <= lo:
        hi = lo + (abs(lo) or 1.0)
    raw = (hi - lo) / max(1, count - 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    start = math.floor(lo / step) * step
    out, t = [], start
    while t <= hi + step * 1e-9:
        out.append(round(t, 12))
        t += step
    return out


def _fmt(v: float) -> str:
    if v == 0:
        return "0"
    if abs(v) >= 1000 or abs(v) < 0.001:
        return f"{v:.3g}"
    return f"{v:.4g}"


class _Frame:
    """Maps data to pixels inside the plot area and draws axes and labels."""

    def __init__(self, x0: float, x1: float, y0: float, y1: float, log_x: bool = False) -> None:
        self.log_x = log_x
        self.yt = _ticks(y0, y1)
        self.y0, self.y1 = min(self.yt[0], y0), max(self.yt[-1], y1)
        self.x0, self.x1 = (x0, x1) if x1 > x0 else (x0 - 1, x0 + 1)

    def x(self, v: float) -> float:
        a, b, v2 = self.x0, self.x1, v
        if self.log_x:
            a, b, v2 = math.log10(a), math.log10(b), math.log10(max(v, 1e-12))
        return LEFT + (v2 - a) / (b - a) * (W - LEFT - RIGHT)

    def y(self, v: float) -> float:
        return H - BOTTOM - (v - self.y0) / (self.y1 - self.y0) * (H - TOP - BOTTOM)

    def axes(self, title: str, x_label: str, y_label: str, x_ticks: Sequence[tuple[float, str]]
             ) -> list[str]:
        out = [f"<rect x='0' y='0' width='{W}' height='{H}' fill='white'/>",
               f"<text class='title' x='{W / 2}' y='28' text-anchor='middle' font-size='18' "
               f"font-weight='600' fill='#222'>{escape(title)}</text>"]
        for t in self.yt:
            yy = self.y(t)
            out.append(f"<line class='grid' x1='{LEFT}' x2='{W - RIGHT}' y1='{yy:.1f}' "
                       f"y2='{yy:.1f}' stroke='{COLORS['grid']}'/>")
            out.append(f"<text class='y-tick' x='{LEFT - 8}' y='{yy + 4:.1f}' text-anchor='end' "
                       f"font-size='12' fill='{COLORS['axis']}'>{_fmt(t)}</text>")
        for v, label in x_ticks:
            xx = self.x(v)
            out.append(f"<text class='x-tick' x='{xx:.1f}' y='{H - BOTTOM + 18}' "
                       f"text-anchor='middle' font-size='12' fill='{COLORS['axis']}'>"
                       f"{escape(label)}</text>")
        out.append(f"<line class='axis' x1='{LEFT}' x2='{LEFT}' y1='{TOP}' y2='{H - BOTTOM}' "
                   f"stroke='{COLORS['axis']}'/>")
        out.append(f"<line class='axis' x1='{LEFT}' x2='{W - RIGHT}' y1='{H - BOTTOM}' "
                   f"y2='{H - BOTTOM}' stroke='{COLORS['axis']}'/>")
        out.append(f"<text class='x-label' x='{(LEFT + W - RIGHT) / 2}' y='{H - 16}' "
                   f"text-anchor='middle' font-size='14' fill='#222'>{escape(x_label)}</text>")
        cy = (TOP + H - BOTTOM) / 2
        out.append(f"<text class='y-label' x='18' y='{cy}' text-anchor='middle' font-size='14' "
                   f"fill='#222' transform='rotate(-90 18 {cy})'>{escape(y_label)}</text>")
        return out


def _svg(title: str, body: list[str]) -> str:
    return (f"<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 {W} {H}' width='100%' "
            f"role='img' aria-label={quoteattr(title)} {FONT}>"
            f"<title>{escape(title)}</title>" + "".join(body) + "</svg>")


def _int_ticks(n: int, first: int = 1) -> list[tuple[float, str]]:
    step = max(1, math.ceil(n / 12))
    return [(i, str(i + first)) for i in range(0, n, step)]


def _step_path(frame: _Frame, ys: Sequence[float]) -> str:
    """A limit line that steps at each point, so per-point limits read correctly."""
    parts = []
    for i, v in enumerate(ys):
        x_a, x_b = frame.x(i - 0.5), frame.x(i + 0.5)
        parts.append(f"{'M' if i == 0 else 'L'}{x_a:.1f},{frame.y(v):.1f} L{x_b:.1f},{frame.y(v):.1f}")
    return " ".join(parts)


def control_chart_svg(chart: ControlChart, *, title: str, y_label: str,
                      x_label: str = "Sample") -> str:
    """Points joined in order, centre line, (per-point) control limits, violations in red.

    Each violating point is drawn with class ``violation`` and a tooltip naming
    the run rules it broke; a dashed line separates Phase I from Phase II.
    """
    n = len(chart.values)
    rules_at: dict[int, list[int]] = {}
    for violation in chart.violations:
        for p in violation.points:
            rules_at.setdefault(p, []).append(violation.rule)
    lo = min(list(chart.values) + list(chart.lcl) + list(chart.center)) if n else 0.0
    hi = max(list(chart.values) + list(chart.ucl) + list(chart.center)) if n else 1.0
    pad = (hi - lo) * 0.05 or 1.0
    # Counts and proportions never go below zero; do not pad the axis into negatives.
    f = _Frame(-0.5, max(n - 0.5, 0.5), max(0.0, lo - pad) if lo >= 0 else lo - pad, hi + pad)
    body = f.axes(title, x_label, y_label, _int_ticks(n))
    if 0 < chart.phase_i_count < n:
        xx = f.x(chart.phase_i_count - 0.5)
        body.append(f"<line class='phase-split' x1='{xx:.1f}' x2='{xx:.1f}' y1='{TOP}' "
                    f"y2='{H - BOTTOM}' stroke='#888' stroke-dasharray='6 4'/>")
        body.append(f"<text x='{xx + 6:.1f}' y='{TOP + 14}' font-size='12' fill='#666'>"
                    "Phase II</text>")
    if n:
        for cls, ys, colour, dash in (("ucl", chart.ucl, COLORS["limit"], "6 3"),
                                      ("lcl", chart.lcl, COLORS["limit"], "6 3"),
                                      ("center", chart.center, COLORS["center"], "")):
            d = f" stroke-dasharray='{dash}'" if dash else ""
            body.append(f"<path class='{cls}' d='{_step_path(f, ys)}' fill='none' "
                        f"stroke='{colour}' stroke-width='1.5'{d}/>")
        for cls, ys, label in (("ucl-label", chart.ucl, "UCL"), ("lcl-label", chart.lcl, "LCL"),
                               ("center-label", chart.center, "CL")):
            # In the right margin, clear of the points.
            body.append(f"<text class='{cls}' x='{W - RIGHT + 6}' y='{f.y(ys[-1]) + 4:.1f}' "
                        f"font-size='11' fill='#555'>{label} {_fmt(ys[-1])}</text>")
        line = " ".join(f"{'M' if i == 0 else 'L'}{f.x(i):.1f},{f.y(v):.1f}"
                        for i, v in enumerate(chart.values))
        body.append(f"<path class='series' d='{line}' fill='none' stroke='{COLORS['point']}' "
                    "stroke-width='1.2'/>")
    for i, v in enumerate(chart.values):
        broken = sorted(set(rules_at.get(i, [])))
        cls = "point violation" if broken else "point"
        colour = COLORS["violation"] if broken else COLORS["point"]
        r = 5.5 if broken else 3.5
        tip = f"Sample {i + 1}: {_fmt(v)}"
        if broken:
            tip += "; " + "; ".join(f"rule {b}: {RULE_NAMES[b]}" for b in broken)
        body.append(f"<circle class='{cls}' data-index='{i}' cx='{f.x(i):.1f}' cy='{f.y(v):.1f}' "
                    f"r='{r}' fill='{colour}'><title>{escape(tip)}</title></circle>")
    return _svg(title, body)


def funnel_plot_svg(comparison: NodeComparison, funnel: Sequence[FunnelPoint], *,
                    title: str = "Defect rate by node against volume",
                    x_label: str = "Units inspected (log scale)",
                    y_label: str = "Defect proportion") -> str:
    """Nodes as points (volume, rate) inside 95 % and 99.8 % limits around the network rate."""
    volumes = [float(nd.n) for nd in comparison.nodes] or [p.n for p in funnel] or [1.0]
    rates = [nd.rate for nd in comparison.nodes] + [comparison.network_rate]
    x0, x1 = max(min(volumes) / 2, 1.0), max(max(volumes) * 1.5, 2.0)
    # Show the funnel where the nodes are, not its flare at tiny volumes.
    top = min(1.0, max(rates) * 1.3 + 0.02)
    f = _Frame(x0, x1, 0.0, top, log_x=True)
    decades = [10 ** k for k in range(math.floor(math.log10(x0)), math.ceil(math.log10(x1)) + 1)]
    ticks = [(d, f"{d:,.0f}") for d in decades if x0 <= d <= x1]
    body = f.axes(title, x_label, y_label, ticks)
    pts = [p for p in funnel if x0 <= p.n <= x1]
    for cls, key, dash in (("limit95", "95", "5 4"), ("limit998", "998", "")):
        for side in ("upper", "lower"):
            d, pen_down = [], False
            for p in pts:
                v = getattr(p, side + key)
                if v > f.y1:  # off the top of the plot: lift the pen
                    pen_down = False
                    continue
                d.append(f"{'L' if pen_down else 'M'}{f.x(p.n):.1f},{f.y(v):.1f}")
                pen_down = True
            extra = f" stroke-dasharray='{dash}'" if dash else ""
            body.append(f"<path class='{cls}' d='{' '.join(d)}' fill='none' "
                        f"stroke='{COLORS['limit']}' stroke-width='1.3'{extra}/>")
    body.append(f"<text class='legend' x='{LEFT + 8}' y='{TOP + 4}' font-size='12' fill='#555'>"
                "dashed: 95 % limits · solid: 99.8 % limits · green: network rate</text>")
    yy = f.y(comparison.network_rate)
    body.append(f"<line class='center' x1='{LEFT}' x2='{W - RIGHT}' y1='{yy:.1f}' y2='{yy:.1f}' "
                f"stroke='{COLORS['center']}' stroke-width='1.5'/>")
    for nd in comparison.nodes:
        out = nd.funnel != "inside"
        cls = "point violation" if out else "point"
        colour = COLORS["violation"] if out else COLORS["point"]
        cx, cy = f.x(nd.n), f.y(nd.rate)
        tip = f"{nd.node}: {nd.defects}/{nd.n} = {nd.rate:.2%} ({nd.funnel.replace('_', ' ')})"
        body.append(f"<circle class='{cls}' data-node={quoteattr(nd.node)} cx='{cx:.1f}' "
                    f"cy='{cy:.1f}' r='6' fill='{colour}'><title>{escape(tip)}</title></circle>")
        body.append(f"<text class='point-label' x='{cx + 8:.1f}' y='{cy - 8:.1f}' font-size='12' "
                    f"fill='#333'>{escape(nd.node)}</text>")
    return _svg(title, body)


def pareto_svg(bars: Sequence[ParetoBar], *, title: str = "Failed checks (Pareto)",
               x_label: str = "Check", y_label: str = "Failures") -> str:
    """Bars by count, largest first, with the cumulative percentage as a line (right axis)."""
    n = len(bars)
    top = max((b.count for b in bars), default=1)
    f = _Frame(-0.5, max(n - 0.5, 0.5), 0.0, float(top))
    labels = [(i, b.label if len(b.label) <= 14 else b.label[:13] + "…") for i, b in enumerate(bars)]
    body = f.axes(title, x_label, y_label, labels)
    width = (W - LEFT - RIGHT) / max(n, 1) * 0.7
    for i, b in enumerate(bars):
        x, y = f.x(i) - width / 2, f.y(b.count)
        body.append(f"<rect class='bar' data-label={quoteattr(b.label)} x='{x:.1f}' y='{y:.1f}' "
                    f"width='{width:.1f}' height='{H - BOTTOM - y:.1f}' fill='{COLORS['bar']}'>"
                    f"<title>{escape(f'{b.label}: {b.count} ({b.share:.0%})')}</title></rect>")

    def cum_y(share: float) -> float:
        return H - BOTTOM - share * (H - TOP - BOTTOM)

    if n:
        d = " ".join(f"{'M' if i == 0 else 'L'}{f.x(i):.1f},{cum_y(b.cumulative_share):.1f}"
                     for i, b in enumerate(bars))
        body.append(f"<path class='cumulative' d='{d}' fill='none' stroke='{COLORS['line']}' "
                    "stroke-width='2'/>")
        for i, b in enumerate(bars):
            body.append(f"<circle class='cumulative-point' cx='{f.x(i):.1f}' "
                        f"cy='{cum_y(b.cumulative_share):.1f}' r='3.5' fill='{COLORS['line']}'/>")
    for pct in (0, 25, 50, 75, 100):
        body.append(f"<text class='y2-tick' x='{W - RIGHT + 2}' y='{cum_y(pct / 100) + 4:.1f}' "
                    f"font-size='11' fill='{COLORS['line']}'>{pct}%</text>")
    return _svg(title, body)


def proportions_svg(comparison: NodeComparison, *,
                    title: str = "Defect proportion by node (Wilson intervals)",
                    x_label: str = "Node", y_label: str = "Defect proportion") -> str:
    """One dot per node with its confidence interval, and the network rate as a line."""
    nodes = comparison.nodes
    n = len(nodes)
    hi = max([nd.upper for nd in nodes] + [comparison.network_rate], default=1.0)
    f = _Frame(-0.5, max(n - 0.5, 0.5), 0.0, hi * 1.05 or 1.0)
    body = f.axes(title, x_label, y_label, [(i, nd.node) for i, nd in enumerate(nodes)])
    yy = f.y(comparison.network_rate)
    body.append(f"<line class='center' x1='{LEFT}' x2='{W - RIGHT}' y1='{yy:.1f}' y2='{yy:.1f}' "
                f"stroke='{COLORS['center']}' stroke-dasharray='6 3'/>")
    for i, nd in enumerate(nodes):
        x = f.x(i)
        body.append(f"<line class='interval' x1='{x:.1f}' x2='{x:.1f}' y1='{f.y(nd.lower):.1f}' "
                    f"y2='{f.y(nd.upper):.1f}' stroke='{COLORS['point']}' stroke-width='2'/>")
        out = nd.funnel != "inside"
        tip = (f"{nd.node}: {nd.defects}/{nd.n} = {nd.rate:.2%}, "
               f"{comparison.confidence:.0%} CI {nd.lower:.2%} to {nd.upper:.2%}")
        body.append(f"<circle class='{'point violation' if out else 'point'}' "
                    f"data-node={quoteattr(nd.node)} cx='{x:.1f}' cy='{f.y(nd.rate):.1f}' r='5' "
                    f"fill='{COLORS['violation'] if out else COLORS['point']}'>"
                    f"<title>{escape(tip)}</title></circle>")
    return _svg(title, body)
