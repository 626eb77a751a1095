"""Record documents and their hashes: what makes a record provably unchanged.

A record's hash is ``sha256(rfc8785(document))``. The document (``record_document``) holds everything
the record asserts: who (the token holder; what the phone typed as a name is kept as ``entered_as``),
where (node, location), when (captured, received), what was inspected (product, lot, unit, answers,
photo and overlay hashes per slot), against what (the standard's and every model's identity) and the
outcome (every result, the minor defects and the verdict). The service stores the document as it was
hashed and serves it, so anyone can recompute the hash from the API response with ``hashlib`` and
``rfc8785`` alone.

``schema`` names the document's shape. Records hashed before it existed (``kipimo.record/1``: the
client's record, the standard hash, the photo hashes and the results, without verdict, person or model
identities) are stored exactly as they were hashed, without a ``schema`` key, so their hashes still
recompute; ``document_schema`` reads both.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import rfc8785

from qc.findings import ModelResult

__all__ = [
    "LEGACY_SCHEMA",
    "RECORD_SCHEMA",
    "canonical_json",
    "document_schema",
    "document_sha256",
    "legacy_record_document",
    "model_identities",
    "record_document",
    "sha256_hex",
]

RECORD_SCHEMA = "kipimo.record/2"
LEGACY_SCHEMA = "kipimo.record/1"  # documents without a "schema" key


def canonical_json(obj: Any) -> bytes:
    """RFC 8785 (JSON Canonicalization Scheme) bytes of ``obj``."""
    return rfc8785.dumps(obj)


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def document_sha256(document: Mapping[str, Any]) -> str:
    """The record hash: SHA-256 of the document's RFC 8785 bytes (any schema)."""
    return sha256_hex(canonical_json(document))


def document_schema(document: Mapping[str, Any]) -> str:
    return str(document.get("schema", LEGACY_SCHEMA))


def record_document(
    *,
    id: str,
    node: str,
    product: str,
    standard: Mapping[str, Any],
    verdict: str,
    minor_defects: int,
    results: Sequence[Mapping[str, Any]],
    models: Sequence[Mapping[str, Any]],
    photos: Mapping[str, Mapping[str, str | None]],
    answers: Mapping[str, Any],
    lot: str | None,
    unit: str | None,
    notes: str | None,
    location: Mapping[str, float] | None,
    corrects: str | None,
    person: Mapping[str, Any],
    entered_as: str | None,
    captured_at: str,
    received_at: str,
) -> dict[str, Any]:
    """The document a record's hash covers (``kipimo.record/2``).

    ``standard``: product, version, sha256. ``models``: name, version, sha256 of each model a result
    came from (``model_identities``). ``photos``: slot -> ``{"sha256", "overlay_sha256"}`` (the overlay
    is what the technician was shown, so it is part of what the record asserts). ``person``: the token
    holder (``name``, ``token_id``, ``role``). Times are ISO 8601 UTC strings.
    """
    return {
        "schema": RECORD_SCHEMA,
        "id": id,
        "node": node,
        "product": product,
        "standard": {"product": standard["product"], "version": standard["version"], "sha256": standard["sha256"]},
        "verdict": verdict,
        "minor_defects": minor_defects,
        "results": [dict(r) for r in results],
        "models": sorted((dict(m) for m in models), key=lambda m: (m["name"], m["version"], m["sha256"])),
        "photos": {slot: dict(hashes) for slot, hashes in sorted(photos.items())},
        "answers": dict(answers),
        "lot": lot,
        "unit": unit,
        "notes": notes,
        "location": dict(location) if location is not None else None,
        "corrects": corrects,
        "person": dict(person),
        "entered_as": entered_as,
        "captured_at": captured_at,
        "received_at": received_at,
    }


def model_identities(models: Iterable[ModelResult], results: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Name, version and file hash of each model whose output a result used (once each)."""
    used = {r.get("model_sha256") for r in results} - {None}
    seen: dict[tuple[str, int, str], dict[str, Any]] = {}
    for m in models:
        if m.sha256 not in used:
            continue
        name, _, version = m.model.rpartition("@")
        key = (name, int(version), m.sha256)
        seen[key] = {"name": name, "version": int(version), "sha256": m.sha256}
    return [seen[k] for k in sorted(seen)]


def legacy_record_document(
    *,
    record: Mapping[str, Any],
    standard_sha256: str,
    photos: Mapping[str, str],
    results: Sequence[Mapping[str, Any]],
) -> dict[str, Any]:
    """The document records were hashed as before ``kipimo.record/2`` (migration 0004 rebuilds them)."""
    return {
        "record": dict(record),
        "standard_sha256": standard_sha256,
        "photos": dict(sorted(photos.items())),
        "results": [dict(r) for r in results],
    }
