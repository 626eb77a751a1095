"""Control charts and the Nelson run rules, as pure functions on plain sequences.

Charts (Montgomery, *Introduction to Statistical Quality Control*, ch. 6-7):

- attributes: ``p_chart``, ``np_chart`` (varying subgroup sizes give per-point
  limits), ``c_chart``, ``u_chart`` and ``laney_p_chart`` (Laney 2002, for large
  subgroups whose between-subgroup variation the binomial model understates);
- variables: ``xbar_r_chart``, ``xbar_s_chart``, ``imr_chart``; ``xbar_s_chart`` also takes
  subgroup ``Summary`` values (n, mean, sum of squares: what a database aggregates), of any size
  from 2 up (its constants come from c4's closed form, not a table); ``xbar_chart`` judges subgroup
  means of any size (1 included) against a frozen ``xbar_baseline`` with per-point limits.

Phase I and II: by default the limits come from the data themselves (Phase I,
optionally leaving out subgroups with an assignable cause via ``exclude``).
``phase_i=k`` computes the limits from the first k points only and judges the
rest against them; ``baseline=`` takes limits frozen earlier (a ``Baseline``
from ``chart.baseline``) and judges every point as Phase II.

Run rules: the eight Nelson tests (Nelson 1984, J. Qual. Technol. 16(4)), on
z-scores so that per-point limits work; each can be switched off via ``rules``.
Every hit is data: ``Violation(rule, points, message)``.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from qc.errors import InvalidInput, Problem

__all__ = [
    "ALL_RULES",
    "RULE_NAMES",
    "ChartConstants",
    "chart_constants",
    "c4",
    "Summary",
    "pool",
    "Violation",
    "Baseline",
    "ControlChart",
    "VariablesChart",
    "run_rules",
    "p_chart",
    "np_chart",
    "c_chart",
    "u_chart",
    "laney_p_chart",
    "xbar_r_chart",
    "xbar_s_chart",
    "xbar_s_chart_from_summaries",
    "imr_chart",
    "xbar_baseline",
    "xbar_chart",
]

# d2 and d3 (mean and sd of the range of n standard normals), n = 2..25, to five decimals
# (numerical integration; they round to Montgomery's Appendix Table VI).
_D2 = (1.12838, 1.69257, 2.05875, 2.32593, 2.53441, 2.70436, 2.84720, 2.97003, 3.07751,
       3.17287, 3.25846, 3.33598, 3.40676, 3.47183, 3.53198, 3.58788, 3.64006, 3.68896,
       3.73495, 3.77834, 3.81938, 3.85832, 3.89535, 3.93063)
_D3 = (0.85250, 0.88837, 0.87981, 0.86408, 0.84804, 0.83321, 0.81983, 0.80783, 0.79705,
       0.78731, 0.77848, 0.77042, 0.76302, 0.75621, 0.74991, 0.74405, 0.73859, 0.73348,
       0.72869, 0.72417, 0.71991, 0.71589, 0.71207, 0.70844)

_Floats = Sequence[float] | np.ndarray

ALL_RULES = frozenset(range(1, 9))
RULE_NAMES = {
    1: "one point beyond the 3-sigma limits",
    2: "nine points in a row on one side of the centre line",
    3: "six points in a row steadily increasing or decreasing",
    4: "fourteen points in a row alternating up and down",
    5: "two of three points in a row beyond 2 sigma on one side",
    6: "four of five points in a row beyond 1 sigma on one side",
    7: "fifteen points in a row within 1 sigma of the centre line",
    8: "eight points in a row beyond 1 sigma on either side",
}


@dataclass(frozen=True)
class ChartConstants:
    n: int
    d2: float
    d3: float
    c4: float
    A2: float
    A3: float
    D3: float
    D4: float
    B3: float
    B4: float


def c4(n: int) -> float:
    """E[s] / sigma for n normal observations: sqrt(2 / (n - 1)) Gamma(n / 2) / Gamma((n - 1) / 2)."""
    if n < 2:
        raise InvalidInput(f"c4 needs a subgroup of at least 2, got {n}", [Problem("n", "use n >= 2")])
    return math.sqrt(2.0 / (n - 1)) * math.exp(math.lgamma(n / 2) - math.lgamma((n - 1) / 2))


def _s_factors(n: int) -> tuple[float, float, float, float]:
    """(c4, A3, B3, B4) for subgroup size n >= 2: the S-chart factors need only c4."""
    k = c4(n)
    b = 3 * math.sqrt(1 - k * k) / k
    return k, 3 / (k * math.sqrt(n)), max(0.0, 1 - b), 1 + b


def chart_constants(n: int) -> ChartConstants:
    """Factors for variables control charts for subgroup size n (2..25)."""
    if not 2 <= n <= 25:
        raise InvalidInput(
            f"subgroup size {n} is outside 2..25, the range of the chart constants",
            [Problem("n", "use subgroups of 2 to 25 measurements, or the I-MR chart for 1")],
        )
    d2, d3 = _D2[n - 2], _D3[n - 2]
    k, a3, b3, b4 = _s_factors(n)
    return ChartConstants(
        n=n, d2=d2, d3=d3, c4=k, A2=3 / (d2 * math.sqrt(n)), A3=a3,
        D3=max(0.0, 1 - 3 * d3 / d2), D4=1 + 3 * d3 / d2, B3=b3, B4=b4,
    )


@dataclass(frozen=True)
class Summary:
    """One subgroup as a database can aggregate it: size, mean and sum of squared deviations from the mean."""

    n: int
    mean: float
    sumsq: float

    @classmethod
    def of(cls, values: _Floats) -> Summary:
        x = np.asarray(values, float)
        m = float(x.mean()) if x.size else 0.0
        return cls(int(x.size), m, float(((x - m) ** 2).sum()))

    @property
    def sd(self) -> float:
        """Sample standard deviation (n - 1 in the denominator)."""
        return math.sqrt(self.sumsq / (self.n - 1)) if self.n > 1 else 0.0


def pool(parts: Sequence[Summary]) -> Summary:
    """The summary of all the parts' values together: SS = sum(SS_i + n_i (m_i - m)^2) around the pooled mean."""
    n = sum(p.n for p in parts)
    if n == 0:
        raise InvalidInput("nothing to pool", [Problem("subgroups", "give at least one measurement")])
    mean = sum(p.n * p.mean for p in parts) / n
    return Summary(n, mean, sum(p.sumsq + p.n * (p.mean - mean) ** 2 for p in parts))


@dataclass(frozen=True)
class Violation:
    rule: int
    points: tuple[int, ...]  # 0-based indices into the chart's values
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {"rule": self.rule, "points": list(self.points), "message": self.message}


@dataclass(frozen=True)
class Baseline:
    """Frozen Phase I parameters of one chart type; pass back as ``baseline=``."""

    kind: str
    params: dict[str, float]
    n_points: int  # subgroups the parameters were estimated from

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "params": dict(self.params), "n_points": self.n_points}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Baseline:
        """Rebuild a stored baseline (the inverse of ``to_dict``)."""
        try:
            params = {str(k): float(v) for k, v in d["params"].items()}
            return cls(str(d["kind"]), params, int(d["n_points"]))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise InvalidInput("not a stored control-chart baseline",
                               [Problem("baseline", f"{type(exc).__name__}: {exc}")]) from None


@dataclass(frozen=True)
class ControlChart:
    kind: str
    values: tuple[float, ...]
    center: tuple[float, ...]
    lcl: tuple[float, ...]
    ucl: tuple[float, ...]
    sigma: tuple[float, ...]  # standard error of each plotted value, for the zones
    violations: tuple[Violation, ...]
    baseline: Baseline
    phase_i_count: int  # points 0..phase_i_count-1 are Phase I
    sizes: tuple[float, ...] = field(default=())

    @property
    def out_of_control(self) -> tuple[int, ...]:
        return tuple(sorted({p for v in self.violations if v.rule == 1 for p in v.points}))

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "values": list(self.values),
            "center": list(self.center),
            "lcl": list(self.lcl),
            "ucl": list(self.ucl),
            "sigma": list(self.sigma),
            "sizes": list(self.sizes),
            "violations": [v.to_dict() for v in self.violations],
            "baseline": self.baseline.to_dict(),
            "phase_i_count": self.phase_i_count,
        }


@dataclass(frozen=True)
class VariablesChart:
    """A location chart (X-bar or I) with its dispersion chart (R, S or MR)."""

    location: ControlChart
    dispersion: ControlChart

    @property
    def baseline(self) -> Baseline:
        return self.location.baseline

    def to_dict(self) -> dict[str, Any]:
        return {"location": self.location.to_dict(), "dispersion": self.dispersion.to_dict()}


# --------------------------------------------------------------------------- run rules


def _samples(points: Sequence[int]) -> str:
    a, b = points[0] + 1, points[-1] + 1
    return f"sample {a}" if a == b else f"samples {a}-{b}"


def run_rules(
    values: _Floats,
    center: _Floats,
    sigma: _Floats,
    lcl: _Floats | None = None,
    ucl: _Floats | None = None,
    rules: Collection[int] = ALL_RULES,
) -> tuple[Violation, ...]:
    """Nelson's eight tests on per-point z = (x - centre) / sigma.

    Rule 1 uses the given limits when passed (they may be clipped at zero), else
    |z| > 3. Overlapping windows that fire the same rule are merged into one
    violation, so a long run is reported once with all its points.
    """
    unknown = set(rules) - ALL_RULES
    if unknown:
        raise InvalidInput("unknown run rule", [Problem("rules", f"{sorted(unknown)}; use 1-8")])
    x = np.asarray(values, float)
    c = np.asarray(center, float)
    sd = np.asarray(sigma, float)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(sd > 0, (x - c) / sd, 0.0)
    n = len(z)
    hits: dict[int, list[set[int]]] = {r: [] for r in sorted(rules)}

    def add(rule: int, pts: Collection[int]) -> None:
        if rule in hits:
            hits[rule].append(set(pts))

    # Plain floats, and a rule that is off costs nothing: the alerts judge many small charts after every upload.
    xs, zs = x.tolist(), z.tolist()
    lo = None if lcl is None or ucl is None else [float(v) for v in lcl]
    hi = None if lcl is None or ucl is None else [float(v) for v in ucl]
    for i in range(n):
        beyond = xs[i] > hi[i] or xs[i] < lo[i] if lo is not None and hi is not None else abs(zs[i]) > 3
        if beyond:
            add(1, [i])
        for side in (1, -1) if hits.keys() & {2, 5, 6} else ():
            s = [side * v for v in zs[max(0, i - 8) : i + 1]]  # s[-1] is point i
            if 2 in hits and i >= 8 and all(v > 0 for v in s):
                add(2, range(i - 8, i + 1))
            if 5 in hits and i >= 2:
                w = [i - 2 + j for j, v in enumerate(s[-3:]) if v > 2]
                if len(w) >= 2 and i in w:
                    add(5, w)
            if 6 in hits and i >= 4:
                w = [i - 4 + j for j, v in enumerate(s[-5:]) if v > 1]
                if len(w) >= 4 and i in w:
                    add(6, w)
        if 3 in hits and i >= 5:
            d = np.diff(x[i - 5 : i + 1])
            if all(d > 0) or all(d < 0):
                add(3, range(i - 5, i + 1))
        if 4 in hits and i >= 13:
            d = np.diff(x[i - 13 : i + 1])
            if all(d != 0) and all(d[1:] * d[:-1] < 0):
                add(4, range(i - 13, i + 1))
        if 7 in hits and i >= 14 and all(abs(v) < 1 for v in zs[i - 14 : i + 1]):
            add(7, range(i - 14, i + 1))
        if 8 in hits and i >= 7 and all(abs(v) > 1 for v in zs[i - 7 : i + 1]):
            add(8, range(i - 7, i + 1))

    out = []
    for rule, windows in hits.items():
        merged: list[set[int]] = []
        for win in windows:  # windows arrive in order of their last point
            if rule != 1 and merged and min(win) <= max(merged[-1]):
                merged[-1] |= win
            else:
                merged.append(set(win))
        for m in merged:
            pts = tuple(sorted(m))
            out.append(Violation(rule, pts, f"{RULE_NAMES[rule]} ({_samples(pts)})"))
    return tuple(sorted(out, key=lambda v: (v.points[0], v.rule)))


# --------------------------------------------------------------------------- helpers


def _phase(n_points: int, phase_i: int | None, exclude: Collection[int]) -> list[int]:
    """Indices that estimate Phase I limits."""
    if phase_i is not None and not 1 <= phase_i <= n_points:
        raise InvalidInput(
            f"phase_i={phase_i} but there are {n_points} points",
            [Problem("phase_i", "give how many of the first points form the baseline")],
        )
    stop = n_points if phase_i is None else phase_i
    idx = [i for i in range(stop) if i not in set(exclude)]
    if not idx:
        raise InvalidInput("no points left to estimate the limits from",
                           [Problem("exclude", "leave at least one Phase I point")])
    return idx


def _chart(kind: str, values: _Floats, center: _Floats, sigma: _Floats, lcl: _Floats,
           ucl: _Floats, baseline: Baseline, phase_i_count: int, rules: Collection[int],
           sizes: _Floats = ()) -> ControlChart:
    f = [float(v) for v in values]
    return ControlChart(
        kind=kind, values=tuple(f), center=tuple(map(float, center)),
        lcl=tuple(map(float, lcl)), ucl=tuple(map(float, ucl)), sigma=tuple(map(float, sigma)),
        violations=run_rules(f, center, sigma, lcl, ucl, rules), baseline=baseline,
        phase_i_count=phase_i_count, sizes=tuple(map(float, sizes)),
    )


def _counts(name: str, counts: Sequence[float], sizes: Sequence[float] | None,
            integer: bool = True) -> tuple[np.ndarray, np.ndarray]:
    c = np.asarray(counts, float)
    n = np.ones_like(c) if sizes is None else np.asarray(sizes, float)
    problems = []
    if c.ndim != 1 or len(c) == 0:
        problems.append(Problem(name, "give at least one subgroup"))
    elif c.shape != n.shape:
        problems.append(Problem("sizes", f"{len(n)} sizes for {len(c)} counts"))
    else:
        if (c < 0).any() or (integer and (c != np.round(c)).any()):
            problems.append(Problem(name, "counts must be whole numbers >= 0"))
        if (n <= 0).any():
            problems.append(Problem("sizes", "subgroup sizes must be > 0"))
    if problems:
        raise InvalidInput("cannot draw the chart", problems)
    return c, n


def _baseline_of(kind: str, baseline: Baseline | None) -> Baseline | None:
    if baseline is not None and baseline.kind != kind:
        raise InvalidInput(f"a {baseline.kind} baseline cannot judge a {kind} chart",
                           [Problem("baseline", f"freeze a {kind} chart first")])
    return baseline


def _phase_i_count(n_points: int, baseline: Baseline | None, phase_i: int | None) -> int:
    """How many leading points are Phase I: none against a frozen baseline."""
    return 0 if baseline is not None else (phase_i or n_points)


def _rate_baseline(kind: str, param: str, num: np.ndarray, den: np.ndarray, baseline: Baseline | None,
                   phase_i: int | None, exclude: Collection[int]) -> tuple[Baseline, int]:
    """The given baseline, or the Phase I rate sum(num) / sum(den); and the Phase I point count."""
    base = _baseline_of(kind, baseline)
    if base is None:
        idx = _phase(len(num), phase_i, exclude)
        base = Baseline(kind, {param: float(num[idx].sum() / den[idx].sum())}, len(idx))
    return base, _phase_i_count(len(num), baseline, phase_i)


def _three_sigma(kind: str, values: _Floats, center: float | np.ndarray, se: np.ndarray, base: Baseline,
                 phase_i_count: int, rules: Collection[int], sizes: _Floats = (),
                 cap: float | None = None) -> ControlChart:
    """Limits centre +- 3 se per point, the lower clipped at 0 (a count or rate), the upper at ``cap``."""
    c = np.broadcast_to(np.asarray(center, float), se.shape)
    upper = c + 3 * se if cap is None else np.minimum(cap, c + 3 * se)
    return _chart(kind, values, c, se, np.maximum(0, c - 3 * se), upper, base, phase_i_count, rules, sizes)


# --------------------------------------------------------------------------- attribute charts


def p_chart(defectives: Sequence[float], sizes: Sequence[float], *, baseline: Baseline | None = None,
            phase_i: int | None = None, exclude: Collection[int] = (),
            rules: Collection[int] = ALL_RULES) -> ControlChart:
    """Fraction nonconforming; limits p-bar +- 3 sqrt(p-bar (1 - p-bar) / n_i) per point."""
    d, n = _counts("defectives", defectives, sizes)
    if (d > n).any():
        raise InvalidInput("more defectives than units", [Problem("defectives", "d_i <= n_i")])
    base, k = _rate_baseline("p", "pbar", d, n, baseline, phase_i, exclude)
    pbar = base.params["pbar"]
    return _three_sigma("p", d / n, pbar, np.sqrt(pbar * (1 - pbar) / n), base, k, rules, n, cap=1.0)


def np_chart(defectives: Sequence[float], sizes: Sequence[float], *,
             baseline: Baseline | None = None, phase_i: int | None = None,
             exclude: Collection[int] = (), rules: Collection[int] = ALL_RULES) -> ControlChart:
    """Number nonconforming; with varying n the centre n_i p-bar moves with each point."""
    d, n = _counts("defectives", defectives, sizes)
    base, k = _rate_baseline("p", "pbar", d, n, baseline, phase_i, exclude)
    pbar = base.params["pbar"]
    return _three_sigma("np", d, n * pbar, np.sqrt(n * pbar * (1 - pbar)), base, k, rules, n)


def c_chart(counts: Sequence[float], *, baseline: Baseline | None = None,
            phase_i: int | None = None, exclude: Collection[int] = (),
            rules: Collection[int] = ALL_RULES) -> ControlChart:
    """Nonconformities per inspection unit of constant size; limits c-bar +- 3 sqrt(c-bar)."""
    c, ones = _counts("counts", counts, None)
    base, k = _rate_baseline("c", "cbar", c, ones, baseline, phase_i, exclude)
    cbar = base.params["cbar"]
    return _three_sigma("c", c, cbar, np.full_like(c, math.sqrt(cbar)), base, k, rules)


def u_chart(counts: Sequence[float], units: Sequence[float], *, baseline: Baseline | None = None,
            phase_i: int | None = None, exclude: Collection[int] = (),
            rules: Collection[int] = ALL_RULES) -> ControlChart:
    """Nonconformities per unit; limits u-bar +- 3 sqrt(u-bar / n_i) per point."""
    c, n = _counts("counts", counts, units)
    base, k = _rate_baseline("u", "ubar", c, n, baseline, phase_i, exclude)
    ubar = base.params["ubar"]
    return _three_sigma("u", c / n, ubar, np.sqrt(ubar / n), base, k, rules, n)


def laney_p_chart(defectives: Sequence[float], sizes: Sequence[float], *,
                  baseline: Baseline | None = None, phase_i: int | None = None,
                  exclude: Collection[int] = (),
                  rules: Collection[int] = ALL_RULES) -> ControlChart:
    """Laney p' chart: p-chart limits widened by sigma_z, the moving-range spread of z-scores.

    z_i = (p_i - p-bar) / sigma_p_i; sigma_z = MR-bar(z) / 1.128; limits
    p-bar +- 3 sigma_p_i sigma_z (Laney, Quality Engineering 14(4), 2002).
    sigma_z near 1 gives back the p chart; large subgroups typically give sigma_z > 1.
    """
    d, n = _counts("defectives", defectives, sizes)
    base = _baseline_of("laney_p", baseline)
    if base is None:
        idx = _phase(len(d), phase_i, exclude)
        if len(idx) < 2:
            raise InvalidInput("the Laney p' chart needs at least 2 baseline subgroups",
                               [Problem("defectives", f"got {len(idx)}")])
        pbar = float(d[idx].sum() / n[idx].sum())
        z = (d[idx] / n[idx] - pbar) / np.sqrt(pbar * (1 - pbar) / n[idx])
        sigma_z = float(np.abs(np.diff(z)).mean() / 1.128)
        base = Baseline("laney_p", {"pbar": pbar, "sigma_z": sigma_z}, len(idx))
    pbar, sigma_z = base.params["pbar"], base.params["sigma_z"]
    se = np.sqrt(pbar * (1 - pbar) / n) * sigma_z
    return _three_sigma("laney_p", d / n, pbar, se, base, _phase_i_count(len(d), baseline, phase_i), rules, n,
                        cap=1.0)


# --------------------------------------------------------------------------- variables charts


def _subgroups(subgroups: Sequence[Sequence[float]]) -> list[np.ndarray]:
    groups = [np.asarray(g, float) for g in subgroups]
    if not groups:
        raise InvalidInput("no subgroups", [Problem("subgroups", "give at least one")])
    bad = [i for i, g in enumerate(groups) if g.ndim != 1 or len(g) < 2 or not np.isfinite(g).all()]
    if bad:
        raise InvalidInput(
            "every subgroup needs at least 2 finite measurements",
            [Problem(f"subgroups[{i}]", f"got {len(groups[i])} values") for i in bad[:5]],
        )
    return groups


def xbar_r_chart(subgroups: Sequence[Sequence[float]], *, baseline: Baseline | None = None,
                 phase_i: int | None = None, exclude: Collection[int] = (),
                 rules: Collection[int] = ALL_RULES) -> VariablesChart:
    """X-bar and R charts for subgroups of one size n (2..25): x-dbar +- A2 R-bar, D3/D4 R-bar."""
    groups = _subgroups(subgroups)
    sizes = {len(g) for g in groups}
    if len(sizes) != 1:
        raise InvalidInput("X-bar/R needs subgroups of one size",
                           [Problem("subgroups", f"sizes {sorted(sizes)}; use the X-bar/S chart")])
    k = chart_constants(sizes.pop())
    xbar = np.array([g.mean() for g in groups])
    r = np.array([g.max() - g.min() for g in groups])
    base = _baseline_of("xbar_r", baseline)
    if base is None:
        idx = _phase(len(groups), phase_i, exclude)
        base = Baseline("xbar_r", {"xbarbar": float(xbar[idx].mean()), "rbar": float(r[idx].mean()),
                                   "n": float(k.n)}, len(idx))
    if int(base.params["n"]) != k.n:
        raise InvalidInput("baseline subgroup size differs",
                           [Problem("subgroups", f"baseline n={int(base.params['n'])}, got {k.n}")])
    xx, rbar = base.params["xbarbar"], base.params["rbar"]
    ph = _phase_i_count(len(groups), baseline, phase_i)
    ones = np.ones_like(xbar)
    loc = _chart("xbar", xbar, xx * ones, ones * k.A2 * rbar / 3, ones * (xx - k.A2 * rbar),
                 ones * (xx + k.A2 * rbar), base, ph, rules, ones * k.n)
    disp = _chart("r", r, rbar * ones, ones * k.d3 * rbar / k.d2, ones * k.D3 * rbar,
                  ones * k.D4 * rbar, base, ph, set(rules) & {1}, ones * k.n)
    return VariablesChart(loc, disp)


def xbar_s_chart(subgroups: Sequence[Sequence[float]], *, baseline: Baseline | None = None,
                 phase_i: int | None = None, exclude: Collection[int] = (),
                 rules: Collection[int] = ALL_RULES) -> VariablesChart:
    """X-bar and S charts of raw subgroups; sizes may vary (per-point A3, B3, B4)."""
    return xbar_s_chart_from_summaries([Summary.of(g) for g in _subgroups(subgroups)], baseline=baseline,
                                       phase_i=phase_i, exclude=exclude, rules=rules)


def xbar_s_chart_from_summaries(subgroups: Sequence[Summary], *, baseline: Baseline | None = None,
                                phase_i: int | None = None, exclude: Collection[int] = (),
                                rules: Collection[int] = ALL_RULES) -> VariablesChart:
    """X-bar and S charts from subgroup summaries of any size n >= 2 (per-point A3, B3, B4 from c4).

    Equal sizes: s-bar is the mean of s_i (Montgomery eq. 6.27). Varying sizes: x-dbar
    is weighted by n_i and s-bar pooled, sqrt(sum (n_i-1) s_i^2 / sum (n_i-1)) (eq. 6.31).
    """
    bad = [i for i, g in enumerate(subgroups) if g.n < 2 or not math.isfinite(g.mean) or not math.isfinite(g.sumsq)]
    if not subgroups or bad:
        raise InvalidInput("every subgroup needs at least 2 finite measurements",
                           [Problem(f"subgroups[{i}]", f"got {subgroups[i].n} values") for i in bad[:5]]
                           or [Problem("subgroups", "give at least one")])
    n = np.array([g.n for g in subgroups])
    factors = np.array([_s_factors(int(m)) for m in n])  # columns c4, A3, B3, B4
    xbar = np.array([g.mean for g in subgroups])
    s = np.array([g.sd for g in subgroups])
    base = _baseline_of("xbar_s", baseline)
    if base is None:
        idx = _phase(len(subgroups), phase_i, exclude)
        if len(set(n[idx])) == 1:
            xx, sbar = float(xbar[idx].mean()), float(s[idx].mean())
        else:
            xx = float((n[idx] * xbar[idx]).sum() / n[idx].sum())
            sbar = float(math.sqrt(((n[idx] - 1) * s[idx] ** 2).sum() / (n[idx] - 1).sum()))
        base = Baseline("xbar_s", {"xbarbar": xx, "sbar": sbar}, len(idx))
    xx, sbar = base.params["xbarbar"], base.params["sbar"]
    c4s, a3, b3, b4 = factors.T
    ph = _phase_i_count(len(subgroups), baseline, phase_i)
    loc = _chart("xbar", xbar, np.full(len(n), xx), a3 * sbar / 3, xx - a3 * sbar, xx + a3 * sbar,
                 base, ph, rules, n)
    disp = _chart("s", s, np.full(len(n), sbar), sbar * np.sqrt(1 - c4s**2) / c4s, b3 * sbar, b4 * sbar,
                  base, ph, set(rules) & {1}, n)
    return VariablesChart(loc, disp)


def imr_chart(values: Sequence[float], *, baseline: Baseline | None = None,
              phase_i: int | None = None, exclude: Collection[int] = (),
              rules: Collection[int] = ALL_RULES) -> VariablesChart:
    """Individuals and moving-range charts: x-bar +- 3 MR-bar / 1.128; MR UCL 3.267 MR-bar."""
    x = np.asarray(values, float)
    if x.ndim != 1 or len(x) < 2 or not np.isfinite(x).all():
        raise InvalidInput("the I-MR chart needs at least 2 finite measurements",
                           [Problem("values", f"got {x.size}")])
    mr = np.abs(np.diff(x))
    base = _baseline_of("imr", baseline)
    if base is None:
        idx = _phase(len(x), phase_i, exclude)
        # A moving range is used only when both of its points are in the baseline.
        mrs = [mr[i - 1] for i in idx if i > 0 and i - 1 in idx]
        if not mrs:
            raise InvalidInput("need two consecutive baseline points for a moving range",
                               [Problem("values", "extend the baseline")])
        base = Baseline("imr", {"mean": float(x[idx].mean()), "mrbar": float(np.mean(mrs))},
                        len(idx))
    mean, mrbar = base.params["mean"], base.params["mrbar"]
    k = chart_constants(2)
    sigma = mrbar / k.d2
    ones = np.ones_like(x)
    ph = _phase_i_count(len(x), baseline, phase_i)
    loc = _chart("i", x, mean * ones, sigma * ones, (mean - 3 * sigma) * ones,
                 (mean + 3 * sigma) * ones, base, ph, rules)
    # MR has no first point; chart it from the second observation on, indices shifted by 1.
    m1 = np.ones_like(mr)
    disp = _chart("mr", mr, mrbar * m1, m1 * k.d3 * sigma, m1 * 0.0, m1 * k.D4 * mrbar, base,
                  max(0, ph - 1), set(rules) & {1})
    return VariablesChart(loc, disp)


def xbar_baseline(subgroups: Sequence[Summary]) -> Baseline:
    """Frozen Phase I parameters for ``xbar_chart``: the pooled mean, the pooled within-subgroup sigma
    sqrt(sum SS_i / sum (n_i - 1)) (Montgomery eq. 6.31, unbiased for sigma^2) and n0, the measurements they
    come from."""
    n = sum(g.n for g in subgroups)
    dof = sum(g.n - 1 for g in subgroups if g.n > 1)
    if not n or not dof:
        raise InvalidInput("a baseline needs subgroups with at least 2 measurements",
                           [Problem("subgroups", f"{len(subgroups)} subgroups, {n} measurements")])
    mean = sum(g.n * g.mean for g in subgroups) / n
    sigma = math.sqrt(sum(g.sumsq for g in subgroups if g.n > 1) / dof)
    return Baseline("xbar", {"mean": mean, "sigma": sigma, "n0": float(n)}, len(subgroups))


def xbar_chart(means: Sequence[float], sizes: Sequence[float], *, baseline: Baseline, limit: float = 3.0,
               rules: Collection[int] = frozenset({1})) -> ControlChart:
    """X-bar chart against a frozen baseline (``xbar_baseline``), per-point limits for any subgroup size
    n_i >= 1: centre +- limit * sigma * sqrt(1 / n_i + 1 / n0). The 1/n0 term is the error of the estimated
    centre (a prediction limit); the zones of the run rules scale with ``limit`` (rule 5's "2 sigma" is
    2 limit / 3), so a Bonferroni-widened chart widens all its rules alike. Every point is Phase II."""
    base = _baseline_of("xbar", baseline)
    assert base is not None
    x = np.asarray(means, float)
    n = np.asarray(sizes, float)
    if x.ndim != 1 or x.shape != n.shape or not len(x) or (n < 1).any() or not np.isfinite(x).all():
        raise InvalidInput("cannot draw the X-bar chart", [Problem("sizes", "one size >= 1 per finite mean")])
    mean, sigma, n0 = base.params["mean"], base.params["sigma"], base.params["n0"]
    se = sigma * np.sqrt(1 / n + 1 / n0)
    c = np.full(len(x), mean)
    return _chart("xbar", x, c, se * limit / 3, c - limit * se, c + limit * se, base, 0, rules, n)
