"""The dashboard's statistics agree with the textbook formulas applied to the raw values.

``service.core.insights`` hands ``qc`` subgroup summaries (n, mean, sum of squares) because a million
records never leave the database; these tests recompute the same quantities from raw values with
NumPy and SciPy's gamma function (an independent reference) and compare.
"""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pytest
from scipy.special import gamma

from service.core import analytics as q
from service.core import insights


def _summaries(groups: list[np.ndarray], week0: dt.date = dt.date(2026, 1, 5)) -> list[q.Subgroup]:
    return [q.Subgroup(1, week0 + dt.timedelta(weeks=i), len(g), float(g.mean()), float(g.min()), float(g.max()),
                       float(((g - g.mean()) ** 2).sum())) for i, g in enumerate(groups)]


def _c4(n: int) -> float:
    """E[s] / sigma for n normal values, from the gamma function (Montgomery eq. 6.28's constant)."""
    return math.sqrt(2 / (n - 1)) * gamma(n / 2) / gamma((n - 1) / 2)


@pytest.mark.parametrize("sizes", [[5] * 12, [3, 7, 4, 9, 5, 6, 8, 2, 10, 5], [40, 55, 31, 60, 48]])
def test_xbar_chart_of_summaries_follows_montgomery_from_the_raw_values(sizes: list[int]) -> None:
    """Montgomery eq. 6.27 (equal sizes: s-bar = mean s_i) / 6.31 (pooled), limits x-dbar +- 3 s-bar / (c4 sqrt n),
    computed here from the raw values; subgroups of 31..60 (a busy node's week) are beyond the n <= 25 table."""
    rng = np.random.default_rng(4)
    groups = [rng.normal(10.0, 0.2, k) for k in sizes]
    groups[-1] = groups[-1] + 0.5  # a shifted last subgroup, so rule 1 has something to find
    ours = insights.xbar_chart(_summaries(groups))
    n = np.array(sizes)
    means = np.array([g.mean() for g in groups])
    s = np.array([g.std(ddof=1) for g in groups])
    if len(set(sizes)) == 1:
        xx, sbar = means.mean(), s.mean()
    else:
        xx, sbar = (n * means).sum() / n.sum(), math.sqrt(((n - 1) * s**2).sum() / (n - 1).sum())
    half = [3 * sbar / (_c4(k) * math.sqrt(k)) for k in sizes]
    assert ours.values == pytest.approx(means)
    assert ours.center == pytest.approx([xx] * len(sizes))
    assert ours.ucl == pytest.approx([xx + h for h in half])
    assert ours.lcl == pytest.approx([xx - h for h in half])
    beyond = [i for i, (m, h) in enumerate(zip(means, half, strict=True)) if abs(m - xx) > h]
    assert beyond and ours.out_of_control == tuple(beyond)


def test_pooled_weeks_keep_the_exact_mean_and_sum_of_squares() -> None:
    rng = np.random.default_rng(9)
    a, b = rng.normal(5, 1, 7), rng.normal(6, 2, 11)
    week = dt.date(2026, 3, 2)
    parts = [q.Subgroup(1, week, 7, a.mean(), a.min(), a.max(), ((a - a.mean()) ** 2).sum()),
             q.Subgroup(2, week, 11, b.mean(), b.min(), b.max(), ((b - b.mean()) ** 2).sum())]
    (pooled,) = insights._pool_weeks(parts)  # noqa: SLF001
    both = np.concatenate([a, b])
    assert pooled.n == 18
    assert pooled.mean == pytest.approx(both.mean())
    assert pooled.sumsq == pytest.approx(((both - both.mean()) ** 2).sum())
    assert (pooled.minimum, pooled.maximum) == (both.min(), both.max())


CHECK = insights.MeasuredCheck("bore", "bore diameter", "mm", 9.7, 10.3, 10.0)


def test_node_capability_is_refused_under_30_values_with_the_reason_in_the_reading() -> None:
    rng = np.random.default_rng(2)
    groups = [rng.normal(10.0, 0.1, 4) for _ in range(3)]  # 12 values
    view = insights._node_measurement("node-a", "Node A", _summaries(groups), CHECK)  # noqa: SLF001
    assert view["n"] == 12
    assert view["cp"] is None and view["cpk"] is None and view["pp"] is None and view["ppk"] is None
    assert "at least 30 measurements; got 12" in view["reading"]
    assert view["capability_refused"] == "capability needs at least 30 measurements; got 12"


def test_node_capability_follows_the_textbook_definitions_from_the_raw_values() -> None:
    rng = np.random.default_rng(3)
    groups = [rng.normal(10.1, 0.1, k) for k in (8, 12, 9, 11)]  # 40 values
    view = insights._node_measurement("node-a", "Node A", _summaries(groups), CHECK)  # noqa: SLF001
    x = np.concatenate(groups)
    d = sum(len(g) - 1 for g in groups)
    sigma_within = math.sqrt(sum(((g - g.mean()) ** 2).sum() for g in groups) / d) / _c4(d + 1)  # pooled, unbiased
    sigma_overall = x.std(ddof=1)
    assert view["s_within"] == pytest.approx(sigma_within)
    assert view["cp"] == pytest.approx(0.6 / (6 * sigma_within))
    assert view["cpk"] == pytest.approx(min(10.3 - x.mean(), x.mean() - 9.7) / (3 * sigma_within))
    assert view["ppk"] == pytest.approx(min(10.3 - x.mean(), x.mean() - 9.7) / (3 * sigma_overall))
    assert view["capability_refused"] is None


@pytest.mark.parametrize("day", [dt.date(2026, 11, 16), dt.date(2026, 11, 22), dt.date(2024, 12, 30),
                                 dt.date(2027, 1, 3), dt.date(1970, 1, 1)])
def test_week_index_maps_back_to_the_iso_monday(day: dt.date) -> None:
    days = (day - dt.date(1970, 1, 1)).days
    index = (days + 3) // 7  # the SQL expression's arithmetic
    monday = q.week_of_index(index)
    assert monday.isocalendar()[1:] == (day.isocalendar()[1], 1)
    assert monday == q.week_start(day)
