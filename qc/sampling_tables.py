"""ISO 2859-1:1999 single-sampling tables (identical plans to ANSI/ASQ Z1.4-2003).

Transcribed from the published tables; ``qc.sampling`` reads them, the tests
check them against a hand-written list of published plans and against the
tables' construction (each anti-diagonal of a master table carries one plan).

Cell notation in the master tables (one string per code letter, one token per AQL
column, columns in the order of ``AQL_COLUMNS``):

- ``Ac/Re``  the acceptance and rejection numbers;
- ``v``      arrow down: use the first sampling plan below the arrow;
- ``^``      arrow up: use the first sampling plan above the arrow;
- ``.``      empty (only the tightened table's extra row S, reached by arrows).

The sample size changes with the row an arrow leads to. The 1999 reduced table
has no gap between Ac and Re (Re = Ac + 1), unlike MIL-STD-105E's Table II-C.
As printed, Table 2-A has an up arrow in row A under AQL 10 and a down arrow in
row R under 0.015 with no plan beyond; ``qc.sampling`` then takes the first
plan the other way along the column. Table 2-B's row S (n = 3150) is reached
only through the down arrows of row R.
"""

from __future__ import annotations

__all__ = [
    "LEVELS",
    "LOT_SIZE_RANGES",
    "CODE_LETTERS",
    "SAMPLE_SIZE",
    "REDUCED_SAMPLE_SIZE",
    "AQL_COLUMNS",
    "NORMAL",
    "TIGHTENED",
    "REDUCED",
]

LEVELS = ("S-1", "S-2", "S-3", "S-4", "I", "II", "III")

# Table 1 - sample size code letters: (lowest lot size, highest or None, letters by LEVELS).
LOT_SIZE_RANGES: tuple[tuple[int, int | None, str], ...] = (
    (2, 8, "AAAAAAB"),
    (9, 15, "AAAAABC"),
    (16, 25, "AABBBCD"),
    (26, 50, "ABBCCDE"),
    (51, 90, "BBCCCEF"),
    (91, 150, "BBCDDFG"),
    (151, 280, "BCDEEGH"),
    (281, 500, "BCDEFHJ"),
    (501, 1200, "CCEFGJK"),
    (1201, 3200, "CDEGHKL"),
    (3201, 10000, "CDFGJLM"),
    (10001, 35000, "CDFHKMN"),
    (35001, 150000, "DEGJLNP"),
    (150001, 500000, "DEGJMPQ"),
    (500001, None, "DEHKNQR"),
)

CODE_LETTERS = "ABCDEFGHJKLMNPQR"

# Sample size per code letter, normal and tightened (S exists only in tightened Table 2-B).
SAMPLE_SIZE = {
    "A": 2, "B": 3, "C": 5, "D": 8, "E": 13, "F": 20, "G": 32, "H": 50,
    "J": 80, "K": 125, "L": 200, "M": 315, "N": 500, "P": 800, "Q": 1250, "R": 2000,
    "S": 3150,
}

# Reduced inspection (Table 2-C) uses smaller samples for the same code letter.
REDUCED_SAMPLE_SIZE = {
    "A": 2, "B": 2, "C": 2, "D": 3, "E": 5, "F": 8, "G": 13, "H": 20,
    "J": 32, "K": 50, "L": 80, "M": 125, "N": 200, "P": 315, "Q": 500, "R": 800,
}

# AQL columns in percent nonconforming (up to 10) or nonconformities per 100 items.
AQL_COLUMNS = (
    "0.010", "0.015", "0.025", "0.040", "0.065", "0.10", "0.15", "0.25", "0.40",
    "0.65", "1.0", "1.5", "2.5", "4.0", "6.5", "10", "15", "25", "40", "65",
    "100", "150", "250", "400", "650", "1000",
)

# Table 2-A - single sampling plans for normal inspection (master table).
# fmt: off
NORMAL = {
    "A": "v v v v v v v v v v v v v v 0/1 ^ v 1/2 2/3 3/4 5/6 7/8 10/11 14/15 21/22 30/31",
    "B": "v v v v v v v v v v v v v 0/1 ^ v 1/2 2/3 3/4 5/6 7/8 10/11 14/15 21/22 30/31 44/45",
    "C": "v v v v v v v v v v v v 0/1 ^ v 1/2 2/3 3/4 5/6 7/8 10/11 14/15 21/22 30/31 44/45 ^",
    "D": "v v v v v v v v v v v 0/1 ^ v 1/2 2/3 3/4 5/6 7/8 10/11 14/15 21/22 30/31 44/45 ^ ^",
    "E": "v v v v v v v v v v 0/1 ^ v 1/2 2/3 3/4 5/6 7/8 10/11 14/15 21/22 ^ ^ ^ ^ ^",
    "F": "v v v v v v v v v 0/1 ^ v 1/2 2/3 3/4 5/6 7/8 10/11 14/15 21/22 ^ ^ ^ ^ ^ ^",
    "G": "v v v v v v v v 0/1 ^ v 1/2 2/3 3/4 5/6 7/8 10/11 14/15 21/22 ^ ^ ^ ^ ^ ^ ^",
    "H": "v v v v v v v 0/1 ^ v 1/2 2/3 3/4 5/6 7/8 10/11 14/15 21/22 ^ ^ ^ ^ ^ ^ ^ ^",
    "J": "v v v v v v 0/1 ^ v 1/2 2/3 3/4 5/6 7/8 10/11 14/15 21/22 ^ ^ ^ ^ ^ ^ ^ ^ ^",
    "K": "v v v v v 0/1 ^ v 1/2 2/3 3/4 5/6 7/8 10/11 14/15 21/22 ^ ^ ^ ^ ^ ^ ^ ^ ^ ^",
    "L": "v v v v 0/1 ^ v 1/2 2/3 3/4 5/6 7/8 10/11 14/15 21/22 ^ ^ ^ ^ ^ ^ ^ ^ ^ ^ ^",
    "M": "v v v 0/1 ^ v 1/2 2/3 3/4 5/6 7/8 10/11 14/15 21/22 ^ ^ ^ ^ ^ ^ ^ ^ ^ ^ ^ ^",
    "N": "v v 0/1 ^ v 1/2 2/3 3/4 5/6 7/8 10/11 14/15 21/22 ^ ^ ^ ^ ^ ^ ^ ^ ^ ^ ^ ^ ^",
    "P": "v 0/1 ^ v 1/2 2/3 3/4 5/6 7/8 10/11 14/15 21/22 ^ ^ ^ ^ ^ ^ ^ ^ ^ ^ ^ ^ ^ ^",
    "Q": "0/1 ^ v 1/2 2/3 3/4 5/6 7/8 10/11 14/15 21/22 ^ ^ ^ ^ ^ ^ ^ ^ ^ ^ ^ ^ ^ ^ ^",
    "R": "^ v 1/2 2/3 3/4 5/6 7/8 10/11 14/15 21/22 ^ ^ ^ ^ ^ ^ ^ ^ ^ ^ ^ ^ ^ ^ ^ ^",
}
# fmt: on

# Table 2-B - single sampling plans for tightened inspection (master table).
# fmt: off
TIGHTENED = {
    "A": "v v v v v v v v v v v v v v v v v v 1/2 2/3 3/4 5/6 8/9 12/13 18/19 27/28",
    "B": "v v v v v v v v v v v v v v 0/1 v v 1/2 2/3 3/4 5/6 8/9 12/13 18/19 27/28 41/42",
    "C": "v v v v v v v v v v v v v 0/1 v v 1/2 2/3 3/4 5/6 8/9 12/13 18/19 27/28 41/42 ^",
    "D": "v v v v v v v v v v v v 0/1 v v 1/2 2/3 3/4 5/6 8/9 12/13 18/19 27/28 41/42 ^ ^",
    "E": "v v v v v v v v v v v 0/1 v v 1/2 2/3 3/4 5/6 8/9 12/13 18/19 ^ ^ ^ ^ ^",
    "F": "v v v v v v v v v v 0/1 v v 1/2 2/3 3/4 5/6 8/9 12/13 18/19 ^ ^ ^ ^ ^ ^",
    "G": "v v v v v v v v v 0/1 v v 1/2 2/3 3/4 5/6 8/9 12/13 18/19 ^ ^ ^ ^ ^ ^ ^",
    "H": "v v v v v v v v 0/1 v v 1/2 2/3 3/4 5/6 8/9 12/13 18/19 ^ ^ ^ ^ ^ ^ ^ ^",
    "J": "v v v v v v v 0/1 v v 1/2 2/3 3/4 5/6 8/9 12/13 18/19 ^ ^ ^ ^ ^ ^ ^ ^ ^",
    "K": "v v v v v v 0/1 v v 1/2 2/3 3/4 5/6 8/9 12/13 18/19 ^ ^ ^ ^ ^ ^ ^ ^ ^ ^",
    "L": "v v v v v 0/1 v v 1/2 2/3 3/4 5/6 8/9 12/13 18/19 ^ ^ ^ ^ ^ ^ ^ ^ ^ ^ ^",
    "M": "v v v v 0/1 v v 1/2 2/3 3/4 5/6 8/9 12/13 18/19 ^ ^ ^ ^ ^ ^ ^ ^ ^ ^ ^ ^",
    "N": "v v v 0/1 v v 1/2 2/3 3/4 5/6 8/9 12/13 18/19 ^ ^ ^ ^ ^ ^ ^ ^ ^ ^ ^ ^ ^",
    "P": "v v 0/1 v v 1/2 2/3 3/4 5/6 8/9 12/13 18/19 ^ ^ ^ ^ ^ ^ ^ ^ ^ ^ ^ ^ ^ ^",
    "Q": "v 0/1 v v 1/2 2/3 3/4 5/6 8/9 12/13 18/19 ^ ^ ^ ^ ^ ^ ^ ^ ^ ^ ^ ^ ^ ^ ^",
    "R": "0/1 v v 1/2 2/3 3/4 5/6 8/9 12/13 18/19 ^ ^ ^ ^ ^ ^ ^ ^ ^ ^ ^ ^ ^ ^ ^ ^",
    "S": ". 1/2 1/2 . . . . . . . . . . . . . . . . . . . . . . .",
}
# fmt: on

# Table 2-C - single sampling plans for reduced inspection (master table), 1999 edition.
# fmt: off
REDUCED = {
    "A": "v v v v v v v v v v v v v v 0/1 ^ v 0/1 1/2 1/2 2/3 3/4 5/6 7/8 10/11 14/15",
    "B": "v v v v v v v v v v v v v 0/1 ^ v 0/1 1/2 1/2 2/3 3/4 5/6 7/8 10/11 14/15 21/22",
    "C": "v v v v v v v v v v v v 0/1 ^ v 0/1 1/2 1/2 2/3 3/4 5/6 7/8 10/11 14/15 21/22 ^",
    "D": "v v v v v v v v v v v 0/1 ^ v 0/1 1/2 1/2 2/3 3/4 5/6 7/8 10/11 14/15 21/22 ^ ^",
    "E": "v v v v v v v v v v 0/1 ^ v 0/1 1/2 1/2 2/3 3/4 5/6 7/8 10/11 ^ ^ ^ ^ ^",
    "F": "v v v v v v v v v 0/1 ^ v 0/1 1/2 1/2 2/3 3/4 5/6 7/8 10/11 ^ ^ ^ ^ ^ ^",
    "G": "v v v v v v v v 0/1 ^ v 0/1 1/2 1/2 2/3 3/4 5/6 7/8 10/11 ^ ^ ^ ^ ^ ^ ^",
    "H": "v v v v v v v 0/1 ^ v 0/1 1/2 1/2 2/3 3/4 5/6 7/8 10/11 ^ ^ ^ ^ ^ ^ ^ ^",
    "J": "v v v v v v 0/1 ^ v 0/1 1/2 1/2 2/3 3/4 5/6 7/8 10/11 ^ ^ ^ ^ ^ ^ ^ ^ ^",
    "K": "v v v v v 0/1 ^ v 0/1 1/2 1/2 2/3 3/4 5/6 7/8 10/11 ^ ^ ^ ^ ^ ^ ^ ^ ^ ^",
    "L": "v v v v 0/1 ^ v 0/1 1/2 1/2 2/3 3/4 5/6 7/8 10/11 ^ ^ ^ ^ ^ ^ ^ ^ ^ ^ ^",
    "M": "v v v 0/1 ^ v 0/1 1/2 1/2 2/3 3/4 5/6 7/8 10/11 ^ ^ ^ ^ ^ ^ ^ ^ ^ ^ ^ ^",
    "N": "v v 0/1 ^ v 0/1 1/2 1/2 2/3 3/4 5/6 7/8 10/11 ^ ^ ^ ^ ^ ^ ^ ^ ^ ^ ^ ^ ^",
    "P": "v 0/1 ^ v 0/1 1/2 1/2 2/3 3/4 5/6 7/8 10/11 ^ ^ ^ ^ ^ ^ ^ ^ ^ ^ ^ ^ ^ ^",
    "Q": "0/1 ^ v 0/1 1/2 1/2 2/3 3/4 5/6 7/8 10/11 ^ ^ ^ ^ ^ ^ ^ ^ ^ ^ ^ ^ ^ ^ ^",
    "R": "^ v 0/1 1/2 1/2 2/3 3/4 5/6 7/8 10/11 ^ ^ ^ ^ ^ ^ ^ ^ ^ ^ ^ ^ ^ ^ ^ ^",
}
# fmt: on
