"""Concurrent uploads through the one code path (``record_submission``), on both databases."""

from __future__ import annotations

import json
import threading

from service.core.submissions import record_submission
from tests.clock import TEST_NOW
from tests.integration.support import count_rows, jpeg, record

THREADS = 6


def _run_all(fns):
    results: list = [None] * len(fns)
    errors: list = []
    barrier = threading.Barrier(len(fns))

    def run(i, fn):
        barrier.wait()
        try:
            results[i] = fn()
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i, fn)) for i, fn in enumerate(fns)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    return results


def test_same_id_uploaded_concurrently_is_stored_once(ctx, seed):
    rec, photo = json.dumps(record()), jpeg(seed=31)
    now = TEST_NOW
    outcomes = _run_all([
        lambda: record_submission(ctx, record=rec, photos={"top": photo}, now=now, node="node-a")
        for _ in range(THREADS)
    ])
    assert sum(o.created for o in outcomes) == 1
    assert all(o.body == outcomes[0].body for o in outcomes)
    assert count_rows(ctx)["submissions"] == 1


def test_new_lot_created_by_concurrent_uploads_is_shared(ctx, seed):
    now = TEST_NOW
    recs = [json.dumps(record(lot="L-new")) for _ in range(THREADS)]
    outcomes = _run_all([
        (lambda r=r, i=i: record_submission(ctx, record=r, photos={"top": jpeg(seed=100 + i)}, now=now,
                                            node="node-a"))
        for i, r in enumerate(recs)
    ])
    assert all(o.created for o in outcomes)
    assert {o.body["lot"] for o in outcomes} == {"L-new"}
    from sqlalchemy import func, select

    from service.storage.orm import Lot

    with ctx.db.session() as session:
        assert session.scalar(select(func.count()).select_from(Lot)) == 1


def test_losing_uploads_of_one_id_with_other_content_leave_no_orphan_photo(ctx, seed):
    # Each round: THREADS uploads of the same id, each with its own photo; one wins, the others are refused
    # (409, different content). Whatever the interleaving, the store must hold exactly what rows reference.
    from service.storage import repository as repo  # noqa: PLC0415
    from tests.integration.support import stored_blobs  # noqa: PLC0415

    for rnd in range(4):
        rec = json.dumps(record())
        photos = [{"top": jpeg(seed=1000 + 10 * rnd + i)} for i in range(THREADS)]
        calls = [
            (lambda rec=rec, p=p: _outcome(lambda: record_submission(ctx, record=rec, photos=p, now=TEST_NOW,
                                                                     node="node-a")))
            for p in photos
        ]
        outcomes = _run_all(calls)
        assert sorted(o for o in outcomes) == ["conflict"] * (THREADS - 1) + ["created"]
    with ctx.db.session() as session:
        assert stored_blobs(ctx) == repo.referenced_blobs(session)
    assert count_rows(ctx)["submissions"] == 4


def _outcome(call):
    from qc.errors import Conflict  # noqa: PLC0415

    try:
        return "created" if call().created else "replayed"
    except Conflict:
        return "conflict"
