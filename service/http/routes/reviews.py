"""Reviews: the queue of records sent to review (scoped by node) and a person's decision on one."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Query
from pydantic import BaseModel, ConfigDict, Field, field_validator

from service.core import reviews
from service.core.schemas import ErrorOut, InputModel
from service.http.deps import CanDecideReviews, ContextDep, NowDep, PrincipalDep, SessionDep
from service.storage import repository as repo

__all__ = ["ReviewDecisionIn", "router"]

router = APIRouter(prefix="/reviews", tags=["reviews"])
PAGE_MAX = 500


class ReviewDecisionIn(InputModel):
    model_config = ConfigDict(extra="forbid")  # a misspelt field is an error, not a silently missing one

    decision: Literal["pass", "fail"] = Field(description="the disposition of the unit")
    reason: str = Field(min_length=1, max_length=4000, description="why: what was looked at, what was found")

    @field_validator("reason")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("say why (not only spaces)")
        return value


class ReviewPageOut(BaseModel):
    items: list[dict[str, Any]]
    next_cursor: str | None


@router.get("", response_model=ReviewPageOut,
            summary="Records sent to review, newest first (pending by default); technicians see their node's")
def list_reviews(
    session: SessionDep,
    principal: PrincipalDep,
    status: Annotated[Literal["pending", "decided", "all"], Query(description="pending: nobody decided it yet")]
    = "pending",
    product: str | None = None,
    node: str | None = None,
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=PAGE_MAX)] = 50,
) -> dict[str, Any]:
    where = reviews.ReviewFilter(status=status, product=product, node=node,
                                 visible_node_id=None if principal.reads_all else principal.node_id)
    before = repo.decode_cursor(cursor) if cursor else None
    items, more = reviews.list_reviews(session, where=where, before_seq=before, limit=limit)
    return {"items": items, "next_cursor": repo.encode_cursor(more) if more is not None else None}


@router.post("/{submission_id}/decision", status_code=201,
             responses={404: {"model": ErrorOut}, 409: {"model": ErrorOut}},
             summary="Settle a review as pass or fail with a reason (managers, admins); a later decision "
                     "supersedes the earlier one")
def decide(submission_id: str, ctx: ContextDep, principal: CanDecideReviews, now: NowDep,
           body: Annotated[ReviewDecisionIn, Body()]) -> dict[str, Any]:
    return reviews.decide_review(ctx, submission_id=submission_id, decision=body.decision, reason=body.reason,
                                 principal=principal, now=now)
