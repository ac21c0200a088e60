"""A by-namespace index over an informer's cache, kept current by an informer handler.

Replication and deployment controllers look at "the pods (or ReplicaSets) of one namespace" on every
reconcile; scanning the whole cache (150,000 pods at the scale target) for that would not do. An index of
owners also answers which of them select an orphan (``selecting``).
"""

from __future__ import annotations

from collections.abc import Callable

from protocol.errors import ShoalError
from protocol.objects import Obj, labels_of, name_of, namespace_of, ref
from protocol.selectors import Selector


class NamespaceIndex:
    def __init__(self) -> None:
        self._by_namespace: dict[str, dict[str, Obj]] = {}

    def handle(self, event: str, old: Obj | None, new: Obj | None) -> None:
        """Informer handler: register it before the informer starts."""
        obj = new if new is not None else old
        if obj is None:
            return
        ns = namespace_of(obj) or ""
        if event == "DELETED":
            bucket = self._by_namespace.get(ns)
            if bucket is not None:
                bucket.pop(name_of(obj), None)
                if not bucket:
                    del self._by_namespace[ns]
        else:
            self._by_namespace.setdefault(ns, {})[name_of(obj)] = obj

    def in_namespace(self, namespace: str | None) -> list[Obj]:
        return list(self._by_namespace.get(namespace or "", {}).values())

    def get(self, namespace: str | None, name: str) -> Obj | None:
        return self._by_namespace.get(namespace or "", {}).get(name)

    def selecting(self, obj: Obj, selector_of: Callable[[Obj], Selector]) -> list[str]:
        """The keys of the indexed objects of ``obj``'s namespace whose selector (``selector_of``) matches its
        labels; one whose selector is invalid selects nothing."""
        labels = labels_of(obj)
        found = []
        for owner in self.in_namespace(namespace_of(obj)):
            try:
                if selector_of(owner).matches(labels):
                    found.append(ref(owner))
            except ShoalError:
                continue
        return found
