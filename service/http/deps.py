"""FastAPI's typed dependency aliases: the context, a session, the calling principal."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from service.core.auth import Principal, authenticate
from service.core.context import ServiceContext

__all__ = [
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
