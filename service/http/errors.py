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
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from qc.errors import MAX_PROBLEMS, AuthenticationFailed, KipimoError, Problem, ServerBusy, TooManyRequests
from service.core.schemas import ErrorOut

__all__ = [
    "MAX_PROBLEMS", "RETRY_AFTER", "document_errors", "error_body", "error_response", "install_error_handlers",
]

log = logging.getLogger(__name__)


def error_body(message: str, problems: Iterable[Problem] = (), *, total: int | None = None) -> dict[str, object]:
    """``{"error", "problems"}``; beyond ``MAX_PROBLEMS``, the first ones and ``problems_total``
    (``total``: the count when ``problems`` holds only the first ones)."""
    shown: list[dict[str, str]] = []
    counted = 0
    for p in problems:
        counted += 1
        if counted <= MAX_PROBLEMS:
            shown.append({"field": p.field, "reason": p.reason})
    total = max(counted, total or 0)
    body: dict[str, object] = {"error": message, "problems": shown}
    if total > MAX_PROBLEMS:
        body["problems_total"] = total
    return body


def error_response(exc: KipimoError) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if isinstance(exc, AuthenticationFailed) else None
    if isinstance(exc, ServerBusy | TooManyRequests):
        headers = {"Retry-After": str(exc.retry_after_s)}
    return JSONResponse(error_body(exc.message, exc.problems, total=exc.problems_total), status_code=exc.status_code,
                        headers=headers)


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


# --- the refusals in /openapi.json ------------------------------------------------------------------------

_ERROR_DESCRIPTIONS = {
    400: "Malformed request: an unreadable body or Content-Length header",
    401: "No token, or an unknown or revoked one",
    403: "The token's role may not do this",
    404: "Not found, or not visible to this token",
    409: "Conflicts with what is stored: the same id or version with different content",
    413: "The body, or a photo's pixel count, is above the limit",
    415: "A photo of an unsupported type",
    422: "Invalid input: `problems` names each field and why",
    429: "Too many failed sign-ins from this client: retry after `Retry-After` seconds",
}
RETRY_AFTER = {"Retry-After": {"description": "seconds to wait before the next try", "schema": {"type": "integer"}}}
_HEADERS = {
    401: {"WWW-Authenticate": {"description": "`Bearer`", "schema": {"type": "string"}}},
    429: RETRY_AFTER,
}


def _refusals(operation: dict[str, Any]) -> set[int]:
    """The error statuses an operation can answer, read from its own OpenAPI entry; a route's or router's
    ``responses=`` add what cannot be read so (404 of a lookup by filter, 409, 415)."""
    codes = {422}  # every route: the URL check (service.http.deps.storable_url), and its parameters if any
    security = operation.get("security") or []
    if security:  # a token is read: 401 without a good one, 429 after too many bad ones
        codes |= {401, 429}
    if any(roles for requirement in security for roles in requirement.values()):  # Allowed gates list roles
        codes.add(403)
    if any(p.get("in") == "path" for p in operation.get("parameters", [])):
        codes.add(404)
    if "requestBody" in operation:  # unreadable body or Content-Length (400), BodySizeLimit (413)
        codes |= {400, 413}
    return codes


def document_errors(app: FastAPI) -> None:
    """Make ``app.openapi()`` list, for every operation, each refusal it can answer, all with the one
    error body (``ErrorOut``) in place of FastAPI's default 422 schema. Call once the routes are added.
    (405 belongs to a path, not to one of its operations: it is answered, with ``Allow``, for a method the
    path lacks.) Other statuses (a 503) stay as their routes declare them."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = generate()
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        error_schema = ErrorOut.model_json_schema(ref_template="#/components/schemas/{model}")
        components.update(error_schema.pop("$defs", {}))
        components["ErrorOut"] = error_schema
        body = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorOut"}}}
        for operations in schema.get("paths", {}).values():
            for operation in operations.values():
                responses = operation.setdefault("responses", {})
                declared = {int(code) for code in responses if code.isdigit() and int(code) in _ERROR_DESCRIPTIONS}
                for code in _refusals(operation) | declared:
                    entry = responses.setdefault(str(code), {})
                    entry["description"] = _ERROR_DESCRIPTIONS[code]
                    entry["content"] = body
                    if code in _HEADERS:
                        entry["headers"] = _HEADERS[code]
                operation["responses"] = dict(sorted(responses.items()))
        for unused in ("HTTPValidationError", "ValidationError"):  # FastAPI's 422 body, which Kipimo never sends
            components.pop(unused, None)
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
