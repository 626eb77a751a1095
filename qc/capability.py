"""Process capability (Cp, Cpk, Pp, Ppk) with confidence intervals and a normality check.

Refuses rather than misleads: fewer than ``min_points`` measurements (default
30) raise ``InvalidInput`` naming how many there are and how many are needed.

- within-subgroup sigma: R-bar/d2 for subgroups of 2..25, MR-bar/1.128 for
  individuals (Montgomery, ISQC 7th ed., section 8.3); overall sigma: the
  sample standard deviation of all values;
- Cp = (USL - LSL) / 6 sigma_within, Cpk = min(USL - mean, mean - LSL) / 3 sigma_within,
  Pp and Ppk the same with sigma_overall; one-sided specs give only Cpk/Ppk;
- confidence intervals: chi-square for Cp/Pp (Montgomery eq. 8.19),
  Bissell's normal approximation for Cpk/Ppk (eq. 8.20), both with n - 1
  degrees of freedom (an approximation for sigma_within);
- normality: Shapiro-Wilk; the indices assume a normal process, so a
  rejection is reported next to them.

``capability_from_summaries`` does the same from subgroup summaries (n, mean,
sum of squares; what a database aggregates, so raw values need not leave it):
sigma_within is the pooled standard deviation over the subgroups divided by
c4(d + 1), d = sum(n_i - 1) (the pooled estimator for subgroups of any size;
Montgomery section 6.3.2, with Minitab's unbiasing); sigma_overall the sample
standard deviation of all values pooled; no normality test (that needs the values).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from qc.errors import InvalidInput, Problem
from qc.spc import Summary, c4, chart_constants, pool

__all__ = ["Interval", "Capability", "capability", "capability_from_summaries", "pooled_sigma_within",
           "DEFAULT_MIN_POINTS"]

DEFAULT_MIN_POINTS = 30


@dataclass(frozen=True)
class Interval:
    estimate: float
    lower: float
    upper: float


@dataclass(frozen=True)
class Capability:
    n_points: int
    n_subgroups: int
    mean: float
    sigma_within: float
    sigma_overall: float
    lsl: float | None
    usl: float | None
    cp: Interval | None
    cpk: Interval
    pp: Interval | None
    ppk: Interval
    confidence: float
    normality_p: float | None  # Shapiro-Wilk p-value (None above 5000 points)
    normal: bool | None
    warnings: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["warnings"] = list(self.warnings)
        return d


def _cp_interval(cp: float, n: int, conf: float) -> Interval:
    from scipy import stats  # noqa: PLC0415 (SciPy costs a CLI start-up a second; load it when used)

    a = 1 - conf
    lo = cp * math.sqrt(stats.chi2.ppf(a / 2, n - 1) / (n - 1))
    hi = cp * math.sqrt(stats.chi2.ppf(1 - a / 2, n - 1) / (n - 1))
    return Interval(cp, lo, hi)


def _cpk_interval(cpk: float, n: int, conf: float) -> Interval:
    from scipy import stats  # noqa: PLC0415 (SciPy costs a CLI start-up a second; load it when used)

    z = stats.norm.ppf(1 - (1 - conf) / 2)
    half = z * math.sqrt(1 / (9 * n) + cpk * cpk / (2 * (n - 1)))
    return Interval(cpk, cpk - half, cpk + half)


def _check_specs(lsl: float | None, usl: float | None, confidence: float) -> None:
    problems = []
    if lsl is None and usl is None:
        problems.append(Problem("lsl/usl", "give at least one specification limit"))
    if lsl is not None and usl is not None and not lsl < usl:
        problems.append(Problem("lsl/usl", f"LSL {lsl} must be below USL {usl}"))
    if not 0 < confidence < 1:
        problems.append(Problem("confidence", "use a level between 0 and 1, e.g. 0.95"))
    if problems:
        raise InvalidInput("cannot compute capability", problems)


def _check_count(n: int, min_points: int) -> None:
    if n < min_points:
        raise InvalidInput(
            f"capability needs at least {min_points} measurements; got {n}. "
            "With so few points the index's confidence interval is too wide to act on.",
            [Problem("values", f"{n} measurements, {min_points} needed")],
        )


def _indices(*, n: int, n_subgroups: int, mean: float, sigma_within: float, sigma_overall: float,
             lsl: float | None, usl: float | None, confidence: float,
             normality_p: float | None) -> Capability:
    """Cp/Cpk from sigma_within, Pp/Ppk from sigma_overall, with their intervals and warnings."""
    if sigma_within <= 0 or sigma_overall <= 0:
        raise InvalidInput("all measurements are identical; capability is undefined",
                           [Problem("values", "check the gauge resolution")])

    def pair(sigma: float) -> tuple[Interval | None, Interval]:
        sides = []
        if usl is not None:
            sides.append((usl - mean) / (3 * sigma))
        if lsl is not None:
            sides.append((mean - lsl) / (3 * sigma))
        cpk = _cpk_interval(min(sides), n, confidence)
        cp = (_cp_interval((usl - lsl) / (6 * sigma), n, confidence)
              if usl is not None and lsl is not None else None)
        return cp, cpk

    cp, cpk = pair(sigma_within)
    pp, ppk = pair(sigma_overall)
    warnings = []
    normal = None if normality_p is None else normality_p >= 0.05
    if normal is False:
        warnings.append(
            f"Shapiro-Wilk rejects normality (p = {normality_p:.3g}); the indices and their "
            "intervals assume a normal process"
        )
    if sigma_overall > 1.5 * sigma_within:
        warnings.append("overall spread is much larger than within-subgroup spread: the process "
                        "is probably not in control, so Cp/Cpk overstate what it delivers")
    return Capability(
        n_points=n, n_subgroups=n_subgroups, mean=mean,
        sigma_within=sigma_within, sigma_overall=sigma_overall, lsl=lsl, usl=usl,
        cp=cp, cpk=cpk, pp=pp, ppk=ppk, confidence=confidence,
        normality_p=normality_p, normal=normal, warnings=tuple(warnings),
    )


def capability(values: Sequence[float] | Sequence[Sequence[float]], *, lsl: float | None = None,
               usl: float | None = None, confidence: float = 0.95, min_points: int = DEFAULT_MIN_POINTS) -> Capability:
    """Capability of a process from individual values or from subgroups (a list of lists)."""
    from scipy import stats  # noqa: PLC0415 (SciPy costs a CLI start-up a second; load it when used)

    _check_specs(lsl, usl, confidence)
    grouped = len(values) > 0 and all(isinstance(v, (list, tuple, np.ndarray)) for v in values)
    groups = [np.asarray(g, float) for g in values] if grouped else [np.asarray(values, float)]
    x = np.concatenate(groups) if groups else np.array([])
    if not np.isfinite(x).all():
        raise InvalidInput("measurements must be finite numbers",
                           [Problem("values", "remove missing or infinite values")])
    n = len(x)
    _check_count(n, min_points)
    if grouped:
        sizes = {len(g) for g in groups}
        if len(sizes) != 1 or not 2 <= min(sizes) <= 25:
            raise InvalidInput("subgroups must all have the same size, 2 to 25",
                               [Problem("values", f"sizes {sorted(sizes)}")])
        k = chart_constants(sizes.pop())
        sigma_within = float(np.mean([g.max() - g.min() for g in groups]) / k.d2)
    else:
        sigma_within = float(np.mean(np.abs(np.diff(x))) / chart_constants(2).d2)
    return _indices(n=n, n_subgroups=len(groups) if grouped else n, mean=float(x.mean()),
                    sigma_within=sigma_within, sigma_overall=float(x.std(ddof=1)), lsl=lsl, usl=usl,
                    confidence=confidence, normality_p=float(stats.shapiro(x).pvalue) if n <= 5000 else None)


def pooled_sigma_within(subgroups: Sequence[Summary]) -> float | None:
    """Pooled within-subgroup sigma, sqrt(sum SS_i / d) / c4(d + 1), d = sum(n_i - 1); None when d = 0."""
    dof = sum(g.n - 1 for g in subgroups if g.n > 0)
    return math.sqrt(sum(g.sumsq for g in subgroups) / dof) / c4(dof + 1) if dof > 0 else None


def capability_from_summaries(subgroups: Sequence[Summary], *, lsl: float | None = None, usl: float | None = None,
                              confidence: float = 0.95, min_points: int = DEFAULT_MIN_POINTS) -> Capability:
    """Capability from subgroup summaries of any sizes (pooled within-subgroup sigma, see the module text)."""
    _check_specs(lsl, usl, confidence)
    n = sum(g.n for g in subgroups)
    _check_count(n, min_points)
    sigma_within = pooled_sigma_within(subgroups)
    if sigma_within is None:
        raise InvalidInput("no subgroup has two or more measurements, so the within-subgroup spread is unknown",
                           [Problem("values", f"{len(subgroups)} subgroups of one measurement each")])
    everything = pool(subgroups)
    return _indices(n=n, n_subgroups=len(subgroups), mean=everything.mean, sigma_within=sigma_within,
                    sigma_overall=everything.sd, lsl=lsl, usl=usl, confidence=confidence, normality_p=None)
