"""Health (no auth) and who-am-I."""

from __future__ import annotations

from importlib import metadata

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text

from service.core.schemas import HealthOut, MeOut
from service.http.deps import ContextDep, PrincipalDep

router = APIRouter(tags=["meta"])


def kipimo_version() -> str:
    try:
        return metadata.version("kipimo")
    except metadata.PackageNotFoundError:  # running from a bare checkout
        return "0+unknown"


@router.get("/health", response_model=HealthOut,
            responses={503: {"model": HealthOut, "description": "The database does not answer"}},
            summary="Liveness and database reachability (no token needed)")
def health(ctx: ContextDep) -> JSONResponse:
    body = {"status": "ok", "database": ctx.db.backend, "version": kipimo_version()}
    try:
        with ctx.db.session() as session:
            session.execute(text("SELECT 1"))
    except Exception:  # noqa: BLE001 - report, do not crash the probe
        body["status"] = "database unavailable"
        return JSONResponse(body, status_code=503)
    return JSONResponse(body)


@router.get("/me", response_model=MeOut, summary="Who the token belongs to")
def me(principal: PrincipalDep) -> MeOut:
    return MeOut(role=principal.role.value, name=principal.name, node=principal.node)
