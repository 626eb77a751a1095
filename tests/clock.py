"""The one instant the test suite calls "now".

Every test that builds data relative to now uses ``TEST_NOW`` (or the ``ctx`` fixture's frozen
clock, set to it), never the wall clock. ``KIPIMO_TEST_NOW`` moves it, so CI can run the suite
at several instants across a week (``scripts/test_at_instants.sh``); the default is a Wednesday noon.
"""

from __future__ import annotations

import datetime as dt
import os

__all__ = ["INSTANTS", "TEST_NOW"]

# Instants CI runs the integration suite at: the edges of a week and of a month, and a plain weekday.
INSTANTS = (
    "2026-11-30T00:00:00Z",  # Monday 00:00, the first second of an ISO week
    "2026-11-25T12:00:00Z",  # Wednesday 12:00
    "2026-11-29T23:59:00Z",  # Sunday 23:59, the last minute of an ISO week
    "2026-10-31T23:30:00Z",  # a month end (and a Saturday)
)


def _parse(text: str) -> dt.datetime:
    value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        raise ValueError(f"KIPIMO_TEST_NOW={text!r} needs a time zone (e.g. a trailing Z)")
    return value.astimezone(dt.UTC)


TEST_NOW = _parse(os.environ.get("KIPIMO_TEST_NOW") or INSTANTS[1])
