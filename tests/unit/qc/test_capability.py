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

from qc.capability import capability
from qc.errors import InvalidInput


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
