"""One object for equal values: an ``Interner`` hands back the first object it saw equal to the one asked
about, so the many equal values decoded per object (a workload's label maps, node names, phases, the
scheduling facts of a ReplicaSet's pods) share one copy in the caches that keep them. Bounded: past ``size``
values it starts over (a value then keeps its own copy; nothing is wrong, only less shared). Pure."""

from __future__ import annotations

from collections.abc import Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class Interner(Generic[K, V]):
    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError(f"an interner holds at least one value, not {size}")
        self.size = size
        self._values: dict[K, V] = {}

    def get(self, key: K, value: V) -> V:
        """The value first given for a key equal to ``key``, else ``value`` (kept for the next ask)."""
        found = self._values.get(key)
        if found is not None:
            return found
        if len(self._values) >= self.size:
            self._values.clear()
        self._values[key] = value
        return value

    def __len__(self) -> int:
        return len(self._values)
