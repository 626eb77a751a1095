"""Synthetic inspection records in bulk, for the analytics benchmark, dashboard tests and screenshots.

Rows go straight into the tables (``executemany`` on SQLite, ``COPY`` on
PostgreSQL), not through the API: a million records in a minute or two. They
follow the published standards: every measured check (dimensions, number items
with limits) gets a value drawn around its nominal, and a defective unit fails
one of the standard's attribute items (picked with Pareto-like weights) or a
dimension. Only failing attribute results are stored (a real record also stores
the passing ones; the dashboard never reads them), which keeps a million
records at about three million result rows.

``Shift`` injects the story a quality manager should catch: from some week on,
one node's defect rate rises and its measurements move off centre.
"""

from __future__ import annotations

import datetime as dt
import io
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import Engine, select, text

from qc.standards import ItemType, Standard, parse_standard
from service.core.insights import MeasuredCheck, measured_checks
from service.storage import repository as repo
from service.storage.db import Database
from service.storage.orm import Node

__all__ = ["Shift", "SyntheticPlan", "load_synthetic", "synthetic_standards"]

_SQLITE_TIME = "%Y-%m-%d %H:%M:%S.%f"


@dataclass(frozen=True)
class Shift:
    """From ``weeks`` before the end, ``node`` makes ``defect_factor`` x more defectives and its measured
    values sit ``sigmas`` standard deviations off the nominal."""

    node: str
    weeks: int = 4
    defect_factor: float = 4.0
    sigmas: float = 2.0


@dataclass(frozen=True)
class SyntheticPlan:
    records: int
    nodes: Sequence[str]
    end: dt.datetime  # the last record's time; passed in, never read from the wall clock
    weeks: int = 104
    defect_rate: float = 0.03
    node_spread: float = 0.25  # log-sd of the nodes' own defect rates around ``defect_rate`` (0: all alike)
    seed: int = 7
    shift: Shift | None = None


@dataclass(frozen=True)
class _Product:
    product_id: int
    standard_id: int
    slug: str
    measured: list[MeasuredCheck]
    attributes: list[tuple[str, str]]  # (item id, severity)


def _products(db: Database, standards: Sequence[Standard], now: dt.datetime) -> list[_Product]:
    out = []
    with db.write_session() as session:
        for std in standards:
            row, _ = repo.publish_standard(session, standard=std, by="synthetic", now=now)
            attributes = [(i.id, str(i.severity)) for i in std.items
                          if i.type in (ItemType.BOOLEAN, ItemType.CHOICE) and i.pass_if is not None]
            out.append(_Product(row.product_id, row.id, std.product, measured_checks(std),
                                attributes or [("visual", "major")]))
    return out


def _nodes(db: Database, names: Sequence[str], now: dt.datetime) -> list[int]:
    ids = []
    with db.write_session() as session:
        for name in names:
            node = repo.find_node(session, name=name) or repo.create_node(session, name=name, now=now)
            ids.append(node.id)
    return ids


def load_synthetic(db: Database, standards: Sequence[Standard], plan: SyntheticPlan) -> dict[str, int]:
    """Publish ``standards`` (if needed), create the nodes, and bulk-insert ``plan.records`` records."""
    rng = np.random.default_rng(plan.seed)
    now = plan.end.astimezone(dt.UTC)
    products = _products(db, standards, now)
    node_ids = np.array(_nodes(db, plan.nodes, now))
    n = plan.records
    start = now - dt.timedelta(weeks=plan.weeks)
    span = (now - start).total_seconds()
    offsets = np.sort(rng.uniform(0, span, n))
    volume = rng.lognormal(0, 0.5, len(node_ids))
    node_ix = rng.choice(len(node_ids), size=n, p=volume / volume.sum())
    prod_ix = rng.integers(0, len(products), n)
    node_rate = plan.defect_rate * rng.lognormal(0, plan.node_spread, len(node_ids))
    p_defect = node_rate[node_ix]
    shifted = np.zeros(n, bool)
    if plan.shift is not None:
        shift_ix = list(plan.nodes).index(plan.shift.node)
        shifted = (node_ix == shift_ix) & (offsets >= span - plan.shift.weeks * 7 * 86400)
        p_defect = np.where(shifted, np.minimum(0.9, p_defect * plan.shift.defect_factor), p_defect)
    defective = rng.random(n) < p_defect
    week = (offsets // (7 * 86400)).astype(np.int64)

    with db.session() as session:
        seq0 = int(session.execute(text("SELECT COALESCE(MAX(seq), 0) FROM submissions")).scalar() or 0)
        lot0 = int(session.execute(text("SELECT COALESCE(MAX(id), 0) FROM lots")).scalar() or 0)
        res0 = int(session.execute(text("SELECT COALESCE(MAX(id), 0) FROM check_results")).scalar() or 0)
        names = {int(i): str(n) for i, n in session.execute(select(Node.id, Node.name))}

    lot_keys: dict[tuple[int, int, int], int] = {}
    lots: list[tuple[Any, ...]] = []
    subs: list[tuple[Any, ...]] = []
    results: list[tuple[Any, ...]] = []
    times = [start + dt.timedelta(seconds=float(s)) for s in offsets]
    verdicts = np.where(defective, "fail", "pass").astype(object)
    res_id: int = res0
    for p_i, prod in enumerate(products):
        rows = np.nonzero(prod_ix == p_i)[0]
        if not len(rows):
            continue
        # measured values: nominal +- tolerance/8 (Cpk ~ 1.33), shifted units off centre
        values = {}
        for c in prod.measured:
            centre = c.nominal if c.nominal is not None else (
                (c.lsl + c.usl) / 2 if c.lsl is not None and c.usl is not None else (c.lsl or c.usl or 1.0))
            width = (c.usl - c.lsl) if c.lsl is not None and c.usl is not None else abs(centre) * 0.2 or 1.0
            sigma = width / 8
            v = rng.normal(centre, sigma, len(rows)) + np.where(shifted[rows], (plan.shift.sigmas if plan.shift
                                                                                else 0) * sigma, 0.0)
            values[c.id] = (np.round(v, 3), c)
        weights = 1.0 / np.arange(1, len(prod.attributes) + 1)
        failing_item = rng.choice(len(prod.attributes), size=len(rows), p=weights / weights.sum())
        for k, i in enumerate(rows):
            seq = seq0 + 1 + int(i)
            position = 0
            failed = bool(defective[i])
            for cid, (vals, c) in values.items():
                value = float(vals[k])
                ok = (c.lsl is None or value >= c.lsl) and (c.usl is None or value <= c.usl)
                failed = failed or not ok
                res_id += 1
                results.append((res_id, seq, position, cid, "dimension", "top", "pass" if ok else "fail",
                                "major", value, ok, '{"synthetic":true}'))
                position += 1
            if defective[i]:
                item, severity = prod.attributes[int(failing_item[k])]
                res_id += 1
                results.append((res_id, seq, position, item, "item", None, "fail", severity, None, False,
                                '{"synthetic":true}'))
            verdicts[i] = "fail" if failed else "pass"
    for j in range(n):
        key = (int(node_ids[node_ix[j]]), products[prod_ix[j]].product_id, int(week[j]))
        lot_id = lot_keys.get(key)
        if lot_id is None:
            lot_id = lot0 + len(lot_keys) + 1
            lot_keys[key] = lot_id
            code = f"{names[key[0]][:3].upper()}-{products[prod_ix[j]].slug[:4].upper()}-W{key[2] + 1:03d}"
            lots.append((lot_id, key[0], key[1], code, times[j]))
        subs.append((seq0 + 1 + j, str(uuid.UUID(bytes=rng.bytes(16), version=4)), key[0], key[1],
                     products[prod_ix[j]].standard_id, lot_id, f"U{j + 1}", "synthetic", times[j], times[j],
                     verdicts[j], 0, "{}", '{"synthetic":true}', "0" * 64, "0" * 64))
    _insert(db.engine, lots, subs, results)
    return {"submissions": len(subs), "check_results": len(results), "lots": len(lots)}


Rows = list[tuple[Any, ...]]
_LOT_COLS = ("id", "node_id", "product_id", "code", "created_at")
_SUB_COLS = ("seq", "id", "node_id", "product_id", "standard_id", "lot_id", "unit", "technician", "captured_at",
             "received_at", "verdict", "minor_defects", "answers", "document", "request_sha256", "record_sha256")
_RES_COLS = ("id", "submission_seq", "position", "check_id", "kind", "slot", "status", "severity", "value",
             "passed", "detail")


def _insert(engine: Engine, lots: Rows, subs: Rows, results: Rows) -> None:
    if engine.dialect.name == "sqlite":
        _insert_sqlite(engine, lots, subs, results)
    else:
        _insert_postgres(engine, lots, subs, results)


def _insert_sqlite(engine: Engine, lots: Rows, subs: Rows, results: Rows) -> None:
    def fmt(rows: Rows, time_cols: Sequence[int]) -> Rows:
        return [tuple(v.replace(tzinfo=None).strftime(_SQLITE_TIME) if j in time_cols else v
                      for j, v in enumerate(r)) for r in rows]

    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        cur.execute("PRAGMA synchronous=OFF")  # a bulk load: a crash means run it again
        cur.execute("BEGIN")
        for table, cols, rows, times in (("lots", _LOT_COLS, lots, (4,)), ("submissions", _SUB_COLS, subs, (8, 9)),
                                         ("check_results", _RES_COLS, results, ())):
            sql = f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"
            for k in range(0, len(rows), 50_000):
                cur.executemany(sql, fmt(rows[k:k + 50_000], times))
        cur.execute("COMMIT")
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute("ANALYZE")
    finally:
        raw.close()


def _copy_text(value: object) -> str:
    if value is None:
        return "\\N"
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, bool):
        return "t" if value else "f"
    return str(value).replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")


def _insert_postgres(engine: Engine, lots: Rows, subs: Rows, results: Rows) -> None:
    raw: Any = engine.raw_connection()
    try:
        with raw.cursor() as cur:
            for table, cols, rows in (("lots", _LOT_COLS, lots), ("submissions", _SUB_COLS, subs),
                                      ("check_results", _RES_COLS, results)):
                with cur.copy(f"COPY {table} ({', '.join(cols)}) FROM STDIN") as copy:
                    buf = io.StringIO()
                    for k, r in enumerate(rows, 1):
                        buf.write("\t".join(_copy_text(v) for v in r))
                        buf.write("\n")
                        if k % 50_000 == 0:
                            copy.write(buf.getvalue())
                            buf = io.StringIO()
                    copy.write(buf.getvalue())
            for table, col in (("lots", "id"), ("submissions", "seq"), ("check_results", "id")):
                cur.execute(f"SELECT setval(pg_get_serial_sequence('{table}', '{col}'), "
                            f"(SELECT COALESCE(MAX({col}), 1) FROM {table}))")
        raw.commit()
        driver = raw.dbapi_connection  # VACUUM cannot run in a transaction; it also sets the visibility map
        driver.autocommit = True
        try:
            with driver.cursor() as cur:
                for table in ("lots", "submissions", "check_results"):
                    cur.execute(f"VACUUM ANALYZE {table}")
        finally:
            driver.autocommit = False
    finally:
        raw.close()


def synthetic_standards(count: int) -> list[Standard]:
    """``count`` made-up products, each with two dimensions on a card photo and four attribute items."""
    out = []
    for k in range(1, count + 1):
        doc = {
            "product": f"bench-part-{k:02d}", "name": f"Benchmark part {k}", "version": 1, "status": "released",
            "items": [
                {"id": "material_ok", "prompt": "Material as specified", "type": "boolean", "pass_if": True,
                 "severity": "critical"},
                {"id": "surface_ok", "prompt": "No surface defects", "type": "boolean", "pass_if": True},
                {"id": "colour_ok", "prompt": "Colour matches", "type": "boolean", "pass_if": True,
                 "severity": "minor"},
                {"id": "label_ok", "prompt": "Label legible", "type": "boolean", "pass_if": True},
            ],
            "photos": [{"id": "top", "prompt": "Part on the card", "checks": [
                {"id": "length", "kind": "dimension", "feature": "length", "nominal": 40.0 + k,
                 "tolerance": [-0.3, 0.3]},
                {"id": "hole", "kind": "dimension", "feature": "hole_diameter", "nominal": 6.2,
                 "tolerance": [-0.15, 0.15]},
            ]}],
        }
        out.append(parse_standard(doc, source="synthetic"))
    return out
