"""SVG charts: parsed with xml.etree to check structure, not pixels."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from qc import compare, spc
from service.web.dashboard import charts

NS = {"s": "http://www.w3.org/2000/svg"}
# Montgomery ISQC 7th ed., Example 7.1: samples 15 and 23 fall above the UCL.
OJ = [12, 15, 8, 10, 4, 7, 16, 9, 14, 10, 5, 6, 17, 12, 22, 8, 10, 5, 13, 11, 20, 18, 24, 15,
      9, 12, 7, 13, 9, 6]


def _parse(svg: str) -> ET.Element:
    root = ET.fromstring(svg)
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    assert root.get("viewBox") and root.get("width") == "100%"
    return root


def _by_class(root: ET.Element, tag: str, cls: str) -> list[ET.Element]:
    return [e for e in root.iter(f"{{{NS['s']}}}{tag}") if cls in (e.get("class") or "").split()]


def _texts(root: ET.Element, cls: str) -> list[str]:
    return [e.text or "" for e in _by_class(root, "text", cls)]


def test_control_chart_has_one_marker_per_point_and_marks_violations():
    ch = spc.p_chart(OJ, [50] * 30)
    root = _parse(charts.control_chart_svg(ch, title="Orange juice cans", y_label="Fraction"))
    points = _by_class(root, "circle", "point")
    assert len(points) == 30
    flagged = {int(p.get("data-index")) for p in _by_class(root, "circle", "violation")}
    expected = {i for v in ch.violations for i in v.points}
    assert {14, 22} <= flagged and flagged == expected
    # violating points say which rule they broke
    tip = next(p for p in points if p.get("data-index") == "14").find("s:title", NS).text
    assert "rule 1" in tip
    assert _texts(root, "title") == ["Orange juice cans"]
    assert _texts(root, "x-label") == ["Sample"] and _texts(root, "y-label") == ["Fraction"]
    for cls in ("ucl", "lcl", "center"):
        assert len(_by_class(root, "path", cls)) == 1


def test_control_chart_limits_step_per_point_when_subgroup_sizes_vary():
    ch = spc.p_chart([4, 10, 3, 25], [50, 100, 40, 200])
    root = _parse(charts.control_chart_svg(ch, title="p", y_label="p"))
    ucl = _by_class(root, "path", "ucl")[0].get("d")
    ys = {seg.split(",")[1].strip() for seg in ucl.replace("M", "L").split("L") if seg.strip()}
    assert len(ys) == 4  # four different limit heights


def test_phase_split_is_drawn_only_with_a_phase_ii():
    both = spc.c_chart([3, 4, 5, 4, 3, 12], phase_i=4)
    root = _parse(charts.control_chart_svg(both, title="c", y_label="count"))
    assert len(_by_class(root, "line", "phase-split")) == 1
    only_i = _parse(charts.control_chart_svg(spc.c_chart([3, 4, 5]), title="c", y_label="n"))
    assert _by_class(only_i, "line", "phase-split") == []


def test_titles_are_escaped():
    ch = spc.c_chart([1, 2, 3])
    root = _parse(charts.control_chart_svg(ch, title="Cracks <&> chips", y_label="count"))
    assert _texts(root, "title") == ["Cracks <&> chips"]


HOSTILE = "<script>x</script>\" onload=\"y' onclick='z & more"


def test_every_chart_keeps_hostile_names_as_text_and_attribute_values():
    """The pages insert chart SVG unescaped (figures.py marks it safe), so every name a chart draws must be
    escaped here: the parsed SVG holds the name as text or as one attribute value, and no element or
    attribute was injected."""
    comparison = compare.compare_nodes({HOSTILE: (30, 100), "calm": (2, 100)})
    svgs = [charts.control_chart_svg(spc.c_chart([1, 2, 9]), title=HOSTILE, y_label=HOSTILE, x_label=HOSTILE),
            charts.funnel_plot_svg(comparison, compare.funnel_limits(comparison.network_rate, 200)),
            charts.pareto_svg(compare.pareto({HOSTILE: 3, "calm": 1})), charts.proportions_svg(comparison)]
    for svg in svgs:
        root = _parse(svg)
        tags = {e.tag.split("}")[-1] for e in root.iter()}
        assert "script" not in tags
        attributes = [(k, v) for e in root.iter() for k, v in e.attrib.items()]
        assert not [k for k, _ in attributes if k.startswith("on")]
        texts = [e.text or "" for e in root.iter()]
        assert any(HOSTILE in t for t in texts)
    funnel = _parse(svgs[1])
    assert HOSTILE in [p.get("data-node") for p in _by_class(funnel, "circle", "point")]
    assert HOSTILE in [r.get("data-label") for r in _by_class(_parse(svgs[2]), "rect", "bar")]


@pytest.fixture
def nodes() -> compare.NodeComparison:
    return compare.compare_nodes({"Nairobi": (2, 20), "Kisumu": (150, 1000),
                                  "Mombasa": (60, 1000), "Arusha": (40, 400)})


def test_funnel_plot_has_a_point_per_node_and_flags_those_outside(nodes):
    svg = charts.funnel_plot_svg(nodes, compare.funnel_limits(nodes.network_rate, 2000))
    root = _parse(svg)
    pts = _by_class(root, "circle", "point")
    assert sorted(p.get("data-node") for p in pts) == ["Arusha", "Kisumu", "Mombasa", "Nairobi"]
    outside = sorted(p.get("data-node") for p in _by_class(root, "circle", "violation"))
    assert outside == sorted(n.node for n in nodes.nodes if n.funnel != "inside")
    assert outside == ["Kisumu", "Mombasa"]
    assert len(_by_class(root, "path", "limit95")) == 2
    assert len(_by_class(root, "path", "limit998")) == 2
    assert _texts(root, "x-label") and _texts(root, "y-label")


def test_pareto_bars_descend_and_cumulative_line_has_a_point_per_bar():
    bars = compare.pareto({"crack": 30, "chip": 12, "stain": 5, "dimension out of tolerance": 3})
    root = _parse(charts.pareto_svg(bars))
    rects = _by_class(root, "rect", "bar")
    assert [r.get("data-label") for r in rects] == ["crack", "chip", "stain",
                                                    "dimension out of tolerance"]
    heights = [float(r.get("height")) for r in rects]
    assert heights == sorted(heights, reverse=True)
    assert len(_by_class(root, "circle", "cumulative-point")) == 4
    assert len(_by_class(root, "path", "cumulative")) == 1


def test_proportions_plot_draws_an_interval_per_node(nodes):
    root = _parse(charts.proportions_svg(nodes))
    assert len(_by_class(root, "line", "interval")) == 4
    assert len(_by_class(root, "circle", "point")) == 4
    assert _texts(root, "x-tick") == ["Nairobi", "Kisumu", "Mombasa", "Arusha"]


def test_charts_need_no_external_assets(nodes):
    svgs = [charts.control_chart_svg(spc.c_chart([1, 2, 3]), title="c", y_label="n"),
            charts.funnel_plot_svg(nodes, compare.funnel_limits(0.1, 100)),
            charts.pareto_svg(compare.pareto(["a"])), charts.proportions_svg(nodes)]
    for svg in svgs:
        assert "href" not in svg and "<script" not in svg and "url(" not in svg
