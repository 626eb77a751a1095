"""Submissions: upload (technicians), read and list (scoped by node), CSV export."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, StreamingResponse

from qc.errors import InvalidInput, NotFound, Problem
from service.core import csv_export
from service.core.auth import Principal
from service.core.schemas import ErrorOut, SubmissionOut, SubmissionPageOut, UtcDateTime
from service.core.submissions import record_submission, submission_view
from service.http.deps import CanExportSubmissions, CanSubmit, ContextDep, NowDep, PrincipalDep, SessionDep
from service.http.errors import RETRY_AFTER
from service.http.multipart import read_multipart
from service.storage import repository as repo
from service.storage.orm import Submission

router = APIRouter(prefix="/submissions", tags=["submissions"])

MAX_PHOTOS = 32
PAGE_MAX = 500

_UPLOAD_DOC = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["record"],
                    "properties": {"record": {"type": "string", "description": "the record as JSON (RecordIn)"}},
                    "additionalProperties": {"type": "string", "format": "binary",
                                             "description": "one file per photo; the part name is the slot id"},
                }
            }
        },
    }
}


@router.post(
    "",
    status_code=201,
    response_model=SubmissionOut,
    responses={200: {"model": SubmissionOut, "description": "identical replay of a stored submission"},
               409: {"model": ErrorOut}, 413: {"model": ErrorOut}, 415: {"model": ErrorOut},
               422: {"model": ErrorOut},
               503: {"model": ErrorOut, "headers": RETRY_AFTER,
                     "description": "Busy: the photo decoding budget is full; retry after `Retry-After` seconds"}},
    openapi_extra=_UPLOAD_DOC,
    summary="Record one inspection (multipart: a JSON 'record' part and one file part per photo slot)",
)
async def create_submission(request: Request, ctx: ContextDep, principal: CanSubmit, now: NowDep) -> JSONResponse:
    record, photos = await _read_upload(request)
    outcome = await run_in_threadpool(
        record_submission, ctx, record=record, photos=photos, now=now, principal=principal
    )
    return JSONResponse(outcome.body, status_code=201 if outcome.created else 200)


async def _read_upload(request: Request) -> tuple[bytes, dict[str, bytes]]:
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith("multipart/form-data"):
        raise InvalidInput("send the submission as multipart/form-data",
                           [Problem("content-type", f"expected multipart/form-data, got {content_type or 'none'}")])
    parts = await read_multipart(content_type, request.stream(), max_parts=MAX_PHOTOS + 1)
    record: bytes | None = None
    photos: dict[str, bytes] = {}
    problems: list[Problem] = []
    for part in parts:
        if part.name == "record":
            if record is not None:
                problems.append(Problem("record", "sent more than once"))
            record = bytes(part.data)
        elif part.filename is None:
            problems.append(Problem(f"photos.{part.name}", "expected a file part (the photo), got a text field"))
        elif part.name in photos:
            problems.append(Problem(f"photos.{part.name}", "more than one file for this slot"))
        else:
            photos[part.name] = bytes(part.data)
    if record is None:
        problems.append(Problem("record", "missing: send the record as a JSON part named 'record'"))
    if problems:
        raise InvalidInput("the upload is incomplete or ambiguous", problems)
    assert record is not None
    return record, photos


def _visible(session: Any, principal: Principal, submission_id: str) -> Submission:
    sub = repo.get_submission(session, id=submission_id)
    # Another node's record answers exactly like a missing one: ids are not an oracle.
    if sub is None or not principal.may_see_node(sub.node_id):
        raise NotFound(f"no submission {submission_id}")
    return sub


@router.get("/{submission_id}", response_model=SubmissionOut, responses={404: {"model": ErrorOut}},
            summary="One submission with its results and photo links")
def get_submission(submission_id: str, session: SessionDep, principal: PrincipalDep) -> dict[str, Any]:
    return submission_view(_visible(session, principal, submission_id))


def _filter(principal: Principal, product: str | None, node: str | None, lot: str | None,
            verdict: str | None, since: dt.datetime | None, until: dt.datetime | None) -> repo.SubmissionFilter:
    """``since``/``until`` come as ``UtcDateTime`` parameters: in UTC, within years 1-9999 there."""
    return repo.SubmissionFilter(
        product=product, node=node, lot=lot, verdict=verdict, since=since, until=until,
        visible_node_id=None if principal.reads_all else principal.node_id,
    )


Verdict = Literal["pass", "fail", "review"]


@router.get("", response_model=SubmissionPageOut, summary="Submissions, newest first, with cursor paging")
def list_submissions(
    session: SessionDep,
    principal: PrincipalDep,
    product: str | None = None,
    node: str | None = None,
    lot: str | None = None,
    verdict: Verdict | None = None,
    since: Annotated[UtcDateTime | None, Query(description="received at or after (ISO 8601; no zone: UTC)")] = None,
    until: Annotated[UtcDateTime | None, Query(description="received before (ISO 8601; no zone: UTC)")] = None,
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=PAGE_MAX)] = 50,
) -> dict[str, Any]:
    where = _filter(principal, product, node, lot, verdict, since, until)
    before = repo.decode_cursor(cursor) if cursor else None
    rows = repo.list_submissions(session, where=where, before_seq=before, limit=limit + 1)
    page = rows[:limit]
    next_cursor = repo.encode_cursor(page[-1].seq) if len(rows) > limit else None
    return {"items": [submission_view(s) for s in page], "next_cursor": next_cursor}


csv_router = APIRouter(tags=["submissions"])


@csv_router.get("/submissions.csv", response_class=StreamingResponse,
                summary="All matching submissions as CSV (managers, auditors)",
                description="Text cells that a spreadsheet would read as a formula begin with `'` (OWASP CSV "
                            "injection). The file is complete when the response starts: a failure while it is "
                            "written is an error status, never a truncated 200 (service/core/csv_export.py).")
def export_csv(
    ctx: ContextDep,
    principal: CanExportSubmissions,
    product: str | None = None,
    node: str | None = None,
    lot: str | None = None,
    verdict: Verdict | None = None,
    since: Annotated[UtcDateTime | None, Query(description="received at or after (ISO 8601; no zone: UTC)")] = None,
    until: Annotated[UtcDateTime | None, Query(description="received before (ISO 8601; no zone: UTC)")] = None,
) -> StreamingResponse:
    where = _filter(principal, product, node, lot, verdict, since, until)
    file, size = csv_export.export_csv_file(ctx, where)  # all of it, before the status line is sent
    return StreamingResponse(csv_export.iter_file(file), media_type="text/csv; charset=utf-8",
                             headers={"Content-Disposition": 'attachment; filename="submissions.csv"',
                                      "Content-Length": str(size)})
