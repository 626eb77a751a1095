"""Request and response shapes of the HTTP API (pydantic v2).

``RecordIn`` is the JSON ``record`` part of a submission; the ``*Out`` models
document the responses in ``/openapi.json``.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = [
    "ErrorOut",
    "HealthOut",
    "MeOut",
    "PhotoOut",
    "ProblemOut",
    "RecordIn",
    "StandardDocumentOut",
    "StandardRefOut",
    "StandardSummaryOut",
    "SubmissionOut",
    "SubmissionPageOut",
]


class RecordIn(BaseModel):
    """What the technician filled in. The node comes from the token, never from here."""

    model_config = ConfigDict(extra="forbid")

    id: uuid.UUID = Field(description="client-generated UUID; the idempotency key")
    product: str = Field(min_length=1, max_length=64)
    standard_version: int | None = Field(default=None, ge=1, description="default: the current released version")
    lot: str | None = Field(default=None, max_length=100)
    unit: str | None = Field(default=None, max_length=100)
    technician: str | None = Field(default=None, max_length=200,
                                   description="the name typed on the phone; kept as entered_as (the person is "
                                   "the token's holder)")
    captured_at: dt.datetime | None = Field(default=None, description="default: when the server received it")
    answers: dict[str, Any] = Field(default_factory=dict)
    notes: str | None = Field(default=None, max_length=4000)
    location: dict[str, float] | None = None
    corrects: uuid.UUID | None = Field(default=None, description="id of an earlier record this one corrects")

    @field_validator("captured_at")
    @classmethod
    def _aware(cls, v: dt.datetime | None) -> dt.datetime | None:
        # A phone's clock without a zone is read as UTC (JavaScript's toISOString() always says Z).
        if v is not None and v.tzinfo is None:
            return v.replace(tzinfo=dt.UTC)
        return v


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
