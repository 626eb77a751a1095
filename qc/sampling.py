"""Lot sampling by attributes: ISO 2859-1:1999 single sampling (= ANSI/ASQ Z1.4).

Three pure steps, each usable on its own:

1. ``single_sampling_plan(lot_size, aql, level, inspection)`` answers "how many
   units of this lot do I inspect and how many nonconforming may I accept?":
   Table 1 gives the code letter, the master table for the inspection severity
   gives Ac/Re or an arrow, and arrows are followed to the first plan below/above
   (the sample size is the one of the row the arrow leads to). When that sample
   is the whole lot or more, every unit is inspected (100 % inspection).
2. ``lot_disposition`` judges a lot in progress with one AQL per severity class
   (critical / major / minor): units to inspect, units done, defects per class,
   and accept / reject / in progress.
3. ``next_switching_state`` is the switching-rule state machine (clause 9.3)
   over successive lot outcomes; keep one state per product, node and class.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from enum import StrEnum
from typing import Any

from qc.errors import InvalidInput, Problem
from qc.sampling_tables import (
    AQL_COLUMNS,
    CODE_LETTERS,
    LEVELS,
    LOT_SIZE_RANGES,
    NORMAL,
    REDUCED,
    REDUCED_SAMPLE_SIZE,
    SAMPLE_SIZE,
    TIGHTENED,
)

__all__ = [
    "Inspection",
    "Decision",
    "SamplingPlan",
    "ClassStatus",
    "LotDisposition",
    "LotOutcome",
    "lot_outcome",
    "SwitchingState",
    "code_letter",
    "normalize_aql",
    "master_table_cell",
    "single_sampling_plan",
    "lot_disposition",
    "next_switching_state",
    "replay_switching",
    "resume_after_discontinuation",
]


class Inspection(StrEnum):
    NORMAL = "normal"
    TIGHTENED = "tightened"
    REDUCED = "reduced"


class Decision(StrEnum):
    ACCEPT = "accept"
    REJECT = "reject"
    IN_PROGRESS = "in_progress"


_TABLES = {Inspection.NORMAL: NORMAL, Inspection.TIGHTENED: TIGHTENED, Inspection.REDUCED: REDUCED}
_ROWS = {
    Inspection.NORMAL: CODE_LETTERS,
    Inspection.TIGHTENED: CODE_LETTERS + "S",
    Inspection.REDUCED: CODE_LETTERS,
}


def _sample_size(inspection: Inspection, letter: str) -> int:
    return (REDUCED_SAMPLE_SIZE if inspection is Inspection.REDUCED else SAMPLE_SIZE)[letter]


@dataclass(frozen=True)
class SamplingPlan:
    """One single-sampling plan, resolved through the arrows, for one lot."""

    lot_size: int
    level: str
    aql: str
    inspection: Inspection
    code_letter: str  # from Table 1
    plan_letter: str  # the row the plan was read from (differs when an arrow was followed)
    table_sample_size: int  # n printed in the master table
    sample_size: int  # units to inspect: n, or the whole lot when n >= lot size
    accept: int
    reject: int
    hundred_percent: bool

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["inspection"] = str(self.inspection)
        return d

    def describe(self) -> str:
        how = (
            f"inspect all {self.sample_size} units (100 % inspection; the table sample "
            f"n={self.table_sample_size} is not smaller than the lot)"
            if self.hundred_percent
            else f"inspect {self.sample_size} of {self.lot_size} units"
        )
        return (
            f"code letter {self.code_letter}"
            + (f" -> plan of row {self.plan_letter}" if self.plan_letter != self.code_letter else "")
            + f": {how}; accept with at most {self.accept} nonconforming (Ac), "
            f"reject with {self.reject} or more (Re) ({self.inspection} inspection, AQL {self.aql})"
        )


def code_letter(lot_size: int, level: str = "II") -> str:
    """Table 1: the sample size code letter for a lot size and inspection level."""
    lvl = _normalize_level(level)
    if isinstance(lot_size, bool) or not isinstance(lot_size, int) or lot_size < 2:
        raise InvalidInput(
            "lot size must be a whole number of at least 2",
            [Problem("lot_size", f"got {lot_size!r}")],
        )
    col = LEVELS.index(lvl)
    for low, high, letters in LOT_SIZE_RANGES:
        if low <= lot_size and (high is None or lot_size <= high):
            return letters[col]
    raise AssertionError("Table 1 covers every lot size >= 2")  # pragma: no cover


def _normalize_level(level: str) -> str:
    lvl = str(level).strip().upper().replace("S", "S-").replace("S--", "S-")
    if lvl in ("1", "2", "3"):
        lvl = "I" * int(lvl)
    if lvl not in LEVELS:
        raise InvalidInput(
            f"unknown inspection level {level!r}",
            [Problem("level", f"use one of {', '.join(LEVELS)}")],
        )
    return lvl


def normalize_aql(aql: float | str) -> str:
    """The master-table column for an AQL (``1``, ``1.0`` and ``"1.0"`` are one column)."""
    try:
        value = float(aql)
    except (TypeError, ValueError):
        value = float("nan")
    for col in AQL_COLUMNS:
        if abs(float(col) - value) <= 1e-9 * max(1.0, value):
            return col
    raise InvalidInput(
        f"AQL {aql!r} is not a column of the ISO 2859-1 tables",
        [Problem("aql", "use one of " + ", ".join(AQL_COLUMNS))],
    )


def master_table_cell(inspection: Inspection | str, letter: str, aql: float | str) -> str:
    """The raw cell of a master table: ``"Ac/Re"``, ``"v"``, ``"^"`` or ``"."`` (empty)."""
    insp = Inspection(inspection)
    row = _TABLES[insp].get(letter)
    if row is None:
        raise InvalidInput(f"no row {letter!r} in the {insp} table", [Problem("letter", letter)])
    return row.split()[AQL_COLUMNS.index(normalize_aql(aql))]


def _resolve(insp: Inspection, letter: str, col: str) -> tuple[str, int, int]:
    """Follow arrows from (letter, column) to a plan; returns (row, Ac, Re).

    The printed tables carry the arrow pattern of their diagonals right to the
    edge: Table 2-A has an up arrow in row A under AQL 10 and a down arrow in row
    R under 0.015, with no plan beyond them. There we take the first plan the
    other way along the column, the only plan the column offers for that letter.
    """
    rows = _ROWS[insp]
    i = rows.index(letter)
    cell = master_table_cell(insp, letter, col)
    step = {"v": 1, "^": -1}.get(cell, 0)
    while cell in ("v", "^", "."):
        i += step
        if not 0 <= i < len(rows):
            step, i = -step, rows.index(letter)
            continue
        cell = master_table_cell(insp, rows[i], col)
    ac, re = (int(x) for x in cell.split("/"))
    return rows[i], ac, re


def single_sampling_plan(
    lot_size: int,
    aql: float | str,
    level: str = "II",
    inspection: Inspection | str = Inspection.NORMAL,
) -> SamplingPlan:
    """The single-sampling plan for a lot (Table 1, then Table 2-A, 2-B or 2-C)."""
    try:
        insp = Inspection(str(inspection).lower())
    except ValueError:
        raise InvalidInput(
            f"unknown inspection severity {inspection!r}",
            [Problem("inspection", "use normal, tightened or reduced")],
        ) from None
    lvl = _normalize_level(level)
    col = normalize_aql(aql)
    letter = code_letter(lot_size, lvl)
    row, ac, re = _resolve(insp, letter, col)
    n = _sample_size(insp, row)
    return SamplingPlan(
        lot_size=lot_size,
        level=lvl,
        aql=col,
        inspection=insp,
        code_letter=letter,
        plan_letter=row,
        table_sample_size=n,
        sample_size=min(n, lot_size),
        accept=ac,
        reject=re,
        hundred_percent=n >= lot_size,
    )


# --------------------------------------------------------------------------- lot disposition


@dataclass(frozen=True)
class ClassStatus:
    """One severity class of one lot: its plan and how far inspection has got."""

    defect_class: str
    aql: str
    inspection: Inspection
    sample_size: int
    inspected: int
    defects: int
    accept: int
    reject: int
    decision: Decision

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["inspection"] = str(self.inspection)
        d["decision"] = str(self.decision)
        return d


@dataclass(frozen=True)
class LotDisposition:
    lot_size: int
    code_letter: str
    units_to_inspect: int
    units_inspected: int
    classes: tuple[ClassStatus, ...]
    decision: Decision

    def to_dict(self) -> dict[str, Any]:
        return {
            "lot_size": self.lot_size,
            "code_letter": self.code_letter,
            "units_to_inspect": self.units_to_inspect,
            "units_inspected": self.units_inspected,
            "units_remaining": max(0, self.units_to_inspect - self.units_inspected),
            "classes": [c.to_dict() for c in self.classes],
            "decision": str(self.decision),
        }


def lot_disposition(
    lot_size: int,
    aqls: Mapping[str, float | str],
    units_inspected: int,
    defects: Mapping[str, int],
    level: str = "II",
    inspection: Inspection | str | Mapping[str, Inspection | str] = Inspection.NORMAL,
) -> LotDisposition:
    """Judge a lot with one AQL per severity class, e.g. ``{"major": 1.0, "minor": 4.0}``.

    Each class has its own plan (arrows may give classes different sample sizes);
    the lot needs the largest. A class's defects are counted on its own sample,
    the first ``n`` units inspected. A class is rejected as soon as its defects
    reach Re (the decision cannot change), accepted once its sample is complete
    with at most Ac; the lot is rejected if any class is, accepted if all are.
    ``inspection`` may differ per class, since switching runs per class.
    """
    problems = [
        Problem(f"defects.{k}", "no AQL given for this class") for k in defects if k not in aqls
    ]
    if not aqls:
        problems.append(Problem("aqls", "give at least one class with its AQL"))
    if units_inspected < 0 or any(v < 0 for v in defects.values()):
        problems.append(Problem("units_inspected", "counts cannot be negative"))
    if problems:
        raise InvalidInput("cannot judge the lot", problems)
    statuses = []
    for cls, aql in aqls.items():
        insp = inspection.get(cls, Inspection.NORMAL) if isinstance(inspection, Mapping) else inspection
        plan = single_sampling_plan(lot_size, aql, level, insp)
        done = min(units_inspected, plan.sample_size)
        found = int(defects.get(cls, 0))
        if found >= plan.reject:
            decision = Decision.REJECT
        elif done >= plan.sample_size:
            decision = Decision.ACCEPT
        else:
            decision = Decision.IN_PROGRESS
        statuses.append(
            ClassStatus(cls, plan.aql, plan.inspection, plan.sample_size, done, found,
                        plan.accept, plan.reject, decision)
        )
    decisions = {s.decision for s in statuses}
    overall = (
        Decision.REJECT if Decision.REJECT in decisions
        else Decision.ACCEPT if decisions == {Decision.ACCEPT}
        else Decision.IN_PROGRESS
    )
    to_inspect = max(s.sample_size for s in statuses)
    return LotDisposition(
        lot_size=lot_size,
        code_letter=code_letter(lot_size, level),
        units_to_inspect=to_inspect,
        units_inspected=min(units_inspected, lot_size),
        classes=tuple(statuses),
        decision=overall,
    )


# --------------------------------------------------------------------------- switching rules


@dataclass(frozen=True)
class LotOutcome:
    """What the switching rules need to know about one lot on original inspection.

    ``accepted_at_tighter_aql`` answers, for plans with Ac >= 2 under normal
    inspection, whether the lot would also have been accepted with the AQL one
    step tighter (clause 9.3.3); it is ignored otherwise.
    """

    accepted: bool
    accept_number: int
    accepted_at_tighter_aql: bool = False
    production_steady: bool = True
    reduced_approved: bool = True  # the responsible authority deems reduced inspection desirable


def lot_outcome(plan: SamplingPlan, defects: int, *, production_steady: bool = True,
                reduced_approved: bool = True) -> LotOutcome:
    """The switching-rule view of a finished lot judged with ``plan``.

    "Accepted at one step tighter AQL" uses the Ac of the column to the left in
    the same row and sample size (for Ac >= 2 that cell is always a plan).
    """
    tighter = False
    if plan.accept >= 2:
        i = AQL_COLUMNS.index(plan.aql)
        cell = master_table_cell(plan.inspection, plan.plan_letter, AQL_COLUMNS[i - 1])
        tighter = defects <= int(cell.split("/")[0])
    return LotOutcome(accepted=defects <= plan.accept, accept_number=plan.accept,
                      accepted_at_tighter_aql=tighter, production_steady=production_steady,
                      reduced_approved=reduced_approved)


@dataclass(frozen=True)
class SwitchingState:
    """Where one product x node x class stands in the switching scheme (clause 9.3)."""

    inspection: Inspection = Inspection.NORMAL
    discontinued: bool = False
    recent_normal: tuple[bool, ...] = ()  # acceptance of the last (up to 5) lots on normal
    tightened_accepted_run: int = 0  # consecutive accepted lots on tightened
    tightened_not_accepted: int = 0  # lots not accepted since tightened began
    switching_score: int = 0
    lots: int = 0
    last_change: str | None = field(default=None, compare=False)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["inspection"] = str(self.inspection)
        d["recent_normal"] = list(self.recent_normal)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> SwitchingState:
        """Rebuild a stored state (the inverse of ``to_dict``)."""
        try:
            return cls(
                inspection=Inspection(d["inspection"]),
                discontinued=bool(d.get("discontinued", False)),
                recent_normal=tuple(bool(x) for x in d.get("recent_normal", ())),
                tightened_accepted_run=int(d.get("tightened_accepted_run", 0)),
                tightened_not_accepted=int(d.get("tightened_not_accepted", 0)),
                switching_score=int(d.get("switching_score", 0)),
                lots=int(d.get("lots", 0)),
                last_change=d.get("last_change"),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidInput("not a stored switching state",
                               [Problem("state", f"{type(exc).__name__}: {exc}")]) from None


def _enter(inspection: Inspection, lots: int, why: str) -> SwitchingState:
    return SwitchingState(inspection=inspection, lots=lots, last_change=why)


def next_switching_state(state: SwitchingState, lot: LotOutcome) -> SwitchingState:
    """Apply ISO 2859-1:1999 clause 9.3 to one more lot outcome."""
    if state.discontinued:
        raise InvalidInput(
            "inspection is discontinued: five lots were not accepted on tightened inspection",
            [Problem("state", "record the supplier's corrective action, then resume (tightened)")],
        )
    lots = state.lots + 1
    if state.inspection is Inspection.NORMAL:
        recent = (state.recent_normal + (lot.accepted,))[-5:]
        if recent.count(False) >= 2:
            return _enter(Inspection.TIGHTENED, lots, "2 of the last 5 or fewer lots not accepted")
        if lot.accept_number >= 2:
            gained = 3 if lot.accepted and lot.accepted_at_tighter_aql else None
        else:
            gained = 2 if lot.accepted else None
        score = 0 if gained is None else state.switching_score + gained
        if score >= 30 and lot.production_steady and lot.reduced_approved:
            return _enter(Inspection.REDUCED, lots, f"switching score {score} >= 30")
        return replace(state, recent_normal=recent, switching_score=score, lots=lots,
                       last_change=None)
    if state.inspection is Inspection.TIGHTENED:
        if lot.accepted:
            run = state.tightened_accepted_run + 1
            if run >= 5:
                return _enter(Inspection.NORMAL, lots, "5 consecutive lots accepted on tightened")
            return replace(state, tightened_accepted_run=run, lots=lots, last_change=None)
        rejected = state.tightened_not_accepted + 1
        if rejected >= 5:
            return replace(state, discontinued=True, tightened_not_accepted=rejected,
                           tightened_accepted_run=0, lots=lots,
                           last_change="5 lots not accepted on tightened: discontinue")
        return replace(state, tightened_not_accepted=rejected, tightened_accepted_run=0,
                       lots=lots, last_change=None)
    # reduced
    if not lot.accepted:
        return _enter(Inspection.NORMAL, lots, "a lot was not accepted on reduced")
    if not lot.production_steady or not lot.reduced_approved:
        return _enter(Inspection.NORMAL, lots, "production irregular or reduced no longer justified")
    return replace(state, lots=lots, last_change=None)


def resume_after_discontinuation(state: SwitchingState) -> SwitchingState:
    """After the supplier's corrective action, inspection resumes on tightened (9.3.4)."""
    return _enter(Inspection.TIGHTENED, state.lots, "resumed after corrective action")


def replay_switching(
    outcomes: list[LotOutcome] | tuple[LotOutcome, ...],
    start: SwitchingState | None = None,
) -> tuple[SwitchingState, ...]:
    """The state after each lot, from ``start`` (normal inspection by default)."""
    state = start or SwitchingState()
    out = []
    for lot in outcomes:
        state = next_switching_state(state, lot)
        out.append(state)
    return tuple(out)
