"""The garbage collector's ownership graph: every watched object by uid, with its owners and dependents.

Built only from informer events (no I/O). Identity is the uid: an object deleted and recreated under
the same name is a new node, and references to the old uid keep pointing at nothing. ``observe``
returns the keys whose decisions may have changed, so the handler can enqueue them.
"""

from __future__ import annotations

from dataclasses import dataclass

from protocol.objects import Obj, is_deleting, meta, name_of, namespace_of, uid_of

GC_FINALIZERS = ("orphan", "foregroundDeletion")


def object_key(kind: str, namespace: str | None, name: str) -> str:
    """``Kind:namespace/name`` (``Kind:name`` when cluster-scoped): the GC's work-queue key."""
    return f"{kind}:{namespace}/{name}" if namespace else f"{kind}:{name}"


def split_key(key: str) -> tuple[str, str | None, str]:
    kind, _, rest = key.partition(":")
    namespace, sep, name = rest.partition("/")
    return (kind, namespace, name) if sep else (kind, None, namespace)


def key_of(obj: Obj) -> str:
    return object_key(str(obj.get("kind", "")), namespace_of(obj), name_of(obj))


def owner_uids(obj: Obj) -> tuple[str, ...]:
    return tuple(str(r.get("uid")) for r in meta(obj).get("ownerReferences") or [] if r.get("uid"))


def gc_finalizers(obj: Obj) -> set[str]:
    return {f for f in meta(obj).get("finalizers") or [] if f in GC_FINALIZERS}


@dataclass
class GraphNode:
    key: str
    uid: str
    owners: tuple[str, ...]
    refs: tuple[tuple[str, bool], ...]
    """(owner uid, blockOwnerDeletion) per ownerReference."""


class Graph:
    def __init__(self) -> None:
        self.nodes: dict[str, GraphNode] = {}
        self.by_key: dict[str, str] = {}
        self.dependents: dict[str, set[str]] = {}

    def __contains__(self, uid: str) -> bool:
        return uid in self.nodes

    def dependents_of(self, uid: str) -> list[GraphNode]:
        return [self.nodes[d] for d in self.dependents.get(uid, ()) if d in self.nodes]

    def _link(self, node: GraphNode) -> None:
        for owner in node.owners:
            self.dependents.setdefault(owner, set()).add(node.uid)

    def _unlink(self, node: GraphNode) -> None:
        for owner in node.owners:
            deps = self.dependents.get(owner)
            if deps is not None:
                deps.discard(node.uid)
                if not deps:
                    del self.dependents[owner]

    def _remove(self, uid: str) -> set[str]:
        """Forget ``uid``; the keys to look at again: its dependents and its owners."""
        node = self.nodes.pop(uid, None)
        if node is None:
            return set()
        if self.by_key.get(node.key) == uid:
            del self.by_key[node.key]
        self._unlink(node)
        touched = {d.key for d in self.dependents_of(uid)}
        touched.update(self.nodes[o].key for o in node.owners if o in self.nodes)
        return touched

    def observe(self, event: str, old: Obj | None, new: Obj | None) -> set[str]:
        """Apply an informer event; return the keys to reconcile."""
        obj = new if new is not None else old
        if obj is None:
            return set()
        key, uid = key_of(obj), uid_of(obj)
        if event == "DELETED":
            return self._remove(uid)
        touched: set[str] = set()
        previous_uid = self.by_key.get(key)
        if previous_uid is not None and previous_uid != uid:
            touched |= self._remove(previous_uid)  # recreated under the same name: a new object
        refs = tuple((str(r.get("uid")), bool(r.get("blockOwnerDeletion")))
                     for r in meta(obj).get("ownerReferences") or [] if r.get("uid"))
        node = GraphNode(key=key, uid=uid, owners=tuple(u for u, _ in refs), refs=refs)
        before = self.nodes.get(uid)
        if before is not None:
            self._unlink(before)
            if before.refs != refs:  # owners waiting on us in the foreground may be free now
                touched.update(self.nodes[o].key for o in (*before.owners, *node.owners) if o in self.nodes)
        self.nodes[uid] = node
        self.by_key[key] = uid
        self._link(node)
        if refs and (before is None or before.refs != refs):
            touched.add(key)
        if is_deleting(obj) and gc_finalizers(obj):
            touched.add(key)
        if before is None:
            touched.update(d.key for d in self.dependents_of(uid))  # dependents created before us
        return touched
