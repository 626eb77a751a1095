"""The demo's generated records are valid for their standards and tell the intended story."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from pathlib import Path

import numpy as np

from demo.network import DEMO_NODES, plan_demo
from qc.evaluate import validate_submission
from service.core.checklists import load_shipped_standards

CHECKLISTS = Path(__file__).resolve().parents[3] / "checklists"
NOW = dt.datetime(2026, 11, 22, 12, tzinfo=dt.UTC)


def fake_photo(standard, slot, node, week, rng: np.random.Generator) -> bytes:
    return f"{standard.product}/{slot.id}".encode()


def test_every_demo_record_is_valid_and_ids_are_unique():
    standards = load_shipped_standards(CHECKLISTS)
    subs = list(plan_demo(standards, now=NOW, make_photo=fake_photo))
    assert 150 <= len(subs) <= 600
    by_product = {s.product: s for s in standards}
    for sub in subs:
        validate_submission(by_product[sub.record["product"]], sub.record["answers"], set(sub.photos))
        captured = dt.datetime.fromisoformat(sub.record["captured_at"])
        assert NOW - dt.timedelta(weeks=12) <= captured <= NOW
    assert len({s.record["id"] for s in subs}) == len(subs)
    assert set(Counter(s.node for s in subs)) == {n.name for n in DEMO_NODES}


def test_same_seed_gives_the_same_demo():
    standards = load_shipped_standards(CHECKLISTS)
    a = [s.record for s in plan_demo(standards, now=NOW, make_photo=fake_photo)]
    b = [s.record for s in plan_demo(standards, now=NOW, make_photo=fake_photo)]
    assert a == b


def test_kathmandu_visors_are_hazier_than_kisumus():
    standards = [s for s in load_shipped_standards(CHECKLISTS) if s.product == "face-shield-visor"]
    subs = list(plan_demo(standards, now=NOW, make_photo=fake_photo, weeks=40))

    def bad_share(node: str) -> float:
        answers = [s.record["answers"]["optical_clarity"] for s in subs if s.node == node]
        return sum(a in ("cloudy", "scratched") for a in answers) / len(answers)

    assert bad_share("kathmandu") > bad_share("kisumu") + 0.05
