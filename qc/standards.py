"""Per-product quality standards: the shared, versioned rules every node applies.

A standard is a YAML/JSON document (``checklists/<product>/v<N>.yaml``). This
module validates such a document into frozen value objects. Its identity is the
SHA-256 of the RFC 8785 canonical bytes of the *resolved input document* (after
``include:`` expansion, before defaults): those bytes are what gets stored, and a
stored standard is verified as bytes before it is parsed, so a schema that grows
a defaulted field never changes who a standard is. It does no file I/O: callers
pass the parsed document and the shared item library (``checklists/_library``).
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from collections.abc import Mapping
from enum import StrEnum
from typing import Annotated, Any, Literal

import rfc8785
import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator, model_validator

from qc.bounds import MAX_INT, load_yaml, value_problems
from qc.errors import Problem, StandardAltered, StandardInvalid
from qc.findings import Feature
from qc.records import canonical_json, sha256_hex

__all__ = [
    "Severity",
    "ItemType",
    "Status",
    "DecisionRule",
    "Item",
    "DimensionCheck",
    "ModelCheck",
    "Check",
    "QualityThresholds",
    "PhotoSlot",
    "Capture",
    "SamplingSpec",
    "Offline",
    "Standard",
    "parse_standard",
    "parse_stored_standard",
]

ID_PATTERN = r"^[a-z0-9][a-z0-9_-]*$"
PRODUCT_PATTERN = r"^[a-z0-9-]+$"
# Bounds a phone can show and a hub validates quickly (the largest shipped standard: 7 items, 1 photo slot)
MAX_ITEMS = 500
MAX_PHOTO_SLOTS = 20
MAX_TEXT = 20_000  # characters of a description or prompt
MODEL_REF_PATTERN = r"^[a-z0-9][a-z0-9-]*@[0-9]+$"


class Severity(StrEnum):
    CRITICAL = "critical"
    MAJOR = "major"
    MINOR = "minor"


class ItemType(StrEnum):
    BOOLEAN = "boolean"
    NUMBER = "number"
    CHOICE = "choice"
    TEXT = "text"
    DATE = "date"


class Status(StrEnum):
    DRAFT = "draft"
    RELEASED = "released"
    RETIRED = "retired"


class DecisionRule(StrEnum):
    SIMPLE = "simple"  # accept if the measured value is inside the limits
    GUARDED = "guarded"  # ISO 14253-1: accept only if value ± U is inside the limits


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Item(_Frozen):
    """One checklist question and its acceptance rule."""

    id: str = Field(pattern=ID_PATTERN)
    prompt: str = Field(min_length=1, max_length=MAX_TEXT)
    type: ItemType
    required: bool = True
    unit: str | None = None
    min: float | None = None  # acceptance limits for numbers
    max: float | None = None
    options: tuple[str, ...] = ()
    pass_if: bool | tuple[str, ...] | None = None  # None: recorded, no acceptance rule
    severity: Severity = Severity.MAJOR
    help: str | None = None

    @model_validator(mode="after")
    def _rule_fits_type(self) -> Item:
        if self.type is ItemType.CHOICE:
            if not self.options:
                raise ValueError("a choice item needs 'options'")
            if self.pass_if is not None:
                if isinstance(self.pass_if, bool):
                    raise ValueError("'pass_if' of a choice item is a list of options")
                unknown = [o for o in self.pass_if if o not in self.options]
                if unknown:
                    raise ValueError(f"'pass_if' names options not in 'options': {unknown}")
        elif self.options:
            raise ValueError(f"'options' only applies to choice items, not {self.type}")
        if self.type is ItemType.BOOLEAN and self.pass_if is not None and not isinstance(self.pass_if, bool):
            raise ValueError("'pass_if' of a boolean item is true or false")
        if self.type not in (ItemType.BOOLEAN, ItemType.CHOICE) and self.pass_if is not None:
            raise ValueError(f"'pass_if' does not apply to {self.type} items")
        if self.type is not ItemType.NUMBER and (self.min is not None or self.max is not None):
            raise ValueError("'min'/'max' only apply to number items")
        if self.type is ItemType.NUMBER and not self.unit:
            raise ValueError("a number item needs a 'unit'")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"'min' {self.min} is above 'max' {self.max}")
        return self


class DimensionCheck(_Frozen):
    """A measured feature of the part against its tolerance."""

    id: str = Field(pattern=ID_PATTERN)
    kind: Literal["dimension"] = "dimension"
    feature: Feature
    index: int = Field(default=1, ge=1)  # n-th largest hole, for hole_diameter
    nominal: float | None = None
    tolerance: tuple[float, float] | None = None  # (lower deviation, upper deviation)
    min: float | None = None
    max: float | None = None
    unit: str = "mm"
    severity: Severity = Severity.MAJOR
    decision_rule: DecisionRule = DecisionRule.SIMPLE

    @model_validator(mode="after")
    def _limits_given(self) -> DimensionCheck:
        if self.tolerance is not None:
            if self.nominal is None:
                raise ValueError("'tolerance' needs a 'nominal'")
            if self.min is not None or self.max is not None:
                raise ValueError("give either 'tolerance' or 'min'/'max', not both")
            if self.tolerance[0] > self.tolerance[1]:
                raise ValueError(f"tolerance {list(self.tolerance)}: lower deviation is above upper")
        elif self.min is None and self.max is None:
            raise ValueError("a dimension check needs 'tolerance' (with 'nominal') or 'min'/'max'")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"'min' {self.min} is above 'max' {self.max}")
        return self

    @property
    def limits(self) -> tuple[float | None, float | None]:
        if self.tolerance is not None and self.nominal is not None:
            return self.nominal + self.tolerance[0], self.nominal + self.tolerance[1]
        return self.min, self.max


class ModelCheck(_Frozen):
    """An ONNX model's opinion of the photo, by exact model name and version."""

    id: str = Field(pattern=ID_PATTERN)
    kind: Literal["model"] = "model"
    model: str = Field(pattern=MODEL_REF_PATTERN)
    max_score: float | None = None  # anomaly: pass iff score < max_score (default: model threshold)
    # anomaly: scores from review_from up to the limit are borderline -> inconclusive (a person looks);
    # trades review work for fewer escaped defects when the model's recall at its threshold is not enough
    review_from: float | None = Field(default=None, gt=0)
    accept_labels: tuple[str, ...] = ()  # classification: pass iff top label is one of these
    reject_labels: tuple[str, ...] = ()  # detection: fail on any of these (empty: any detection)
    min_confidence: float = Field(default=0.25, ge=0.0, le=1.0)
    severity: Severity = Severity.MAJOR

    @model_validator(mode="after")
    def _review_band_below_limit(self) -> ModelCheck:
        if self.review_from is not None and self.max_score is not None and self.review_from >= self.max_score:
            raise ValueError(f"review_from {self.review_from:g} must be below max_score {self.max_score:g}")
        return self


Check = Annotated[DimensionCheck | ModelCheck, Field(discriminator="kind")]


class QualityThresholds(_Frozen):
    """Per-slot overrides of the photo quality gate's defaults (None: default)."""

    min_markers: int | None = Field(default=None, ge=1)
    min_px_per_mm: float | None = Field(default=None, gt=0)
    min_sharpness: float | None = Field(default=None, ge=0)
    max_dark_fraction: float | None = Field(default=None, ge=0, le=1)
    max_bright_fraction: float | None = Field(default=None, ge=0, le=1)
    max_glare_fraction: float | None = Field(default=None, ge=0, le=1)
    max_tilt_deg: float | None = Field(default=None, ge=0, le=90)


class PhotoSlot(_Frozen):
    id: str = Field(pattern=ID_PATTERN)
    prompt: str = Field(min_length=1, max_length=MAX_TEXT)
    required: bool = True
    min_pixels: int = Field(default=0, ge=0)
    help: str | None = None
    card: bool = True  # taken on the printed calibration card
    quality: QualityThresholds = QualityThresholds()
    # what an unusable photo (quality gate failed) makes of its own check: review by a person, or a failure
    # (evidence without which the unit must not pass, e.g. a batch's gel photo)
    on_unusable: Literal["review", "fail"] = "review"
    checks: tuple[Check, ...] = ()

    @model_validator(mode="after")
    def _dimensions_need_card(self) -> PhotoSlot:
        if not self.card and any(isinstance(c, DimensionCheck) for c in self.checks):
            raise ValueError("dimension checks need the calibration card ('card: true')")
        return self


class Capture(_Frozen):
    """How the phone prepares photos before upload."""

    long_side: int = Field(default=3000, ge=320, le=12000)
    jpeg_quality: float = Field(default=0.9, gt=0, le=1)
    location: bool = False  # send GPS position only when the standard asks


class Offline(_Frozen):
    """How long records captured offline stay acceptable (``qc.judging``); the current version's policy rules."""

    # a replaced version still judges records captured while it was current, for this long after the
    # replacement (phones that were offline); 0 for a fix that must apply at once
    grace_hours: float = Field(default=24, ge=0, le=24 * 90)
    max_age_days: float = Field(default=14, gt=0, le=366)  # oldest captured_at accepted

    @property
    def grace(self) -> dt.timedelta:
        return dt.timedelta(hours=self.grace_hours)

    @property
    def max_age(self) -> dt.timedelta:
        return dt.timedelta(days=self.max_age_days)


class SamplingSpec(_Frozen):
    scheme: Literal["iso2859-1"] = "iso2859-1"
    inspection_level: Literal["I", "II", "III", "S-1", "S-2", "S-3", "S-4"] = "II"
    aql: dict[Severity, float] = Field(default_factory=dict)


class Standard(_Frozen):
    product: str = Field(pattern=PRODUCT_PATTERN)
    name: str = Field(min_length=1)
    version: int = Field(ge=1, le=MAX_INT)
    status: Status = Status.RELEASED
    supersedes: int | None = None
    description: str = Field(default="", max_length=MAX_TEXT)
    items: tuple[Item, ...] = Field(default=(), max_length=MAX_ITEMS)
    photos: tuple[PhotoSlot, ...] = Field(default=(), max_length=MAX_PHOTO_SLOTS)
    capture: Capture = Capture()
    sampling: SamplingSpec | None = None
    offline: Offline = Offline()
    # The canonical bytes this standard was parsed from; set only by the parse functions below.
    _document: bytes | None = PrivateAttr(default=None)

    @field_validator("supersedes")
    @classmethod
    def _supersedes_earlier(cls, v: int | None) -> int | None:
        if v is not None and v < 1:
            raise ValueError("'supersedes' is an earlier version number")
        return v

    @model_validator(mode="after")
    def _ids_unique(self) -> Standard:
        if self.supersedes is not None and self.supersedes >= self.version:
            raise ValueError(f"version {self.version} cannot supersede version {self.supersedes}")
        check_ids = [i.id for i in self.items] + [c.id for p in self.photos for c in p.checks]
        slot_ids = [p.id for p in self.photos]
        for kind, ids in (("check/item", check_ids), ("photo slot", slot_ids)):
            dupes = sorted(i for i, n in Counter(ids).items() if n > 1)  # linear: standards can be large
            if dupes:
                raise ValueError(f"duplicate {kind} ids: {dupes}")
        if not self.items and not self.photos:
            raise ValueError("a standard needs at least one item or photo slot")
        return self

    @property
    def document_bytes(self) -> bytes:
        """RFC 8785 bytes of the resolved input document: what is stored and what the identity hashes."""
        if self._document is None:
            raise TypeError("this Standard was not made by parse_standard, so it has no identity")
        return self._document

    @property
    def sha256(self) -> str:
        """The standard's identity: SHA-256 of ``document_bytes`` (never of this parsed, defaulted model)."""
        return sha256_hex(self.document_bytes)

    def to_document(self) -> dict[str, Any]:
        """The parsed rules, defaults filled in, as plain JSON values (what apps read; not the identity)."""
        return self.model_dump(mode="json")

    def same_rules(self, other: Standard) -> bool:
        """True when both say the same thing, whatever their input documents spelled out or left to defaults."""
        return self.model_dump() == other.model_dump()

    def item(self, item_id: str) -> Item | None:
        return next((i for i in self.items if i.id == item_id), None)

    def slot(self, slot_id: str) -> PhotoSlot | None:
        return next((p for p in self.photos if p.id == slot_id), None)


def parse_standard(
    doc: Mapping[str, Any] | str,
    *,
    source: str = "<input>",
    library: Mapping[str, Mapping[str, Any]] | None = None,
) -> Standard:
    """Validate a standard document (mapping or YAML/JSON text).

    ``include: [name, ...]`` prepends the items of ``library[name]`` (the
    shared question sets in ``checklists/_library``). Raises ``StandardInvalid``
    whose problems name ``source`` and the field path. The result's identity
    (``sha256``) is the hash of the resolved document's canonical bytes.
    """
    if isinstance(doc, str):
        try:
            doc = load_yaml(doc)  # bounded nesting, no aliases
        except yaml.YAMLError as exc:
            raise StandardInvalid(f"{source}: not valid YAML or JSON", [Problem("", str(exc))]) from exc
    if not isinstance(doc, Mapping):
        raise StandardInvalid(f"{source}: a standard is a mapping of fields", [Problem("", "expected a mapping")])
    problems = list(value_problems(doc))  # NUL in text, nesting beyond qc.bounds.MAX_DEPTH
    if problems:
        raise StandardInvalid(f"{source}: invalid standard", problems)
    resolved = _resolve_includes(dict(doc), source=source, library=library or {})
    standard = _validate(resolved, source=source)
    try:
        document = canonical_json(resolved)
    except rfc8785.CanonicalizationError as exc:  # e.g. an unquoted YAML date, NaN, an integer beyond 2**53
        raise StandardInvalid(f"{source}: invalid standard", [Problem("", f"not plain JSON: {exc}")]) from None
    standard._document = document
    return standard


def parse_stored_standard(document: bytes, *, sha256: str) -> Standard:
    """A stored standard: verify its bytes against its identity, then parse them.

    The identity is the stored hash of the stored bytes, never recomputed from the
    parsed model, so defaults the schema adds later cannot change it.
    """
    actual = sha256_hex(document)
    if actual != sha256:
        raise StandardAltered(f"stored standard {sha256[:12]}… does not match its bytes (sha256 {actual[:12]}…); "
                              "the database was altered outside Kipimo")
    standard = _validate(json.loads(document), source=f"stored standard {sha256[:12]}…")
    standard._document = document
    return standard


def _validate(resolved: Mapping[str, Any], *, source: str) -> Standard:
    try:
        return Standard.model_validate(resolved)
    except ValidationError as exc:
        problems = [
            Problem(_field_path(resolved, err["loc"]), err["msg"].removeprefix("Value error, "))
            for err in exc.errors()
        ]
        raise StandardInvalid(f"{source}: invalid standard", problems) from None


def _resolve_includes(doc: dict[str, Any], *, source: str, library: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    includes = doc.pop("include", None) or []
    if not isinstance(includes, list):
        raise StandardInvalid(f"{source}: invalid standard", [Problem("include", "expected a list of library names")])
    items: list[Any] = []
    for name in includes:
        if not isinstance(name, str):
            raise StandardInvalid(f"{source}: invalid standard",
                                  [Problem("include", f"expected library names, got a {type(name).__name__}")])
        entry = library.get(name)
        if entry is None:
            known = ", ".join(sorted(library)) or "none"
            raise StandardInvalid(
                f"{source}: invalid standard",
                [Problem("include", f"no library set '{name}' in checklists/_library (known: {known})")],
            )
        items.extend(entry.get("items") or [])
    own = doc.get("items") or []
    if not isinstance(own, list):
        raise StandardInvalid(f"{source}: invalid standard", [Problem("items", "expected a list")])
    if includes:
        doc["items"] = items + own
    return doc


def _field_path(doc: Mapping[str, Any], loc: tuple[Any, ...]) -> str:
    """'photos[0].checks[1].tolerance' plus the id where one exists, for humans."""
    parts: list[str] = []
    node: Any = doc
    after_index = False
    for key in loc:
        skip_tag = after_index and isinstance(node, Mapping) and node.get("kind") == key
        after_index = isinstance(key, int)
        if skip_tag:
            continue  # pydantic's discriminator tag after a list index, not a real field
        if isinstance(key, int):
            label = f"[{key}]"
            if isinstance(node, list) and key < len(node) and isinstance(node[key], Mapping) and "id" in node[key]:
                label = f"[{key}:{node[key]['id']}]"
            parts.append(label)
            node = node[key] if isinstance(node, list) and key < len(node) else None
        else:
            parts.append(("." if parts else "") + str(key))
            node = node.get(key) if isinstance(node, Mapping) else None
    return "".join(parts)
