"""Capability indices against Montgomery's worked examples and independent computation.

Book: D. C. Montgomery, *Introduction to Statistical Quality Control*, 7th ed.,
section 8.3.5: Example 8.5 (confidence interval on Cp) and Example 8.6
(confidence interval on Cpk), both n = 20, 95 %.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from qc.capability import capability, capability_from_summaries
from qc.errors import InvalidInput
from qc.spc import Summary


def _sample(n: int, mean: float, sd: float, seed: int = 1) -> list[float]:
    """n values with exactly this sample mean and standard deviation."""
    z = np.random.default_rng(seed).standard_normal(n)
    z = (z - z.mean()) / z.std(ddof=1)
    return list(mean + sd * z)


def test_cp_confidence_interval_example_8_5():
    # USL 62, LSL 38, n = 20, s = 1.75, centred: Cp-hat = 2.29, 95 % CI 1.57 <= Cp <= 3.01.
    # Pp uses the sample standard deviation s, which is what the example uses.
    cap = capability(_sample(20, 50.0, 1.75), lsl=38, usl=62, min_points=20)
    assert cap.pp.estimate == pytest.approx(2.29, abs=0.005)
    assert cap.pp.lower == pytest.approx(1.57, abs=0.006)
    assert cap.pp.upper == pytest.approx(3.01, abs=0.006)


def test_cpk_confidence_interval_example_8_6():
    # n = 20, Cpk-hat = 1.33 -> 95 % CI 0.88 <= Cpk <= 1.78 (Bissell's approximation).
    mean = 62 - 1.33 * 3 * 1.75
    cap = capability(_sample(20, mean, 1.75), lsl=38, usl=62, min_points=20)
    assert cap.ppk.estimate == pytest.approx(1.33, abs=1e-9)
    assert cap.ppk.lower == pytest.approx(0.88, abs=0.005)
    assert cap.ppk.upper == pytest.approx(1.78, abs=0.005)


def test_within_sigma_from_moving_ranges_for_individuals():
    x = _sample(50, 10.0, 0.2, seed=3)
    cap = capability(x, lsl=9.4, usl=10.8)
    sigma = np.mean(np.abs(np.diff(x))) / 1.128379  # d2 for n = 2, independent of qc.spc
    assert cap.sigma_within == pytest.approx(sigma, rel=1e-5)
    assert cap.cp.estimate == pytest.approx(1.4 / (6 * sigma), rel=1e-5)
    assert cap.cpk.estimate == pytest.approx(min(10.8 - 10.0, 10.0 - 9.4) / (3 * sigma), rel=1e-5)
    assert cap.n_points == 50


def test_within_sigma_from_subgroup_ranges():
    rng = np.random.default_rng(7)
    groups = [list(rng.normal(5.0, 0.1, 5)) for _ in range(8)]
    cap = capability(groups, usl=5.5)
    rbar = np.mean([max(g) - min(g) for g in groups])
    assert cap.sigma_within == pytest.approx(rbar / 2.326, rel=2e-3)
    assert cap.cp is None  # one-sided specification: only Cpk
    assert cap.n_points == 40 and cap.n_subgroups == 8


def test_capability_is_refused_on_too_few_points_with_the_reason():
    with pytest.raises(InvalidInput) as err:
        capability([1.0, 1.1, 0.9, 1.05] * 3, lsl=0.5, usl=1.5)
    msg = str(err.value)
    assert "12" in msg and "30" in msg


def test_capability_needs_a_specification_limit():
    with pytest.raises(InvalidInput):
        capability(_sample(40, 1, 0.1))
    with pytest.raises(InvalidInput):
        capability(_sample(40, 1, 0.1), lsl=2, usl=1)


def test_normality_check_flags_a_skewed_process():
    skewed = list(stats.expon.ppf(np.linspace(0.01, 0.99, 200)))
    cap = capability(skewed, usl=8.0)
    assert cap.normal is False and cap.normality_p < 0.05
    assert any("normal" in w for w in cap.warnings)
    fine = capability(list(stats.norm.ppf(np.linspace(0.01, 0.99, 200))), lsl=-4, usl=4)
    assert fine.normal is True


def test_cp_interval_matches_the_chi_square_formula():
    x = _sample(35, 0.0, 1.0, seed=5)
    cap = capability(x, lsl=-3, usl=3)
    pp = 6 / 6
    assert cap.pp.estimate == pytest.approx(pp)
    assert cap.pp.lower == pytest.approx(pp * math.sqrt(stats.chi2.ppf(0.025, 34) / 34))
    assert cap.to_dict()["ppk"]["estimate"] == pytest.approx(1.0)


def _c4(n: int) -> float:
    return math.sqrt(2 / (n - 1)) * math.gamma(n / 2) / math.gamma((n - 1) / 2)


def test_capability_from_summaries_pools_sigma_within_with_the_unbiasing_constant():
    # Pooled s over subgroups of unequal sizes (Montgomery eq. 6.31) divided by c4(d + 1), d = sum(n_i - 1);
    # sigma_overall the sample sd of all values; both recomputed here from the raw values.
    rng = np.random.default_rng(7)
    groups = [rng.normal(20.0, 0.5, k) for k in (6, 40, 9, 3)]
    cap = capability_from_summaries([Summary.of(g) for g in groups], lsl=18.0, usl=22.5)
    x = np.concatenate(groups)
    d = len(x) - len(groups)
    sp = math.sqrt(sum(((g - g.mean()) ** 2).sum() for g in groups) / d)
    sigma_within = sp / _c4(d + 1)
    assert cap.n_points == 58 and cap.n_subgroups == 4
    assert cap.sigma_within == pytest.approx(sigma_within)
    assert cap.sigma_overall == pytest.approx(x.std(ddof=1))
    assert cap.cp.estimate == pytest.approx(4.5 / (6 * sigma_within))
    assert cap.cpk.estimate == pytest.approx(min(22.5 - x.mean(), x.mean() - 18.0) / (3 * sigma_within))
    assert cap.ppk.estimate == pytest.approx(min(22.5 - x.mean(), x.mean() - 18.0) / (3 * x.std(ddof=1)))
    # the interval is Bissell's, with n the number of values (Montgomery eq. 8.20)
    half = 1.959964 * math.sqrt(1 / (9 * 58) + cap.cpk.estimate**2 / (2 * 57))
    assert cap.cpk.lower == pytest.approx(cap.cpk.estimate - half, rel=1e-6)
    assert cap.normality_p is None and cap.normal is None  # no values, no Shapiro-Wilk


def test_capability_from_summaries_refuses_like_the_raw_values():
    few = [Summary.of([1.0, 1.1, 0.9, 1.05])] * 3
    with pytest.raises(InvalidInput, match="at least 30 measurements; got 12"):
        capability_from_summaries(few, lsl=0.5, usl=1.5)
    singles = [Summary.of([v]) for v in _sample(40, 1.0, 0.1)]
    with pytest.raises(InvalidInput, match="within-subgroup spread is unknown"):
        capability_from_summaries(singles, lsl=0.5, usl=1.5)
    with pytest.raises(InvalidInput):
        capability_from_summaries([Summary.of(_sample(40, 1, 0.1))])
