"""Comparing nodes: defect proportions with Wilson intervals, funnel plot, homogeneity test, Pareto.

- ``wilson_interval`` (Wilson 1927; Newcombe 1998, Stat. Med. 17, method 3), by SciPy's
  ``binomtest(...).proportion_ci(method="wilson")``;
- ``compare_nodes``: one ``NodeRate`` per node (proportion, Wilson interval,
  funnel position) plus a test that all nodes share one defect rate: Pearson's
  chi-squared on the nodes x {defective, good} table (SciPy's ``chi2_contingency``,
  no continuity correction), or Fisher's exact test for two nodes when an expected
  count is below 5;
- ``funnel_point`` / ``funnel_limits``: control limits around the network rate at one
  volume / on a grid of volumes, p0 +- z sqrt(p0 (1 - p0) / n) (Spiegelhalter 2005,
  Stat. Med. 24);
- ``pareto``: failed checks by count, descending, with cumulative share.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from statistics import NormalDist
from typing import Any

import numpy as np

from qc.errors import InvalidInput, Problem

__all__ = [
    "wilson_interval",
    "NodeRate",
    "HomogeneityTest",
    "NodeComparison",
    "FunnelPoint",
    "compare_nodes",
    "funnel_limits",
    "funnel_point",
    "ParetoBar",
    "pareto",
]


def wilson_interval(defects: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion defects / n."""
    from scipy import stats  # noqa: PLC0415 (SciPy costs a CLI start-up a second; load it when used)

    if n <= 0 or not 0 <= defects <= n:
        raise InvalidInput("a proportion needs 0 <= defects <= n and n > 0",
                           [Problem("defects", f"got {defects} of {n}")])
    if not 0 < confidence < 1:
        raise InvalidInput("bad confidence level", [Problem("confidence", f"got {confidence}; use e.g. 0.95")])
    ci = stats.binomtest(defects, n).proportion_ci(confidence_level=confidence, method="wilson")
    return float(ci.low), float(ci.high)


class _Record:
    """A frozen dataclass that serialises to a plain dict."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)  # type: ignore[call-overload]


@dataclass(frozen=True)
class NodeRate:
    node: str
    defects: int
    n: int
    rate: float
    lower: float  # Wilson interval
    upper: float
    z: float  # standardised distance from the network rate
    funnel: str  # "inside", "above_95", "above_998", "below_95", "below_998"


@dataclass(frozen=True)
class HomogeneityTest:
    method: str  # "chi2" | "fisher"
    statistic: float | None
    dof: int | None
    p_value: float
    min_expected: float
    note: str


@dataclass(frozen=True)
class NodeComparison(_Record):
    network_rate: float
    total_defects: int
    total_n: int
    confidence: float
    nodes: tuple[NodeRate, ...]
    test: HomogeneityTest | None


@dataclass(frozen=True)
class FunnelPoint(_Record):
    n: float
    lower95: float
    upper95: float
    lower998: float
    upper998: float


_Z95 = NormalDist().inv_cdf(0.975)
_Z998 = NormalDist().inv_cdf(0.999)


def funnel_point(p0: float, n: float) -> FunnelPoint:
    """The 95 % and 99.8 % funnel limits around p0 at volume n (clipped to 0..1)."""
    if not 0 <= p0 <= 1 or not n > 0:
        raise InvalidInput("bad funnel parameters", [Problem("p0", f"need 0 <= p0 <= 1 and n > 0; got {p0}, {n}")])
    se = math.sqrt(p0 * (1 - p0) / n)
    return FunnelPoint(float(n), max(0.0, p0 - _Z95 * se), min(1.0, p0 + _Z95 * se),
                       max(0.0, p0 - _Z998 * se), min(1.0, p0 + _Z998 * se))


def funnel_limits(p0: float, max_n: float, points: int = 60, min_n: float = 1.0
                  ) -> tuple[FunnelPoint, ...]:
    """``funnel_point`` at volumes spaced on a log scale from min_n up to max_n, for drawing the funnel."""
    if not 0 <= p0 <= 1 or not 0 < min_n <= max_n or points < 2:
        raise InvalidInput("bad funnel parameters",
                           [Problem("p0", f"p0={p0}, n from {min_n} to {max_n}")])
    return tuple(funnel_point(p0, float(n)) for n in np.geomspace(min_n, max_n, points))


def _funnel_position(z: float) -> str:
    if z > _Z998:
        return "above_998"
    if z > _Z95:
        return "above_95"
    if z < -_Z998:
        return "below_998"
    if z < -_Z95:
        return "below_95"
    return "inside"


def compare_nodes(counts: Mapping[str, tuple[int, int]], confidence: float = 0.95
                  ) -> NodeComparison:
    """Compare nodes given ``{node: (defects, units inspected)}``."""
    problems = [Problem(f"counts.{k}", f"need 0 <= defects <= n, n > 0; got {d} of {n}")
                for k, (d, n) in counts.items() if n <= 0 or not 0 <= d <= n]
    if not counts:
        problems.append(Problem("counts", "give at least one node"))
    if problems:
        raise InvalidInput("cannot compare nodes", problems)
    total_d = sum(d for d, _ in counts.values())
    total_n = sum(n for _, n in counts.values())
    p0 = total_d / total_n
    nodes = []
    for name, (d, n) in counts.items():
        lo, hi = wilson_interval(d, n, confidence)
        se = math.sqrt(p0 * (1 - p0) / n)
        z = (d / n - p0) / se if se > 0 else 0.0
        nodes.append(NodeRate(name, d, n, d / n, lo, hi, z, _funnel_position(z)))
    return NodeComparison(p0, total_d, total_n, confidence, tuple(nodes),
                          _homogeneity(counts) if len(counts) >= 2 else None)


def _homogeneity(counts: Mapping[str, tuple[int, int]]) -> HomogeneityTest:
    from scipy import stats  # noqa: PLC0415 (SciPy costs a CLI start-up a second; load it when used)

    table = np.array([[d, n - d] for d, n in counts.values()], float)
    col = table.sum(axis=0)
    if (col == 0).any():
        return HomogeneityTest("chi2", 0.0, len(table) - 1, 1.0, 0.0,
                               "every unit has the same outcome: nothing to compare")
    chi2, p_value, dof, expected = stats.chi2_contingency(table, correction=False)
    min_exp = float(expected.min())
    if len(table) == 2 and min_exp < 5:
        res = stats.fisher_exact(table.astype(int))
        return HomogeneityTest("fisher", None, None, float(res.pvalue), min_exp,
                               "Fisher's exact test (an expected count is below 5)")
    note = "Pearson chi-squared test of equal defect rates"
    if min_exp < 5:
        note += "; some expected counts are below 5, so the p-value is approximate"
    return HomogeneityTest("chi2", float(chi2), int(dof), float(p_value), min_exp, note)


@dataclass(frozen=True)
class ParetoBar(_Record):
    label: str
    count: int
    share: float
    cumulative_share: float


def pareto(failures: Mapping[str, int] | Sequence[str]) -> tuple[ParetoBar, ...]:
    """Failed checks by frequency: counts per label, or a list with one label per failure."""
    if isinstance(failures, Mapping):
        counts = {str(k): int(v) for k, v in failures.items()}
    else:
        counts = {}
        for label in failures:
            counts[str(label)] = counts.get(str(label), 0) + 1
    if any(v < 0 for v in counts.values()):
        raise InvalidInput("negative failure count", [Problem("failures", "counts must be >= 0")])
    total = sum(counts.values())
    ordered = sorted(((k, v) for k, v in counts.items() if v > 0), key=lambda kv: (-kv[1], kv[0]))
    out, running = [], 0
    for label, c in ordered:
        running += c
        out.append(ParetoBar(label, c, c / total, running / total))
    return tuple(out)
