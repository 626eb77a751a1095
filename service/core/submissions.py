"""Recording one submission: the single code path used by HTTP and in-process callers.

One straight path (nothing is written until everything is known to be valid):

1. parse the record and hash the request as sent (idempotency key content); an existing id answers
   the stored response (same content) or 409 (different);
2. resolve the standard in force (``qc.judging``: the current released version, or a replaced one within
   its offline grace) and check that captured_at is plausible;
3. intake: decode each photo once, strictly, at the size its slot needs (type, pixel limit, integrity,
   the decode memory budget), refusals naming the slot;
4. validate the answers and slots against the standard;
5. inspect each photo (``service.core.vision.inspect_photo``, handed the intake's pixels);
6. evaluate, then draw each overlay from the evaluated results of its slot;
7. build the record document (``qc.records.record_document``) and hash it;
8. write photos and overlays to the store (fsync + rename) *before*
9. one transaction inserts submission (with its document), photos, results and the audit event;
10. ... and, in that transaction, the outbox rows for post-commit work (alerts, webhook;
    ``service/core/outbox.py``), which a worker drains with retries.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from qc.errors import (
    MAX_PROBLEMS,
    Conflict,
    ImageRejected,
    InvalidInput,
    PermissionDenied,
    Problem,
    RecordAltered,
)
from qc.evaluate import CheckResult, evaluate, validate_submission
from qc.findings import PhotoFindings
from qc.judging import Published, check_captured_at, standard_in_force
from qc.records import (
    RECORD_SCHEMA,
    canonical_json,
    document_schema,
    document_sha256,
    model_identities,
    record_document,
    sha256_hex,
)
from qc.standards import Offline, Standard, Status
from service.core.auth import Principal, Role
from service.core.context import ServiceContext
from service.core.outbox import enqueue_after_submission
from service.core.schemas import RecordIn, SubmissionOut
from service.storage import repository as repo
from service.storage.orm import CheckResultRow, PhotoRow, StandardRow, Submission

if TYPE_CHECKING:
    from inspection.images import DecodedPhoto, ImageInfo
    from service.core.vision import PhotoInspection

__all__ = [
    "SubmissionOutcome",
    "parse_record",
    "record_submission",
    "recompute_record_sha256",
    "submission_view",
]

log = logging.getLogger(__name__)

_MEDIA_TYPES = {"jpeg": "image/jpeg", "png": "image/png", "webp": "image/webp"}
_T = TypeVar("_T")
_X = TypeVar("_X")


@dataclass(frozen=True)
class SubmissionOutcome:
    created: bool  # False: an identical replay answered with the stored record
    body: dict[str, Any]  # JSON-ready, exactly what the HTTP API returns


@dataclass(frozen=True)
class _Photo:
    """One photo through the path: received and decoded, then inspected, then given its overlay."""

    slot: str
    data: bytes
    sha256: str
    info: ImageInfo
    findings: PhotoFindings | None = None
    overlay_png: bytes | None = None
    overlay_sha256: str | None = None
    decoded: DecodedPhoto | None = None  # the pixels the intake decoded, for the inspection (vision on)


def parse_record(raw: bytes | str | Mapping[str, Any]) -> tuple[RecordIn, dict[str, Any]]:
    """The validated record and the JSON object as sent (for the request hash)."""
    if isinstance(raw, bytes | str):
        try:
            data = json.loads(raw)
        except (ValueError, RecursionError) as exc:  # JSONDecodeError, UnicodeDecodeError, absurd nesting
            raise InvalidInput("the record is not valid JSON", [Problem("record", str(exc))]) from None
    else:
        data = dict(raw)
    if not isinstance(data, dict):
        raise InvalidInput("the record must be a JSON object", [Problem("record", "expected an object")])
    unknown = [key for key in data if key not in RecordIn.model_fields]
    if unknown:  # named here, cheaply: pydantic's error list for 600,000 junk keys costs seconds of CPU
        known = ", ".join(RecordIn.model_fields)
        raise InvalidInput("the record is invalid", [
            Problem(f"record.{key[:100]}", f"unknown field; a record has: {known}") for key in unknown[:MAX_PROBLEMS]
        ], problems_total=len(unknown))
    try:
        record = RecordIn.model_validate(data)
    except ValidationError as exc:
        problems = [
            Problem(".".join(["record", *(str(p) for p in err["loc"])]), err["msg"]) for err in exc.errors()
        ]
        raise InvalidInput("the record is invalid", problems) from None
    return record, data


def _canonical(value: Any) -> bytes:
    try:
        return canonical_json(value)
    except Exception as exc:  # noqa: BLE001 - rfc8785 refuses NaN, huge ints, ...
        raise InvalidInput("the record cannot be canonicalised", [Problem("record", str(exc))]) from None


def _request_sha256(sent: Mapping[str, Any], node: str, photo_hashes: Mapping[str, str]) -> str:
    return sha256_hex(_canonical({"node": node, "record": sent, "photos": dict(photo_hashes)}))


def record_submission(
    ctx: ServiceContext,
    *,
    record: bytes | str | Mapping[str, Any],
    photos: Mapping[str, bytes],
    now: dt.datetime,
    principal: Principal | None = None,
    node: str | None = None,
) -> SubmissionOutcome:
    """Validate, inspect, evaluate and store one submission (see the module docstring).

    Give ``principal`` (from a token) or, for in-process callers, ``node`` by name.
    """
    rec, sent = parse_record(record)
    photo_hashes = {slot: hashlib.sha256(data).hexdigest() for slot, data in photos.items()}
    with ctx.db.session() as session:
        principal = _resolve_principal(session, principal, node)
        assert principal.node is not None and principal.node_id is not None
        request_hash = _request_sha256(sent, principal.node, photo_hashes)
        existing = repo.get_submission(session, id=str(rec.id))
        if existing is not None:
            return SubmissionOutcome(False, _replay(existing, principal, request_hash))
        std_row, standard = _resolve_standard(ctx, session, rec, now=now)
        product_id = std_row.product_id
        if rec.corrects is not None:
            _check_corrects(session, str(rec.corrects), node_id=principal.node_id, product_id=product_id,
                            product=standard.product)

    received = _per_photo(photos.items(), lambda slot, data: _intake(ctx, standard, slot, data, photo_hashes[slot]))
    answers = validate_submission(standard, rec.answers, list(photos))
    inspections = dict(_per_photo(((p.slot, p) for p in received), lambda slot, p: (slot, _inspect(ctx, standard, p))))
    verdict = evaluate(standard, answers, {p.slot: _findings(p, inspections[p.slot]) for p in received})
    inspected = [_with_overlay(p, inspections.pop(p.slot), verdict.results) for p in received]
    captured_at = rec.captured_at or now
    draft = record_document(
        id=str(rec.id), node=principal.node, product=standard.product,
        standard={"product": standard.product, "version": standard.version, "sha256": standard.sha256},
        verdict=str(verdict.verdict), minor_defects=verdict.minor_defects,
        results=[r.to_dict() for r in verdict.results],
        models=model_identities((m for p in inspected if p.findings for m in p.findings.models),
                                [r.to_dict() for r in verdict.results]),
        photos={p.slot: {"sha256": p.sha256, "overlay_sha256": p.overlay_sha256} for p in inspected},
        answers=answers, lot=rec.lot, unit=rec.unit, notes=rec.notes, location=rec.location,
        corrects=str(rec.corrects) if rec.corrects else None,
        person={"name": principal.name, "token_id": principal.token_id, "role": principal.role.value},
        entered_as=rec.technician, captured_at=_iso(captured_at), received_at=_iso(now),
    )
    canonical = _canonical(draft)
    document: dict[str, Any] = json.loads(canonical)  # exactly the JSON that was hashed (tuples are lists)
    record_hash = sha256_hex(canonical)
    node_id = principal.node_id

    def insert(session: Session) -> None:
        lot_id = None
        if rec.lot:
            lot_id = repo.get_or_create_lot(session, node_id=node_id, product_id=product_id,
                                            code=rec.lot, now=now).id
        sub = Submission(
            id=str(rec.id), node_id=node_id, product_id=product_id, standard_id=std_row.id,
            lot_id=lot_id, unit=rec.unit, technician=principal.name, token_id=principal.token_id,
            captured_at=captured_at, received_at=now, verdict=document["verdict"],
            minor_defects=document["minor_defects"], answers=document["answers"], document=document,
            request_sha256=request_hash, record_sha256=record_hash,
        )
        session.add(sub)
        session.flush()
        for photo in inspected:
            assert photo.findings is not None
            session.add(PhotoRow(
                submission_seq=sub.seq, slot=photo.slot, sha256=photo.sha256, size=len(photo.data),
                media_type=_MEDIA_TYPES[photo.info.format], width=photo.info.width, height=photo.info.height,
                overlay_sha256=photo.overlay_sha256, findings=_json_ready(photo.findings.to_dict()),
            ))
        for position, (result, data) in enumerate(zip(verdict.results, document["results"], strict=True)):
            value = result.value
            numeric = float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
            session.add(CheckResultRow(
                submission_seq=sub.seq, position=position, check_id=result.check_id, kind=result.kind,
                slot=result.slot, status=str(result.status), severity=str(result.severity),
                value=numeric, passed=None if result.status.value in ("inconclusive", "not_applicable")
                else result.status.value == "pass", detail=data,
            ))
        repo.add_audit_event(
            session, actor=principal.actor, role=principal.role.value, node_id=node_id,
            action="submission.create", subject_type="submission", subject_id=str(rec.id),
            detail={"record_sha256": record_hash, "verdict": document["verdict"],
                    "standard": f"{standard.product}@{standard.version}"}, now=now,
        )
        enqueue_after_submission(session, ctx.settings, sub, node=principal.node, product=standard.product,
                                 standard_version=standard.version, lot=rec.lot, now=now)  # alerts, webhook

    # Bytes first, rows second: a crash in between leaves an orphan file for `qc store gc`, never a row without
    # its photo. (Every refusal happened above, so a refused upload leaves no file either.) Writing on a helper
    # thread while PostgreSQL inserts the rows was tried: it made the served path slower (bench/ingest.py).
    blobs = [(p.data, p.sha256) for p in inspected]
    blobs += [(p.overlay_png, p.overlay_sha256) for p in inspected if p.overlay_png and p.overlay_sha256]
    fresh = [sha for _, sha in blobs if not ctx.store.exists(sha)]  # what this request adds to the store
    try:
        for data, sha in blobs:
            ctx.store.put(data, sha)
        for attempt in (1, 2, 3):
            try:
                with ctx.db.write_session() as session:
                    insert(session)
                break
            except IntegrityError:
                with ctx.db.session() as session:
                    existing = repo.get_submission(session, id=str(rec.id))
                    if existing is not None:  # a concurrent upload of the same id won: answer as a replay
                        return SubmissionOutcome(False, _replay(existing, principal, request_hash))
                if attempt == 3:  # otherwise a concurrent upload created the same lot first; retry finds it
                    raise
    except BaseException:
        _discard_unreferenced(ctx, fresh)  # a refused or failed request leaves no orphan file behind
        raise

    for data, sha in blobs:  # a concurrent `qc store gc` may have swept a reused orphan just before the commit
        if not ctx.store.exists(sha):
            ctx.store.put(data, sha)
    with ctx.db.session() as session:
        stored = repo.get_submission(session, id=str(rec.id))
        assert stored is not None
        return SubmissionOutcome(True, submission_view(stored))


def _discard_unreferenced(ctx: ServiceContext, hashes: Sequence[str]) -> None:
    """Delete the blobs this request wrote that no committed row references (a losing concurrent upload, a
    refused replay, a failed insert). A concurrent request that wrote the same bytes re-puts them after its
    commit, as after a `qc store gc`. If the database cannot be asked, `qc store gc` sweeps them later."""
    try:
        with ctx.db.session() as session:
            unreferenced = [sha for sha in hashes if not repo.photo_visible(session, sha256=sha, node_id=None)]
    except Exception:  # noqa: BLE001 - the original error matters more; gc will find the files
        log.warning("could not check %d new photo file(s) after a failed upload; `qc store gc` sweeps them",
                    len(hashes), exc_info=True)
        return
    for sha in unreferenced:
        ctx.store.discard(sha)


def _resolve_principal(session: Session, principal: Principal | None, node: str | None) -> Principal:
    if principal is None:
        if not node:
            raise InvalidInput("a submission needs a node", [Problem("node", "required")])
        node_row = repo.find_node(session, name=node)
        if node_row is None:
            raise InvalidInput(f"no node named {node!r}", [Problem("node", "unknown node")])
        return Principal(role=Role.TECHNICIAN, name=f"cli@{node}", node_id=node_row.id, node=node_row.name)
    if principal.node_id is None or principal.node is None:
        raise PermissionDenied(
            f"a {principal.role.value} token is not bound to a node; submit with a technician token of the node"
        )
    return principal


def _replay(existing: Submission, principal: Principal, request_hash: str) -> dict[str, Any]:
    if existing.node_id != principal.node_id or existing.request_sha256 != request_hash:
        raise Conflict(
            f"submission {existing.id} already exists with different content; records are append-only — "
            "send a new record with a new id (set 'corrects' to this id to correct it)",
            [Problem("record.id", "already used for a different record")],
        )
    return submission_view(existing)


def _check_corrects(session: Session, target: str, *, node_id: int, product_id: int, product: str) -> None:
    """A correction names an existing record of the same node and product. One message for "absent" and
    "another node's", so a technician cannot probe other nodes' record ids."""
    old = repo.get_submission(session, id=target)
    if old is None or old.node_id != node_id or old.product_id != product_id:
        raise InvalidInput(
            f"'corrects' names no {product} record of this node: {target}",
            [Problem("record.corrects", "must be the id of an earlier record of the same node and product")],
        )


def _resolve_standard(ctx: ServiceContext, session: Session, rec: RecordIn, *,
                      now: dt.datetime) -> tuple[StandardRow, Standard]:
    """The version in force for this record (``qc.judging``), never simply the one the record names."""
    rows = {r.version: r for r in repo.list_standards(session, product=rec.product)}
    if not rows:
        known = sorted({r.product.slug for r in repo.list_standards(session)})
        raise InvalidInput("the record names no usable standard", [
            Problem("record.product", f"unknown product; known: {', '.join(known) or 'none published'}")])
    released = [r for r in rows.values() if r.status == Status.RELEASED.value]
    current = max(released, key=lambda r: r.version, default=None)  # what repo.current_standard picks
    offline = repo.standard_from_row(current).offline if current is not None else Offline()
    captured_at = rec.captured_at or now
    check_captured_at(captured_at, now=now, skew=dt.timedelta(seconds=ctx.settings.clock_skew_s), offline=offline)
    version = standard_in_force(
        [Published(r.version, Status(r.status), r.released_at) for r in rows.values()],
        product=rec.product, named=rec.standard_version, captured_at=captured_at, now=now, offline=offline,
    )
    row = rows[version]
    return row, repo.standard_from_row(row)


def _per_photo(items: Iterable[tuple[str, _X]], work: Callable[[str, _X], _T]) -> list[_T]:
    """``work`` on every (slot, photo); every refusal (naming its slot) is collected before one error is raised."""
    done: list[_T] = []
    refusals: list[tuple[ImageRejected, Problem]] = []
    for slot, item in items:
        try:
            done.append(work(slot, item))
        except ImageRejected as exc:
            refusals.append((exc, Problem(f"photos.{slot}", exc.message)))
    if refusals:
        kinds = {type(exc) for exc, _ in refusals}
        cls = kinds.pop() if len(kinds) == 1 else ImageRejected
        names = ", ".join(p.field.removeprefix("photos.") for _, p in refusals)
        raise cls(f"photo refused ({names}): {refusals[0][1].reason}", [p for _, p in refusals])
    return done


def _intake(ctx: ServiceContext, standard: Standard, slot: str, data: bytes, sha256: str) -> _Photo:
    """Decode the photo once, strictly, at the size its slot's inspection needs (``service.core.decoding``): a
    truncated or lying file is refused here, vision on or off, and the width and height kept are the decoded
    ones, not the header's claim."""
    from service.core.decoding import decode_for_slot  # noqa: PLC0415 (keeps OpenCV out of CLI start-up)

    if not data:
        raise ImageRejected("the photo file is empty")
    decoded = decode_for_slot(data, standard.slot(slot), settings=ctx.settings)
    keep = decoded if ctx.settings.vision else None  # vision off: decoded only to verify, freed on return
    return _Photo(slot=slot, data=data, sha256=sha256, info=decoded.info, decoded=keep)


def _inspect(ctx: ServiceContext, standard: Standard, photo: _Photo) -> PhotoInspection | None:
    """Findings (and what the overlay is drawn from) for one photo, from the intake's pixels; None when vision
    is off."""
    if not ctx.settings.vision:
        return None
    from service.core.vision import inspect_photo  # noqa: PLC0415

    slot = standard.slot(photo.slot)
    assert slot is not None  # validate_submission refused unknown slots
    return inspect_photo(photo.data, slot, settings=ctx.settings, decoded=photo.decoded)


def _findings(photo: _Photo, inspection: PhotoInspection | None) -> PhotoFindings:
    if inspection is None:
        return PhotoFindings(slot=photo.slot, error="vision disabled (KIPIMO_VISION=off)")
    return inspection.findings


def _with_overlay(photo: _Photo, inspection: PhotoInspection | None, results: Sequence[CheckResult]) -> _Photo:
    """The photo with its findings and the overlay drawn from its slot's evaluated results."""
    findings = _findings(photo, inspection)
    if inspection is None:
        return _Photo(photo.slot, photo.data, photo.sha256, photo.info, findings)
    png = inspection.draw_overlay([r for r in results if r.slot == photo.slot])
    return _Photo(photo.slot, photo.data, photo.sha256, photo.info, findings, png, hashlib.sha256(png).hexdigest())


def _asserted(document: Mapping[str, Any]) -> dict[str, Any]:
    """notes, location, corrects and entered_as as the document asserts them (legacy: inside its record)."""
    if document_schema(document) == RECORD_SCHEMA:
        return {k: document.get(k) for k in ("notes", "location", "corrects", "entered_as")}
    legacy = document.get("record", {})
    return {"notes": legacy.get("notes"), "location": legacy.get("location"), "corrects": legacy.get("corrects"),
            "entered_as": None}  # a legacy record's "technician" may have been the token's name: unknown


def submission_view(sub: Submission) -> dict[str, Any]:
    """The JSON body for a stored submission (POST response, replay and GET are identical).

    ``document`` is the exact document ``record_sha256`` covers; the other fields are conveniences.
    """
    photos = []
    for p in sub.photos:
        quality = p.findings.get("quality") if isinstance(p.findings, dict) else None
        photos.append({
            "slot": p.slot,
            "sha256": p.sha256,
            "url": f"/api/v1/photos/{p.sha256}",
            "overlay_url": f"/api/v1/submissions/{sub.id}/photos/{p.slot}/overlay" if p.overlay_sha256 else None,
            "media_type": p.media_type,
            "width": p.width,
            "height": p.height,
            "quality": quality,
        })
    body = {
        "id": sub.id,
        "verdict": sub.verdict,
        "minor_defects": sub.minor_defects,
        "standard": {"product": sub.product.slug, "version": sub.standard.version, "sha256": sub.standard.sha256},
        "results": [r.detail for r in sub.results],
        "photos": photos,
        "record_sha256": sub.record_sha256,
        "node": sub.node.name,
        "product": sub.product.slug,
        "lot": sub.lot.code if sub.lot else None,
        "unit": sub.unit,
        "technician": sub.technician,
        "captured_at": sub.captured_at,
        "received_at": sub.received_at,
        "answers": sub.answers,
        **_asserted(sub.document),
        "document_schema": document_schema(sub.document),
        "document": sub.document,
    }
    return SubmissionOut.model_validate(body).model_dump(mode="json")


def recompute_record_sha256(sub: Submission) -> str:
    """The record hash recomputed from the stored document, after checking the rows say the same.

    Equal to ``sub.record_sha256`` unless the document was altered; raises ``RecordAltered`` naming the
    fields where a row (verdict column, results, photos, ...) no longer matches the document.
    """
    differs = [name for name, (row, doc) in _row_facts(sub).items() if _canonical(row) != _canonical(doc)]
    if differs:
        raise RecordAltered(f"submission {sub.id}: the stored rows no longer match the hashed document "
                            f"({', '.join(differs)}); the database was altered outside Kipimo",
                            [Problem(f"submission.{name}", "differs from the hashed document") for name in differs])
    return document_sha256(sub.document)


def _row_facts(sub: Submission) -> dict[str, tuple[Any, Any]]:
    """(what a row says, what the document says) for every fact both hold."""
    doc = sub.document
    results = [r.detail for r in sub.results]
    if document_schema(doc) != RECORD_SCHEMA:  # kipimo.record/1 covered the record, photos and results only
        legacy = doc.get("record", {})
        return {
            "results": (results, doc.get("results")),
            "photos": ({p.slot: p.sha256 for p in sub.photos}, doc.get("photos")),
            "answers": (sub.answers, legacy.get("answers")),
            "unit": (sub.unit, legacy.get("unit")),
            "lot": (sub.lot.code if sub.lot else None, legacy.get("lot")),
        }
    return {
        "id": (sub.id, doc.get("id")),
        "node": (sub.node.name, doc.get("node")),
        "product": (sub.product.slug, doc.get("product")),
        "standard": ({"product": sub.product.slug, "version": sub.standard.version, "sha256": sub.standard.sha256},
                     doc.get("standard")),
        "verdict": (sub.verdict, doc.get("verdict")),
        "minor_defects": (sub.minor_defects, doc.get("minor_defects")),
        "results": (results, doc.get("results")),
        "photos": ({p.slot: {"sha256": p.sha256, "overlay_sha256": p.overlay_sha256} for p in sub.photos},
                   doc.get("photos")),
        "answers": (sub.answers, doc.get("answers")),
        "lot": (sub.lot.code if sub.lot else None, doc.get("lot")),
        "unit": (sub.unit, doc.get("unit")),
        "person": ({"name": sub.technician, "token_id": sub.token_id}, _pick(doc.get("person"), "name", "token_id")),
        "captured_at": (_iso(sub.captured_at), doc.get("captured_at")),
        "received_at": (_iso(sub.received_at), doc.get("received_at")),
    }


def _pick(value: Any, *keys: str) -> Any:
    return {k: value.get(k) for k in keys} if isinstance(value, dict) else value


def _iso(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def _json_ready(value: Any) -> Any:
    """Findings as plain JSON (tuples to lists, non-finite floats to None)."""
    return json.loads(json.dumps(value, default=str), parse_constant=lambda _name: None)
