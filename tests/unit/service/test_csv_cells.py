"""The CSV export's cell rule (``service.core.csv_export.spreadsheet_safe``), from OWASP's "CSV Injection"
page: a text cell beginning with =, +, -, @, tab or carriage return gets a leading single quote; other text
and every number are written as they are."""

from __future__ import annotations

import pytest

from service.core.csv_export import spreadsheet_safe


@pytest.mark.parametrize(("cell", "written"), [
    ("=1+2", "'=1+2"),
    ("+2+3+cmd|' /C calc'!A0", "'+2+3+cmd|' /C calc'!A0"),
    ("-2+3+cmd|' /C calc'!A0", "'-2+3+cmd|' /C calc'!A0"),
    ("@SUM(1+1)*cmd|' /C calc'!A0", "'@SUM(1+1)*cmd|' /C calc'!A0"),
    ("\t=1+2", "'\t=1+2"),
    ("\r=1+2", "'\r=1+2"),
    ("-0.05", "'-0.05"),  # typed into a text field, it is text
    ("", ""),
    ("L-001", "L-001"),  # the characters elsewhere than first are harmless
    (" =1+2", " =1+2"),  # OWASP's list has no space
    ("'=1+2", "'=1+2"),  # already text to a spreadsheet
    ("Ünïcode", "Ünïcode"),
])
def test_text_that_a_spreadsheet_would_evaluate_is_quoted(cell: str, written: str) -> None:
    assert spreadsheet_safe(cell) == written


@pytest.mark.parametrize("number", [-0.05, -3, 0, 7, 1.5e-9])
def test_numbers_stay_numbers(number: float) -> None:
    assert spreadsheet_safe(number) == number and type(spreadsheet_safe(number)) is type(number)
