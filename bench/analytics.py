"""Analytics benchmark: every dashboard endpoint and page against its floor, at a million records.

Per back end (SQLite, and PostgreSQL when a URL is given or KIPIMO_TEST_POSTGRES_URL is set):

1. a fresh, migrated database gets ``--records`` synthetic records across 20
   nodes, 10 products and 2 years, bulk-loaded (``executemany`` / ``COPY``,
   ``demo.bulk``), not through the API;
2. each endpoint is called through the real app (``create_app`` + HTTP client, a
   manager token), with the default 26-week window:
   ``cold`` = first call with the app's query cache empty,
   ``warm`` = median of ``--repeat`` further calls (answered from the cache
   until a new record arrives);
3. the ``floor`` for each endpoint is the bare SQL aggregate(s) it needs, on a raw
   DB-API connection, best of ``--repeat`` runs.

Targets (issue 6): warm <= 300 ms, and the uncached work (cold) <= 3x the floor.

    .venv/bin/python bench/analytics.py                        # 1,000,000 records, SQLite (+ PostgreSQL if set)
    .venv/bin/python bench/analytics.py --records 100000 --postgres postgresql://postgres@127.0.0.1/postgres
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from sqlalchemy import create_engine, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from demo.bulk import Shift, SyntheticPlan, load_synthetic, synthetic_standards  # noqa: E402
from service.core import analytics as q  # noqa: E402
from service.storage.db import open_database, upgrade_database  # noqa: E402

NODES = [f"node-{i:02d}" for i in range(20)]
PRODUCT = "bench-part-01"
NODE = "node-03"
WARM_TARGET_MS = 300.0
FLOOR_RATIO = 3.0


def _time(fn: Callable[[], Any]) -> float:
    t = time.perf_counter()
    fn()
    return (time.perf_counter() - t) * 1000


def _floor_sql(session: Any, filters: q.Filters, now: dt.datetime) -> dict[str, list[tuple[str, dict[str, Any]]]]:
    """The bare aggregates behind each endpoint (the same SQL text and window the app runs)."""
    r_all = q.resolve(session, q.round_window(filters, now=now), now=now)
    r_p = q.resolve(session, q.round_window(q.Filters(product=PRODUCT), now=now), now=now)
    r_n = q.resolve(session, q.round_window(q.Filters(product=PRODUCT, node=NODE), now=now), now=now)
    week = q._week_expr(session, "s.captured_at")  # noqa: SLF001

    def rate(r: q.Resolved) -> tuple[str, dict[str, Any]]:
        where, params = q._where(session, r)  # noqa: SLF001
        return q.RATE_SQL.format(where=where), params

    def days(r: q.Resolved) -> tuple[str, dict[str, Any]]:
        where, params = q._where(session, r)  # noqa: SLF001
        return q.WEEK_SQL.format(week=week, where=where), params

    def pareto(r: q.Resolved) -> tuple[str, dict[str, Any]]:
        where, params = q._where(session, r)  # noqa: SLF001
        return q.PARETO_SQL.format(where=where), {**params, "failed": False}

    def decided_fail(r: q.Resolved) -> tuple[str, dict[str, Any]]:  # the Pareto's second query (issue 14 reviews)
        where, params = q._where(session, r)  # noqa: SLF001
        return q.DECIDED_FAIL_SQL.format(where=where), params

    def measure(r: q.Resolved, check: str) -> tuple[str, dict[str, Any]]:
        where, params = q._where(session, r)  # noqa: SLF001
        return q.MEASURE_SQL.format(week=week, where=where), {**params, "check": check}

    from service.core.insights import LOT_RESULTS_SQL, LOT_UNITS_SQL  # noqa: PLC0415

    lot = [(LOT_UNITS_SQL, {"lot": 1, "limit": 1000}), (LOT_RESULTS_SQL, {"lot": 1})]
    measures = [measure(r_p, "length"), measure(r_p, "hole")]
    r_n_all = q.resolve(session, q.round_window(q.Filters(node=NODE), now=now), now=now)
    where_n, params_n = q._where(session, r_n_all)  # noqa: SLF001
    node_page = [(q.PRODUCTS_OF_SQL.format(where=where_n), params_n)]  # which products the node made
    for product in q.product_ids_of(session, r_n_all):  # then per product: rate, weekly counts, two checks
        rr = q.Resolved(r_n_all.filters, product, None, r_n.node_id, r_n.since, r_n.until, r_n.nodes)
        network = q.Resolved(r_n_all.filters, product, None, None, r_n.since, r_n.until, r_n.nodes)
        # the node's weekly p-chart is judged against the product's network rate: that count is part of the floor
        node_page += [rate(network), days(rr), measure(rr, "length"), measure(rr, "hole")]
    return {
        "GET /api/v1/analytics/overview": [rate(r_all), pareto(r_all), decided_fail(r_all)],
        "GET /api/v1/analytics/rates?product": [rate(r_p)],
        "GET /api/v1/analytics/p-chart?product": [rate(r_p), days(r_p)],
        "GET /api/v1/analytics/pareto": [pareto(r_all), decided_fail(r_all), rate(r_all)],  # rate: pending reviews
        "GET /api/v1/analytics/measurements?product": measures,
        "GET /api/v1/analytics/lots/1": lot,
        "page /dashboard": [rate(r_all), pareto(r_all), decided_fail(r_all)],
        "page /dashboard/products/P": [rate(r_p), days(r_p), *measures],
        "page /dashboard/nodes/N": node_page,
    }


PATHS = {
    "GET /api/v1/analytics/overview": "/api/v1/analytics/overview",
    "GET /api/v1/analytics/rates?product": f"/api/v1/analytics/rates?product={PRODUCT}",
    "GET /api/v1/analytics/p-chart?product": f"/api/v1/analytics/p-chart?product={PRODUCT}",
    "GET /api/v1/analytics/pareto": "/api/v1/analytics/pareto",
    "GET /api/v1/analytics/measurements?product": f"/api/v1/analytics/measurements?product={PRODUCT}",
    "GET /api/v1/analytics/lots/1": "/api/v1/analytics/lots/1",
    "page /dashboard": "/dashboard",
    "page /dashboard/products/P": f"/dashboard/products/{PRODUCT}",
    "page /dashboard/nodes/N": f"/dashboard/nodes/{NODE}",
}


def run_backend(url: str, records: int, repeat: int) -> dict[str, Any]:
    from fastapi.testclient import TestClient  # noqa: PLC0415

    from service.core.auth import create_token  # noqa: PLC0415
    from service.core.context import open_context  # noqa: PLC0415
    from service.http.app import create_app  # noqa: PLC0415
    from service.settings import Settings  # noqa: PLC0415

    upgrade_database(url)
    db = open_database(url)
    now = dt.datetime.now(dt.UTC)
    t = time.perf_counter()
    counts = load_synthetic(db, synthetic_standards(10),
                            SyntheticPlan(records=records, nodes=NODES, weeks=104, end=now, shift=Shift(NODE)))
    load_s = time.perf_counter() - t
    db.dispose()
    with tempfile.TemporaryDirectory(prefix="kipimo-bench-") as tmp:
        settings = Settings(data_dir=Path(tmp), database_url=url, vision=False)
        ctx = open_context(settings)
        with ctx.db.write_session() as session:
            token, _ = create_token(session, actor="bench", role="manager", name="bench", now=now)
        app = create_app(settings, context=ctx)
        client = TestClient(app)
        headers = {"Authorization": f"Bearer {token}"}
        rows = []
        with ctx.db.session() as session:
            floors = _floor_sql(session, q.Filters(), now)
        raw = ctx.db.engine.raw_connection()
        try:
            for path in PATHS.values():  # load code paths once (imports, parsed standards): "cold" means cache-cold
                _get(client, path, headers)
            for name, path in PATHS.items():
                floor = min(sum(_time(lambda s=s, p=p: _run_raw(ctx.db.engine, raw, s, p)) for s, p in floors[name])
                            for _ in range(repeat))
                if getattr(app.state, "analytics", None) is not None:
                    app.state.analytics.clear()
                cold = _time(lambda path=path: _get(client, path, headers))
                warm = statistics.median(_time(lambda path=path: _get(client, path, headers)) for _ in range(repeat))
                ok = warm <= WARM_TARGET_MS and cold <= FLOOR_RATIO * floor
                rows.append({"endpoint": name, "cold_ms": cold, "warm_ms": warm, "floor_ms": floor,
                             "cold_over_floor": cold / floor, "warm_over_floor": warm / floor, "ok": ok})
        finally:
            raw.close()
            client.close()
            ctx.close()
    return {"backend": make_url(url).get_backend_name(), "records": counts["submissions"],
            "check_results": counts["check_results"], "load_s": load_s, "rows": rows}


def _get(client: Any, path: str, headers: dict[str, str]) -> None:
    res = client.get(path, headers=headers)
    if res.status_code != 200:
        raise RuntimeError(f"{path}: HTTP {res.status_code}: {res.text[:300]}")


def _run_raw(engine: Any, raw: Any, sql: str, params: dict[str, Any]) -> None:
    """Execute on the raw DB-API connection (no ORM, no SQLAlchemy result processing)."""
    compiled = text(sql).bindparams(**params).compile(engine, compile_kwargs={})
    args = compiled.construct_params()
    cur = raw.cursor()
    if engine.dialect.name == "sqlite":
        order = compiled.positiontup or []
        cur.execute(str(compiled), tuple(args[k] for k in order))
    else:
        cur.execute(str(compiled), args)
    cur.fetchall()
    cur.close()


def _postgres_db(base: str) -> tuple[str, Callable[[], None]]:
    url = make_url(base)
    if url.drivername == "postgresql":
        url = url.set(drivername="postgresql+psycopg")
    name = f"kipimo_bench_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return url.set(database=name).render_as_string(hide_password=False), drop


def report(result: dict[str, Any]) -> None:
    print(f"\n{result['backend']}: {result['records']:,} records ({result['check_results']:,} check results), "
          f"bulk load {result['load_s']:.1f} s")
    print(f"{'endpoint':<44}{'cold ms':>9}{'warm ms':>9}{'floor ms':>10}{'cold/floor':>12}{'warm/floor':>12}  target")
    for r in result["rows"]:
        print(f"{r['endpoint']:<44}{r['cold_ms']:>9.1f}{r['warm_ms']:>9.1f}{r['floor_ms']:>10.1f}"
              f"{r['cold_over_floor']:>12.2f}{r['warm_over_floor']:>12.2f}  {'ok' if r['ok'] else 'MISSED'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000, help="synthetic records [1,000,000]")
    parser.add_argument("--repeat", type=int, default=5, help="warm calls and floor runs per endpoint [5]")
    parser.add_argument("--postgres", default=os.environ.get("KIPIMO_TEST_POSTGRES_URL"),
                        help="PostgreSQL server URL (a temporary database is created and dropped)")
    parser.add_argument("--no-sqlite", action="store_true", help="skip SQLite")
    parser.add_argument("--json", type=Path, help="also write the figures as JSON here")
    args = parser.parse_args()
    results = []
    if not args.no_sqlite:
        with tempfile.TemporaryDirectory(prefix="kipimo-bench-sqlite-") as tmp:
            results.append(run_backend(f"sqlite:///{Path(tmp) / 'bench.sqlite3'}", args.records, args.repeat))
            report(results[-1])
    if args.postgres:
        url, drop = _postgres_db(args.postgres)
        try:
            results.append(run_backend(url, args.records, args.repeat))
            report(results[-1])
        finally:
            drop()
    else:
        print("\n(PostgreSQL skipped: pass --postgres URL or set KIPIMO_TEST_POSTGRES_URL)")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    missed = [r["endpoint"] for res in results for r in res["rows"] if not r["ok"]]
    print("\nall endpoints within target" if not missed else f"\nmissed target: {', '.join(missed)}")


if __name__ == "__main__":
    main()
