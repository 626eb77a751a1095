"""The alert rules of qc/alarms.py and the X-bar chart they use; the simulated false-alarm and detection rates.

The simulation tests hold the rules to the issue-14 targets at a few seeds. The bench (``bench/alerts.py``,
100 seeds in the README's run) measures the rates; here the seeds are few, so each assertion allows what
chance allows: a bound that a rule set meeting the bench's figures fails with probability below about 1 %
(stated per test). They judge at geometrically spaced uploads (every one of a week's first 10, then every
~10 % more), as the bench does, for speed.
"""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pytest

from qc import alarms, spc

MONDAY = dt.date(2026, 1, 5)


def _weeks(count: int) -> list[dt.date]:
    return [MONDAY + dt.timedelta(weeks=w) for w in range(count)]


def test_xbar_baseline_pools_the_within_week_variance() -> None:
    rng = np.random.default_rng(1)
    groups = [rng.normal(5.0, 0.2, n) for n in (3, 8, 5, 12)]
    base = spc.xbar_baseline([spc.Summary.of(g) for g in groups])
    every = np.concatenate(groups)
    within = sum(((g - g.mean()) ** 2).sum() for g in groups) / sum(len(g) - 1 for g in groups)
    assert base.params["mean"] == pytest.approx(every.mean())
    assert base.params["sigma"] == pytest.approx(math.sqrt(within))
    assert base.params["n0"] == len(every)


def test_xbar_chart_limits_follow_each_subgroups_size() -> None:
    base = spc.Baseline("xbar", {"mean": 10.0, "sigma": 2.0, "n0": 100.0}, 8)
    chart = spc.xbar_chart([10.0, 13.5, 12.9], [1, 4, 16], baseline=base, limit=3.0)
    # centre +- 3 sigma sqrt(1/n + 1/n0): the single unit's limits are four times as wide as the 16's
    for i, n in enumerate((1, 4, 16)):
        half = 3 * 2.0 * math.sqrt(1 / n + 1 / 100)
        assert chart.lcl[i] == pytest.approx(10 - half) and chart.ucl[i] == pytest.approx(10 + half)
    # 13.5 with n = 4: z = 3.5 / (2 sqrt(0.26)) = 3.43 > 3; 12.9 with n = 16: z = 2.9 / (2 sqrt(0.0725)) = 5.4
    assert chart.out_of_control == (1, 2)


def _steady(n_weeks: int, size: int, seed: int) -> list[spc.Summary]:
    rng = np.random.default_rng(seed)
    return [spc.Summary.of(rng.normal(0.0, 1.0, size)) for _ in range(n_weeks)]


def test_a_partial_week_is_judged_by_its_own_size() -> None:
    history = _steady(11, 30, seed=3)
    sigma = spc.xbar_baseline(history[:8]).params["sigma"]
    centre = spc.xbar_baseline(history[:8]).params["mean"]
    # one unit 3 sigma off: ordinary for a single measurement, a shift for a full week's mean of 30
    odd = centre + 3 * sigma
    partial = alarms.mean_signals(_weeks(12), [*history, spc.Summary(1, odd, 0.0)], n_dims=4,
                                  complete_until=MONDAY + dt.timedelta(weeks=11))
    full = alarms.mean_signals(_weeks(12), [*history, spc.Summary(30, odd, 29.0 * sigma**2)], n_dims=4,
                               complete_until=MONDAY + dt.timedelta(weeks=11))
    assert partial == []
    assert [s.rule for s in full] == [1]


def test_the_current_week_is_never_its_own_baseline() -> None:
    history = _steady(6, 20, seed=4)
    weeks = [*_weeks(6), MONDAY + dt.timedelta(weeks=9)]  # three empty weeks, then this one
    # six complete weeks before the judged four: a baseline; with the sixth marked incomplete, too few
    assert alarms.mean_signals(weeks, [*history, spc.Summary(20, 9.0, 19.0)], n_dims=1) != []
    assert alarms.mean_signals(weeks, [*history, spc.Summary(20, 9.0, 19.0)], n_dims=1,
                               complete_until=MONDAY + dt.timedelta(weeks=5)) == []


def test_a_small_week_needs_more_than_the_normal_approximation_to_raise_a_rate_alert() -> None:
    weeks = _weeks(12)
    sizes, defects = [40] * 11 + [3], [1] * 11 + [2]
    # 2 of 3 at p0 = 3 %: above the normal-theory UCL (0.03 + 3 sqrt(0.03 * 0.97 / 3) = 32 %), but a binomial
    # tail of 3 * 0.03^2 * 0.97 + 0.03^3 = 0.0026 > 0.00135: no alert
    assert [s.rule for s in alarms.rate_signals(weeks, defects, sizes, 0.03)] == []
    defects[-1] = 3  # 3 of 3: tail 0.03^3 = 2.7e-5
    assert "p-above-limit" in {s.rule for s in alarms.rate_signals(weeks, defects, sizes, 0.03)}


def test_a_run_of_recent_defects_is_flagged_by_its_binomial_tail() -> None:
    weeks = _weeks(12)
    sizes, defects = [100] * 12, [3] * 9 + [8, 9, 8]
    # 25 of 300 at 3 %: P(X >= 25) is about 3e-6 (binomial(300, 0.03), mean 9, sd 2.95)
    found = {s.rule: s for s in alarms.rate_signals(weeks, defects, sizes, 0.03)}
    assert found["p-recent-above"].points == (9, 10, 11)
    assert found["p-recent-above"].defects == 25


# --------------------------------------------------------------------------- the simulated rates


def test_the_in_control_false_alarm_rate_holds() -> None:
    """Target: <= 1 false alert per node and product per quarter. 12 seeds x 5 nodes = 60 node-quarters, the
    count Poisson (alerts are rare and nearly independent). The bench measures about 0.5 per quarter at these
    volumes, an expected count of about 30: a Poisson(30) exceeds 45 with probability 0.4 %, so 45 (0.75 a
    quarter, under the target) is the bound; a rule set at the target, Poisson(60), stays at or under 45 with
    probability 2.7 % only."""
    results = [alarms.simulate(seed, volume=20, dims=3, looks="geometric") for seed in range(12)]
    quarters = sum(r.node_quarters for r in results)
    count = sum(sum(r.false_alerts.values()) for r in results)
    assert quarters == pytest.approx(60)
    assert count <= 45, (count, [r.false_alerts for r in results])


def test_a_mean_shift_is_flagged_within_three_weeks() -> None:
    """Target: >= 90 % of seeds. At 30 units a week the bench measures 100 % (95 % bound >= 96 %); 30 seeds must give at
    least 27 hits, which binomial(30, 0.98) misses with probability 0.3 % (and a 90 % rule would pass with
    probability 65 %: the bench, not this test, states the rate)."""
    hits = [alarms.simulate(1000 + s, nodes=3, volume=30, dims=3, mean_shift=1.5, looks="geometric").mean_detected
            for s in range(30)]
    assert sum(bool(h) for h in hits) >= 27


def test_a_doubled_defect_rate_is_flagged_within_three_weeks_at_volume() -> None:
    """At 300 units a week (3 % defective: 27 expected in three weeks) the bench measures 96 % (95 % bound
    >= 90 %); 30 seeds must give at least 22 hits, which binomial(30, 0.9) misses with probability 0.2 %.
    (Below about 200 units a week no rule can: three weeks hold too few defectives to tell 3 % from 6 %.)"""
    hits = [alarms.simulate(2000 + s, nodes=3, volume=300, dims=1, rate_factor=2.0, looks="geometric").rate_detected
            for s in range(30)]
    assert sum(bool(h) for h in hits) >= 22
