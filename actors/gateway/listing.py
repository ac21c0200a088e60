"""Paging a list the way the Kubernetes API does (``limit`` and ``continue``), over a NATS list that answers
everything at once; pure.

The continue token is base64 JSON ``{"rv": N, "after": [namespace, name], "snap": id}``. The gateway that
answered the first page keeps the whole sorted list for ``SNAPSHOT_SECONDS`` (``Snapshots``, at most
``SNAPSHOT_LIMIT`` lists), so the following pages are slices of one snapshot, as in Kubernetes, and
``kubectl get`` of 10,000 pods in pages of 500 costs one NATS list, not twenty. Another gateway (or the same
one after the snapshot expired) lists again from the API actors' cache at version N or newer
(``resourceVersion`` as a floor) and skips every object up to ``after`` in (namespace, name) order: consistent
in what it skips, though an object created behind the cursor meanwhile is not seen.
"""

from __future__ import annotations

import base64
import itertools
import json
import time
from dataclasses import dataclass

from protocol.errors import BadRequest
from protocol.objects import Obj, meta

SNAPSHOT_SECONDS = 60.0
SNAPSHOT_LIMIT = 16


@dataclass(frozen=True, slots=True)
class Cursor:
    resource_version: int
    after: tuple[str, str]
    snapshot: str = ""


def encode(cursor: Cursor) -> str:
    raw = json.dumps({"rv": cursor.resource_version, "after": list(cursor.after), "snap": cursor.snapshot},
                     separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode(token: str) -> Cursor:
    try:
        data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        return Cursor(int(data["rv"]), (str(data["after"][0]), str(data["after"][1])), str(data.get("snap", "")))
    except (ValueError, KeyError, IndexError, TypeError):
        raise BadRequest(f"invalid continue token {token!r}") from None


class Snapshots:
    """Sorted lists kept for their next pages, by id; the oldest go first, none outlives its time."""

    def __init__(self, seconds: float = SNAPSHOT_SECONDS, limit: int = SNAPSHOT_LIMIT) -> None:
        self.seconds = seconds
        self.limit = limit
        self._lists: dict[str, tuple[float, list[Obj]]] = {}
        self._ids = itertools.count(1)
        self._prefix = base64.urlsafe_b64encode(time.time_ns().to_bytes(8, "big")).decode().rstrip("=")

    def keep(self, items: list[Obj]) -> str:
        now = time.monotonic()
        for key in [k for k, (expires, _) in self._lists.items() if expires < now]:
            del self._lists[key]
        while len(self._lists) >= self.limit:
            del self._lists[next(iter(self._lists))]
        key = f"{self._prefix}-{next(self._ids)}"
        self._lists[key] = (now + self.seconds, items)
        return key

    def get(self, key: str) -> list[Obj] | None:
        found = self._lists.get(key)
        if found is None or found[0] < time.monotonic():
            return None
        return found[1]


def key(obj: Obj) -> tuple[str, str]:
    m = meta(obj)
    return str(m.get("namespace") or ""), str(m.get("name") or "")


def page(items: list[Obj], resource_version: int, limit: int | None, cursor: Cursor | None,
         snapshots: Snapshots | None = None, *, ordered: bool = False) -> tuple[list[Obj], str, int | None]:
    """The page to answer, its continue token ("" on the last page) and how many items remain after it.

    ``ordered``: ``items`` is a snapshot already sorted (and kept under ``cursor.snapshot``)."""
    if not ordered:
        items = sorted(items, key=key)
    snapshot = cursor.snapshot if cursor is not None and ordered else ""
    start = 0
    if cursor is not None:
        start = _after(items, cursor.after)
    remaining = len(items) - start
    if not limit or remaining <= limit:
        return items[start:], "", None
    chosen = items[start:start + limit]
    if not snapshot and snapshots is not None:
        snapshot = snapshots.keep(items)
    return chosen, encode(Cursor(resource_version, key(chosen[-1]), snapshot)), remaining - limit


def _after(items: list[Obj], after: tuple[str, str]) -> int:
    """Index of the first item whose key is greater than ``after`` (``items`` sorted by key)."""
    low, high = 0, len(items)
    while low < high:
        mid = (low + high) // 2
        if key(items[mid]) <= after:
            low = mid + 1
        else:
            high = mid
    return low
