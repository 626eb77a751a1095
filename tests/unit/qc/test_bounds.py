"""qc.bounds: the input bounds every door applies (storable text, nesting, UTC year range, bounded YAML)."""

from __future__ import annotations

import datetime as dt

import pytest
import yaml

from qc.bounds import MAX_DEPTH, MAX_INT, as_utc, load_yaml, text_problem, value_problems


def test_max_int_is_what_a_postgresql_integer_column_holds():
    assert MAX_INT == 2_147_483_647


@pytest.mark.parametrize("text", ["", "plain", "Größe ø 10 mm", "emoji \U0001f600", "tab\tand newline\n"])
def test_storable_text_has_no_problem(text):
    assert text_problem(text) is None


@pytest.mark.parametrize(("text", "word"), [("a\x00b", "NUL"), ("\x00", "NUL"), ("a\ud800", "surrogate"),
                                            ("\udfff tail", "surrogate")])
def test_nul_and_unpaired_surrogates_are_not_storable(text, word):
    problem = text_problem(text)
    assert problem is not None and word in problem


def test_value_problems_name_the_path_of_each_bad_string_in_document_order():
    value = {"name": "ok", "items": [{"id": "a"}, {"id": "b\x00"}], "k\x00": 1, "tail": ["\ud800"]}
    assert [p.field for p in value_problems(value, "record")] == [
        "record.items[1].id", "record.k\\x00", "record.tail[0]"]


def _nested(containers: int) -> list:
    value: list = []
    for _ in range(containers - 1):
        value = [value]
    return value


def test_value_problems_allow_32_nested_containers_and_refuse_the_33rd():
    assert list(value_problems(_nested(MAX_DEPTH))) == []
    (problem,) = value_problems(_nested(MAX_DEPTH + 1))
    assert problem.field == "[0]" * MAX_DEPTH and "nested deeper than 32 levels" in problem.reason


def test_load_yaml_draws_the_depth_line_where_value_problems_does():
    assert load_yaml("[" * MAX_DEPTH + "]" * MAX_DEPTH) == _nested(MAX_DEPTH)
    with pytest.raises(yaml.YAMLError, match="nested deeper than 32 levels"):
        load_yaml("[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1))


def test_value_problems_walk_100000_levels_without_recursion():
    assert list(value_problems(_nested(100_000), max_depth=200_000)) == []


@pytest.mark.parametrize(("text", "utc"), [
    ("2026-03-02T09:00:00+03:00", "2026-03-02T06:00:00+00:00"),
    ("2026-03-02T09:00:00", "2026-03-02T09:00:00+00:00"),  # no zone: read as UTC
    ("0001-01-01T00:00:00-01:00", "0001-01-01T01:00:00+00:00"),  # inside year 1 in UTC
    ("9999-12-31T23:59:00+01:00", "9999-12-31T22:59:00+00:00"),
])
def test_as_utc_converts_to_utc(text, utc):
    assert as_utc(dt.datetime.fromisoformat(text)).isoformat() == utc


@pytest.mark.parametrize("text", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:00-01:00"])
def test_as_utc_refuses_an_instant_outside_years_1_to_9999_in_utc(text):
    with pytest.raises(ValueError, match="outside the years 1-9999 in UTC"):
        as_utc(dt.datetime.fromisoformat(text))


def test_load_yaml_reads_what_safe_load_reads():
    text = "a: 1\nb: [x, {c: 2.5}]\nd: null\n"
    assert load_yaml(text) == yaml.safe_load(text)


@pytest.mark.parametrize(("text", "message"), [
    ("[" * 50_000, "nested deeper than 32 levels"),
    ("a: &x [1]\nb: *x\n", "aliases"),
    ("a: " + "9" * 5000 + "\n", "a value cannot be read"),
    ("a: 2026-13-45\n", "a value cannot be read"),
])
def test_load_yaml_refuses_deep_nesting_aliases_and_unreadable_scalars(text, message):
    with pytest.raises(yaml.YAMLError, match=message):
        load_yaml(text)
