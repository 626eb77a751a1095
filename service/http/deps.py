"""FastAPI's typed dependency aliases: the context, a session, the calling principal, and who may do what.

Routes never check roles by hand: a route that needs a role takes its principal as one of the ``Can…``
aliases below (an ``Allowed`` gate), so the policy is this one table and a refusal (403) always reads
"a <role> token may not <action> (allowed: ...)".
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from service.core.auth import Principal, Role, authenticate, require_role
from service.core.context import ServiceContext

__all__ = [
    "READERS",
    "Allowed",
    "CanAcknowledgeAlerts",
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
]


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
    with ctx.db.session() as session:
        return authenticate(session, request.headers.get("authorization"))


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

CanReadAnalytics = Annotated[Principal, Depends(read_analytics)]
CanAcknowledgeAlerts = Annotated[Principal, Depends(acknowledge_alerts)]
CanSubmit = Annotated[Principal, Depends(submit)]
CanExportSubmissions = Annotated[Principal, Depends(export_submissions)]
CanPublishStandards = Annotated[Principal, Depends(publish_standards)]
