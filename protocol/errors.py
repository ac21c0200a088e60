"""Typed errors of the Shoal API: one base class, flat subclasses, one code per class.

Every error travels on the wire as ``{"code": ..., "message": ..., "details": {...}}``; ``from_wire``
turns such a map back into the matching exception so clients raise what the server raised.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, ClassVar


class ErrorCode(StrEnum):
    NOT_FOUND = "NotFound"
    ALREADY_EXISTS = "AlreadyExists"
    CONFLICT = "Conflict"
    INVALID = "Invalid"
    BAD_REQUEST = "BadRequest"
    FORBIDDEN = "Forbidden"
    EXPIRED = "Expired"
    TOO_LARGE = "RequestEntityTooLarge"
    UNAVAILABLE = "Unavailable"
    TOO_MANY_REQUESTS = "TooManyRequests"
    TIMEOUT = "Timeout"
    INTERNAL = "InternalError"


class ShoalError(Exception):
    """Base of every error the API answers with. ``retryable`` tells callers whether a retry may help."""

    code: ClassVar[ErrorCode] = ErrorCode.INTERNAL
    retryable: ClassVar[bool] = False
    http_status: ClassVar[int] = 500

    def __init__(self, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details: dict[str, Any] = details or {}

    def to_wire(self) -> dict[str, Any]:
        return {"code": str(self.code), "message": self.message, "details": self.details}


class NotFound(ShoalError):
    code = ErrorCode.NOT_FOUND
    http_status = 404


class AlreadyExists(ShoalError):
    code = ErrorCode.ALREADY_EXISTS
    http_status = 409


class Conflict(ShoalError):
    """The object changed since the resourceVersion the caller sent: re-read it and retry."""

    code = ErrorCode.CONFLICT
    retryable = True
    http_status = 409


class Invalid(ShoalError):
    """The object breaks the schema; ``details["causes"]`` lists ``{"field", "message"}`` pairs."""

    code = ErrorCode.INVALID
    http_status = 422

    @property
    def causes(self) -> list[dict[str, str]]:
        causes = self.details.get("causes", [])
        return causes if isinstance(causes, list) else []


class BadRequest(ShoalError):
    """The request itself is malformed (not msgpack, wrong envelope, unknown kind or verb)."""

    code = ErrorCode.BAD_REQUEST
    http_status = 400


class Forbidden(ShoalError):
    code = ErrorCode.FORBIDDEN
    http_status = 403


class Expired(ShoalError):
    """The resourceVersion is older than the watch history: list again and watch from the new version."""

    code = ErrorCode.EXPIRED
    http_status = 410


class TooLarge(ShoalError):
    code = ErrorCode.TOO_LARGE
    http_status = 413


class Unavailable(ShoalError):
    """No API actor answered or the datastore is unreachable: retry with back-off."""

    code = ErrorCode.UNAVAILABLE
    retryable = True
    http_status = 503


class TooManyRequests(Unavailable):
    """Not now (Kubernetes' 429): this connection (or node) has too many requests in flight or watches open,
    as API Priority and Fairness answers (retry with back-off, or close watches first), or the request would
    break a limit that changes over time, such as an eviction a PodDisruptionBudget does not allow yet
    (``details`` may say why, ``causes``). An ``Unavailable``, so callers that retry those retry this too."""

    code = ErrorCode.TOO_MANY_REQUESTS
    http_status = 429


class Timeout(ShoalError):
    code = ErrorCode.TIMEOUT
    retryable = True
    http_status = 504


class InternalError(ShoalError):
    code = ErrorCode.INTERNAL
    retryable = True
    http_status = 500


_BY_CODE: dict[str, type[ShoalError]] = {
    cls.code.value: cls
    for cls in (NotFound, AlreadyExists, Conflict, Invalid, BadRequest, Forbidden, Expired, TooLarge,
                TooManyRequests, Unavailable, Timeout, InternalError)
}


def from_wire(error: Any) -> ShoalError:
    """Rebuild the typed exception from its wire form; unknown codes become InternalError."""
    if not isinstance(error, dict):
        return InternalError(f"malformed error from server: {error!r}")
    cls = _BY_CODE.get(str(error.get("code")), InternalError)
    details = error.get("details")
    return cls(str(error.get("message", "")), details if isinstance(details, dict) else None)
