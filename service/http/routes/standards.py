"""Standards: read by everyone signed in, published by managers only."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from sqlalchemy.exc import IntegrityError

from qc.errors import InvalidInput, NotFound, Problem
from qc.standards import parse_standard
from service.core.auth import Principal
from service.core.checklists import load_library
from service.core.context import ServiceContext
from service.core.schemas import ErrorOut, Id, StandardDocumentOut, StandardSummaryOut
from service.http.deps import CanPublishStandards, ContextDep, PrincipalDep, SessionDep
from service.storage import repository as repo
from service.storage.orm import StandardRow

router = APIRouter(prefix="/standards", tags=["standards"])


def summary(row: StandardRow) -> dict[str, Any]:
    return StandardSummaryOut(
        product=row.product.slug, name=row.name, version=row.version, status=row.status, sha256=row.sha256,
        released_at=row.released_at, released_by=row.released_by,
    ).model_dump(mode="json")


def document(row: StandardRow) -> dict[str, Any]:
    """``document``: the rules as parsed, defaults filled in (what apps read); ``source``: the stored input
    document, whose RFC 8785 canonical bytes hash to ``sha256`` (what an auditor verifies)."""
    standard = repo.standard_from_row(row)  # verifies the stored bytes against the hash first
    return {**summary(row), "document": standard.to_document(), "source": json.loads(standard.document_bytes)}


@router.get("", response_model=list[StandardSummaryOut], summary="Every published version")
def list_standards(session: SessionDep, _principal: PrincipalDep, product: str | None = None) -> list[dict[str, Any]]:
    return [summary(r) for r in repo.list_standards(session, product=product)]


@router.get("/{product}", response_model=StandardDocumentOut, responses={404: {"model": ErrorOut}},
            summary="The current released version of a product's standard")
def current(product: str, session: SessionDep, _principal: PrincipalDep) -> dict[str, Any]:
    row = repo.current_standard(session, product=product)
    if row is None:
        raise NotFound(f"no released standard for product {product!r}")
    return document(row)


@router.get("/{product}/versions/{version}", response_model=StandardDocumentOut,
            responses={404: {"model": ErrorOut}}, summary="One exact version")
def one_version(product: str, version: Id, session: SessionDep, _principal: PrincipalDep) -> dict[str, Any]:
    row = repo.get_standard(session, product=product, version=version)
    if row is None:
        raise NotFound(f"no version {version} of the standard for {product!r}")
    return document(row)


@router.post(
    "",
    status_code=201,
    response_model=StandardDocumentOut,
    responses={200: {"model": StandardDocumentOut, "description": "identical version already published"},
               409: {"model": ErrorOut}, 422: {"model": ErrorOut}},
    openapi_extra={"requestBody": {"required": True, "content": {
        "application/yaml": {"schema": {"type": "string"}}, "application/json": {"schema": {"type": "object"}}}}},
    summary="Publish a standard version (managers; YAML or JSON body)",
)
async def publish(request: Request, ctx: ContextDep, principal: CanPublishStandards) -> JSONResponse:
    raw = await request.body()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidInput("the standard must be UTF-8 text", [Problem("body", "not UTF-8")]) from None
    if not text.strip():
        raise InvalidInput("empty body", [Problem("body", "send the standard as YAML or JSON")])
    body, created = await run_in_threadpool(publish_text, ctx, text, principal)
    return JSONResponse(body, status_code=201 if created else 200)


def publish_text(ctx: ServiceContext, text: str, principal: Principal) -> tuple[dict[str, Any], bool]:
    standard = parse_standard(text, source="request body", library=load_library(ctx.settings.checklists_dir))
    now = ctx.clock.now()
    for attempt in (1, 2):
        try:
            with ctx.db.write_session() as session:
                row, created = repo.publish_standard(session, standard=standard, by=principal.actor,
                                                     role=principal.role.value, now=now)
                return document(row), created
        except IntegrityError:  # a concurrent publish of the same version won; compare with it
            if attempt == 2:
                raise
    raise AssertionError("unreachable")
