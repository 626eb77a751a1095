"""Node comparison against published examples and independent computation.

- Wilson intervals: R. G. Newcombe, "Two-sided confidence intervals for the
  single proportion: comparison of seven methods", Stat. Med. 17 (1998),
  Table I, method 3 (score interval without continuity correction).
- Fisher's exact test: the lady tasting tea, Fisher (1935); two-sided P = 0.486
  (Agresti, Categorical Data Analysis, 2nd ed., section 3.5.2).
- Funnel limits: Spiegelhalter, "Funnel plots for comparing institutional
  performance", Stat. Med. 24 (2005): p0 +- z sqrt(p0 (1 - p0) / n).
"""

from __future__ import annotations

import math

import pytest

from qc import compare
from qc.errors import InvalidInput


@pytest.mark.parametrize(
    "d,n,lo,hi",
    [(81, 263, 0.2553, 0.3662), (15, 148, 0.0624, 0.1605), (0, 20, 0.0, 0.1611),
     (1, 29, 0.0061, 0.1718), (29, 29, 0.8830, 1.0)],
)
def test_wilson_intervals_newcombe_1998_table_1(d, n, lo, hi):
    got = compare.wilson_interval(d, n)
    assert got == pytest.approx((lo, hi), abs=5e-5)


def test_fisher_exact_for_two_small_nodes_tea_tasting():
    res = compare.compare_nodes({"cup milk first": (3, 4), "cup tea first": (1, 4)})
    assert res.test.method == "fisher"
    assert res.test.p_value == pytest.approx(0.486, abs=5e-4)


def test_chi_squared_across_nodes_matches_hand_computation():
    counts = {"a": (10, 100), "b": (30, 120), "c": (5, 90)}
    res = compare.compare_nodes(counts)
    p0 = 45 / 310
    chi2 = 0.0
    for d, n in counts.values():
        for obs, exp in ((d, n * p0), (n - d, n * (1 - p0))):
            chi2 += (obs - exp) ** 2 / exp
    assert res.test.method == "chi2" and res.test.dof == 2
    assert res.test.statistic == pytest.approx(chi2)
    assert res.test.p_value == pytest.approx(math.exp(-chi2 / 2))  # chi2 sf with 2 dof
    assert res.network_rate == pytest.approx(p0)


def test_node_rates_and_funnel_positions():
    res = compare.compare_nodes({"small": (2, 20), "big": (150, 1000), "good": (60, 1000)})
    by = {n.node: n for n in res.nodes}
    p0 = 212 / 2020
    z_big = (0.15 - p0) / math.sqrt(p0 * (1 - p0) / 1000)
    assert by["big"].z == pytest.approx(z_big)
    assert by["big"].funnel == "above_998"  # z = 4.6
    assert by["good"].funnel == "below_998"
    assert by["small"].funnel == "inside"
    assert by["small"].lower < 0.1 < by["small"].upper


def test_funnel_limits_narrow_with_volume():
    pts = compare.funnel_limits(0.1, 1000, points=10)
    assert pts[0].n == pytest.approx(1.0) and pts[-1].n == pytest.approx(1000)
    last = pts[-1]
    se = math.sqrt(0.1 * 0.9 / 1000)
    assert last.upper95 == pytest.approx(0.1 + 1.959964 * se, rel=1e-6)
    assert last.upper998 == pytest.approx(0.1 + 3.090232 * se, rel=1e-6)
    widths = [p.upper95 - p.lower95 for p in pts]
    assert widths == sorted(widths, reverse=True)


def test_pareto_orders_failed_checks_with_cumulative_share():
    bars = compare.pareto(["crack", "chip", "crack", "stain", "crack", "chip"])
    assert [(b.label, b.count) for b in bars] == [("crack", 3), ("chip", 2), ("stain", 1)]
    assert [b.cumulative_share for b in bars] == pytest.approx([0.5, 5 / 6, 1.0])
    assert compare.pareto({"a": 0, "b": 4})[0].to_dict()["share"] == 1.0


def test_invalid_counts_are_refused():
    with pytest.raises(InvalidInput):
        compare.compare_nodes({"x": (5, 3)})
    with pytest.raises(InvalidInput):
        compare.wilson_interval(1, 0)


def test_funnel_point_at_one_volume_is_the_normal_approximation():
    # Spiegelhalter 2005: p0 +- z sqrt(p0 (1 - p0) / n), z = 1.959964 (95 %) and 3.090232 (99.8 %)
    at = compare.funnel_point(0.1, 250)
    se = math.sqrt(0.1 * 0.9 / 250)
    assert (at.lower95, at.upper95) == pytest.approx((0.1 - 1.959964 * se, 0.1 + 1.959964 * se), rel=1e-6)
    assert (at.lower998, at.upper998) == pytest.approx((0.1 - 3.090232 * se, 0.1 + 3.090232 * se), rel=1e-6)
    small = compare.funnel_point(0.1, 4)  # clipped to a proportion
    assert small.lower998 == 0.0 and small.upper998 < 1.0
    with pytest.raises(InvalidInput):
        compare.funnel_point(0.1, 0)


def test_wilson_interval_at_other_confidence_levels():
    # Wilson's closed form at z = 2.575829 (99 %), computed here: 15 of 148
    z, p, n = 2.575829, 15 / 148, 148
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    assert compare.wilson_interval(15, 148, 0.99) == pytest.approx((centre - half, centre + half), rel=1e-6)
    with pytest.raises(InvalidInput):
        compare.wilson_interval(1, 10, 1.5)
