"""Alerts: a node's chart breaks a rule, or the node leaves the funnel limits.

``evaluate_alerts`` runs after a submission is stored (and from ``qc alerts
evaluate`` after a bulk import). It looks only at the submission's product and
node, over the last ``ALERT_WEEKS`` weekly subgroups, so its cost does not grow
with the history: three aggregate queries on the covering indexes of migration
0002 plus one per measured check.

What raises an alert (defect rates are judged against the network's, which every node
must meet; measurements against the node's own recent history) is decided by the pure rules of
``qc/alarms.py``, the same functions ``bench/alerts.py`` simulates to state the false-alarm rate;
this module reads the subgroups and words the messages:

- ``p-above-limit``: the node's weekly defect rate above the p-chart's upper limit for that week's size
  around the network rate (and beyond the exact binomial 3-sigma tail, with ``alarms.MIN_DEFECTS`` defectives);
- ``p-run-above``: nine weeks in a row above the network rate;
- ``p-recent-above``: the latest three weeks' defectives improbable under the network rate (binomial tail);
- ``funnel-above``: the node's defect rate over the window above the network's 99.8 % funnel limit for its
  volume;
- ``mean-shift-1`` / ``mean-shift-5``: a measured dimension's weekly mean on an X-bar chart whose limits
  follow each week's size (a partial week gets wide limits), around a baseline frozen from the node's
  complete earlier weeks in the window: beyond the limits (rule 1), or two of three weeks far on one side
  (rule 5); the limits are widened for the number of dimensions a product has.

An alert is one row, keyed by signal and subgroup: evaluating again never
duplicates it, and while a signal of the same kind is open for the node no
second one is opened. Acknowledging keeps the row and adds who, when and why.
After a submission the evaluation runs from the outbox (``service/core/outbox.py``), which also posts new
alerts to the webhook (``Settings.webhook_url``).
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, true
from sqlalchemy.orm import Session

from qc import alarms, spc
from qc.bounds import MAX_INT, text_problem
from qc.errors import InvalidInput, NotFound, Problem
from service.core import analytics as q
from service.core import insights
from service.storage.orm import Alert, Node, Product

__all__ = [
    "ALERT_WEEKS",
    "acknowledge_alert",
    "alert_view",
    "evaluate_alerts",
    "evaluate_all",
    "find_signals",
    "list_alerts",
    "store_signals",
]

ALERT_WEEKS = alarms.WINDOW_WEEKS  # the rules and their constants live in qc/alarms.py


def _node(session: Session, value: int | str) -> Node:
    row = session.get(Node, value) if isinstance(value, int) else \
        session.scalars(select(Node).where(Node.name == value)).one_or_none()
    if row is None:
        raise NotFound(f"no node {value!r}")
    return row


def _product(session: Session, value: int | str) -> Product:
    row = session.get(Product, value) if isinstance(value, int) else \
        session.scalars(select(Product).where(Product.slug == value)).one_or_none()
    if row is None:
        raise NotFound(f"no product {value!r}")
    return row


def evaluate_alerts(session: Session, *, product: int | str, node: int | str, now: dt.datetime,
                    fresh: bool = False) -> list[Alert]:
    """Open the alerts that the latest ``ALERT_WEEKS`` weeks of ``node`` x ``product`` call for (flushed, not
    committed). Returns the new rows. The network baseline is reused between calls unless ``fresh``."""
    product_id, node_id, found = find_signals(session, product=product, node=node, now=now, fresh=fresh)
    return store_signals(session, found, product_id=product_id, node_id=node_id, now=now)


def find_signals(session: Session, *, product: int | str, node: int | str, now: dt.datetime,
                 fresh: bool = False) -> tuple[int, int, list[dict[str, Any]]]:
    """Read-only half of ``evaluate_alerts``: (product id, node id, the signals found)."""
    product_row, node_row = _product(session, product), _node(session, node)
    product_id, product_slug, node_id = product_row.id, product_row.slug, node_row.id
    node_name = q.node_label(node_row.name, node_row.title or "")  # how the messages name it
    until = q.week_start(now.astimezone(dt.UTC).date()) + dt.timedelta(weeks=1)
    end = dt.datetime.combine(until, dt.time(), tzinfo=dt.UTC)
    r_net = q.resolve(session, q.Filters(product=product_slug, since=end - dt.timedelta(weeks=ALERT_WEEKS),
                                         until=end), now=now)
    r_node = q.Resolved(r_net.filters, product_id, None, node_id, r_net.since, r_net.until, r_net.nodes)
    standard = insights.current_standard(session, product_slug)
    checks = insights.measured_checks(standard) if standard else []
    base = _network_baseline(session, r_net, fresh=fresh)
    found: list[dict[str, Any]] = []
    found += _rate_signals(session, r_net, r_node, node_name, base.pbar)
    _note_pending_reviews(session, r_node, found)
    for check in checks:
        found += _mean_signals(session, r_node, node_name, check, n_dims=len(checks))
    return product_id, node_id, found


def _note_pending_reviews(session: Session, r_node: q.Resolved, signals: list[dict[str, Any]]) -> None:
    """A defect-rate signal says how many of the node's reviews in the window nobody has decided yet (issue 14:
    they are neither good nor defective, so the rate can still move)."""
    rate_signals = [s for s in signals if s["check"] is None]
    pending = sum(c.pending for c in q.node_counts(session, r_node)) if rate_signals else 0
    for signal in rate_signals if pending else []:
        signal["message"] += f" {pending} review{'s' if pending != 1 else ''} in these weeks still pending."
        signal["detail"] = {**signal["detail"], "pending_reviews": pending}


@dataclass(frozen=True)
class _Baseline:
    """The network's defect rate over the alert window: what every node's rate is judged against."""

    pbar: float
    max_seq: int
    made_at: float


_BASELINES: dict[tuple[str, int, dt.datetime], _Baseline] = {}
_BASELINE_LOCK = threading.Lock()
BASELINE_TTL_S = 300.0
BASELINE_GROWTH = 0.02  # recompute once the data grew by 2 %


def _network_baseline(session: Session, r_net: q.Resolved, *, fresh: bool) -> _Baseline:
    """The network rate, reused across submissions while the data has grown by less than ``BASELINE_GROWTH``
    (and for at most ``BASELINE_TTL_S``): the one aggregate over every node."""
    assert r_net.product_id is not None
    key = (str(session.get_bind().engine.url), r_net.product_id, r_net.since)
    seq = q.data_version(session)
    with _BASELINE_LOCK:
        cached = _BASELINES.get(key)
    if (not fresh and cached is not None and time.monotonic() - cached.made_at < BASELINE_TTL_S
            and 0 <= seq - cached.max_seq <= cached.max_seq * BASELINE_GROWTH):
        return cached
    totals = q.node_counts(session, r_net)
    total_n = sum(c.n for c in totals)
    pbar = sum(c.defects for c in totals) / total_n if total_n else 0.0
    baseline = _Baseline(pbar, seq, time.monotonic())
    with _BASELINE_LOCK:
        if len(_BASELINES) > 1024:
            _BASELINES.clear()
        _BASELINES[key] = baseline
    return baseline


def _rate_signals(session: Session, r_net: q.Resolved, r_node: q.Resolved, node: str,
                  pbar: float) -> list[dict[str, Any]]:
    """The node's weekly defectives against the network rate, judged by ``qc.alarms.rate_signals`` (the rules
    ``bench/alerts.py`` simulates)."""
    weekly = {c.week: (c.n, c.defects) for c in q.week_counts(session, r_node)}
    weeks = sorted(weekly)
    if not weeks:
        return []
    sizes, defects = [weekly[w][0] for w in weeks], [weekly[w][1] for w in weeks]
    out: list[dict[str, Any]] = []
    for s in alarms.rate_signals(weeks, defects, sizes, pbar):
        w = weeks[s.points[0]]
        counts = f"{s.rate:.1%}, {s.defects}/{s.n}"
        if s.rule == "funnel-above":
            out.append({"kind": "funnel", "rule": s.rule, "check": None, "period": q.week_start(r_net.since.date()),
                        "message": f"{node}'s defect rate over the last {ALERT_WEEKS} weeks ({counts}) is above "
                                   f"the network's 99.8 % funnel limit ({s.limit:.1%}) around the network rate "
                                   f"{pbar:.1%}.",
                        "detail": {"rate": s.rate, "n": s.n, "defects": s.defects, "limit": s.limit, "pbar": pbar}})
        elif s.rule == "p-above-limit":
            out.append({"kind": "rule", "rule": s.rule, "check": None, "period": w,
                        "message": f"{node}'s defect rate in the week of {w} ({counts}) is above the network's "
                                   f"upper limit ({s.limit:.1%}).",
                        "detail": {"week": w.isoformat(), "rate": s.rate, "ucl": s.limit, "pbar": pbar,
                                   "n": s.n, "defects": s.defects}})
        elif s.rule == "p-run-above":
            out.append({"kind": "rule", "rule": s.rule, "check": None, "period": w,
                        "message": f"{node}'s defect rate has been above the network rate ({pbar:.1%})"
                                   f" for {len(s.points)} weeks in a row, since the week of {w}.",
                        "detail": {"weeks": [weeks[i].isoformat() for i in s.points], "pbar": pbar}})
        else:  # p-recent-above
            out.append({"kind": "rule", "rule": s.rule, "check": None, "period": w,
                        "message": f"{node}'s defect rate since the week of {w} ({counts}) is above what the "
                                   f"network rate {pbar:.1%} allows at that volume ({s.limit:.1%} or more has a "
                                   f"binomial tail below {alarms.RECENT_ALPHA:g}).",
                        "detail": {"weeks": [weeks[i].isoformat() for i in s.points], "rate": s.rate, "n": s.n,
                                   "defects": s.defects, "limit": s.limit, "pbar": pbar}})
    return out


def _mean_signals(session: Session, r_node: q.Resolved, node: str,
                  check: insights.MeasuredCheck, *, n_dims: int = 1) -> list[dict[str, Any]]:
    """The node's weekly subgroups of one dimension on the X-bar chart of ``qc.alarms.mean_signals``: limits
    per week's size around a baseline frozen from the node's own complete earlier weeks (a shift is a change
    against the node's history, so a node whose gauge reads a little differently is not an alert every week);
    ``n_dims`` dimensions of the product share the false-alarm budget."""
    mine = q.measurement_subgroups(session, r_node, check.id)
    if not mine:
        return []
    weeks = [g.week for g in mine]
    current = q.week_start((r_node.until - dt.timedelta(days=1)).date())  # the week of now: not complete
    found = alarms.mean_signals(weeks, [spc.Summary(g.n, g.mean, g.sumsq) for g in mine], n_dims=n_dims,
                                complete_until=current)
    out = []
    unit = check.unit
    for v in found:
        last, first = mine[v.points[-1]], mine[v.points[0]]
        side = "above" if last.mean > v.centre else "below"
        if v.rule == 1:
            what = (f"weekly mean {last.mean:.3f} {unit} in the week of {last.week} ({last.n} measured) is {side} "
                    f"its control limits for that size ({v.lcl:.3f}–{v.ucl:.3f} {unit}, from its "
                    f"{v.baseline_weeks} complete weeks before)")
        else:
            what = (f"weekly means of {len(v.points)} of the last 3 weeks, since the week of {first.week}, are "
                    f"far {side} its centre line ({v.centre:.3f} {unit}, from its {v.baseline_weeks} complete "
                    f"weeks before)")
        out.append({"kind": "rule", "rule": f"mean-shift-{v.rule}", "check": check.id, "period": first.week,
                    "message": f"{node}: {check.label} {what}.",
                    "detail": {"weeks": [mine[i].week.isoformat() for i in v.points],
                               "means": [mine[i].mean for i in v.points], "sizes": [mine[i].n for i in v.points],
                               "centre": v.centre, "sigma": v.sigma, "lcl": v.lcl, "ucl": v.ucl,
                               "baseline_weeks": v.baseline_weeks}})
    return out


def store_signals(session: Session, found: Sequence[dict[str, Any]], *, product_id: int, node_id: int,
                  now: dt.datetime) -> list[Alert]:
    """Store the signals ``find_signals`` found as new alerts (flushed); returns the new rows."""
    open_signatures = {
        (a.kind, a.rule, a.check_id)
        for a in session.scalars(select(Alert).where(Alert.product_id == product_id, Alert.node_id == node_id,
                                                     Alert.status == "open"))
    }
    new = []
    for f in found:
        period = f["period"]
        key = f"{f['kind']}:{product_id}:{node_id}:{f['check'] or '-'}:{f['rule']}:{period.isoformat()}"
        if (f["kind"], f["rule"], f["check"]) in open_signatures:
            continue
        if session.scalars(select(Alert.id).where(Alert.key == key)).first() is not None:
            continue  # already raised (and acknowledged) for this subgroup
        alert = Alert(key=key, kind=f["kind"], rule=f["rule"], product_id=product_id, node_id=node_id,
                      check_id=f["check"], message=f["message"], detail=f["detail"], status="open", created_at=now,
                      period_start=dt.datetime.combine(period, dt.time(), tzinfo=dt.UTC))
        session.add(alert)
        open_signatures.add((f["kind"], f["rule"], f["check"]))
        new.append(alert)
    if new:
        session.flush()
    return new


def evaluate_all(ctx: Any, *, now: dt.datetime) -> list[dict[str, Any]]:
    """Evaluate every node x product that has records (after a bulk import)."""
    with ctx.db.session() as session:
        pairs = session.execute(select(Product.slug, Node.name).join(Node, true())).all()
    out = []
    for product, node in pairs:
        with ctx.db.write_session() as session:
            out += [alert_view(a) for a in evaluate_alerts(session, product=product, node=node, now=now,
                                                           fresh=True)]
    return out


def list_alerts(session: Session, *, status: str | None = "open", product: str | None = None,
                node: str | None = None, limit: int = 200) -> list[Alert]:
    query = select(Alert).order_by(Alert.created_at.desc(), Alert.id.desc()).limit(limit)
    if status:
        if status not in ("open", "acknowledged"):
            raise InvalidInput("unknown alert status", [Problem("status", "open or acknowledged")])
        query = query.where(Alert.status == status)
    if product:
        query = query.join(Product, Alert.product_id == Product.id).where(Product.slug == product)
    if node:
        query = query.join(Node, Alert.node_id == Node.id).where(Node.name == node)
    return list(session.scalars(query).unique())


def acknowledge_alert(session: Session, *, alert_id: int, by: str, comment: str, now: dt.datetime) -> Alert:
    comment = (comment or "").strip()
    if not comment:
        raise InvalidInput("say what was done about it", [Problem("comment", "required (e.g. 'nozzle replaced')")])
    if reason := text_problem(comment):  # the dashboard's form reaches here without a pydantic model
        raise InvalidInput("the comment cannot be stored", [Problem("comment", reason)])
    alert = session.get(Alert, alert_id) if 1 <= alert_id <= MAX_INT else None  # no row holds a larger id
    if alert is None:
        raise NotFound(f"no alert {alert_id}")
    if alert.status != "acknowledged":
        alert.status = "acknowledged"
        alert.acknowledged_at = now
        alert.acknowledged_by = by
        alert.comment = comment[:4000]
        session.flush()
    return alert


def alert_view(a: Alert) -> dict[str, Any]:
    return {
        "id": a.id, "kind": a.kind, "rule": a.rule, "product": a.product.slug, "node": a.node.name,
        "check": a.check_id, "period_start": a.period_start.date().isoformat() if a.period_start else None,
        "message": a.message, "detail": a.detail, "status": a.status,
        "created_at": a.created_at.isoformat(), "acknowledged_at":
            a.acknowledged_at.isoformat() if a.acknowledged_at else None,
        "acknowledged_by": a.acknowledged_by, "comment": a.comment,
    }
