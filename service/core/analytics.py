"""The dashboard's aggregates: a handful of SQL queries, portable across SQLite and PostgreSQL.

Each query reads the covering indexes of migration 0002 and returns small rows
(per node, per node and week, per check), never records: a million submissions
come back as a few thousand numbers. Days are bucketed in SQL (a cheap
dialect-specific integer week index, so the SQL stays the same shape on both
back ends.

``Analytics`` adds a cache keyed on the filters and the data version (the
highest submission ``seq`` and the highest review decision id; both tables are
append-only, so a new record or a new decision is the only way the answer can
change). Units count by their disposition (``service.core.reviews``). The
statistics on top of these numbers live in ``service.core.insights``.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from sqlalchemy import text
from sqlalchemy.orm import Session

from qc.errors import InvalidInput, NotFound, Problem
from service.core.reviews import disposition_sql
from service.storage.db import Database

__all__ = [
    "DEFAULT_WEEKS",
    "Analytics",
    "Filters",
    "NodeCount",
    "Resolved",
    "Subgroup",
    "WeekCount",
    "failure_counts",
    "measurement_subgroups",
    "measurement_values",
    "node_label",
    "node_counts",
    "decisions_version",
    "product_ids_of",
    "resolve",
    "week_counts",
    "week_of_index",
    "week_start",
]

DEFAULT_WEEKS = 26
T = TypeVar("T")


@dataclass(frozen=True)
class Filters:
    """What the manager narrowed the view to (all optional; ``since``/``until`` on the capture time)."""

    product: str | None = None
    version: int | None = None
    node: str | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    check: str | None = None


@dataclass(frozen=True)
class Resolved:
    """Filters with names turned into ids and the date window made explicit."""

    filters: Filters
    product_id: int | None
    standard_id: int | None
    node_id: int | None
    since: dt.datetime
    until: dt.datetime
    nodes: dict[int, str]  # every node id -> name
    labels: dict[str, str] = field(default_factory=dict)  # node name -> how sentences name it

    def label(self, node: str) -> str:
        return self.labels.get(node) or node_label(node, "")


@dataclass(frozen=True)
class NodeCount:
    """Units by their disposition (``service.core.reviews``): n inspected, of which ``defects`` fail (automatic
    or decided) and ``pending`` are reviews nobody has decided yet; the rest pass."""

    node_id: int
    n: int
    defects: int  # disposition fail
    pending: int = 0  # verdict review, not decided

    @property
    def decided(self) -> int:
        """Units with a known outcome: the denominator of the decided defect rate."""
        return self.n - self.pending


@dataclass(frozen=True)
class WeekCount:
    node_id: int
    week: dt.date  # Monday
    n: int
    defects: int  # disposition fail
    pending: int = 0  # verdict review, not decided

    @property
    def decided(self) -> int:
        return self.n - self.pending


@dataclass(frozen=True)
class Subgroup:
    """One node-week of a measured check: enough to draw X-bar/R and X-bar/S and to pool sigma."""

    node_id: int
    week: dt.date
    n: int
    mean: float
    minimum: float
    maximum: float
    sumsq: float  # sum of squared deviations from the subgroup mean


def week_start(day: dt.date) -> dt.date:
    """Monday of the ISO week ``day`` is in."""
    return day - dt.timedelta(days=day.weekday())


def node_label(name: str, title: str) -> str:
    """How a sentence names a node: its title without the bracketed country ("Yaoundé BioLab"), else its name."""
    short = title.split(" (")[0].strip()
    return short or (name[:1].upper() + name[1:])


def _utc(value: dt.datetime) -> dt.datetime:
    if value.tzinfo is None:
        raise InvalidInput("dates must carry a time zone", [Problem("since/until", "use e.g. 2026-01-01T00:00:00Z")])
    return value.astimezone(dt.UTC)


_EARLIEST = dt.datetime.min.replace(tzinfo=dt.UTC)


def _bind_time(session: Session, value: dt.datetime) -> Any:
    # SQLite stores naive UTC text (see orm.UTCDateTime); bind the same shape so the index range applies.
    return value.replace(tzinfo=None) if session.get_bind().dialect.name == "sqlite" else value


MAX_SPAN = dt.timedelta(days=20 * 365)  # the widest view a chart is drawn for


def resolve(session: Session, filters: Filters, *, now: dt.datetime) -> Resolved:
    """Look up the ids behind the names; an unknown name is a 404 that lists what exists."""
    rows = session.execute(text("SELECT id, name, title FROM nodes")).all()
    nodes = {int(i): str(n) for i, n, _t in rows}
    labels = {str(n): node_label(str(n), str(t or "")) for _i, n, t in rows}
    product_id = standard_id = node_id = None
    if filters.product is not None:
        product_id = session.execute(text("SELECT id FROM products WHERE slug = :s"), {"s": filters.product}).scalar()
        if product_id is None:
            known = ", ".join(session.execute(text("SELECT slug FROM products ORDER BY slug")).scalars()) or "none"
            raise NotFound(f"no product {filters.product!r}; known: {known}")
    if filters.version is not None:
        if product_id is None:
            raise InvalidInput("a standard version needs a product", [Problem("version", "give product too")])
        standard_id = session.execute(
            text("SELECT id FROM standards WHERE product_id = :p AND version = :v"),
            {"p": product_id, "v": filters.version},
        ).scalar()
        if standard_id is None:
            raise NotFound(f"{filters.product} has no standard version {filters.version}")
    if filters.node is not None:
        node_id = next((i for i, n in nodes.items() if n == filters.node), None)
        if node_id is None:
            raise NotFound(f"no node {filters.node!r}; known: {', '.join(sorted(nodes.values())) or 'none'}")
    until = _utc(filters.until) if filters.until else now.astimezone(dt.UTC)
    if filters.since:
        since = _utc(filters.since)
    else:  # the default window, cut at the first instant a datetime can hold
        window = dt.timedelta(weeks=DEFAULT_WEEKS)
        since = until - window if until - _EARLIEST > window else _EARLIEST
    if since >= until:
        raise InvalidInput("the date range is empty", [Problem("since", "must be before until")])
    if until - since > MAX_SPAN:  # charts are weekly: 0001 to 9999 would be half a million weeks of CPU
        raise InvalidInput(f"the date range spans more than {MAX_SPAN.days // 365} years; narrow since/until",
                           [Problem("since", f"at most {MAX_SPAN.days // 365} years before until")])
    return Resolved(filters, product_id, standard_id, node_id, since, until, nodes, labels)


def _where(session: Session, r: Resolved, alias: str = "s") -> tuple[str, dict[str, Any]]:
    clauses = [f"{alias}.captured_at >= :since", f"{alias}.captured_at < :until"]
    params: dict[str, Any] = {"since": _bind_time(session, r.since), "until": _bind_time(session, r.until)}
    if r.product_id is not None:
        clauses.insert(0, f"{alias}.product_id = :product_id")
        params["product_id"] = r.product_id
    if r.standard_id is not None:
        clauses.append(f"{alias}.standard_id = :standard_id")
        params["standard_id"] = r.standard_id
    if r.node_id is not None:
        clauses.append(f"{alias}.node_id = :node_id")
        params["node_id"] = r.node_id
    return " AND ".join(clauses), params


EPOCH_MONDAY = dt.date(1969, 12, 29)  # week 0 of the index below


def _week_expr(session: Session, column: str) -> str:
    """Integer ISO-week index (weeks since Monday 1969-12-29, UTC): cheap arithmetic on both back ends."""
    if session.get_bind().dialect.name == "sqlite":
        return f"CAST((julianday({column}) - 2440587.5 + 3) / 7 AS INTEGER)"
    return f"CAST(floor((EXTRACT(EPOCH FROM {column}) / 86400.0 + 3) / 7) AS INTEGER)"


def week_of_index(index: int) -> dt.date:
    return EPOCH_MONDAY + dt.timedelta(weeks=int(index))


def _as_date(value: Any) -> dt.date:
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value))


# --- the queries ----------------------------------------------------------------------------------

# Units count by their disposition (service.core.reviews.disposition_sql): a review a person decided counts as
# decided; one nobody decided yet is pending, neither good nor defective. The decision lookup runs for review
# rows only, one probe of the decisions' (submission_seq, revision) index each.
_DISPOSITION = disposition_sql("s")
RATE_SQL = (
    "SELECT s.node_id, COUNT(*) AS n, "
    f"SUM(CASE WHEN {_DISPOSITION} = 'fail' THEN 1 ELSE 0 END) AS defects, "
    f"SUM(CASE WHEN {_DISPOSITION} = 'review' THEN 1 ELSE 0 END) AS pending "
    "FROM submissions s WHERE {where} GROUP BY s.node_id"
)


def node_counts(session: Session, r: Resolved) -> list[NodeCount]:
    """Inspected units, defectives (disposition fail) and pending reviews per node in the window."""
    where, params = _where(session, r)
    rows = session.execute(text(RATE_SQL.format(where=where)), params)
    return [NodeCount(int(a), int(n), int(d or 0), int(v or 0)) for a, n, d, v in rows]


WEEK_SQL = (
    "SELECT s.node_id, {week} AS week, COUNT(*) AS n, "
    f"SUM(CASE WHEN {_DISPOSITION} = 'fail' THEN 1 ELSE 0 END) AS defects, "
    f"SUM(CASE WHEN {_DISPOSITION} = 'review' THEN 1 ELSE 0 END) AS pending "
    "FROM submissions s WHERE {where} GROUP BY s.node_id, {week}"
)


def week_counts(session: Session, r: Resolved) -> list[WeekCount]:
    """Per node and ISO week (UTC): inspected, defective (disposition fail) and pending, for the p-charts."""
    where, params = _where(session, r)
    sql = WEEK_SQL.format(week=_week_expr(session, "s.captured_at"), where=where)
    rows = session.execute(text(sql), params)
    return [WeekCount(int(a), week_of_index(w), int(n), int(d or 0), int(v or 0)) for a, w, n, d, v in rows]


PARETO_SQL = (
    "SELECT c.check_id, COUNT(*) AS n FROM check_results c "
    "JOIN submissions s ON s.seq = c.submission_seq "
    "WHERE c.passed = :failed AND {where} GROUP BY c.check_id"
)
# The inconclusive checks of reviews whose latest decision is fail: what the checks could not settle, a person
# did, so they count as that check's failures. Driven from the (small) decisions table, so the failed-check
# query above keeps reading its (passed, submission_seq, check_id) index alone.
DECIDED_FAIL_SQL = (
    "SELECT c.check_id, COUNT(*) AS n FROM review_decisions d "
    "JOIN submissions s ON s.seq = d.submission_seq "
    "JOIN check_results c ON c.submission_seq = d.submission_seq "
    "WHERE d.decision = 'fail' AND c.status = 'inconclusive' AND d.revision = "
    "(SELECT MAX(d2.revision) FROM review_decisions d2 WHERE d2.submission_seq = d.submission_seq) "
    "AND {where} GROUP BY c.check_id"
)


def failure_counts(session: Session, r: Resolved) -> list[tuple[str, int]]:
    """How often each check failed, most frequent first (the Pareto chart); a review decided fail counts its
    inconclusive checks (a review decided pass, or still pending, counts none)."""
    where, params = _where(session, r)
    counts: dict[str, int] = {}
    for sql, extra in ((PARETO_SQL, {"failed": False}), (DECIDED_FAIL_SQL, {})):
        for check, n in session.execute(text(sql.format(where=where)), {**params, **extra}):
            counts[str(check)] = counts.get(str(check), 0) + int(n)
    return sorted(counts.items(), key=lambda t: (-t[1], t[0]))


MEASURE_SQL = (
    "SELECT s.node_id, {week} AS week, COUNT(c.value), SUM(c.value), SUM(c.value * c.value), "
    "MIN(c.value), MAX(c.value) FROM check_results c "
    "JOIN submissions s ON s.seq = c.submission_seq "
    "WHERE c.check_id = :check AND c.value IS NOT NULL AND {where} GROUP BY s.node_id, {week}"
)


def measurement_subgroups(session: Session, r: Resolved, check: str) -> list[Subgroup]:
    """Node-week subgroups of one measured check (n, mean, min, max, sum of squares), oldest first."""
    where, params = _where(session, r)
    sql = MEASURE_SQL.format(week=_week_expr(session, "s.captured_at"), where=where)
    groups = []
    for node_id, week, n, total, total_sq, lo, hi in session.execute(text(sql), {**params, "check": check}):
        n, mean = int(n), float(total) / int(n)
        # sum of squared deviations; clipped at 0 against rounding in the one-pass formula
        groups.append(Subgroup(int(node_id), week_of_index(week), n, mean, float(lo), float(hi),
                               max(0.0, float(total_sq) - n * mean * mean)))
    return sorted(groups, key=lambda g: (g.week, g.node_id))


VALUES_SQL = (
    "SELECT s.node_id, s.captured_at, c.value, s.lot_id FROM check_results c "
    "JOIN submissions s ON s.seq = c.submission_seq "
    "WHERE c.check_id = :check AND c.value IS NOT NULL AND {where} "
    "ORDER BY s.captured_at DESC LIMIT :limit"
)


def measurement_values(session: Session, r: Resolved, check: str, *, limit: int = 200) -> list[tuple[int, float]]:
    """The latest ``limit`` individual values of a check (oldest first), for I-MR charts and capability."""
    where, params = _where(session, r)
    rows = session.execute(text(VALUES_SQL.format(where=where)), {**params, "check": check, "limit": limit}).all()
    return [(int(node_id), float(value)) for node_id, _at, value, _lot in reversed(rows)]


def product_ids_of(session: Session, r: Resolved) -> list[int]:
    """Products with records in the window (e.g. what one node made)."""
    where, params = _where(session, r)
    # one index probe per product (product_id, node_id, captured_at) instead of a DISTINCT over the node's rows
    sql = PRODUCTS_OF_SQL.format(where=where)
    return sorted(int(i) for i in session.execute(text(sql), params).scalars())


PRODUCTS_OF_SQL = ("SELECT p.id FROM products p WHERE EXISTS "
                   "(SELECT 1 FROM submissions s WHERE s.product_id = p.id AND {where})")


def data_version(session: Session) -> int:
    """Highest submission ``seq``: records are append-only, so this changes exactly when the records do."""
    return int(session.execute(text("SELECT MAX(seq) FROM submissions")).scalar() or 0)


def decisions_version(session: Session) -> int:
    """Highest review decision id: a decision changes a record's disposition without a new record."""
    return int(session.execute(text("SELECT MAX(id) FROM review_decisions")).scalar() or 0)


# --- cache ----------------------------------------------------------------------------------------


class Analytics:
    """Queries with a small in-process cache, shared by the API, the dashboard and ``qc report``."""

    def __init__(self, db: Database, *, size: int = 256) -> None:
        self.db = db
        self.size = size
        self._cache: OrderedDict[Hashable, Any] = OrderedDict()
        self._lock = threading.Lock()

    def clear(self) -> None:
        with self._lock:
            self._cache.clear()

    def cached(self, session: Session, key: Hashable, compute: Callable[[], T]) -> T:
        """``compute()`` once per ``key`` and data version (a fresh record makes every answer stale)."""
        full = (key, data_version(session), decisions_version(session))
        with self._lock:
            if full in self._cache:
                self._cache.move_to_end(full)
                return self._cache[full]
        value = compute()
        with self._lock:
            self._cache[full] = value
            while len(self._cache) > self.size:
                self._cache.popitem(last=False)
        return value


def round_window(filters: Filters, *, now: dt.datetime) -> Filters:
    """Default ``until`` to the end of today (UTC) so cache keys stay stable through the day."""
    if filters.until is not None:
        return filters
    today = now.astimezone(dt.UTC).date() + dt.timedelta(days=1)
    return replace(filters, until=dt.datetime.combine(today, dt.time(), tzinfo=dt.UTC))
