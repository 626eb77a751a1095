"""Control charts against Montgomery's worked examples and the Nelson rules against
hand-built sequences.

Book: D. C. Montgomery, *Introduction to Statistical Quality Control*, 7th ed.
(Wiley, 2013); the data and limits of these examples are unchanged since the
4th edition. Run rules: L. S. Nelson, "The Shewhart control chart - tests for
special causes", J. Qual. Technol. 16(4), 1984.
"""

from __future__ import annotations

import math
import statistics

import pytest

from qc import spc
from qc.errors import InvalidInput

# Example 7.1: orange-juice cans, 30 samples of n = 50; defectives per sample.
OJ = [12, 15, 8, 10, 4, 7, 16, 9, 14, 10, 5, 6, 17, 12, 22, 8, 10, 5, 13, 11, 20, 18, 24, 15,
      9, 12, 7, 13, 9, 6]
# Example 7.3: nonconformities on 26 successive samples of 100 printed circuit boards.
PCB = [21, 24, 16, 12, 15, 5, 28, 20, 31, 25, 20, 24, 16, 19, 10, 17, 13, 22, 18, 39, 30, 24,
       16, 19, 17, 15]
# Example 7.4: nonconformities in 20 samples of n = 5 personal computers.
PC = [10, 12, 8, 14, 10, 16, 11, 7, 10, 15, 9, 5, 7, 11, 12, 6, 8, 10, 7, 5]
# Example 6.5: weekly cost of processing mortgage loan applications (individuals).
LOANS = [310, 288, 297, 298, 307, 303, 294, 297, 308, 306, 294, 299, 297, 299, 314, 295, 293,
         306, 301, 304]


def test_p_chart_orange_juice_example_7_1():
    ch = spc.p_chart(OJ, [50] * 30)
    assert ch.baseline.params["pbar"] == pytest.approx(0.2313, abs=5e-5)
    assert ch.ucl[0] == pytest.approx(0.4102, abs=5e-4)
    assert ch.lcl[0] == pytest.approx(0.0524, abs=5e-4)
    assert ch.out_of_control == (14, 22)  # samples 15 and 23, as in the book


def test_p_chart_revised_limits_without_assignable_causes_example_7_1():
    # Montgomery drops samples 15 and 23 (new batch of cardboard, inexperienced operator);
    # revised p-bar = 0.2150, UCL = 0.3893, LCL = 0.0407, and sample 21 now exceeds the UCL.
    ch = spc.p_chart(OJ, [50] * 30, exclude={14, 22})
    assert ch.baseline.params["pbar"] == pytest.approx(0.2150, abs=5e-5)
    assert ch.ucl[0] == pytest.approx(0.3893, abs=5e-4)
    assert ch.lcl[0] == pytest.approx(0.0407, abs=5e-4)
    assert 20 in ch.out_of_control
    assert ch.baseline.n_points == 28


def test_np_chart_on_the_same_data_example_7_1():
    ch = spc.np_chart(OJ, [50] * 30)
    assert ch.center[0] == pytest.approx(11.57, abs=0.01)
    assert ch.ucl[0] == pytest.approx(20.51, abs=0.01)
    assert ch.lcl[0] == pytest.approx(2.62, abs=0.01)
    assert ch.out_of_control == (14, 22)


def test_p_chart_with_varying_sizes_has_per_point_limits():
    d, n = [4, 10, 3, 25], [50, 100, 40, 200]
    ch = spc.p_chart(d, n)
    pbar = sum(d) / sum(n)  # 42 / 390, computed here independently
    for i, ni in enumerate(n):
        se = math.sqrt(pbar * (1 - pbar) / ni)
        assert ch.ucl[i] == pytest.approx(pbar + 3 * se)
        assert ch.lcl[i] == pytest.approx(max(0.0, pbar - 3 * se))
    assert len(set(ch.ucl)) == 4
    npc = spc.np_chart(d, n)
    assert npc.center == pytest.approx([ni * pbar for ni in n])


def test_c_chart_circuit_boards_example_7_3():
    ch = spc.c_chart(PCB)
    # The book rounds c-bar to 19.85 before computing the limits, hence the tolerance.
    assert ch.center[0] == pytest.approx(19.85, abs=0.005)
    assert ch.ucl[0] == pytest.approx(33.22, abs=0.012)
    assert ch.lcl[0] == pytest.approx(6.48, abs=0.012)
    assert ch.out_of_control == (5, 19)  # samples 6 and 20


def test_u_chart_personal_computers_example_7_4():
    ch = spc.u_chart(PC, [5] * 20)
    assert ch.center[0] == pytest.approx(1.93)
    assert ch.ucl[0] == pytest.approx(3.79, abs=0.005)
    assert ch.lcl[0] == pytest.approx(0.07, abs=0.005)
    assert ch.out_of_control == ()


def test_individuals_and_moving_range_mortgage_example_6_5():
    ch = spc.imr_chart(LOANS)
    assert ch.location.center[0] == pytest.approx(300.5)
    assert ch.baseline.params["mrbar"] == pytest.approx(7.79, abs=0.005)
    assert ch.location.ucl[0] == pytest.approx(321.22, abs=0.02)
    assert ch.location.lcl[0] == pytest.approx(279.78, abs=0.02)
    assert ch.dispersion.ucl[0] == pytest.approx(25.45, abs=0.02)
    assert ch.location.out_of_control == () and ch.dispersion.out_of_control == ()


def _groups_with(mean: float, spread: float, count: int, kind: str) -> list[list[float]]:
    # Subgroups of 5 whose mean is `mean` and whose range (kind "r") or standard
    # deviation (kind "s") is exactly `spread`: mean +- a, plus three at the mean.
    a = spread / 2 if kind == "r" else spread * math.sqrt(2)
    return [[mean - a, mean + a, mean, mean, mean] for _ in range(count)]


def test_xbar_r_limits_piston_rings_example_6_3():
    # Table 6.3 summary: x-dbar = 74.001, R-bar = 0.023, n = 5 -> X-bar 73.988 / 74.014,
    # R chart 0 / 0.049 (A2 = 0.577, D4 = 2.114).
    ch = spc.xbar_r_chart(_groups_with(74.001, 0.023, 25, "r"))
    assert ch.location.ucl[0] == pytest.approx(74.014, abs=5e-4)
    assert ch.location.lcl[0] == pytest.approx(73.988, abs=5e-4)
    assert ch.dispersion.ucl[0] == pytest.approx(0.049, abs=5e-4)
    assert ch.dispersion.lcl[0] == 0


def test_xbar_s_limits_piston_rings_example_6_7():
    # Same data with s: x-dbar = 74.001, s-bar = 0.0094 -> X-bar 73.988 / 74.014,
    # S chart UCL 0.0196, LCL 0 (A3 = 1.427, B4 = 2.089).
    ch = spc.xbar_s_chart(_groups_with(74.001, 0.0094, 25, "s"))
    assert ch.location.ucl[0] == pytest.approx(74.014, abs=5e-4)
    assert ch.location.lcl[0] == pytest.approx(73.988, abs=5e-4)
    assert ch.dispersion.ucl[0] == pytest.approx(0.0196, abs=5e-5)
    assert ch.dispersion.lcl[0] == 0


@pytest.mark.parametrize(
    "n,a2,a3,d3,d4,b3,b4",
    [  # Montgomery Appendix Table VI
        (2, 1.880, 2.659, 0, 3.267, 0, 3.267),
        (5, 0.577, 1.427, 0, 2.114, 0, 2.089),
        (7, 0.419, 1.182, 0.076, 1.924, 0.118, 1.882),
        (10, 0.308, 0.975, 0.223, 1.777, 0.284, 1.716),
        (25, 0.153, 0.606, 0.459, 1.541, 0.565, 1.435),
    ],
)
def test_chart_constants_match_the_printed_table(n, a2, a3, d3, d4, b3, b4):
    k = spc.chart_constants(n)
    got = (k.A2, k.A3, k.D3, k.D4, k.B3, k.B4)
    assert got == pytest.approx((a2, a3, d3, d4, b3, b4), abs=1e-3)


def test_phase_ii_points_are_judged_against_the_frozen_baseline():
    phase1 = spc.c_chart(PCB)
    later = [20, 22, 45, 18]
    ph2 = spc.c_chart(later, baseline=phase1.baseline)
    assert ph2.center[0] == pytest.approx(phase1.center[0])  # limits not re-estimated
    assert ph2.out_of_control == (2,)
    assert ph2.phase_i_count == 0
    # Same with phase_i: the first 26 points set the limits, the next 4 are judged.
    both = spc.c_chart(PCB + later, phase_i=26)
    assert both.ucl[0] == pytest.approx(phase1.ucl[0])
    assert 28 in both.out_of_control


def test_a_baseline_of_another_chart_type_is_refused():
    with pytest.raises(InvalidInput):
        spc.u_chart(PC, [5] * 20, baseline=spc.c_chart(PCB).baseline)


def test_laney_p_chart_widens_limits_by_sigma_z():
    d = [120, 95, 180, 140, 60, 150, 110, 200, 90, 130]
    n = [5000, 4000, 6000, 5500, 3000, 5200, 4800, 6100, 3900, 5000]
    ch = spc.laney_p_chart(d, n)
    # Independent computation of Laney's p' (Quality Engineering 14(4), 2002).
    pbar = sum(d) / sum(n)
    z = [(di / ni - pbar) / math.sqrt(pbar * (1 - pbar) / ni) for di, ni in zip(d, n, strict=True)]
    sigma_z = sum(abs(b - a) for a, b in zip(z, z[1:], strict=False)) / (len(z) - 1) / 1.128
    assert sigma_z > 1.5  # overdispersed: the plain p chart would flag most points
    for i, ni in enumerate(n):
        assert ch.ucl[i] == pytest.approx(pbar + 3 * sigma_z * math.sqrt(pbar * (1 - pbar) / ni))
    assert len(spc.p_chart(d, n).out_of_control) > len(ch.out_of_control)


def test_laney_reduces_to_the_p_chart_when_sigma_z_is_one():
    ch = spc.laney_p_chart([10, 20], [100, 100], baseline=spc.Baseline(
        "laney_p", {"pbar": 0.15, "sigma_z": 1.0}, 2))
    p = spc.p_chart([10, 20], [100, 100], baseline=spc.Baseline("p", {"pbar": 0.15}, 2))
    assert ch.ucl == pytest.approx(p.ucl)


# --- Nelson rules on hand-built sequences (centre 0, sigma 1) ------------------------------


def _hits(values, rules=spc.ALL_RULES):
    n = len(values)
    return spc.run_rules(values, [0.0] * n, [1.0] * n, rules=rules)


def _rules(values, rules=spc.ALL_RULES):
    return sorted({v.rule for v in _hits(values, rules)})


def test_rule_1_one_point_beyond_three_sigma():
    v = _hits([0.5, -0.5, 3.2, 0.1, -3.5], rules={1})
    assert [x.points for x in v] == [(2,), (4,)]
    assert v[0].message.startswith("one point beyond") and "sample 3" in v[0].message


def test_rule_2_nine_in_a_row_on_one_side_and_not_eight():
    assert _rules([0.5, -0.3] * 2 + [0.4] * 8 + [-0.2], {2}) == []
    v = _hits([0.4] * 10 + [-0.1], {2})
    assert len(v) == 1 and v[0].points == tuple(range(10))  # one merged run of ten


def test_rule_3_six_points_steadily_increasing():
    assert _rules([0.0, 0.1, 0.2, 0.3, 0.4, -0.5], {3}) == []  # only five rising
    assert _hits([-1.0, -0.6, -0.2, 0.1, 0.5, 0.9], {3})[0].points == tuple(range(6))
    assert _rules([0.9, 0.5, 0.1, -0.2, -0.6, -1.0], {3}) == [3]


def test_rule_4_fourteen_alternating():
    zigzag = [0.5 if i % 2 else -0.5 for i in range(14)]
    assert _rules(zigzag, {4}) == [4]
    assert _rules(zigzag[:13], {4}) == []


def test_rule_5_two_of_three_beyond_two_sigma_same_side():
    assert _hits([0.0, 2.3, 0.5, 2.4, 0.0], {5})[0].points == (1, 3)
    assert _rules([0.0, 2.3, -2.4, 0.0], {5}) == []  # opposite sides do not count


def test_rule_6_four_of_five_beyond_one_sigma_same_side():
    assert _rules([1.2, 1.5, 0.2, 1.1, 1.3], {6}) == [6]
    assert _rules([1.2, 1.5, 0.2, 1.1, -1.3], {6}) == []


def test_rule_7_fifteen_within_one_sigma():
    hugging = [0.3 if i % 3 else -0.4 for i in range(15)]
    assert _rules(hugging, {7}) == [7]
    assert _rules(hugging[:14], {7}) == []


def test_rule_8_eight_beyond_one_sigma_on_either_side():
    assert _rules([1.5, -1.4, 1.2, -1.8, 1.1, -1.3, 1.6, -1.2], {8}) == [8]
    assert _rules([1.5, -1.4, 1.2, -0.8, 1.1, -1.3, 1.6, -1.2], {8}) == []


def test_rules_can_be_switched_off_and_unknown_rules_are_refused():
    run = [0.4] * 9
    assert _rules(run, {1, 3}) == []
    assert _rules(run) == [2]
    with pytest.raises(InvalidInput):
        _hits(run, {9})


def test_rules_use_per_point_sigma():
    # The same deviation is 1 sigma for a small subgroup but 3.5 sigma for a large one.
    v = spc.run_rules([0.35, 0.35], [0.0, 0.0], [0.35, 0.1], rules={1})
    assert [x.points for x in v] == [(1,)]


def test_oj_chart_run_rule_hits_are_data():
    ch = spc.p_chart(OJ, [50] * 30)
    d = ch.to_dict()
    assert {"rule", "points", "message"} <= set(d["violations"][0])
    assert all(v["rule"] in range(1, 9) for v in d["violations"])


def test_invalid_inputs_are_refused_with_the_field():
    with pytest.raises(InvalidInput):
        spc.p_chart([5, 60], [50, 50])  # more defectives than units
    with pytest.raises(InvalidInput):
        spc.xbar_r_chart([[1.0, 2.0], [1.0, 2.0, 3.0]])
    with pytest.raises(InvalidInput):
        spc.c_chart([1, 2, 3], phase_i=5)


def test_oj_chart_zone_rules_hit_samples_21_to_24():
    # Independent reading of Example 7.1 (sigma_p = 0.0596): samples 21-23 are at
    # z = 2.83, 2.16, 4.17 (two of three beyond 2 sigma) and 21-24 all beyond 1 sigma
    # with sample 20 at z = -0.19 (four of five beyond 1 sigma).
    hits = {(v.rule, v.points) for v in spc.p_chart(OJ, [50] * 30).violations}
    assert (5, (20, 21, 22)) in hits
    assert (6, (20, 21, 22, 23)) in hits


def test_baseline_survives_a_round_trip_through_json():
    import json

    base = spc.imr_chart(LOANS).baseline
    again = spc.Baseline.from_dict(json.loads(json.dumps(base.to_dict())))
    assert again == base
    assert spc.imr_chart([300, 340], baseline=again).location.out_of_control == (1,)
    with pytest.raises(InvalidInput):
        spc.Baseline.from_dict({"kind": "p"})


def test_xbar_s_with_varying_subgroup_sizes_uses_pooled_s_and_per_point_limits():
    # Montgomery section 6.3.2 (eqs. 6.30-6.31), computed here independently.
    groups = [[10.1, 9.9, 10.0, 10.2], [10.0, 10.3, 9.8], [9.9, 10.1, 10.0, 10.2, 9.8],
              [10.0, 10.1, 10.2]]
    ch = spc.xbar_s_chart(groups)
    ns = [len(g) for g in groups]
    means = [sum(g) / len(g) for g in groups]
    vars_ = [sum((x - m) ** 2 for x in g) / (len(g) - 1) for g, m in zip(groups, means, strict=True)]
    xx = sum(n * m for n, m in zip(ns, means, strict=True)) / sum(ns)
    sbar = math.sqrt(sum((n - 1) * v for n, v in zip(ns, vars_, strict=True)) / (sum(ns) - 4))
    a3 = {3: 1.954, 4: 1.628, 5: 1.427}  # Appendix Table VI
    assert ch.location.center[0] == pytest.approx(xx)
    assert ch.baseline.params["sbar"] == pytest.approx(sbar)
    for i, n in enumerate(ns):
        assert ch.location.ucl[i] == pytest.approx(xx + a3[n] * sbar, abs=1e-3 * sbar)


def test_summaries_pool_and_chart_like_the_raw_values():
    a, b = [9.8, 10.1, 10.0, 10.3], [10.2, 9.9, 10.4]
    both = spc.pool([spc.Summary.of(a), spc.Summary.of(b)])
    m = sum(a + b) / 7
    assert (both.n, both.mean) == (7, pytest.approx(m))
    assert both.sumsq == pytest.approx(sum((x - m) ** 2 for x in a + b))
    assert spc.Summary.of(a).sd == pytest.approx(statistics.stdev(a))
    with pytest.raises(InvalidInput):
        spc.xbar_s_chart_from_summaries([spc.Summary.of([1.0])])


def test_c4_closed_form_against_the_printed_table_and_beyond_it():
    # Montgomery Appendix Table VI: c4(2) = 0.7979, c4(10) = 0.9727, c4(25) = 0.9896; c4(n) ~ 4(n-1)/(4n-3)
    assert [round(spc.c4(n), 4) for n in (2, 10, 25)] == [0.7979, 0.9727, 0.9896]
    assert spc.c4(100) == pytest.approx(4 * 99 / 397, rel=1e-4)
    # an S chart of subgroups of 50 (beyond the table): A3 = 3 / (c4 sqrt 50)
    groups = [[10.0 + 0.01 * ((7 * i + j) % 13) for j in range(50)] for i in range(6)]
    ch = spc.xbar_s_chart(groups)
    sbar = ch.baseline.params["sbar"]
    assert ch.location.ucl[0] - ch.location.center[0] == pytest.approx(3 * sbar / (spc.c4(50) * math.sqrt(50)))
