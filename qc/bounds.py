"""What every input value obeys, whichever door it came in by (HTTP body, query, YAML file, CLI).

A value that breaks one of these bounds is refused as input (422), before anything is stored, so the
two databases never disagree about it and no library deep down fails on it (a 500):

- text holds no NUL (U+0000) and no unpaired surrogate: PostgreSQL refuses both in TEXT and JSONB,
  SQLite would keep them, and UTF-8 cannot encode a surrogate at all;
- nesting is at most ``MAX_DEPTH`` containers deep (parsers and serialisers recurse);
- an id, a version or a count is at most ``MAX_INT``: the INTEGER columns of both databases
  (PostgreSQL's are 32-bit);
- a time is in the years 1–9999 *in UTC* (``0001-01-01T00:00-01:00`` is not).

Pure: no I/O.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping
from typing import Any

import yaml

from qc.errors import Problem

__all__ = ["MAX_DEPTH", "MAX_INT", "as_utc", "load_yaml", "text_problem", "value_problems"]

MAX_DEPTH = 32  # the deepest shipped standard nests 6 containers, a record 3
MAX_INT = 2**31 - 1  # PostgreSQL INTEGER; SQLite's is 64-bit


def text_problem(text: str) -> str | None:
    """Why ``text`` cannot be stored as text, or None when it can."""
    if "\x00" in text:
        return "contains a NUL character (U+0000), which text may not hold"
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            return "contains an unpaired surrogate (U+D800–U+DFFF), which is not Unicode text"
    return None


def _label(key: Any) -> str:
    return repr(key)[1:-1] if isinstance(key, str) else str(key)


def value_problems(value: Any, field: str = "", *, max_depth: int = MAX_DEPTH) -> Iterator[Problem]:
    """Every string (key or value) that is not storable text, and every container nested deeper than
    ``max_depth``, in document order. Iterative: a value nested 100,000 deep costs no recursion."""
    stack: list[tuple[Any, str, int]] = [(value, field, 0)]
    while stack:
        item, path, depth = stack.pop()
        if isinstance(item, str):
            reason = text_problem(item)
            if reason:
                yield Problem(path, reason)
            continue
        if isinstance(item, Mapping):
            children = [(k, f"{path}.{_label(k)}" if path else _label(k)) for k in item]
            values = list(item.values())
        elif isinstance(item, list | tuple):
            children = [(None, f"{path}[{i}]") for i in range(len(item))]
            values = list(item)
        else:
            continue
        if depth >= max_depth:
            yield Problem(path, f"nested deeper than {max_depth} levels")
            continue
        for (key, child_path), child in zip(reversed(children), reversed(values), strict=True):
            stack.append((child, child_path, depth + 1))
            if isinstance(key, str) and (reason := text_problem(key)):
                stack.append((key, child_path, depth + 1))  # the key's own problem, reported at its path


def as_utc(value: dt.datetime) -> dt.datetime:
    """``value`` in UTC (without a zone it is read as UTC, as a phone's ``toISOString()`` means it);
    ``ValueError`` when the instant lies outside the years 1–9999 in UTC."""
    if value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    try:
        return value.astimezone(dt.UTC)
    except OverflowError:
        raise ValueError(f"{value.isoformat()} lies outside the years 1-9999 in UTC") from None


class _BoundedLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing nesting deeper than ``MAX_DEPTH`` while it composes (its composer
    recurses: 50,000 ``[`` would exhaust the stack) and aliases (``*a`` can expand exponentially or
    refer to itself; a standard shares items with ``include:``)."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            mark = self.peek_event().start_mark
            raise yaml.composer.ComposerError(None, None, "aliases (*name) are not allowed; write the value out", mark)
        nested = self.check_event(yaml.SequenceStartEvent, yaml.MappingStartEvent)
        if nested:
            self._depth += 1
            if self._depth > MAX_DEPTH:
                raise yaml.composer.ComposerError(None, None, f"nested deeper than {MAX_DEPTH} levels",
                                                  self.peek_event().start_mark)
        try:
            return super().compose_node(parent, index)
        finally:
            if nested:
                self._depth -= 1


def load_yaml(text: str) -> Any:
    """``yaml.safe_load`` with bounded nesting and no aliases; raises ``yaml.YAMLError``."""
    loader = _BoundedLoader(text)
    try:
        return loader.get_single_data()
    except ValueError as exc:  # a scalar no Python value holds, e.g. an integer of 5,000 digits
        raise yaml.YAMLError(f"a value cannot be read: {exc}") from None
    finally:
        loader.dispose()
