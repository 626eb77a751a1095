"""What a request (or an in-process caller such as ``qc demo``) needs: the context
object and FastAPI's typed dependency aliases.

``ServiceContext`` bundles settings, database and photo store; ``create_app``
keeps one on ``app.state.ctx``; the CLI opens its own with ``open_context``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from service.auth import Principal, authenticate
from service.db import Database, open_database
from service.settings import Settings
from service.store import PhotoStore

__all__ = [
    "ContextDep",
    "PrincipalDep",
    "ServiceContext",
    "SessionDep",
    "get_context",
    "get_principal",
    "get_session",
    "open_context",
]


@dataclass
class ServiceContext:
    settings: Settings
    db: Database
    store: PhotoStore

    def close(self) -> None:
        self.db.dispose()


def open_context(settings: Settings) -> ServiceContext:
    """Open the database and photo store named by ``settings`` (does not migrate)."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return ServiceContext(
        settings=settings,
        db=open_database(settings.resolved_database_url),
        store=PhotoStore(settings.photos_dir),
    )


def get_context(request: Request) -> ServiceContext:
    return request.app.state.ctx


ContextDep = Annotated[ServiceContext, Depends(get_context)]


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
