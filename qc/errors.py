"""One exception tree for all of Kipimo.

Domain code raises these; only ``service`` turns them into HTTP responses
(one handler, see ``service/errors.py``) and the CLI into exit messages.

    KipimoError
    ├── InvalidInput               422  one or more Problem(field, reason)
    │   ├── StandardInvalid        422  a standard document fails validation
    │   └── SubmissionInvalid      422  a record does not fit its standard
    ├── ImageRejected              422  a photo cannot be used at all
    │   ├── UnsupportedImageType   415  not JPEG/PNG/WebP (HEIC named as such)
    │   ├── ImageTooLarge          413  above the pixel limit
    │   └── CorruptImage           422  truncated or undecodable
    ├── PayloadTooLarge            413  request body above the size limit
    ├── ServerBusy                 503  not now (e.g. the decode memory budget is full); retry after retry_after_s
    ├── NotFound                   404  missing, or not visible to the caller
    ├── Conflict                   409  same id or version, different content
    ├── RecordAltered              500  a stored record's rows no longer match its hashed document
    ├── AuthenticationFailed       401  no or unknown token
    ├── PermissionDenied           403  role may not do this
    ├── TooManyRequests            429  too many failed sign-ins from one address; retry after retry_after_s
    ├── StandardAltered            500  a stored standard's bytes no longer match its identity
    └── ModelError                 500-class problems with a model file
        ├── ModelNotInstalled      a standard names a model that is not present
        └── ModelHashMismatch      the ONNX file is not the one its card names
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "MAX_PROBLEMS",
    "KipimoError",
    "Problem",
    "InvalidInput",
    "StandardInvalid",
    "SubmissionInvalid",
    "ImageRejected",
    "UnsupportedImageType",
    "ImageTooLarge",
    "CorruptImage",
    "PayloadTooLarge",
    "ServerBusy",
    "NotFound",
    "Conflict",
    "RecordAltered",
    "AuthenticationFailed",
    "PermissionDenied",
    "TooManyRequests",
    "StandardAltered",
    "ModelError",
    "ModelNotInstalled",
    "ModelHashMismatch",
]


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an input: where (dotted path) and why."""

    field: str
    reason: str

    def __str__(self) -> str:
        return f"{self.field}: {self.reason}" if self.field else self.reason


MAX_PROBLEMS = 50  # problems an error lists (a body with 600,000 bad keys: the first 50 and their count)


class KipimoError(Exception):
    """Base of every error Kipimo raises on purpose."""

    status_code = 400

    def __init__(self, message: str, problems: list[Problem] | None = None, *,
                 problems_total: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.problems: list[Problem] = list(problems or [])
        # how many problems there were when ``problems`` lists only the first ones (None: it lists them all)
        self.problems_total = problems_total

    def __str__(self) -> str:
        if not self.problems:
            return self.message
        return self.message + "\n" + "\n".join(f"  - {p}" for p in self.problems)


class InvalidInput(KipimoError):
    status_code = 422


class StandardInvalid(InvalidInput):
    pass


class SubmissionInvalid(InvalidInput):
    pass


class ImageRejected(KipimoError):
    status_code = 422


class UnsupportedImageType(ImageRejected):
    status_code = 415


class ImageTooLarge(ImageRejected):
    status_code = 413


class CorruptImage(ImageRejected):
    status_code = 422


class PayloadTooLarge(KipimoError):
    status_code = 413


class ServerBusy(KipimoError):
    status_code = 503

    def __init__(self, message: str, problems: list[Problem] | None = None, *, retry_after_s: int = 5) -> None:
        super().__init__(message, problems)
        self.retry_after_s = retry_after_s


class NotFound(KipimoError):
    status_code = 404


class Conflict(KipimoError):
    status_code = 409


class RecordAltered(KipimoError):
    status_code = 500


class AuthenticationFailed(KipimoError):
    status_code = 401


class PermissionDenied(KipimoError):
    status_code = 403


class TooManyRequests(KipimoError):
    status_code = 429

    def __init__(self, message: str, problems: list[Problem] | None = None, *, retry_after_s: int) -> None:
        super().__init__(message, problems)
        self.retry_after_s = retry_after_s


class StandardAltered(KipimoError):
    status_code = 500


class ModelError(KipimoError):
    status_code = 500


class ModelNotInstalled(ModelError):
    status_code = 422


class ModelHashMismatch(ModelError):
    status_code = 500
