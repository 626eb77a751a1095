"""FastAPI's typed dependency aliases: the context, a session, the calling principal, and who may do what.

Routes never check roles by hand: a route that needs a role takes its principal as one of the ``Can…``
aliases below (an ``Allowed`` gate), so the policy is this one table and a refusal (403) always reads
"a <role> token may not <action> (allowed: ...)".
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from qc.bounds import text_problem
from qc.errors import AuthenticationFailed, InvalidInput, Problem
from service.core.auth import Principal, Role, authenticate, require_role
from service.core.context import ServiceContext
from service.http.ratelimit import auth_limiter, client_key

__all__ = [
    "READERS",
    "Allowed",
    "CanAcknowledgeAlerts",
    "CanDecideReviews",
    "CanExportSubmissions",
    "CanPublishStandards",
    "CanReadAnalytics",
    "CanSubmit",
    "ContextDep",
    "NowDep",
    "PrincipalDep",
    "ServiceContext",
    "SessionDep",
    "get_context",
    "get_principal",
    "get_session",
    "storable_url",
]


def storable_url(request: Request) -> None:
    """Every path and query parameter holds text a database can store (``qc.bounds.text_problem``: no NUL).

    One check for every route (``create_app`` makes it an app-wide dependency), so no parameter is missed;
    request bodies are checked by ``service.core.schemas.InputModel`` and ``qc.standards.parse_standard``.
    """
    params = [*request.path_params.items(), *request.query_params.multi_items()]
    problems = [Problem(name, reason) for name, value in params
                if isinstance(value, str) and (reason := text_problem(value))]
    if problems:
        raise InvalidInput("the URL holds characters no text may contain", problems)


def get_context(request: Request) -> ServiceContext:
    return request.app.state.ctx


ContextDep = Annotated[ServiceContext, Depends(get_context)]


def get_now(ctx: ContextDep) -> dt.datetime:
    """The request's time, from the context's clock (frozen in tests)."""
    return ctx.clock.now()


NowDep = Annotated[dt.datetime, Depends(get_now)]


def get_session(ctx: ContextDep) -> Iterator[Session]:
    with ctx.db.session() as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]


_bearer = HTTPBearer(auto_error=False, description="a token from `qc tokens create`")


def get_principal(
    ctx: ContextDep,
    request: Request,
    _credentials: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)] = None,
) -> Principal:
    # The header is read here (not from HTTPBearer) so every failure has the one error shape.
    return authenticate_counted(ctx, request, request.headers.get("authorization"))


def authenticate_counted(ctx: ServiceContext, request: Request, presented: str | None) -> Principal:
    """``authenticate``, a wrong credential counted against the client's failure budget: once it is spent, wrong
    credentials get 429 while valid ones still pass (the API, the dashboard's header path and its sign-in form)."""
    try:
        with ctx.db.session() as session:
            return authenticate(session, presented)
    except AuthenticationFailed:
        if presented:  # a wrong credential (a missing one guesses nothing): 429 once this address has too many
            limiter, key, now = auth_limiter(request), client_key(request), ctx.now()
            limiter.refuse_if_limited(key, now)
            limiter.record_failure(key, now)
        raise


PrincipalDep = Annotated[Principal, Depends(get_principal)]


class Allowed:
    """A dependency that answers the caller's principal when it holds one of ``roles``, else 403 naming
    ``action``. ``check`` applies the same rule where a dependency cannot (the dashboard's pages)."""

    def __init__(self, *roles: Role, action: str) -> None:
        self.roles = roles
        self.action = action

    def check(self, principal: Principal) -> Principal:
        require_role(principal, *self.roles, action=self.action)
        return principal

    def allows(self, principal: Principal) -> bool:
        return principal.role in self.roles

    def __call__(self, principal: PrincipalDep) -> Principal:
        return self.check(principal)


READERS = (Role.MANAGER, Role.AUDITOR, Role.ADMIN)
read_analytics = Allowed(*READERS, action="read the network's analytics")
acknowledge_alerts = Allowed(Role.MANAGER, Role.ADMIN, action="acknowledge alerts")
submit = Allowed(Role.TECHNICIAN, action="submit inspection records")
export_submissions = Allowed(*READERS, action="export submissions")
publish_standards = Allowed(Role.MANAGER, action="publish standards")
decide_reviews = Allowed(Role.MANAGER, Role.ADMIN, action="decide reviews")


def _gate(allowed: Allowed) -> Any:
    # Security (not Depends) so /openapi.json lists the roles on the bearer scheme (OpenAPI 3.1 role
    # names), which is how service.http.errors.document_errors knows the operation can answer 403.
    return Security(allowed, scopes=[role.value for role in allowed.roles])


CanReadAnalytics = Annotated[Principal, _gate(read_analytics)]
CanAcknowledgeAlerts = Annotated[Principal, _gate(acknowledge_alerts)]
CanSubmit = Annotated[Principal, _gate(submit)]
CanExportSubmissions = Annotated[Principal, _gate(export_submissions)]
CanPublishStandards = Annotated[Principal, _gate(publish_standards)]
CanDecideReviews = Annotated[Principal, _gate(decide_reviews)]
