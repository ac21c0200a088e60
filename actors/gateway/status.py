"""``metav1.Status`` bodies: what the Kubernetes API answers instead of an object, built from Shoal's typed
errors (``protocol.errors``) so kubectl and client libraries print and branch on them as they do on a real
API server (``NotFound`` -> 404 reason NotFound, ``Conflict`` -> 409 reason Conflict, ...)."""

from __future__ import annotations

from typing import Any

from protocol.errors import ErrorCode, ShoalError

REASONS: dict[ErrorCode, str] = {
    ErrorCode.NOT_FOUND: "NotFound",
    ErrorCode.ALREADY_EXISTS: "AlreadyExists",
    ErrorCode.CONFLICT: "Conflict",
    ErrorCode.INVALID: "Invalid",
    ErrorCode.BAD_REQUEST: "BadRequest",
    ErrorCode.FORBIDDEN: "Forbidden",
    ErrorCode.EXPIRED: "Expired",
    ErrorCode.TOO_LARGE: "RequestEntityTooLarge",
    ErrorCode.TOO_MANY_REQUESTS: "TooManyRequests",
    ErrorCode.UNAVAILABLE: "ServiceUnavailable",
    ErrorCode.TIMEOUT: "Timeout",
    ErrorCode.INTERNAL: "InternalError",
}
"""Shoal's error codes as ``metav1.StatusReason`` values (the reason names are Kubernetes')."""


def status(code: int, reason: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                            "message": message, "reason": reason, "code": code}
    if details:
        body["details"] = details
    return body


def success(details: dict[str, Any] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"}
    if details:
        body["details"] = details
    return body


def from_error(exc: ShoalError, *, kind: str | None = None, group: str = "", name: str | None = None
               ) -> dict[str, Any]:
    """The Status for a typed error; ``kind``/``name`` fill ``details`` as the API server does (kubectl
    prints ``Error from server (NotFound): pods "web" not found`` from them)."""
    details: dict[str, Any] = {}
    if name:
        details["name"] = name
    if kind:
        details["kind"] = kind
    if group:
        details["group"] = group
    causes = exc.details.get("causes")
    if isinstance(causes, list) and causes:
        details["causes"] = [{"reason": str(c.get("reason") or "FieldValueInvalid"),
                              "message": str(c.get("message", "")), "field": str(c.get("field", ""))}
                             for c in causes if isinstance(c, dict)]
    if exc.retryable and exc.code in (ErrorCode.UNAVAILABLE, ErrorCode.TIMEOUT, ErrorCode.INTERNAL):
        details["retryAfterSeconds"] = 1
    return status(exc.http_status, REASONS.get(exc.code, "InternalError"), exc.message, details or None)


def unauthorized(message: str = "Unauthorized") -> dict[str, Any]:
    return status(401, "Unauthorized", message)
