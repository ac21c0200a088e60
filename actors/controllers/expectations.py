"""Expectations: the creations and deletions a controller asked for and has not yet seen in its cache.

Kubernetes' ``UIDTrackingControllerExpectations``. A controller acts on its informer cache, which lags
its own writes; without this, a reconcile right after a creation would count one pod too few and create
another. Per controller key (an owner, or a namespace) it records:

- expected additions, a count: ``expect_creations``, lowered by ``creation_observed`` (the cache saw the
  object, or the creation failed and never will be seen);
- expected deletions, the keys of the objects being deleted: ``expect_deletions``, lowered by
  ``deletion_observed(key, object_key)`` once per object, so an object seen both "being deleted" and
  "deleted" counts once.

``satisfied(key)`` is true when nothing is pending, or when the expectations are older than ``ttl``
(5 minutes, Kubernetes' ``ExpectationsTimeout``: a lost watch event must not block a controller
forever), or when there are none. Time comes from the injected ``clock``. Pure: no I/O.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

EXPECTATIONS_TIMEOUT = 300.0
"""Seconds after which pending expectations stop blocking (Kubernetes' ``ExpectationsTimeout``)."""

Clock = Callable[[], float]


@dataclass
class Pending:
    """What one controller key still waits for; ``since`` is when it was last raised."""

    adds: int = 0
    deletes: set[str] = field(default_factory=set)
    since: float = 0.0

    def fulfilled(self) -> bool:
        return self.adds <= 0 and not self.deletes


class Expectations:
    """Pending additions (counted) and deletions (by object key) per controller key."""

    def __init__(self, ttl: float = EXPECTATIONS_TIMEOUT, clock: Clock = time.monotonic) -> None:
        if ttl <= 0:
            raise ValueError(f"expectations ttl must be positive, got {ttl}")
        self.ttl = ttl
        self.clock = clock
        self._pending: dict[str, Pending] = {}

    def _raise(self, key: str) -> Pending:
        entry = self._pending.setdefault(key, Pending())
        entry.since = self.clock()
        return entry

    def expect_creations(self, key: str, count: int) -> None:
        """``count`` more objects are being created for ``key``."""
        if count < 0:
            raise ValueError(f"cannot expect {count} creations")
        self._raise(key).adds += count

    def expect_deletions(self, key: str, object_keys: Iterable[str]) -> None:
        """The objects ``object_keys`` are being deleted for ``key``."""
        self._raise(key).deletes.update(object_keys)

    def creation_observed(self, key: str) -> None:
        """One expected creation was seen in the cache (or failed, and never will be)."""
        entry = self._pending.get(key)
        if entry is not None and entry.adds > 0:
            entry.adds -= 1

    def deletion_observed(self, key: str, object_key: str) -> bool:
        """``object_key`` went (or its deletion failed); True when it was one ``key`` waited for."""
        entry = self._pending.get(key)
        if entry is None or object_key not in entry.deletes:
            return False
        entry.deletes.discard(object_key)
        return True

    def pending(self, key: str) -> Pending | None:
        """What ``key`` still waits for (None when nothing is recorded)."""
        return self._pending.get(key)

    def satisfied(self, key: str) -> bool:
        """Whether ``key`` may act on its cache: nothing pending, or pending for longer than ``ttl``.

        A satisfied key's record is dropped, so the next expectations start from zero."""
        entry = self._pending.get(key)
        if entry is None:
            return True
        if entry.fulfilled() or self.clock() - entry.since > self.ttl:
            del self._pending[key]
            return True
        return False

    def forget(self, key: str) -> None:
        """The controller key went (its owner was deleted): drop what it waited for."""
        self._pending.pop(key, None)
