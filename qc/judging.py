"""Which standard judges a record, and whether its capture time is plausible.

The client never chooses the rules it is judged by. A record is judged by the
product's current released version. The one exception is an offline phone: a
version that was current when the record was captured (``captured_at``) and was
replaced less than the grace period ago still judges it. The grace period and
the offline allowance are the *current* version's (``Standard.offline``): the
quality manager who publishes a fix decides how long the version it replaces
may linger (0 for a safety fix).

``captured_at`` must lie in a window: not later than ``now`` plus the clock skew
the service tolerates, not earlier than ``now`` minus the offline allowance.

Pure: every time is an argument.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from qc.errors import InvalidInput, Problem
from qc.standards import Offline, Status

__all__ = ["Published", "check_captured_at", "standard_in_force"]


@dataclass(frozen=True)
class Published:
    """What the rule needs to know of one stored version."""

    version: int
    status: Status
    released_at: dt.datetime  # when it was published here (for a released version: when it came into force)


def standard_in_force(
    published: Sequence[Published], *, product: str, named: int | None, captured_at: dt.datetime,
    now: dt.datetime, offline: Offline,
) -> int:
    """The version that judges the record; raises ``InvalidInput`` naming the current version otherwise.

    ``named``: the version the record says it was filled against (None: the current one).
    ``offline``: the current version's offline policy.
    """
    released = [p for p in published if p.status is Status.RELEASED]
    if not released:
        raise InvalidInput(f"{product} has no released standard; a quality manager must release one first",
                           [Problem("record.product", "no released standard for this product")])
    current = max(released, key=lambda p: p.version)
    if named is None or named == current.version:
        return current.version
    by_version = {p.version: p for p in published}
    asked = by_version.get(named)
    if asked is None:
        why = f"no such version; the current version is {current.version}"
    elif asked.status is Status.DRAFT:
        why = f"version {named} is a draft, never used to judge parts; the current version is {current.version}"
    elif asked.status is Status.RETIRED:
        why = f"version {named} was retired; the current version is {current.version}"
    else:  # released and below the current version: superseded
        replaced_at = _replaced_at(published, named)
        grace_ends = replaced_at + offline.grace
        if captured_at < asked.released_at:
            why = (f"version {named} came into force at {_iso(asked.released_at)}, after this record's "
                   f"captured_at {_iso(captured_at)}; the current version is {current.version}")
        elif captured_at >= replaced_at:
            why = (f"version {named} was replaced at {_iso(replaced_at)}, before this record was captured "
                   f"({_iso(captured_at)}); fill the checklist of the current version {current.version}")
        elif now >= grace_ends:
            why = (f"version {named} was replaced at {_iso(replaced_at)} and its grace period for records "
                   f"captured offline ({_hours(offline.grace)}) ended at {_iso(grace_ends)}; "
                   f"inspect the part again under the current version {current.version}")
        else:
            return named
    raise InvalidInput(f"{product} standard version {named} cannot judge this record: {why}",
                       [Problem("record.standard_version", why)])


def _replaced_at(published: Sequence[Published], version: int) -> dt.datetime:
    """When a later version (released then, whether or not retired since) first came into force."""
    later = [p.released_at for p in published if p.version > version and p.status is not Status.DRAFT]
    return min(later)


def check_captured_at(captured_at: dt.datetime, *, now: dt.datetime, skew: dt.timedelta, offline: Offline) -> None:
    """Refuse a capture time in the future (beyond ``skew``) or older than the offline allowance."""
    if captured_at > now + skew:
        why = (f"captured_at {_iso(captured_at)} is in the future (the server's time is {_iso(now)}, "
               f"tolerance {_hours(skew)}); set the phone's date and time to automatic")
    elif captured_at < now - offline.max_age:
        why = (f"captured_at {_iso(captured_at)} is older than the standard's offline allowance "
               f"({_hours(offline.max_age)}); records must reach the server within it")
    else:
        return
    raise InvalidInput(f"implausible capture time: {why}", [Problem("record.captured_at", why)])


def _iso(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def _hours(span: dt.timedelta) -> str:
    hours = span.total_seconds() / 3600
    if hours < 1:
        return f"{span.total_seconds() / 60:g} min"
    if hours >= 48 and hours % 24 == 0:
        return f"{hours / 24:g} days"
    return f"{hours:g} h"
