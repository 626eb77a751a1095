"""ISO 2859-1:1999 single sampling (identical plans to ANSI/ASQ Z1.4-2003).

Expected values are typed here a second time from the published tables, not
read from ``qc.sampling_tables``:

- Table 1 (code letters) as printed, row by row;
- a hand-written list of well-known published plans, including the worked
  example of Montgomery, *Introduction to Statistical Quality Control*, 7th ed.,
  section 15.4 (N = 2000, AQL 0.65 %, level II: code K, normal n=125 Ac 2,
  tightened n=125 Ac 1, reduced n=50 Ac 1);
- the construction of the master tables (each anti-diagonal carries one plan),
  written out independently to check every cell.
"""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from qc import sampling as s
from qc.errors import InvalidInput

LETTERS = "ABCDEFGHJKLMNPQR"
AQLS = ("0.010 0.015 0.025 0.040 0.065 0.10 0.15 0.25 0.40 0.65 1.0 1.5 2.5 4.0 6.5 "
        "10 15 25 40 65 100 150 250 400 650 1000").split()

# Table 1 as printed: lot size range, then S-1 S-2 S-3 S-4 I II III.
TABLE_1 = """
2       8       A A A A A A B
9       15      A A A A A B C
16      25      A A B B B C D
26      50      A B B C C D E
51      90      B B C C C E F
91      150     B B C D D F G
151     280     B C D E E G H
281     500     B C D E F H J
501     1200    C C E F G J K
1201    3200    C D E G H K L
3201    10000   C D F G J L M
10001   35000   C D F H K M N
35001   150000  D E G J L N P
150001  500000  D E G J M P Q
500001  -       D E H K N Q R
"""
LEVELS = ("S-1", "S-2", "S-3", "S-4", "I", "II", "III")


def _table_1_rows():
    for line in TABLE_1.strip().splitlines():
        low, high, *letters = line.split()
        yield int(low), (None if high == "-" else int(high)), letters


@pytest.mark.parametrize("low,high,letters", list(_table_1_rows()))
def test_code_letters_match_table_1_at_both_ends_of_every_lot_range(low, high, letters):
    for level, letter in zip(LEVELS, letters, strict=True):
        assert s.code_letter(low, level) == letter, (low, level)
        top = high if high is not None else 10_000_000
        assert s.code_letter(top, level) == letter, (top, level)


def test_code_letter_refuses_lots_smaller_than_two_and_unknown_levels():
    with pytest.raises(InvalidInput):
        s.code_letter(1)
    with pytest.raises(InvalidInput):
        s.code_letter(100, "IV")


# (lot size, level, AQL, inspection) -> (code letter, units to inspect, Ac, Re)
PUBLISHED_PLANS = [
    # The everyday question: 1,000 units, level II, AQL 1.0 -> J, 80, Ac 2 Re 3.
    ((1000, "II", 1.0, "normal"), ("J", 80, 2, 3)),
    # Montgomery ISQC 7th ed., section 15.4 worked example (ISO 1999: reduced Re = Ac + 1).
    ((2000, "II", 0.65, "normal"), ("K", 125, 2, 3)),
    ((2000, "II", 0.65, "tightened"), ("K", 125, 1, 2)),
    ((2000, "II", 0.65, "reduced"), ("K", 50, 1, 2)),
    # Row J (n = 80) of Table 2-A, as reproduced in countless AQL charts.
    ((1000, "II", 0.65, "normal"), ("J", 80, 1, 2)),
    ((1000, "II", 1.5, "normal"), ("J", 80, 3, 4)),
    ((1000, "II", 2.5, "normal"), ("J", 80, 5, 6)),
    ((1000, "II", 4.0, "normal"), ("J", 80, 7, 8)),
    ((1000, "II", 6.5, "normal"), ("J", 80, 10, 11)),
    ((1000, "II", 10, "normal"), ("J", 80, 14, 15)),
    ((1000, "II", 15, "normal"), ("J", 80, 21, 22)),
    ((1000, "II", 0.15, "normal"), ("J", 80, 0, 1)),
    # Arrow up: J / 0.25 -> first plan above, row H, n = 50, Ac 0.
    ((1000, "II", 0.25, "normal"), ("J", 50, 0, 1)),
    # Arrow down: J / 0.40 -> first plan below, row K, n = 125, Ac 1.
    ((1000, "II", 0.40, "normal"), ("J", 125, 1, 2)),
    # Ac = 0 plans along the first diagonal of Table 2-A.
    ((5, "II", 6.5, "normal"), ("A", 2, 0, 1)),
    ((60, "II", 1.0, "normal"), ("E", 13, 0, 1)),
    ((200, "II", 0.40, "normal"), ("G", 32, 0, 1)),
    ((400, "II", 2.5, "normal"), ("H", 50, 3, 4)),
    ((100_000, "II", 0.010, "normal"), ("N", 1250, 0, 1)),
    ((1_000_000, "III", 0.010, "normal"), ("R", 1250, 0, 1)),
    ((1_000_000, "II", 0.010, "normal"), ("Q", 1250, 0, 1)),
    # Tightened Table 2-B: Ac one step lower at the same n, the 8/9, 12/13, 18/19 series,
    # and the extra row S (n = 3150) reached only through the arrow in R / 0.025.
    ((1000, "II", 1.0, "tightened"), ("J", 80, 1, 2)),
    ((1000, "II", 2.5, "tightened"), ("J", 80, 3, 4)),
    ((1000, "II", 6.5, "tightened"), ("J", 80, 8, 9)),
    ((1000, "II", 10, "tightened"), ("J", 80, 12, 13)),
    ((1000, "II", 15, "tightened"), ("J", 80, 18, 19)),
    ((1_000_000, "III", 0.010, "tightened"), ("R", 2000, 0, 1)),
    ((1_000_000, "III", 0.025, "tightened"), ("R", 3150, 1, 2)),
    # Reduced Table 2-C (1999): n two letters smaller, Re = Ac + 1.
    ((1000, "II", 1.0, "reduced"), ("J", 32, 1, 2)),
    ((1000, "II", 2.5, "reduced"), ("J", 32, 2, 3)),
    ((1000, "II", 6.5, "reduced"), ("J", 32, 5, 6)),
    # Special levels: a lot of 1,000 at S-4 is F (n = 20); at S-1 it is C (n = 5).
    ((1000, "S-4", 2.5, "normal"), ("F", 20, 1, 2)),
    ((1000, "S-1", 6.5, "normal"), ("C", 8, 1, 2)),  # C / 6.5 arrows down to D
]


@pytest.mark.parametrize("args,expected", PUBLISHED_PLANS)
def test_published_single_sampling_plans(args, expected):
    lot, level, aql, inspection = args
    plan = s.single_sampling_plan(lot, aql, level=level, inspection=inspection)
    assert (plan.code_letter, plan.sample_size, plan.accept, plan.reject) == expected


def test_sample_at_least_the_lot_means_100_percent_inspection():
    # Lot of 10 at level II is B (n = 3); AQL 1.0 arrows down to E (n = 13) > 10 units.
    plan = s.single_sampling_plan(10, 1.0)
    assert plan.code_letter == "B" and plan.plan_letter == "E"
    assert plan.table_sample_size == 13
    assert plan.hundred_percent and plan.sample_size == 10
    assert (plan.accept, plan.reject) == (0, 1)
    assert "100 %" in plan.describe()


def test_aql_outside_the_table_columns_is_refused_with_the_valid_columns():
    with pytest.raises(InvalidInput) as err:
        s.single_sampling_plan(1000, 0.3)
    assert "0.25" in str(err.value) and "0.40" in str(err.value)


# --- the master tables, every cell, from their construction ------------------------------
#
# In Tables 2-A/2-B/2-C the plan depends only on the anti-diagonal d = letter index + AQL
# index (sample sizes and AQLs both follow the R5 series). Published sequences along d:
NORMAL_DIAG = {14: "0/1", 15: "^", 16: "v", 17: "1/2", 18: "2/3", 19: "3/4", 20: "5/6",
               21: "7/8", 22: "10/11", 23: "14/15", 24: "21/22", 25: "30/31", 26: "44/45"}
TIGHT_DIAG = {15: "0/1", 16: "v", 17: "v", 18: "1/2", 19: "2/3", 20: "3/4", 21: "5/6",
              22: "8/9", 23: "12/13", 24: "18/19", 25: "27/28", 26: "41/42"}
REDUCED_DIAG = {14: "0/1", 15: "^", 16: "v", 17: "0/1", 18: "1/2", 19: "1/2", 20: "2/3",
                21: "3/4", 22: "5/6", 23: "7/8", 24: "10/11", 25: "14/15", 26: "21/22"}


def _expected_cell(diag, i, j, tightened=False):
    d = i + j
    if d < min(diag):
        return "v"  # the big down-arrow block on the left
    if d >= 25 and (i > 3 or d > 26):
        return "^"  # the up-arrow block; the two extra diagonals exist only in rows A-D
    if tightened and i == 0 and diag[d] == "0/1":
        return "v"  # Table 2-B has no Ac 0 plan for n = 2
    return diag[d]


@pytest.mark.parametrize(
    "inspection,diag",
    [("normal", NORMAL_DIAG), ("tightened", TIGHT_DIAG), ("reduced", REDUCED_DIAG)],
)
def test_every_master_table_cell_follows_the_published_diagonals(inspection, diag):
    wrong = []
    for i, letter in enumerate(LETTERS):
        for j, aql in enumerate(AQLS):
            got = s.master_table_cell(inspection, letter, aql)
            if got != _expected_cell(diag, i, j, inspection == "tightened"):
                wrong.append((letter, aql, got))
    assert wrong == []


# MIL-STD-105E Tables II-A and II-B (the same plans as ISO 2859-1 / Z1.4), AQL columns
# 0.65 1.0 1.5 2.5 4.0 6.5 10 15: the rejection number Re, or the arrow printed there.
EXTRACT_COLUMNS = ("0.65", "1.0", "1.5", "2.5", "4.0", "6.5", "10", "15")
NORMAL_EXTRACT = """
A v v v v v 1 ^ v
B v v v v 1 ^ v 2
C v v v 1 ^ v 2 3
D v v 1 ^ v 2 3 4
E v 1 ^ v 2 3 4 6
F 1 ^ v 2 3 4 6 8
G ^ v 2 3 4 6 8 11
H v 2 3 4 6 8 11 15
J 2 3 4 6 8 11 15 22
K 3 4 6 8 11 15 22 ^
L 4 6 8 11 15 22 ^ ^
M 6 8 11 15 22 ^ ^ ^
N 8 11 15 22 ^ ^ ^ ^
P 11 15 22 ^ ^ ^ ^ ^
Q 15 22 ^ ^ ^ ^ ^ ^
"""
TIGHTENED_EXTRACT = """
A v v v v v v v v
B v v v v v 1 v v
C v v v v 1 v v 2
D v v v 1 v v 2 3
E v v 1 v v 2 3 4
F v 1 v v 2 3 4 6
G 1 v v 2 3 4 6 9
H v v 2 3 4 6 9 13
J v 2 3 4 6 9 13 19
K 2 3 4 6 9 13 19 ^
L 3 4 6 9 13 19 ^ ^
"""


@pytest.mark.parametrize(
    "inspection,extract", [("normal", NORMAL_EXTRACT), ("tightened", TIGHTENED_EXTRACT)]
)
def test_master_tables_match_the_printed_rejection_numbers_and_arrows(inspection, extract):
    for line in extract.strip().splitlines():
        letter, *tokens = line.split()
        for aql, token in zip(EXTRACT_COLUMNS, tokens, strict=True):
            cell = s.master_table_cell(inspection, letter, aql)
            got = cell if cell in ("v", "^") else cell.split("/")[1]
            assert got == token, (inspection, letter, aql)


def test_tightened_row_s_holds_the_plans_its_arrows_reach():
    # Row S (n = 3150) is reached only through the down arrows of row R.
    assert [s.master_table_cell("tightened", "R", a) for a in AQLS[:3]] == ["0/1", "v", "v"]
    assert [s.master_table_cell("tightened", "S", a) for a in AQLS[:3]] == [".", "1/2", "1/2"]
    assert [s.master_table_cell("tightened", "S", a) for a in AQLS].count(".") == 24


def test_arrows_pointing_off_the_table_take_the_first_plan_the_other_way():
    # Table 2-A prints an up arrow at A / 10 and a down arrow at R / 0.015.
    assert s.master_table_cell("normal", "A", 10) == "^"
    assert s.master_table_cell("normal", "R", 0.015) == "v"
    tiny = s.single_sampling_plan(8, 10)
    assert (tiny.code_letter, tiny.plan_letter, tiny.table_sample_size) == ("A", "C", 5)
    assert (tiny.accept, tiny.reject) == (1, 2)
    big = s.single_sampling_plan(600_000, 0.015, "III")
    assert (big.code_letter, big.plan_letter, big.sample_size, big.accept) == ("R", "P", 800, 0)


@pytest.mark.parametrize("inspection", ["normal", "tightened", "reduced"])
@pytest.mark.parametrize("level", LEVELS)
def test_every_lot_range_level_and_aql_resolves_to_a_plan(inspection, level):
    sizes = {"normal": dict(zip(LETTERS, [2, 3, 5, 8, 13, 20, 32, 50, 80, 125, 200, 315, 500,
                                          800, 1250, 2000], strict=True)) | {"S": 3150},
             "reduced": dict(zip(LETTERS, [2, 2, 2, 3, 5, 8, 13, 20, 32, 50, 80, 125, 200,
                                           315, 500, 800], strict=True))}
    sizes["tightened"] = sizes["normal"]
    for low, _high, _letters in _table_1_rows():
        for aql in AQLS:
            p = s.single_sampling_plan(low, aql, level, inspection)
            assert p.table_sample_size == sizes[inspection][p.plan_letter]
            assert 0 <= p.accept < p.reject
            if inspection == "reduced":
                assert p.reject == p.accept + 1  # 1999 edition: no gap
            assert p.sample_size == min(p.table_sample_size, low)


def test_tightened_never_accepts_more_than_normal_with_the_same_sample():
    for letter_lot, *_ in _table_1_rows():
        for aql in AQLS:
            n = s.single_sampling_plan(letter_lot, aql, "III", "normal")
            t = s.single_sampling_plan(letter_lot, aql, "III", "tightened")
            if n.table_sample_size == t.table_sample_size:
                assert t.accept <= n.accept


# --- lot disposition ------------------------------------------------------------------------


def test_lot_disposition_in_progress_then_accepted():
    aqls = {"critical": 0.10, "major": 1.0, "minor": 4.0}
    # Lot 1000 (J): critical 0.10 -> arrow down to K (n=125, 0/1); major J 80 2/3; minor J 80 7/8.
    d = s.lot_disposition(1000, aqls, units_inspected=40, defects={"major": 1})
    assert d.units_to_inspect == 125
    assert d.decision is s.Decision.IN_PROGRESS
    by = {c.defect_class: c for c in d.classes}
    assert (by["critical"].sample_size, by["critical"].accept) == (125, 0)
    assert (by["major"].sample_size, by["major"].accept, by["major"].reject) == (80, 2, 3)
    assert (by["minor"].accept, by["minor"].reject) == (7, 8)
    done = s.lot_disposition(1000, aqls, units_inspected=125, defects={"major": 2, "minor": 7})
    assert done.decision is s.Decision.ACCEPT
    assert done.to_dict()["units_remaining"] == 0


def test_lot_is_rejected_as_soon_as_one_class_reaches_re():
    d = s.lot_disposition(1000, {"critical": 0.10, "major": 1.0}, 10, {"critical": 1})
    assert d.decision is s.Decision.REJECT
    assert d.classes[0].decision is s.Decision.REJECT


def test_lot_disposition_refuses_defects_for_a_class_without_aql():
    with pytest.raises(InvalidInput):
        s.lot_disposition(1000, {"major": 1.0}, 10, {"minor": 3})


# --- switching rules (ISO 2859-1:1999 clause 9.3) -----------------------------------------


def _lots(pattern, ac=1, tighter=False):
    return [s.LotOutcome(accepted=c == "a", accept_number=ac, accepted_at_tighter_aql=tighter)
            for c in pattern]


def test_two_rejections_within_five_lots_switch_normal_to_tightened():
    states = s.replay_switching(_lots("araar"))
    assert [x.inspection for x in states][-1] is s.Inspection.TIGHTENED
    assert [str(x.inspection) for x in states[:4]] == ["normal"] * 4


def test_two_rejections_six_lots_apart_do_not_tighten():
    states = s.replay_switching(_lots("raaaaar"))
    assert states[-1].inspection is s.Inspection.NORMAL


def test_five_consecutive_accepted_lots_on_tightened_return_to_normal():
    start = s.SwitchingState(inspection=s.Inspection.TIGHTENED)
    states = s.replay_switching(_lots("aaaraaaaa"), start)
    assert states[3].inspection is s.Inspection.TIGHTENED  # run broken by the rejection
    assert states[7].inspection is s.Inspection.TIGHTENED
    assert states[8].inspection is s.Inspection.NORMAL


def test_five_rejections_on_tightened_discontinue_inspection():
    start = s.SwitchingState(inspection=s.Inspection.TIGHTENED)
    states = s.replay_switching(_lots("raraarrar"), start)
    assert not states[-2].discontinued and states[-1].discontinued
    with pytest.raises(InvalidInput):
        s.next_switching_state(states[-1], _lots("a")[0])
    assert s.resume_after_discontinuation(states[-1]).inspection is s.Inspection.TIGHTENED


def test_switching_score_reaches_30_after_15_accepted_lots_with_ac_0_or_1():
    states = s.replay_switching(_lots("a" * 15, ac=1))
    assert [x.inspection for x in states].index(s.Inspection.REDUCED) == 14
    assert states[13].switching_score == 28


def test_switching_score_with_ac_2_or_more_needs_the_tighter_aql_and_resets():
    # +3 per lot accepted at the tighter AQL: 10 lots -> 30; a lot accepted only at the
    # given AQL resets the score to 0 (clause 9.3.3.2 b).
    states = s.replay_switching(_lots("a" * 9, ac=2, tighter=True)
                                + _lots("a", ac=2, tighter=False)
                                + _lots("a" * 10, ac=2, tighter=True))
    assert states[8].switching_score == 27 and states[9].switching_score == 0
    assert states[-1].inspection is s.Inspection.REDUCED


def test_reduced_returns_to_normal_on_a_rejected_lot_or_irregular_production():
    start = s.SwitchingState(inspection=s.Inspection.REDUCED)
    assert s.next_switching_state(start, _lots("r")[0]).inspection is s.Inspection.NORMAL
    irregular = s.LotOutcome(accepted=True, accept_number=1, production_steady=False)
    assert s.next_switching_state(start, irregular).inspection is s.Inspection.NORMAL
    assert s.next_switching_state(start, _lots("a")[0]).inspection is s.Inspection.REDUCED


# --- the CLI -------------------------------------------------------------------------------


def test_cli_sampling_plan_json_answers_the_everyday_question():
    from service.cli import cli

    r = CliRunner().invoke(cli, ["sampling", "plan", "--lot-size", "1000", "--aql", "1.0",
                                 "--json"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.output)
    assert (d["code_letter"], d["sample_size"], d["accept"], d["reject"]) == ("J", 80, 2, 3)
    assert d["hundred_percent"] is False


def test_cli_sampling_plan_says_100_percent_inspection_for_tiny_lots():
    from service.cli import cli

    r = CliRunner().invoke(cli, ["sampling", "plan", "--lot-size", "10", "--aql", "1.0"])
    assert r.exit_code == 0 and "100 % inspection" in r.output
    bad = CliRunner().invoke(cli, ["sampling", "plan", "--lot-size", "10", "--aql", "0.3"])
    assert bad.exit_code != 0 and "0.25" in bad.output


def test_lot_outcome_knows_the_ac_of_one_step_tighter_aql():
    plan = s.single_sampling_plan(1000, 1.0)  # J, n = 80, Ac 2; AQL 0.65 in row J has Ac 1
    one, two, three = (s.lot_outcome(plan, d) for d in (1, 2, 3))
    assert (one.accepted, one.accepted_at_tighter_aql) == (True, True)
    assert (two.accepted, two.accepted_at_tighter_aql) == (True, False)
    assert not three.accepted and three.accept_number == 2


def test_switching_state_survives_a_round_trip_through_json():
    states = s.replay_switching(_lots("aara"))
    stored = json.loads(json.dumps(states[-1].to_dict()))
    assert s.SwitchingState.from_dict(stored) == states[-1]
    with pytest.raises(InvalidInput):
        s.SwitchingState.from_dict({"inspection": "lenient"})


def test_lot_disposition_takes_the_severity_of_each_class():
    # Switching runs per class: major on tightened (J/1.0 -> 80, Ac 1), minor on reduced
    # (J/4.0 -> n = 32, Ac 3).
    d = s.lot_disposition(1000, {"major": 1.0, "minor": 4.0}, 80, {"major": 2, "minor": 3},
                          inspection={"major": "tightened", "minor": "reduced"})
    by = {c.defect_class: c for c in d.classes}
    assert (by["major"].sample_size, by["major"].accept, by["major"].decision) == (
        80, 1, s.Decision.REJECT)
    assert (by["minor"].sample_size, by["minor"].accept, by["minor"].decision) == (
        32, 3, s.Decision.ACCEPT)
    assert d.decision is s.Decision.REJECT
