"""Record canonicalisation and hashing: what makes a record provably unchanged.

A record's hash covers the technician's input (answers, lot, unit, who, when,
node), the photo hashes, the standard's hash and every check result, in RFC
8785 canonical JSON, so any change to any of them changes the hash.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

import rfc8785

__all__ = ["canonical_json", "sha256_hex", "record_sha256", "record_document"]


def canonical_json(obj: Any) -> bytes:
    """RFC 8785 (JSON Canonicalization Scheme) bytes of ``obj``."""
    return rfc8785.dumps(obj)


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def record_document(
    *,
    record: Mapping[str, Any],
    standard_sha256: str,
    photos: Mapping[str, str],
    results: Sequence[Mapping[str, Any]],
) -> dict[str, Any]:
    """The exact document whose canonical form is hashed (kept for auditors)."""
    return {
        "record": dict(record),
        "standard_sha256": standard_sha256,
        "photos": dict(sorted(photos.items())),
        "results": [dict(r) for r in results],
    }


def record_sha256(
    *,
    record: Mapping[str, Any],
    standard_sha256: str,
    photos: Mapping[str, str],
    results: Sequence[Mapping[str, Any]],
) -> str:
    doc = record_document(record=record, standard_sha256=standard_sha256, photos=photos, results=results)
    return sha256_hex(canonical_json(doc))
