"""Photo and overlay bytes, visible under the same rule as their submissions."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import FileResponse
from sqlalchemy import select

from qc.errors import NotFound
from service.http.deps import ContextDep, PrincipalDep, SessionDep
from service.http.routes.submissions import _visible
from service.storage.orm import PhotoRow, Submission
from service.storage.store import is_sha256

router = APIRouter(tags=["photos"])

_IMMUTABLE = {"Cache-Control": "private, max-age=31536000, immutable"}
_BYTES = {"schema": {"type": "string", "format": "binary"}}
_PHOTO: dict[int | str, dict[str, Any]] = {200: {
    "description": "The photo's bytes, as uploaded (a hash may also name an overlay PNG)",
    "content": {media: _BYTES for media in ("image/jpeg", "image/png", "image/webp")}}}
_OVERLAY: dict[int | str, dict[str, Any]] = {200: {"description": "The overlay PNG", "content": {"image/png": _BYTES}}}


@router.get("/photos/{sha256}", response_class=FileResponse, responses=_PHOTO,
            summary="A photo or overlay by content hash")
def get_photo(sha256: str, ctx: ContextDep, session: SessionDep, principal: PrincipalDep) -> FileResponse:
    if not is_sha256(sha256):
        raise NotFound(f"no photo {sha256}")
    query = (
        select(PhotoRow.sha256, PhotoRow.overlay_sha256, PhotoRow.media_type)
        .join(Submission, PhotoRow.submission_seq == Submission.seq)
        .where((PhotoRow.sha256 == sha256) | (PhotoRow.overlay_sha256 == sha256))
    )
    if not principal.reads_all:
        query = query.where(Submission.node_id == principal.node_id)
    row = session.execute(query.limit(1)).first()
    if row is None or not ctx.store.exists(sha256):
        raise NotFound(f"no photo {sha256}")
    media_type = row.media_type if row.sha256 == sha256 else "image/png"
    return FileResponse(ctx.store.path(sha256), media_type=media_type, headers=_IMMUTABLE)


def _photo(session: SessionDep, principal: PrincipalDep, submission_id: str, slot: str) -> PhotoRow:
    sub = _visible(session, principal, submission_id)
    photo = next((p for p in sub.photos if p.slot == slot), None)
    if photo is None:
        raise NotFound(f"submission {submission_id} has no photo in slot {slot!r}")
    return photo


@router.get("/submissions/{submission_id}/photos/{slot}", response_class=FileResponse, responses=_PHOTO,
            summary="The photo a submission took for one slot")
def get_slot_photo(submission_id: str, slot: str, ctx: ContextDep, session: SessionDep,
                   principal: PrincipalDep) -> FileResponse:
    photo = _photo(session, principal, submission_id, slot)
    return FileResponse(ctx.store.path(photo.sha256), media_type=photo.media_type, headers=_IMMUTABLE)


@router.get("/submissions/{submission_id}/photos/{slot}/overlay", response_class=FileResponse, responses=_OVERLAY,
            summary="The annotated overlay PNG of one photo")
def get_overlay(submission_id: str, slot: str, ctx: ContextDep, session: SessionDep,
                principal: PrincipalDep) -> FileResponse:
    photo = _photo(session, principal, submission_id, slot)
    if not photo.overlay_sha256:
        raise NotFound(f"no overlay for slot {slot!r} of submission {submission_id}")
    return FileResponse(ctx.store.path(photo.overlay_sha256), media_type="image/png", headers=_IMMUTABLE)
