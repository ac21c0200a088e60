"""Which Secrets, ConfigMaps, PersistentVolumeClaims and ServiceAccounts each node's pods reference: the
graph behind Kubernetes' Node authorizer, answered from the API actor's watch cache.

No separate bookkeeping to keep in step: the cache already indexes pods by ``spec.nodeName``, so a check
looks at the pods bound to that node (at most ``max-pods``, ~110) and the references of each
(``protocol.podrefs.pod_references``), memoised per pod key and resourceVersion so that an unchanged pod
is decoded once. A pod leaving the node (deleted, rebound) stops granting at once, as the cache sees it.
A PersistentVolume is allowed when a claim so referenced is bound to it (the claim's ``spec.volumeName``
read from the cache at the time of the check).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from actors.api.cache import WatchCache
from protocol import codec, keys
from protocol.kinds import by_kind
from protocol.podrefs import PV, PVC, Ref, pod_references
from protocol.selectors import parse_field_selector, parse_label_selector

PODS = "pods"
MEMO_LIMIT = 100_000


class PodEntry(Protocol):
    rev: int
    raw: bytes
    namespace: str | None
    name: str


class PodsByNode(Protocol):
    def pods_on(self, node: str) -> Iterable[PodEntry]: ...


class CachePods:
    """The watch cache's pods bound to a node (its ``spec.nodeName`` index)."""

    def __init__(self, cache: WatchCache) -> None:
        self.cache = cache

    def pods_on(self, node: str) -> Iterable[PodEntry]:
        return self.cache.select(PODS, None, parse_label_selector(None),
                                 parse_field_selector(f"spec.nodeName={node}"))


class ClaimVolumes(Protocol):
    def volume_of(self, namespace: str, name: str) -> str | None: ...


class CacheClaims:
    """The volume a claim is bound to, as the watch cache holds the claim."""

    def __init__(self, cache: WatchCache) -> None:
        self.cache = cache
        self.info = by_kind(PVC)

    def volume_of(self, namespace: str, name: str) -> str | None:
        entry = self.cache.get(keys.object_key(self.info, namespace, name))
        if entry is None or not entry.raw:
            return None
        try:
            claim = codec.unpackb(entry.raw)
        except Exception:
            return None
        volume = (claim.get("spec") or {}).get("volumeName") if isinstance(claim, dict) else None
        return str(volume) if volume else None


def entry_references(raw: bytes) -> frozenset[Ref]:
    try:
        obj = codec.unpackb(raw) if raw else {}
    except Exception:
        return frozenset()
    return pod_references(obj) if isinstance(obj, dict) else frozenset()


class NodeReferences:
    """``allowed(node, kind, namespace, name)``: does a pod bound to ``node`` reference that object?"""

    def __init__(self, pods: PodsByNode, claims: ClaimVolumes | None = None) -> None:
        self.pods = pods
        self.claims = claims
        self._memo: dict[tuple[str | None, str], tuple[int, frozenset[Ref]]] = {}

    def references(self, node: str) -> set[Ref]:
        out: set[Ref] = set()
        for entry in self.pods.pods_on(node):
            key = (entry.namespace, entry.name)
            memo = self._memo.get(key)
            if memo is None or memo[0] != entry.rev:
                memo = (entry.rev, entry_references(entry.raw))
                self._memo[key] = memo
            out |= memo[1]
        if len(self._memo) > MEMO_LIMIT:
            self._memo.clear()  # bounded: entries of pods long gone are dropped now and then
        return out

    def allowed(self, node: str, kind: str, namespace: str | None, name: str) -> bool:
        if kind == PV:
            claims = self.claims
            return claims is not None and any(
                k == PVC and claims.volume_of(ns, claim) == name for k, ns, claim in self.references(node))
        return (kind, namespace or "", name) in self.references(node)
