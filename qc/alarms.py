"""The alert rules, as the service applies them, on plain numbers: one implementation for
``service/core/alerts.py`` (which reads the subgroups from the database and words the messages) and for
``simulate`` (which generates in-control and shifted data and counts what the rules raise), so the stated
false-alarm rate is the rate of the rules that run.

What is judged, for one node x product, over the latest ``WINDOW_WEEKS`` ISO weeks:

- mean shifts, per measured dimension: an X-bar chart of the node's weekly means whose limits depend on each
  week's size, centre +- L sigma sqrt(1/n_i + 1/N0) (a partial week with few units gets wide limits). The
  Phase I baseline is frozen from the node's own earlier weeks: the complete weeks of the window before the
  latest ``RECENT_WEEKS`` (at least ``MIN_BASELINE_WEEKS`` of them): their pooled mean and pooled
  within-week sigma, N0 their number of measurements (the 1/N0 term is the uncertainty of the centre, which
  matters with a few weeks of history). The node's own history, not the network's, because nodes' gauges
  and set-ups differ a little, and a constant offset is a capability question, not a shift. An X-bar chart
  rather than EWMA/CUSUM: its limits follow each week's size directly, its signals name a week, and with the
  run rule below it detects a 1.5 sigma shift within 3 weeks at the volumes the simulation shows.
  Western Electric rules 1 (one week beyond L sigma) and 5 (two of three beyond 2L/3 sigma on one side);
  L is Bonferroni-adjusted for the number of dimensions D, L = t_dof(1 - MEAN_ALPHA / (2 D)), Student's t
  with the baseline's within-week degrees of freedom (at least ``MIN_BASELINE_DOF``) since sigma is
  estimated.
- defect rates against the network's rate p0 over the window: the weekly p-chart with per-point limits
  (``p-above-limit``: above p0 + 3 sigma_i, with at least ``MIN_DEFECTS`` defectives and a binomial tail
  below ``P_LIMIT_ALPHA``, the 3-sigma tail, so that a small partial week is not judged by the normal
  approximation; ``p-run-above``: nine weeks in a row above p0); ``funnel-above``: the window's rate above
  the 99.8 % funnel limit for its volume and beyond the exact binomial tail ``FUNNEL_ALPHA``; and
  ``p-recent-above``: the defectives of the latest ``RECENT_RATE_WEEKS`` weeks (the current one as far as
  it goes) so many that binomial(n, p0) reaches them with probability below ``RECENT_ALPHA`` (what detects
  a doubled rate within three weeks, where the weekly chart and the 12-week funnel are too slow).
- The mean and rate rules together must hold the whole system's false-alarm rate (issue 14: at most one
  false alert per node and product per quarter), with the service evaluating after every upload: a partial
  week is judged many times as it fills, so each look's alpha is far below the budget.

Only signals the latest week takes part in are returned: the service evaluates after every upload, and
anything older was news when it happened. The constants were tuned on ``simulate`` (``bench/alerts.py``),
never on a data set.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from statistics import NormalDist

import numpy as np

from qc import spc
from qc.compare import funnel_point

__all__ = [
    "FUNNEL_ALPHA",
    "MEAN_ALPHA",
    "MEAN_RULES",
    "MIN_BASELINE_DOF",
    "MIN_BASELINE_WEEKS",
    "MIN_DEFECTS",
    "P_LIMIT_ALPHA",
    "RECENT_ALPHA",
    "RECENT_RATE_WEEKS",
    "RECENT_WEEKS",
    "WINDOW_WEEKS",
    "MeanSignal",
    "RateSignal",
    "SimResult",
    "mean_limit",
    "mean_signals",
    "rate_signals",
    "simulate",
]

WINDOW_WEEKS = 12
RECENT_WEEKS = 4  # mean shifts: the latest weeks are judged against the complete weeks before them
MIN_BASELINE_WEEKS = 6
MIN_BASELINE_DOF = 10  # within-week degrees of freedom behind sigma
MIN_DEFECTS = 2  # one defective unit in a small week is not a signal
MEAN_ALPHA = 0.002  # per point, shared by a product's dimensions (Bonferroni)
MEAN_RULES = frozenset({1, 5})
FUNNEL_ALPHA = 0.001  # the 99.8 % funnel's upper tail, exact
P_LIMIT_ALPHA = 0.00135  # the 3-sigma tail, exact: a small week's normal limits are far too narrow
RECENT_RATE_WEEKS = 3
RECENT_ALPHA = 0.002


@functools.lru_cache(maxsize=4096)
def mean_limit(n_dims: int, dof: float = math.inf) -> float:
    """L for rule 1 of the X-bar chart when ``n_dims`` dimensions of a product are judged together and sigma
    comes from a baseline with ``dof`` degrees of freedom (Student's t: few measurements, wider limits)."""
    q = 1 - MEAN_ALPHA / (2 * max(1, n_dims))
    if math.isinf(dof):
        return NormalDist().inv_cdf(q)
    from scipy import stats  # noqa: PLC0415 (SciPy costs a CLI start-up a second; load it when used)
    return float(stats.t.ppf(q, dof))


@dataclass(frozen=True)
class MeanSignal:
    rule: int  # Western Electric / Nelson rule number (1 or 5)
    points: tuple[int, ...]  # indices into the subgroups passed
    centre: float
    sigma: float  # within-week sigma of the baseline
    lcl: float  # limits of the latest point
    ucl: float
    baseline_weeks: int


def mean_signals(weeks: Sequence[dt.date], groups: Sequence[spc.Summary], *, n_dims: int,
                 complete_until: dt.date | None = None) -> list[MeanSignal]:
    """The mean-shift signals of one dimension of one node, weeks oldest first (one Summary per week with
    data, the latest last). ``complete_until``: weeks starting on or after it are not complete (the current
    week), never Phase I."""
    if not groups:
        return []
    cut = weeks[-1] - dt.timedelta(weeks=RECENT_WEEKS - 1)
    base = [g for w, g in zip(weeks, groups, strict=True) if w < cut and (complete_until is None
                                                                        or w < complete_until)]
    k = sum(1 for w in weeks if w < cut)
    dof = sum(g.n - 1 for g in base if g.n > 1)
    if len(base) < MIN_BASELINE_WEEKS or dof < MIN_BASELINE_DOF or weeks[-1] < cut:
        return []  # not enough history to know what normal is
    frozen = spc.xbar_baseline(base)
    if frozen.params["sigma"] <= 0:
        return []
    # Only the judged weeks are charted, and of them only as many as the widest rule looks back (rule 5: 3):
    # a signal must include the latest week, and the rules run after every upload of every dimension.
    first = max(k, len(groups) - 3)
    tail = groups[first:]
    chart = spc.xbar_chart([g.mean for g in tail], [g.n for g in tail], baseline=frozen,
                           limit=mean_limit(n_dims, dof), rules=MEAN_RULES)
    last = len(tail) - 1
    return [MeanSignal(v.rule, tuple(first + p for p in v.points), chart.center[last], frozen.params["sigma"],
                       chart.lcl[last], chart.ucl[last], len(base))
            for v in chart.violations if v.points[-1] == last]


@dataclass(frozen=True)
class RateSignal:
    rule: str  # p-above-limit, p-run-above, funnel-above, p-recent-above
    points: tuple[int, ...]  # indices into the weeks passed
    rate: float
    limit: float
    n: int
    defects: int


def rate_signals(weeks: Sequence[dt.date], defects: Sequence[int], sizes: Sequence[int],
                 p0: float) -> list[RateSignal]:
    """The defect-rate signals of one node: its weeks with data (Mondays, oldest first, the latest last)
    with their defectives and sizes; ``p0`` the network's rate over the window."""
    out: list[RateSignal] = []
    n_all, d_all = int(sum(sizes)), int(sum(defects))
    if not n_all or p0 <= 0:
        return out  # a network without defects has no limits to leave
    hi = funnel_point(p0, n_all).upper998
    if d_all / n_all > hi and _binom_sf(d_all, n_all, p0) < FUNNEL_ALPHA:
        out.append(RateSignal("funnel-above", tuple(range(len(sizes))), d_all / n_all, hi, n_all, d_all))
    last = len(sizes) - 1
    chart = spc.p_chart(defects, sizes, baseline=spc.Baseline("p", {"pbar": p0}, WINDOW_WEEKS), rules={1, 2})
    for v in chart.violations:
        if v.points[-1] != last:
            continue
        i = v.points[0]
        if v.rule == 1 and chart.values[i] > chart.ucl[i] and defects[i] >= MIN_DEFECTS \
                and _binom_sf(defects[i], sizes[i], p0) < P_LIMIT_ALPHA:
            out.append(RateSignal("p-above-limit", (i,), chart.values[i], chart.ucl[i], sizes[i], defects[i]))
        elif v.rule == 2 and chart.values[last] > p0:
            out.append(RateSignal("p-run-above", v.points, chart.values[last], p0,
                                  sum(sizes[j] for j in v.points), sum(defects[j] for j in v.points)))
    since = weeks[-1] - dt.timedelta(weeks=RECENT_RATE_WEEKS - 1)
    start = next(t for t, w in enumerate(weeks) if w >= since)
    n_r, d_r = int(sum(sizes[start:])), int(sum(defects[start:]))
    if n_r and d_r >= MIN_DEFECTS and _binom_sf(d_r, n_r, p0) < RECENT_ALPHA:
        out.append(RateSignal("p-recent-above", tuple(range(start, len(sizes))), d_r / n_r,
                              _binom_limit(n_r, p0), n_r, d_r))
    return out


def _binom_sf(d: int, n: int, p: float) -> float:
    """P(X >= d) for X ~ binomial(n, p)."""
    from scipy.special import bdtrc  # noqa: PLC0415 (SciPy costs a CLI start-up a second; load it when used)
    return float(bdtrc(d - 1, n, p)) if d > 0 else 1.0  # bdtrc(k, n, p) = P(X > k), a ufunc: fast


def _binom_limit(n: int, p: float) -> float:
    """The smallest rate d/n that ``p-recent-above`` flags at volume n."""
    from scipy import stats  # noqa: PLC0415
    return (float(stats.binom.isf(RECENT_ALPHA, n, p)) + 1) / n


# --------------------------------------------------------------------------- simulation


def _looks(n: int, looks: str) -> list[int]:
    """After which uploads of a week of ``n`` the rules run: every one ("upload", what the service does),
    or every one of the first 10 and then every ~10 % more ("geometric": the running mean of a partial
    week moves by about 1/sqrt(k) per upload, so later looks add little; much faster at high volume)."""
    if looks == "upload" or n <= 10:
        return list(range(1, n + 1))
    return sorted({*range(1, 11), *(int(10 * 1.1**j) for j in range(1, int(math.log(n / 10, 1.1)) + 1)), n})


@dataclass(frozen=True)
class SimResult:
    """What ``simulate`` counted for one seed."""

    false_alerts: dict[str, int] = field(default_factory=dict)  # rule -> alerts in in-control node-products
    node_quarters: float = 0.0  # node x product x quarters judged for false alerts
    mean_detected: bool | None = None  # the shifted dimension flagged within ``detect_weeks``
    rate_detected: bool | None = None


def simulate(seed: int, *, nodes: int = 5, dims: int = 4, volume: float = 30.0, p0: float = 0.03,
             warmup_weeks: int = WINDOW_WEEKS, weeks: int = 13, mean_shift: float = 0.0,
             rate_factor: float = 1.0, detect_weeks: int = 3, looks: str = "upload") -> SimResult:
    """One product made by ``nodes`` nodes for ``warmup_weeks + weeks`` weeks, judged as the service judges it.

    Node 0 makes ``volume`` units a week on average, the others lognormal around it (sd 0.6 in log); each week's size
    is Poisson around it, so some weeks have a handful of units; measurements are normal (sigma 1, a
    node-specific offset), defects binomial(p0). The rules run after every upload of the judged weeks
    (``looks="upload"``) or at geometrically spaced uploads (``"geometric"``, see ``_looks``), partial weeks
    included. An alert is counted once per
    (node, rule, dimension, first week of the signal), as the service keys it; alerts of node 0 from the
    shift's start on are detections, not false alerts, when a shift is simulated (``mean_shift`` sigma in
    dimension 0 and/or ``rate_factor`` on the defect rate, both from the first judged week)."""
    rng = np.random.default_rng(seed)
    shifted = mean_shift != 0 or rate_factor != 1
    if shifted:
        weeks = min(weeks, detect_weeks)  # a detection run ends when its time is up
    total = warmup_weeks + weeks
    mean_vol = volume * rng.lognormal(0, 0.6, nodes)
    mean_vol[0] = volume  # node 0 (the shifted one in a detection run) makes ``volume`` units a week on average
    sizes = rng.poisson(mean_vol[:, None], (nodes, total))
    offsets = rng.normal(0, 0.5, (nodes, dims))
    monday = dt.date(2026, 1, 5)
    week_dates = [monday + dt.timedelta(weeks=w) for w in range(total)]
    values: list[list[np.ndarray]] = []  # [node][week]: (n, dims) measurements, in upload order
    faulty: list[list[np.ndarray]] = []  # [node][week]: (n,) defective or not
    for i in range(nodes):
        values.append([])
        faulty.append([])
        for w in range(total):
            n = int(sizes[i, w])
            x = rng.normal(offsets[i], 1.0, (n, dims))
            p = p0
            if i == 0 and w >= warmup_weeks:
                x[:, 0] += mean_shift
                p = min(1.0, p0 * rate_factor)
            values[i].append(x)
            faulty[i].append(rng.random(n) < p)
    defects = np.array([[int(f.sum()) for f in row] for row in faulty])
    # what a database would aggregate: one Summary per complete node-week and dimension
    complete = [[[spc.Summary.of(x[:, d]) for d in range(dims)] for x in row] for row in values]
    seen: set[tuple[int, str, int, int]] = set()
    false: dict[str, int] = {}
    detected = {"mean": False, "rate": False}
    for w in range(warmup_weeks, total):
        lo = w - WINDOW_WEEKS + 1
        for i in range(nodes):
            n_w = int(sizes[i, w])
            if n_w == 0:
                continue
            idx = [j for j in range(lo, w + 1) if sizes[i, j] > 0]
            x_now, f_now = values[i][w], np.cumsum(faulty[i][w])
            csum, csq = np.cumsum(x_now, axis=0), np.cumsum(x_now**2, axis=0)
            cuts = _looks(n_w, looks)
            for k in cuts:
                # the network so far: the window's complete weeks, this week's other nodes (in full: they
                # upload alongside) and this node's first k uploads
                net_n = sizes[:, lo:w + 1].sum() - n_w + k
                net_d = defects[:, lo:w + 1].sum() - defects[i, w] + int(f_now[k - 1])
                dsz = [int(sizes[i, j]) for j in idx[:-1]] + [k]
                dfx = [int(defects[i, j]) for j in idx[:-1]] + [int(f_now[k - 1])]
                found = [(s.rule, -1, idx[s.points[0]])
                         for s in rate_signals([week_dates[j] for j in idx], dfx, dsz, net_d / net_n)]
                for d in range(dims):
                    m = csum[k - 1, d] / k
                    now = spc.Summary(k, float(m), max(0.0, float(csq[k - 1, d] - k * m * m)))
                    groups = [complete[i][j][d] for j in idx[:-1]] + [now]
                    found += [(f"mean-shift-{s.rule}", d, idx[s.points[0]])
                              for s in mean_signals([week_dates[j] for j in idx], groups, n_dims=dims,
                                                    complete_until=week_dates[w])]
                for rule, d, first in found:
                    key = (i, rule, d, first)
                    if key in seen:
                        continue
                    seen.add(key)
                    if shifted and i == 0:  # the shifted node's alerts are detections, not false alarms
                        if w < warmup_weeks + detect_weeks:
                            if rule.startswith("mean") and d == 0:
                                detected["mean"] = True
                            elif not rule.startswith("mean"):
                                detected["rate"] = True
                        continue
                    false[rule] = false.get(rule, 0) + 1
    quarters = weeks / 13 * (nodes - (1 if shifted else 0))
    return SimResult(false, quarters, detected["mean"] if mean_shift else None,
                     detected["rate"] if rate_factor != 1 else None)
