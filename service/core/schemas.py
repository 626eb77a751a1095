"""Request and response shapes of the HTTP API (pydantic v2).

``RecordIn`` is the JSON ``record`` part of a submission; the ``*Out`` models
document the responses in ``/openapi.json``.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

from qc.bounds import MAX_INT, as_utc, value_problems

__all__ = [
    "ErrorOut",
    "HealthOut",
    "Id",
    "InputModel",
    "MeOut",
    "PhotoOut",
    "ProblemOut",
    "RecordIn",
    "StandardDocumentOut",
    "StandardRefOut",
    "StandardSummaryOut",
    "SubmissionOut",
    "SubmissionPageOut",
    "UtcDateTime",
]

# The input bounds of qc.bounds as types, for request models and path/query parameters alike.
Id = Annotated[int, Field(ge=1, le=MAX_INT)]
"""An id or a version number: what an INTEGER column of both databases holds (1 to 2**31 - 1)."""


_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def _iso_only(value: Any) -> Any:
    # pydantic would read a number as a Unix time; the API promises ISO 8601 only
    if (isinstance(value, int | float) and not isinstance(value, bool)) or (
            isinstance(value, str) and _NUMBER.fullmatch(value.strip())):
        raise PydanticCustomError("datetime_format", "expected an ISO 8601 date or time such as "
                                  "2026-01-31 or 2026-01-31T08:00:00Z, not a number")
    return value


def _in_utc(value: dt.datetime) -> dt.datetime:
    try:
        return as_utc(value)
    except ValueError as exc:
        raise PydanticCustomError("datetime_range", str(exc)) from None


UtcDateTime = Annotated[dt.datetime, BeforeValidator(_iso_only), AfterValidator(_in_utc)]
"""An ISO 8601 time, in UTC (no zone: read as UTC) and within the years 1-9999 there (``qc.bounds.as_utc``)."""


class InputModel(BaseModel):
    """Base of every request body: each field's value, however nested, holds storable text only and
    nests at most ``qc.bounds.MAX_DEPTH`` deep (checked before the field's own type, so ``answers`` and
    other free-form fields are covered too; ``qc.bounds.value_problems``)."""

    @field_validator("*", mode="before")
    @classmethod
    def _bounded(cls, value: Any, info: ValidationInfo) -> Any:
        problem = next(value_problems(value, info.field_name or ""), None)
        if problem is None:
            return value
        if problem.field == info.field_name:
            raise PydanticCustomError("storable_value", "{reason}", {"reason": problem.reason})
        raise PydanticCustomError("storable_value", "{reason} (at {field})",
                                  {"reason": problem.reason, "field": problem.field})


class RecordIn(InputModel):
    """What the technician filled in. The node comes from the token, never from here."""

    model_config = ConfigDict(extra="forbid")

    id: uuid.UUID = Field(description="client-generated UUID; the idempotency key")
    product: str = Field(min_length=1, max_length=64)
    standard_version: Id | None = Field(default=None, description="default: the current released version")
    lot: str | None = Field(default=None, max_length=100)
    unit: str | None = Field(default=None, max_length=100)
    technician: str | None = Field(default=None, max_length=200,
                                   description="the name typed on the phone; kept as entered_as (the person is "
                                   "the token's holder)")
    captured_at: UtcDateTime | None = Field(default=None, description="default: when the server received it")
    answers: dict[str, Any] = Field(default_factory=dict)
    notes: str | None = Field(default=None, max_length=4000)
    location: dict[str, float] | None = None
    corrects: uuid.UUID | None = Field(default=None, description="id of an earlier record this one corrects")


class ProblemOut(BaseModel):
    field: str
    reason: str


class ErrorOut(BaseModel):
    error: str
    problems: list[ProblemOut] = []
    problems_total: int | None = None  # present when more problems were found than listed


class StandardRefOut(BaseModel):
    product: str
    version: int
    sha256: str


class PhotoOut(BaseModel):
    slot: str
    sha256: str
    url: str
    overlay_url: str | None
    media_type: str
    width: int
    height: int
    quality: dict[str, Any] | None = None


class SubmissionOut(BaseModel):
    id: str
    verdict: Literal["pass", "fail", "review"]
    minor_defects: int
    standard: StandardRefOut
    results: list[dict[str, Any]]
    photos: list[PhotoOut]
    record_sha256: str
    node: str
    product: str
    lot: str | None
    unit: str | None
    technician: str = Field(description="the person: the name of the token that submitted")
    captured_at: dt.datetime
    received_at: dt.datetime
    answers: dict[str, Any]
    notes: str | None = None
    location: dict[str, float] | None = None
    corrects: str | None = None
    entered_as: str | None = Field(default=None, description="the name the phone entered, if any (not verified)")
    document_schema: str = Field(description="kipimo.record/2; kipimo.record/1 for records hashed before it")
    document: dict[str, Any] = Field(description="the exact document record_sha256 covers: "
                                     "record_sha256 = SHA-256 of its RFC 8785 canonical JSON")


class SubmissionPageOut(BaseModel):
    items: list[SubmissionOut]
    next_cursor: str | None


class StandardSummaryOut(BaseModel):
    product: str
    name: str
    version: int
    status: str
    sha256: str
    released_at: dt.datetime
    released_by: str


class StandardDocumentOut(StandardSummaryOut):
    document: dict[str, Any]  # the parsed rules, defaults filled in
    source: dict[str, Any]  # the stored input document: sha256 is the SHA-256 of its RFC 8785 bytes


class HealthOut(BaseModel):
    status: str
    database: str
    version: str


class MeOut(BaseModel):
    role: str
    name: str
    node: str | None
