"""qc.judging: which version judges a record (pure; times are arguments)."""

from __future__ import annotations

import datetime as dt

import pytest

from qc.errors import InvalidInput
from qc.judging import Published, check_captured_at, standard_in_force
from qc.standards import Offline, Status

T0 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
H = dt.timedelta(hours=1)


def history(*entries: tuple[int, Status, dt.datetime]) -> list[Published]:
    return [Published(v, s, t) for v, s, t in entries]


def judge(published: list[Published], named: int | None, captured: dt.datetime, now: dt.datetime,
          offline: Offline = Offline()) -> int:
    return standard_in_force(published, product="p", named=named, captured_at=captured, now=now, offline=offline)


V1_V2 = history((1, Status.RELEASED, T0), (2, Status.RELEASED, T0 + 10 * H))


def test_the_current_version_judges_whatever_was_named_or_not() -> None:
    assert judge(V1_V2, None, T0 + 11 * H, T0 + 12 * H) == 2
    assert judge(V1_V2, 2, T0 + 11 * H, T0 + 12 * H) == 2


@pytest.mark.parametrize(("captured", "now", "expected"), [
    (T0 + 9 * H, T0 + 10 * H, 1),  # current at capture, just replaced
    (T0 + 9 * H, T0 + 33 * H, 1),  # 23 h after the replacement
    (T0 + 9 * H, T0 + 34 * H, None),  # exactly 24 h after: grace over
    (T0 + 10 * H, T0 + 11 * H, None),  # captured at the instant v2 came into force
    (T0 - H, T0 + 11 * H, None),  # before v1 existed
])
def test_a_replaced_version_judges_only_records_captured_while_current_within_the_grace(
        captured: dt.datetime, now: dt.datetime, expected: int | None) -> None:
    if expected is None:
        with pytest.raises(InvalidInput):
            judge(V1_V2, 1, captured, now)
    else:
        assert judge(V1_V2, 1, captured, now) == expected


def test_a_retired_successor_still_marks_when_the_older_version_was_replaced() -> None:
    # v3 came into force at +20 h and was retired since: v2 is current again, v1 was replaced at +10 h
    published = history((1, Status.RELEASED, T0), (2, Status.RELEASED, T0 + 10 * H), (3, Status.RETIRED, T0 + 20 * H))
    assert judge(published, 2, T0 + 21 * H, T0 + 60 * H) == 2  # current again
    with pytest.raises(InvalidInput, match="version 3 was retired"):
        judge(published, 3, T0 + 21 * H, T0 + 22 * H)
    with pytest.raises(InvalidInput, match="replaced at 2026-03-02 19:00 UTC"):
        judge(published, 1, T0 + 11 * H, T0 + 12 * H)


def test_a_draft_never_replaces_and_never_judges() -> None:
    published = history((1, Status.RELEASED, T0), (2, Status.DRAFT, T0 + H))
    assert judge(published, 1, T0 + 2 * H, T0 + 200 * H) == 1  # v1 is still current
    with pytest.raises(InvalidInput, match="draft"):
        judge(published, 2, T0 + 2 * H, T0 + 3 * H)


def test_no_released_version_is_a_clear_refusal() -> None:
    with pytest.raises(InvalidInput, match="no released standard"):
        judge(history((1, Status.DRAFT, T0)), None, T0, T0)


def test_capture_time_window() -> None:
    skew = dt.timedelta(minutes=10)
    check_captured_at(T0 + skew, now=T0, skew=skew, offline=Offline())
    check_captured_at(T0 - dt.timedelta(days=14), now=T0, skew=skew, offline=Offline())
    with pytest.raises(InvalidInput, match="in the future"):
        check_captured_at(T0 + skew + dt.timedelta(seconds=1), now=T0, skew=skew, offline=Offline())
    with pytest.raises(InvalidInput, match=r"offline allowance \(2 days\)"):
        check_captured_at(T0 - dt.timedelta(days=2, seconds=1), now=T0, skew=skew, offline=Offline(max_age_days=2))
