"""The dashboard's statistics adapters agree with the raw-value formulas they stand in for.

``service.core.insights`` works on subgroup summaries (n, mean, sum of squares) because a million
records never leave the database; these tests recompute the same quantities from raw values
with NumPy and ``qc.spc`` (the independent reference) and compare.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from qc import spc
from service.core import analytics as q
from service.core import insights


def _summaries(groups: list[np.ndarray], week0: dt.date = dt.date(2026, 1, 5)) -> list[q.Subgroup]:
    return [q.Subgroup(1, week0 + dt.timedelta(weeks=i), len(g), float(g.mean()), float(g.min()), float(g.max()),
                       float(((g - g.mean()) ** 2).sum())) for i, g in enumerate(groups)]


@pytest.mark.parametrize("sizes", [[5] * 12, [3, 7, 4, 9, 5, 6, 8, 2, 10, 5]])
def test_xbar_from_summaries_matches_the_raw_value_xbar_s_chart(sizes: list[int]) -> None:
    rng = np.random.default_rng(4)
    groups = [rng.normal(10.0, 0.2, k) for k in sizes]
    groups[-1] = groups[-1] + 0.5  # a shifted last subgroup, so rule 1 has something to find
    ours = insights.xbar_s_from_summaries(_summaries(groups))
    ref = spc.xbar_s_chart(groups).location  # Montgomery eq. 6.27 / 6.31 on the raw values
    if len(set(sizes)) == 1:
        # equal sizes: qc.spc averages s_i (eq. 6.27), the summaries pool them (eq. 6.31): close, not equal
        assert ours.ucl == pytest.approx(ref.ucl, rel=2e-3)
    else:
        assert ours.center == pytest.approx(ref.center)
        assert ours.ucl == pytest.approx(ref.ucl)
        assert ours.lcl == pytest.approx(ref.lcl)
    assert ours.values == pytest.approx(ref.values)
    assert [v.rule for v in ours.violations if v.rule == 1] == [v.rule for v in ref.violations if v.rule == 1]


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


def test_capability_from_summaries_follows_the_textbook_definitions() -> None:
    # mean 10.1, sigma 0.1, spec 9.7..10.3: Cp = 0.6 / 0.6 = 1.0, Cpk = min(0.2, 0.4) / 0.3 = 0.667
    cap = insights.capability(10.1, 0.1, 0.2, 9.7, 10.3)
    assert cap["cp"] == pytest.approx(1.0)
    assert cap["cpk"] == pytest.approx(0.2 / 0.3)
    assert cap["pp"] == pytest.approx(0.5) and cap["ppk"] == pytest.approx(0.2 / 0.6)
    one_sided = insights.capability(10.1, 0.1, 0.1, None, 10.3)
    assert one_sided["cp"] is None and one_sided["cpk"] == pytest.approx(0.2 / 0.3)


@pytest.mark.parametrize("day", [dt.date(2026, 11, 16), dt.date(2026, 11, 22), dt.date(2024, 12, 30),
                                 dt.date(2027, 1, 3), dt.date(1970, 1, 1)])
def test_week_index_maps_back_to_the_iso_monday(day: dt.date) -> None:
    days = (day - dt.date(1970, 1, 1)).days
    index = (days + 3) // 7  # the SQL expression's arithmetic
    monday = q.week_of_index(index)
    assert monday.isocalendar()[1:] == (day.isocalendar()[1], 1)
    assert monday == q.week_start(day)
