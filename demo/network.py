"""Realistic demo records: three nodes, twelve weeks, node-specific habits.

Everything is drawn from a seeded generator so the demo looks the same each
time. The story the data tells (what a quality manager should spot):

- Kisumu is steady and good.
- Yaoundé's bracket holes drift small from week 8 (a worn nozzle), so its
  hole diameters and defect rate rise late in the period.
- Kathmandu's visors are more often hazy/scratched (a storage problem).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from qc.standards import Item, ItemType, PhotoSlot, Standard

__all__ = ["DemoNode", "DEMO_NODES", "DemoSubmission", "PhotoMaker", "plan_demo"]


@dataclass(frozen=True)
class DemoNode:
    name: str
    title: str
    technicians: tuple[str, ...]
    fail_rate: float  # chance that a pass/fail item is answered badly
    weekly_volume: int


DEMO_NODES = (
    DemoNode("kisumu", "Kisumu Makerspace (Kenya)", ("Achieng Otieno", "Brian Ouma"), 0.01, 9),
    DemoNode("yaounde", "Yaoundé BioLab (Cameroon)", ("Mireille Ngo", "Paul Atangana"), 0.02, 7),
    DemoNode("kathmandu", "Kathmandu Fab Hub (Nepal)", ("Sita Gurung", "Ram Thapa"), 0.05, 6),
)


@dataclass(frozen=True)
class DemoSubmission:
    node: str
    record: dict[str, Any]  # the JSON `record` part of a submission
    photos: dict[str, bytes]  # slot id -> encoded image


# (product, slot, node, week, rng) -> encoded photo bytes
PhotoMaker = Callable[[Standard, PhotoSlot, DemoNode, int, np.random.Generator], bytes]


def plan_demo(
    standards: list[Standard],
    *,
    now: dt.datetime,
    make_photo: PhotoMaker,
    weeks: int = 12,
    seed: int = 2026,
    nodes: tuple[DemoNode, ...] = DEMO_NODES,
) -> Iterator[DemoSubmission]:
    """Yield submissions oldest first, spread over ``weeks`` weeks before ``now``.

    The records do not depend on ``make_photo``: a cheap stand-in gives the same plan (and its length)
    as the real renderer, which is how ``python -m demo`` sizes its progress bar before rendering.
    """
    rng = np.random.default_rng(seed)
    start = now - dt.timedelta(weeks=weeks)
    made = 0  # each submission's photos draw from their own stream, so the plan never depends on make_photo
    for week in range(weeks):
        for node in nodes:
            for standard in standards:
                count = max(1, int(rng.poisson(node.weekly_volume / max(1, len(standards)) * 1.5)))
                lot = f"{node.name[:3].upper()}-{standard.product[:4].upper()}-{week + 1:02d}"
                for unit in range(count):
                    captured = start + dt.timedelta(weeks=week, hours=float(rng.uniform(8, 24 * 6)))
                    answers = {item.id: _answer(item, node, week, rng) for item in standard.items}
                    answers = {k: v for k, v in answers.items() if v is not None}
                    slots = [slot for slot in standard.photos if slot.required or rng.random() < 0.5]
                    photo_rng = np.random.default_rng([seed, made])
                    made += 1
                    photos = {slot.id: make_photo(standard, slot, node, week, photo_rng) for slot in slots}
                    record = {
                        "id": str(uuid.UUID(bytes=rng.bytes(16), version=4)),
                        "product": standard.product,
                        "standard_version": standard.version,
                        "lot": lot,
                        "unit": f"{lot}-{unit + 1:03d}",
                        "technician": node.technicians[unit % len(node.technicians)],
                        "captured_at": captured.astimezone(dt.UTC).isoformat(timespec="seconds"),
                        "answers": answers,
                    }
                    yield DemoSubmission(node=node.name, record=record, photos=photos)


def _answer(item: Item, node: DemoNode, week: int, rng: np.random.Generator) -> Any:
    bad = rng.random() < node.fail_rate
    if item.type is ItemType.BOOLEAN:
        good = item.pass_if if isinstance(item.pass_if, bool) else True
        return (not good) if bad else good
    if item.type is ItemType.CHOICE:
        passing = list(item.pass_if) if isinstance(item.pass_if, tuple) else list(item.options)
        failing = [o for o in item.options if o not in passing] or passing
        if node.name == "kathmandu" and item.id == "optical_clarity":
            bad = rng.random() < 0.12
        pool = failing if bad else passing
        return pool[int(rng.integers(len(pool)))]
    if item.type is ItemType.NUMBER:
        return _number(item, bad, rng)
    if item.type is ItemType.DATE:
        return (dt.date(2026, 1, 1) + dt.timedelta(days=7 * week + int(rng.integers(5)))).isoformat()
    if not item.required and rng.random() < 0.7:
        return None
    return f"{item.id.upper()}-{int(rng.integers(1000, 9999))}"


def _number(item: Item, bad: bool, rng: np.random.Generator) -> float:
    lo, hi = item.min, item.max
    if lo is not None and hi is not None:
        centre, spread = (lo + hi) / 2, (hi - lo) / 2
    elif lo is not None:
        centre, spread = lo * 1.25 if lo > 0 else lo + 10, abs(lo) * 0.1 or 1.0
    elif hi is not None:
        centre, spread = hi * 0.8, abs(hi) * 0.1 or 1.0
    else:
        return round(float(rng.uniform(1, 100)), 1)
    sigma = spread / 3
    value = rng.normal(centre, sigma)
    if bad:  # just outside one of the limits, as real out-of-spec readings are
        if hi is not None and (lo is None or rng.random() < 0.5):
            value = hi + spread * 0.2
        else:
            value = (lo if lo is not None else centre) - spread * 0.2
    digits = 2 if spread < 1 else 1 if spread < 50 else 0
    return round(float(value), digits)
