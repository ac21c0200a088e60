"""Errors of the scheduler package: one base, flat subclasses, retryable made explicit."""

from __future__ import annotations

from typing import ClassVar


class SchedulerError(Exception):
    retryable: ClassVar[bool] = False


class BindFailed(SchedulerError):
    """Binding a pod failed for a reason worth retrying (timeout, no API actor, datastore trouble)."""

    retryable = True


class BindRejected(SchedulerError):
    """The API refused the binding for good: the pod is gone, being deleted or bound elsewhere."""

    def __init__(self, message: str, *, conflict: bool = False) -> None:
        super().__init__(message)
        self.conflict = conflict
        """The API answered Conflict (bound elsewhere, re-created, being deleted), not NotFound."""
