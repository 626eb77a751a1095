"""The one place errors become HTTP responses.

Every refusal has the same JSON shape::

    {"error": "what went wrong, in words", "problems": [{"field": "answers.x", "reason": "..."}]}

(at most ``MAX_PROBLEMS`` problems; when there were more, ``problems_total`` counts them all.)

``qc.errors.KipimoError`` subclasses carry their own status code; FastAPI's
request validation errors and Starlette's HTTP exceptions (404 route, 405)
are mapped into the same shape; anything unexpected is logged and answered
with a 500 that leaks no internals.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from qc.errors import AuthenticationFailed, KipimoError, Problem

__all__ = ["MAX_PROBLEMS", "error_body", "error_response", "install_error_handlers"]

log = logging.getLogger(__name__)


MAX_PROBLEMS = 50  # a body with 600,000 bad keys gets the first 50 problems and their count, not 100 MB


def error_body(message: str, problems: Iterable[Problem] = ()) -> dict[str, object]:
    """``{"error", "problems"}``; beyond ``MAX_PROBLEMS``, the first ones and ``problems_total``."""
    shown: list[dict[str, str]] = []
    total = 0
    for p in problems:
        total += 1
        if total <= MAX_PROBLEMS:
            shown.append({"field": p.field, "reason": p.reason})
    body: dict[str, object] = {"error": message, "problems": shown}
    if total > MAX_PROBLEMS:
        body["problems_total"] = total
    return body


def error_response(exc: KipimoError) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if isinstance(exc, AuthenticationFailed) else None
    return JSONResponse(error_body(exc.message, exc.problems), status_code=exc.status_code, headers=headers)


def _loc_to_field(loc: Iterable[object]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in ("body", "query", "path", "header"):
        parts = parts[1:] or parts
    return ".".join(parts)


async def _kipimo_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, KipimoError)
    if exc.status_code >= 500:
        log.error("server-side problem: %s", exc)
    return error_response(exc)


async def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = [Problem(_loc_to_field(err.get("loc", ())), str(err.get("msg", "invalid"))) for err in exc.errors()]
    return JSONResponse(error_body("invalid request", problems), status_code=422)


async def _http_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    message = exc.detail if isinstance(exc.detail, str) else "request refused"
    return JSONResponse(error_body(message), status_code=exc.status_code, headers=exc.headers)


async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error", exc_info=exc)
    return JSONResponse(error_body("internal error; the server log has the details"), status_code=500)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(KipimoError, _kipimo_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
