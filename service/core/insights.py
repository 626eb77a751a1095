"""What the dashboard says: the queries of ``service.core.analytics`` turned into charts' data and plain sentences.

Every function here returns JSON-ready dicts (the API returns them as they
are; the dashboard and ``qc report`` draw them). Every statistic is computed
by ``qc`` (``qc.spc`` charts and run rules, ``qc.capability``, ``qc.compare``);
where a million records must not leave the database, the database aggregates
subgroup summaries (n, mean, sum of squares) and ``qc`` works from those.

Readings are one line each, written for a manager on a tablet:
"Yaoundé's defect rate is above the network's upper limit for 3 weeks".
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from qc import capability as cap
from qc import compare, spc
from qc.errors import InvalidInput, NotFound, Problem
from qc.standards import ItemType, Standard
from service.core import analytics as q
from service.core.reviews import disposition_sql
from service.storage import repository as repo
from service.storage.orm import Lot, Node, Product, UTCDateTime

__all__ = [
    "MeasuredCheck",
    "measured_checks",
    "measurement_view",
    "network_view",
    "p_chart_view",
    "pareto_view",
]

# Run rules worth a manager's attention on a weekly chart: beyond the limits, a run of nine on one side,
# two of three beyond 2 sigma. (Rules 4, 7 and 8 mostly flag stratified sampling, not a process change.)
CHART_RULES = frozenset({1, 2, 5})


def _summaries(groups: Sequence[q.Subgroup]) -> list[spc.Summary]:
    return [spc.Summary(g.n, g.mean, g.sumsq) for g in groups]


def xbar_chart(groups: Sequence[q.Subgroup]) -> spc.ControlChart:
    """The X-bar chart (``qc.spc.xbar_s_chart_from_summaries``) of the subgroups with two or more values."""
    usable = [g for g in groups if g.n >= 2]
    return spc.xbar_s_chart_from_summaries(_summaries(usable), rules=CHART_RULES).location


# --- what the standard measures -------------------------------------------------------------------


@dataclass(frozen=True)
class MeasuredCheck:
    id: str
    label: str
    unit: str
    lsl: float | None
    usl: float | None
    nominal: float | None


def measured_checks(standard: Standard) -> list[MeasuredCheck]:
    """Checks with a numeric value worth charting: dimensions, and number items with limits."""
    out = []
    for item in standard.items:
        if item.type is ItemType.NUMBER and (item.min is not None or item.max is not None):
            out.append(MeasuredCheck(item.id, item.prompt, item.unit or "", item.min, item.max, None))
    for slot in standard.photos:
        for check in slot.checks:
            if check.kind == "dimension" and check.unit != "count":
                lo, hi = check.limits
                label = check.id.replace("_", " ")
                out.append(MeasuredCheck(check.id, label, check.unit, lo, hi, check.nominal))
    return out


def current_standard(session: Session, product: str) -> Standard | None:
    row = repo.current_standard(session, product=product)
    return repo.standard_from_row(row) if row is not None else None


# --- views ----------------------------------------------------------------------------------------


def _pct(x: float) -> str:
    return f"{100 * x:.1f} %"


def _bounds(defects: int, pending: int, inspected: int) -> list[float]:
    """The defect rate if every pending review passed, and if every one failed."""
    return [defects / inspected, (defects + pending) / inspected] if inspected else [0.0, 0.0]


def _pending_phrase(pending: int) -> str:
    return f"{pending} review{'s' if pending != 1 else ''} pending"


def network_view(session: Session, r: q.Resolved) -> dict[str, Any]:
    """Per-node decided defect rates with Wilson intervals, the funnel limits, and one reading per outlier.

    Units count by disposition: ``n`` is the decided units (the rate's denominator), ``inspected`` all of them,
    ``pending`` the reviews nobody decided yet, and ``bounds`` the rate if every pending one passed or failed."""
    all_counts = {r.nodes.get(c.node_id, str(c.node_id)): c for c in q.node_counts(session, r) if c.n}
    inspected = sum(c.n for c in all_counts.values())
    pending = sum(c.pending for c in all_counts.values())
    defects = sum(c.defects for c in all_counts.values())
    counts = {name: (c.defects, c.decided) for name, c in all_counts.items() if c.decided}
    undecided = sorted(name for name, c in all_counts.items() if not c.decided)
    if not counts:
        readings = (["No inspections in this period."] if not all_counts else
                    [f"No unit is decided yet: {_pending_phrase(pending)} of {inspected} inspected; "
                     "settle them on the review page."])
        return {"network": {"n": 0, "inspected": inspected, "defects": defects, "pending": pending, "rate": 0.0,
                            "bounds": _bounds(defects, pending, inspected)},
                "nodes": [], "funnel": [], "test": None, "readings": readings}
    comparison = compare.compare_nodes(dict(sorted(counts.items())))
    pbar = comparison.network_rate
    nodes: list[dict[str, Any]] = []
    for rate in comparison.nodes:
        status = {"above_998": "above", "below_998": "below", "inside": "within"}.get(rate.funnel, "warning")
        limits = compare.funnel_point(pbar, rate.n)
        c = all_counts[rate.node]
        nodes.append({"node": rate.node, "n": rate.n, "inspected": c.n, "pending": c.pending,
                      "defects": rate.defects, "rate": rate.rate, "bounds": _bounds(c.defects, c.pending, c.n),
                      "ci95": [rate.lower, rate.upper], "z": rate.z, "funnel_position": rate.funnel,
                      "funnel95": [limits.lower95, limits.upper95],
                      "funnel998": [limits.lower998, limits.upper998], "status": status})
    readings = []
    for node in nodes:
        if node["status"] == "above":
            readings.append(f"{r.label(node['node'])}'s defect rate ({_pct(node['rate'])}) is above the "
                            f"network's 99.8 % funnel limit ({_pct(node['funnel998'][1])}) for its volume.")
        elif node["status"] == "below":
            readings.append(f"{r.label(node['node'])} has fewer defects ({_pct(node['rate'])}) than chance "
                            "allows around the network rate: worth learning from (or checking its inspections).")
    readings.sort(key=lambda line: "above" not in line)  # the worrying ones first
    if not readings:
        readings.append(f"All {len(nodes)} nodes are within the funnel limits around the network rate "
                        f"of {_pct(pbar)}{' (decided units)' if pending else ''}.")
    for node in sorted(nodes, key=lambda n: -n["pending"]):
        if node["pending"]:  # a node drowning in reviews shows it, whatever its decided rate says
            lo, hi = node["bounds"]
            readings.append(f"{r.label(node['node'])}: {_pending_phrase(node['pending'])} of {node['inspected']} "
                            f"inspected; its defect rate is between {_pct(lo)} and {_pct(hi)} until they are "
                            "decided.")
    for name in undecided:
        c = all_counts[name]
        readings.append(f"{r.label(name)}: none of its {c.n} units is decided yet ({_pending_phrase(c.pending)}).")
    grid = compare.funnel_limits(pbar, max(n["n"] for n in nodes) * 1.15, points=40,
                                 min_n=max(1.0, min(n["n"] for n in nodes) / 2))
    test = comparison.test
    return {"network": {"n": comparison.total_n, "inspected": inspected, "defects": defects, "pending": pending,
                        "rate": pbar, "bounds": _bounds(defects, pending, inspected)},
            "nodes": nodes, "funnel": [p.__dict__ for p in grid],
            "test": test.__dict__ if test else None, "readings": readings}


def _weeks(r: q.Resolved) -> list[dt.date]:
    # the week of the last instant before until (since < until, so until - 1 µs is still a datetime)
    first, last = q.week_start(r.since.date()), q.week_start((r.until - dt.timedelta(microseconds=1)).date())
    return [first + dt.timedelta(weeks=i) for i in range((last - first).days // 7 + 1)]


def p_chart_view(session: Session, r: q.Resolved) -> dict[str, Any]:
    """Weekly p-chart per node, judged against the network rate (Phase II: the network is the standard).

    Each week's size is its decided units (pending reviews are neither good nor defective yet); ``pending``
    says how many of the week's units wait for a decision, and a reading names them."""
    weekly: dict[int, dict[dt.date, q.WeekCount]] = defaultdict(dict)
    for c in q.week_counts(session, r):
        weekly[c.node_id][c.week] = c
    # The reference is the whole network's decided rate, also when the view is narrowed to one node.
    totals = q.node_counts(session, replace(r, node_id=None))
    total_n = sum(c.decided for c in totals)
    pbar = sum(c.defects for c in totals) / total_n if total_n else 0.0
    base = spc.Baseline("p", {"pbar": pbar}, len(_weeks(r)))
    charts, readings, waiting = [], [], []
    for node_id in sorted(weekly, key=lambda i: r.nodes.get(i, "")):
        weeks = sorted(w for w, v in weekly[node_id].items() if v.decided > 0)
        sizes = [weekly[node_id][w].decided for w in weeks]
        defects = [weekly[node_id][w].defects for w in weeks]
        pending = sum(v.pending for v in weekly[node_id].values())
        name = r.nodes.get(node_id, str(node_id))
        if pending:
            waiting.append(f"{r.label(name)}: {_pending_phrase(pending)}, not on its chart until decided.")
        if not weeks:
            continue
        chart = spc.p_chart(defects, sizes, baseline=base, rules=CHART_RULES)
        reading = _p_reading(r.label(name), chart)
        if reading:
            readings.append(reading)
        charts.append({"node": name, "weeks": [w.isoformat() for w in weeks], "sizes": sizes,
                       "defects": defects, "pending": [weekly[node_id][w].pending for w in weeks],
                       "pending_total": pending, "chart": chart.to_dict(), "reading": reading})
    if not readings and charts:
        readings.append(f"Every node's weekly defect rate stays within the limits around the network rate "
                        f"({_pct(pbar)}){' among decided units' if waiting else ''}.")
    return {"pbar": pbar, "pending": sum(c.pending for c in totals if r.node_id in (None, c.node_id)),
            "nodes": charts, "readings": readings + waiting}


def _p_reading(who: str, chart: spc.ControlChart) -> str | None:
    """Name the most recent signal: a run of weeks above the limit, or a broken run rule."""
    above = [v > u for v, u in zip(chart.values, chart.ucl, strict=True)]
    run = 0
    for flag in reversed(above):
        if not flag:
            break
        run += 1
    if run:
        span = "this week" if run == 1 else f"{run} weeks"
        return f"{who}'s defect rate is above the network's upper limit for {span} (latest {_pct(chart.values[-1])})."
    recent = [v for v in chart.violations if v.points[-1] >= len(chart.values) - 4
              and chart.values[v.points[-1]] > chart.center[v.points[-1]]]  # still going on, and worse
    if recent:
        return f"{who}: {spc.RULE_NAMES[recent[-1].rule]} above the network rate in its weekly defect rate."
    return None


def pareto_view(session: Session, r: q.Resolved, *, pending: int | None = None) -> dict[str, Any]:
    """Failed checks by frequency (inconclusive checks of reviews decided fail count); pending reviews counted
    beside them, since their checks are neither failures nor passes yet (``pending``: already counted, e.g. by
    ``network_view`` for the same window)."""
    bars = compare.pareto(dict(q.failure_counts(session, r)))
    rows: list[dict[str, Any]] = [{"check": b.label, "count": b.count, "share": b.share,
                                   "cumulative": b.cumulative_share} for b in bars]
    if pending is None:
        pending = sum(c.pending for c in q.node_counts(session, r))
    if rows:
        vital = [row["check"] for row in rows if row["cumulative"] - row["share"] < 0.8 - 1e-9]
        reading = (f"{len(vital)} of {len(rows)} checks cause 80 % of the failures: {', '.join(vital[:4])}"
                   f"{'…' if len(vital) > 4 else ''}.")
    else:
        reading = "No failed checks in this period."
    if pending:
        reading += f" {_pending_phrase(pending).capitalize()}, not counted until decided."
    return {"total": sum(b.count for b in bars), "pending": pending, "checks": rows, "reading": reading}


def measurement_view(session: Session, r: q.Resolved, check: MeasuredCheck) -> dict[str, Any]:
    """X-bar/S on node-week subgroups (I-MR when subgroups are single values), capability per node."""
    groups = q.measurement_subgroups(session, r, check.id)
    by_node: dict[int, list[q.Subgroup]] = defaultdict(list)
    for g in groups:
        by_node[g.node_id].append(g)
    nodes = []
    for node_id in sorted(by_node, key=lambda i: r.nodes.get(i, "")):
        name = r.nodes.get(node_id, str(node_id))
        nodes.append(_node_measurement(name, r.label(name), by_node[node_id], check))
    pooled = _pool_weeks(groups)
    chart: dict[str, Any] | None = None
    kind = "none"
    if sum(1 for g in pooled if g.n >= 2) >= 2:
        chart, kind = xbar_chart(pooled).to_dict(), "xbar_s"
        chart["weeks"] = [g.week.isoformat() for g in pooled if g.n >= 2]
    elif len(values := q.measurement_values(session, r, check.id)) >= 2:
        imr = spc.imr_chart([v for _n, v in values])
        chart, kind = imr.location.to_dict(), "imr"
    readings = [n["reading"] for n in nodes if n["reading"]]
    if not readings and nodes:
        readings.append(f"{check.label.capitalize()}: every node is capable (Cpk ≥ 1.33) and in control.")
    return {"check": check.__dict__, "kind": kind, "chart": chart, "nodes": nodes, "readings": readings}


def _pool_weeks(groups: Sequence[q.Subgroup]) -> list[q.Subgroup]:
    """Network subgroups: all nodes' measurements of one week together (``qc.spc.pool``)."""
    by_week: dict[dt.date, list[q.Subgroup]] = defaultdict(list)
    for g in groups:
        by_week[g.week].append(g)
    out = []
    for week in sorted(by_week):
        gs = by_week[week]
        both = spc.pool(_summaries(gs))
        out.append(q.Subgroup(-1, week, both.n, both.mean, min(g.minimum for g in gs), max(g.maximum for g in gs),
                              both.sumsq))
    return out


def _node_measurement(node: str, who: str, groups: list[q.Subgroup], check: MeasuredCheck) -> dict[str, Any]:
    """One node's capability (``qc.capability``; refused under 30 values, the reason then in the reading)."""
    summaries = _summaries(groups)
    everything = spc.pool(summaries)
    indices: dict[str, float | None] = {"s_within": cap.pooled_sigma_within(summaries), "s_overall": everything.sd,
                                        "cp": None, "cpk": None, "pp": None, "ppk": None}
    refused = None
    try:
        c = cap.capability_from_summaries(summaries, lsl=check.lsl, usl=check.usl)
    except InvalidInput as exc:
        refused = exc.message.split(". ")[0]  # e.g. "capability needs at least 30 measurements; got 12"
    else:
        indices.update(cp=c.cp.estimate if c.cp else None, cpk=c.cpk.estimate,
                       pp=c.pp.estimate if c.pp else None, ppk=c.ppk.estimate)
    chart = xbar_chart(groups) if sum(1 for g in groups if g.n >= 2) >= 2 else None
    weeks = [g.week.isoformat() for g in groups if g.n >= 2]
    reading = None
    if chart is not None and chart.violations:
        last = chart.violations[-1]
        if last.points[-1] >= len(chart.values) - 4:
            reading = f"{who}: {check.label} — {spc.RULE_NAMES[last.rule]} (week of {weeks[last.points[-1]]})."
    cpk = indices["cpk"]
    if refused is not None:  # the reason stands where the number would
        reading = f"{reading} {refused[0].upper()}{refused[1:]}." if reading else f"{who}: {check.label} — {refused}."
    elif reading is None and cpk is not None and cpk < 1.0:
        reading = (f"{who}: {check.label} is not capable (Cpk {cpk:.2f} < 1.0; mean {everything.mean:.3f} "
                   f"{check.unit}).")
    return {"node": node, "n": everything.n, "mean": everything.mean, **indices, "capability_refused": refused,
            "weeks": weeks, "chart": chart.to_dict() if chart else None, "reading": reading}


# --- page-level views (cached) --------------------------------------------------------------------


def _key(name: str, filters: q.Filters) -> tuple[str, q.Filters]:
    return (name, filters)


def overview(an: q.Analytics, session: Session, filters: q.Filters, *, now: dt.datetime) -> dict[str, Any]:
    """The network at a glance: rates and funnel, Pareto of failed checks (alerts are read live)."""
    f = q.round_window(filters, now=now)

    def compute() -> dict[str, Any]:
        r = q.resolve(session, f, now=now)
        network = network_view(session, r)
        return {"filters": filters_view(r), "network": network,
                "pareto": pareto_view(session, r, pending=network["network"]["pending"])}

    return an.cached(session, _key("overview", f), compute)


def _filtered_view(an: q.Analytics, session: Session, filters: q.Filters, name: str,
                   view: Callable[[Session, Any], dict[str, Any]], *, now: dt.datetime) -> dict[str, Any]:
    """One cached dashboard view: the resolved filters plus what ``view`` computes for them."""
    f = q.round_window(filters, now=now)

    def compute() -> dict[str, Any]:
        r = q.resolve(session, f, now=now)
        return {"filters": filters_view(r), **view(session, r)}

    return an.cached(session, _key(name, f), compute)


def rates(an: q.Analytics, session: Session, filters: q.Filters, *, now: dt.datetime) -> dict[str, Any]:
    return _filtered_view(an, session, filters, "network", network_view, now=now)


def p_charts(an: q.Analytics, session: Session, filters: q.Filters, *, now: dt.datetime) -> dict[str, Any]:
    return _filtered_view(an, session, filters, "p-chart", p_chart_view, now=now)


def pareto(an: q.Analytics, session: Session, filters: q.Filters, *, now: dt.datetime) -> dict[str, Any]:
    return _filtered_view(an, session, filters, "pareto", pareto_view, now=now)


def measurements(an: q.Analytics, session: Session, filters: q.Filters, *, now: dt.datetime) -> dict[str, Any]:
    """Every measured check of the product (or only ``filters.check``): control chart and capability."""
    f = q.round_window(filters, now=now)

    def compute() -> dict[str, Any]:
        r = q.resolve(session, f, now=now)
        if f.product is None:
            raise InvalidInput("measurements are per product", [Problem("product", "required")])
        standard = current_standard(session, f.product)
        checks = measured_checks(standard) if standard else []
        if f.check is not None:
            checks = [c for c in checks if c.id == f.check]
            if not checks:
                raise NotFound(f"{f.product} has no measured check {f.check!r}")
        return {"filters": filters_view(r), "checks": [measurement_view(session, r, c) for c in checks]}

    return an.cached(session, _key("measurements", f), compute)


def filters_view(r: q.Resolved) -> dict[str, Any]:
    f = r.filters
    return {"product": f.product, "version": f.version, "node": f.node, "check": f.check,
            "since": r.since.isoformat(), "until": r.until.isoformat()}


LOT_UNITS_SQL = (
    "SELECT s.seq, s.id, s.unit, s.captured_at, s.verdict, s.technician, st.version, "
    f"{disposition_sql('s')} AS disposition FROM submissions s "
    "JOIN standards st ON st.id = s.standard_id WHERE s.lot_id = :lot ORDER BY s.captured_at, s.seq LIMIT :limit"
)
LOT_RESULTS_SQL = (
    "SELECT c.submission_seq, c.check_id, c.status, c.value FROM check_results c "
    "JOIN submissions s ON s.seq = c.submission_seq "
    "WHERE s.lot_id = :lot AND (c.status = 'fail' OR c.value IS NOT NULL) ORDER BY c.submission_seq, c.position"
)


def lot_view(session: Session, lot_id: int, *, limit: int = 1000) -> dict[str, Any]:
    """One lot: its units with verdicts and failed checks, and each measured check's values in order."""
    lot = session.get(Lot, lot_id)
    if lot is None:
        raise NotFound(f"no lot {lot_id}")
    product = session.get(Product, lot.product_id)
    node = session.get(Node, lot.node_id)
    assert product is not None and node is not None
    units_sql = text(LOT_UNITS_SQL).columns(captured_at=UTCDateTime())
    rows = session.execute(units_sql, {"lot": lot_id, "limit": limit}).all()
    failed: dict[int, list[str]] = defaultdict(list)
    values: dict[str, list[float]] = defaultdict(list)
    standard = current_standard(session, product.slug)
    checks = {c.id: c for c in (measured_checks(standard) if standard else [])}
    listed = {int(r[0]) for r in rows}
    for seq, check_id, status, value in session.execute(text(LOT_RESULTS_SQL), {"lot": lot_id}):
        if int(seq) not in listed:
            continue
        if status == "fail":
            failed[int(seq)].append(check_id)
        if check_id in checks and value is not None:
            values[check_id].append(float(value))
    units = [{"id": sid, "unit": unit, "captured_at": at.isoformat(), "verdict": verdict, "technician": tech,
              "standard_version": int(version), "disposition": str(disp), "failed": failed.get(int(seq), [])}
             for seq, sid, unit, at, verdict, tech, version, disp in rows]
    n = len(units)
    defects = sum(1 for u in units if u["disposition"] == "fail")
    pending = sum(1 for u in units if u["disposition"] == "review")
    series = []
    for cid, vals in values.items():
        c = checks[cid]
        chart = spc.imr_chart(vals, rules=CHART_RULES).location.to_dict() if len(vals) >= 2 else None
        outside = sum(1 for v in vals if (c.lsl is not None and v < c.lsl) or (c.usl is not None and v > c.usl))
        series.append({"check": c.__dict__, "values": vals, "chart": chart, "outside_spec": outside})
    return {"lot": {"id": lot.id, "code": lot.code, "node": node.name, "product": product.slug,
                    "created_at": lot.created_at.isoformat()},
            "n": n, "defects": defects, "reviews": pending, "pending": pending,
            "units": units, "measurements": series, "reading": _lot_reading(lot.code, n, defects, pending)}


def _lot_reading(code: str, n: int, defects: int, pending: int) -> str:
    """Units by disposition; never "all passed" while a review is pending."""
    if not n:
        return f"Lot {code} has no inspections yet."
    waiting = f"{pending} review{'s' if pending != 1 else ''} waiting for a decision"
    if defects:
        text = f"Lot {code}: {defects} of {n} units failed ({_pct(defects / n)})"
        return f"{text}; {waiting}." if pending else f"{text}."
    if pending:
        passed = n - pending
        return (f"Lot {code}: {passed} of {n} units passed; {waiting}." if passed
                else f"Lot {code}: none of its {n} units is decided yet; {waiting}.")
    return f"Lot {code}: all {n} units passed."


def recent_lots(session: Session, *, node_id: int | None = None, product_id: int | None = None,
                limit: int = 20) -> list[dict[str, Any]]:
    query = select(Lot).order_by(Lot.created_at.desc(), Lot.id.desc()).limit(limit)
    if node_id is not None:
        query = query.where(Lot.node_id == node_id)
    if product_id is not None:
        query = query.where(Lot.product_id == product_id)
    return [{"id": lot.id, "code": lot.code, "created_at": lot.created_at.isoformat()}
            for lot in session.scalars(query)]
