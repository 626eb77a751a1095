"""The dashboard's charts: view data (``service.core.insights``, plain JSON) in, inline SVG out.

Drawing is ``service.web.dashboard.charts``' job; this module only rebuilds the ``qc``
value objects those renderers take from the cached JSON views and picks
titles and axis labels, so pages and ``qc report`` never touch chart internals.

This is where chart SVG enters the templates: each function returns ``Markup`` (``charts``
escapes every text it draws), so the templates insert it as is and escape everything else.
A new chart is a function here (and a renderer in ``charts``), a line in one template and its
data in ``service.core.insights``.
"""

from __future__ import annotations

from typing import Any

from markupsafe import Markup

from qc.compare import FunnelPoint, NodeComparison, NodeRate, ParetoBar
from qc.spc import Baseline, ControlChart, Violation
from service.web.dashboard import charts

__all__ = ["funnel_svg", "p_chart_svg", "pareto_svg", "rates_svg", "xbar_svg"]


def _chart(d: dict[str, Any]) -> ControlChart:
    return ControlChart(
        kind=d["kind"], values=tuple(d["values"]), center=tuple(d["center"]), lcl=tuple(d["lcl"]),
        ucl=tuple(d["ucl"]), sigma=tuple(d["sigma"]),
        violations=tuple(Violation(v["rule"], tuple(v["points"]), v["message"]) for v in d["violations"]),
        baseline=Baseline(d["baseline"]["kind"], dict(d["baseline"]["params"]), d["baseline"]["n_points"]),
        phase_i_count=d["phase_i_count"], sizes=tuple(d.get("sizes") or ()),
    )


def _x_label(weeks: list[str] | None, unit: str = "Week") -> str:
    if not weeks:
        return "Unit, in order of capture" if unit != "Week" else "Week"
    return f"Week (1 = week of {weeks[0]}, {len(weeks)} = week of {weeks[-1]})"


def _trusted(svg: str) -> Markup:
    """Chart SVG from ``charts``, which escapes its own text: the one string the templates do not escape."""
    return Markup(svg)  # charts.py escapes every value it draws


def p_chart_svg(node: dict[str, Any]) -> Markup:
    return _trusted(charts.control_chart_svg(_chart(node["chart"]), title=f"{node['node']}: weekly defect rate",
                                    y_label="Defect proportion", x_label=_x_label(node["weeks"])))


def xbar_svg(chart: dict[str, Any], check: dict[str, Any], weeks: list[str] | None) -> Markup:
    what = "Weekly mean" if chart["kind"] == "xbar" else "Value"
    return _trusted(charts.control_chart_svg(
        _chart(chart), title=f"{check['label']}", y_label=f"{what} ({check.get('unit') or ''})".replace(" ()", ""),
        x_label=_x_label(weeks, "Week" if chart["kind"] == "xbar" else "Unit")))


def _comparison(network: dict[str, Any]) -> NodeComparison:
    nodes = tuple(NodeRate(n["node"], n["defects"], n["n"], n["rate"], n["ci95"][0], n["ci95"][1], n["z"],
                           n["funnel_position"]) for n in network["nodes"])
    net = network["network"]
    return NodeComparison(net["rate"], net["defects"], net["n"], 0.95, nodes, None)


def rates_svg(network: dict[str, Any]) -> Markup:
    return _trusted(charts.proportions_svg(_comparison(network)))


def funnel_svg(network: dict[str, Any]) -> Markup:
    grid = [FunnelPoint(**p) for p in network["funnel"]]
    return _trusted(charts.funnel_plot_svg(_comparison(network), grid))


def pareto_svg(pareto: dict[str, Any], top: int = 8) -> Markup:
    bars = [ParetoBar(c["check"], c["count"], c["share"], c["cumulative"]) for c in pareto["checks"][:top]]
    return _trusted(charts.pareto_svg(bars))
