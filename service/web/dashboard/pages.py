"""The dashboard's HTML: Jinja2 templates in ``templates/`` around the SVG charts of ``figures`` (no script).

Autoescape is on for every template and a missing value is an error (``StrictUndefined``), not an empty
string. The only markup that is not escaped is the chart SVG, which ``figures`` hands over as ``Markup``
(``charts`` escapes its own text), and the style sheet inlined into the offline report. The same
templates serve the live dashboard and ``qc report``'s offline file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from service.web.dashboard import figures

__all__ = ["CSS_PATH", "TEMPLATES", "Frame", "environment", "render"]

CSS_PATH = Path(__file__).with_name("dashboard.css")
TEMPLATES = Path(__file__).with_name("templates")
# A reading with one of these words is a worry and is shown in red.
BAD_WORDS = ("above", "not capable", "beyond", "in a row", "failed", "open alert")
QUERY_KEYS = ("product", "version", "node", "since", "until", "check")


@dataclass(frozen=True)
class Frame:
    """What the header of a live page shows: who is signed in, the open alerts, the current nav entry; and the
    session's CSRF token, which every form that POSTs carries ("" when not signed in by a session)."""

    who: str = ""
    open_alerts: int = 0
    active: str = ""
    csrf: str = ""
    pending_reviews: int = 0  # records sent to review that nobody has decided yet (the Reviews entry's count)


def pct(x: float | None, digits: int = 1) -> str:
    return "–" if x is None else f"{100 * x:.{digits}f} %"


def num(x: float | None, digits: int = 2) -> str:
    return "–" if x is None else f"{x:.{digits}f}"


def stamp(iso: str | None) -> str:
    """An ISO time as ``YYYY-MM-DD HH:MM``."""
    return (iso or "")[:16].replace("T", " ")


def query(filters: dict[str, Any], **extra: Any) -> str:
    """The filters as a query string for a link (``?product=…``), without empty ones."""
    keep = {k: v for k, v in {**filters, **extra}.items() if v not in (None, "") and k in QUERY_KEYS}
    return ("?" + urlencode(keep)) if keep else ""


def is_bad_reading(line: str) -> bool:
    return any(w in line for w in BAD_WORDS)


def stylesheet() -> Markup:
    """The dashboard's own style sheet, inlined into the offline report (trusted: it is this package's file)."""
    return Markup(CSS_PATH.read_text(encoding="utf-8"))  # a file of this package, not data


def environment() -> Environment:
    env = Environment(loader=FileSystemLoader(TEMPLATES), undefined=StrictUndefined, trim_blocks=True,
                      lstrip_blocks=True, autoescape=select_autoescape(("html",), default_for_string=True,
                                                                        default=True))
    env.filters.update(pct=pct, num=num, stamp=stamp)
    env.tests["bad_reading"] = is_bad_reading
    env.globals.update(figures=figures, query=query, stylesheet=stylesheet)
    return env


ENV = environment()


def render(template: str, /, *, frame: Frame | None = None, **values: Any) -> str:
    """One page: ``template`` (a file in ``templates/``) filled with view data; ``frame`` for live pages."""
    return ENV.get_template(template).render(frame=frame or Frame(), **values)
