"""The DaemonSet controller's state kept by its informer handlers, so a pass costs the DaemonSet's own nodes and
pods instead of re-deriving everything from every node and every pod of its namespace.

- ``NodeFits``: per DaemonSet, ``daemonset_plan.node_fit`` of every node. A node's fit changes only with
  what ``node_facts`` reads (its labels, its taints, its cordon, its Ready condition) or with what
  ``daemonset_plan.eligibility_of`` reads of the DaemonSet (its template's ``nodeName``, ``nodeSelector``,
  required node affinity and tolerations). The node handler marks a node whose facts changed (or that came)
  for recomputation in every DaemonSet's entry and drops a node that went; a pass recomputes only those,
  or the whole entry when the DaemonSet's eligibility changed. Heartbeats change nothing.
- ``DaemonPodIndex``: the pods controlled by a DaemonSet, by its uid and the node they are bound or pinned
  to (``""`` when none), and the orphans (pods without a controller) by namespace, the only pods
  ``claim_plan`` can adopt. Pods of other controllers (a Deployment's, at scale most of the namespace)
  are not kept. A pod created, deleted, bound, relabelled or adopted moves in the index as its events come.

``daemonset_plan.owned_by_node`` and ``node_fit`` of every node are the references both are tested against.
No I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from actors.controllers.daemonset_plan import DaemonFacts, NodeFit, eligibility_of, node_fit, node_taints
from protocol.nodeaffinity import pinned_node
from protocol.objects import Obj, condition, controller_of, labels_of, name_of, namespace_of, ref

DAEMONSET = "DaemonSet"


def node_facts(node: Obj) -> tuple[Any, ...]:
    """What of a node decides where daemon pods run: a change in anything else (heartbeats) is ignored."""
    ready = condition(node, "Ready")
    return (tuple(sorted(labels_of(node).items())), node_taints(node), (ready or {}).get("status"))


@dataclass
class _Fits:
    eligibility: tuple[object, ...]
    fits: dict[str, NodeFit] = field(default_factory=dict)
    stale: set[str] = field(default_factory=set)
    """Nodes whose facts changed (or that came) since their fit was computed."""


class NodeFits:
    """Per DaemonSet key: the fit of every node, recomputed only for the nodes and DaemonSets that changed."""

    def __init__(self) -> None:
        self._nodes: dict[str, Obj] = {}
        self._facts: dict[str, tuple[Any, ...]] = {}
        """Per node, its ``node_facts`` when last seen (so a heartbeat costs one ``node_facts``, not two)."""
        self._entries: dict[str, _Fits] = {}
        self.computed = 0
        """``node_fit`` evaluations so far (what the caching saves is visible in tests and stats)."""

    def handle_node(self, event: str, old: Obj | None, new: Obj | None) -> bool:
        """Node informer handler; True when the change can move a daemon pod (the DaemonSets need a pass)."""
        node = new if new is not None else old
        if node is None:
            return False
        name = name_of(node)
        if event == "DELETED":
            self._nodes.pop(name, None)
            self._facts.pop(name, None)
            for entry in self._entries.values():
                entry.fits.pop(name, None)
                entry.stale.discard(name)
            return True
        self._nodes[name] = node
        facts, previous = node_facts(node), self._facts.get(name)
        self._facts[name] = facts
        if previous == facts:
            return False
        for entry in self._entries.values():
            entry.stale.add(name)
        return True

    def fits(self, key: str, facts: DaemonFacts) -> Mapping[str, NodeFit]:
        """The fit of every node for the DaemonSet ``key`` (whose parsed spec is ``facts``), by node name."""
        eligibility = eligibility_of(facts)
        entry = self._entries.get(key)
        if entry is None or entry.eligibility != eligibility:
            entry = self._entries[key] = _Fits(eligibility)
            self._compute(entry, facts, self._nodes)
        elif entry.stale:
            self._compute(entry, facts, entry.stale)
        entry.stale = set()
        return entry.fits

    def _compute(self, entry: _Fits, facts: DaemonFacts, names: Iterable[str]) -> None:
        for name in names:
            node = self._nodes.get(name)
            if node is not None:
                entry.fits[name] = node_fit(facts, node)
                self.computed += 1

    def forget(self, key: str) -> None:
        self._entries.pop(key, None)


class DaemonPodIndex:
    """Pods controlled by DaemonSets, by controller uid and node; orphans by namespace. Informer handler."""

    def __init__(self) -> None:
        self._owned: dict[str, dict[str, dict[str, Obj]]] = {}
        self._orphans: dict[str, dict[str, Obj]] = {}
        self._where: dict[str, tuple[str | None, str]] = {}
        """Pod key -> (controller uid, node) it is filed under; uid None: an orphan (node unused)."""

    def handle(self, event: str, old: Obj | None, new: Obj | None) -> None:
        """Pod informer handler: register it before the informer starts."""
        pod = new if new is not None else old
        if pod is None:
            return
        key = ref(pod)
        self._remove(key, pod)
        if event == "DELETED":
            return
        controller = controller_of(pod)
        if controller is None:
            self._orphans.setdefault(namespace_of(pod) or "", {})[name_of(pod)] = pod
            self._where[key] = (None, "")
        elif controller.get("kind") == DAEMONSET and (uid := str(controller.get("uid") or "")):
            node = pinned_node(pod.get("spec")) or ""
            self._owned.setdefault(uid, {}).setdefault(node, {})[name_of(pod)] = pod
            self._where[key] = (uid, node)

    def _remove(self, key: str, pod: Obj) -> None:
        where = self._where.pop(key, None)
        if where is None:
            return
        uid, node = where
        if uid is None:
            bucket = self._orphans.get(namespace_of(pod) or "")
            if bucket is not None:
                bucket.pop(name_of(pod), None)
                if not bucket:
                    del self._orphans[namespace_of(pod) or ""]
            return
        nodes = self._owned.get(uid, {})
        pods = nodes.get(node)
        if pods is not None:
            pods.pop(name_of(pod), None)
            if not pods:
                del nodes[node]
        if not nodes:
            self._owned.pop(uid, None)

    def by_node(self, uid: str) -> dict[str, list[Obj]]:
        """The pods the DaemonSet of ``uid`` controls, by the node they are bound or pinned to (``""``: none)."""
        return {node: list(pods.values()) for node, pods in self._owned.get(uid, {}).items()}

    def owned(self, uid: str) -> list[Obj]:
        return [p for pods in self._owned.get(uid, {}).values() for p in pods.values()]

    def orphans(self, namespace: str | None) -> list[Obj]:
        return list(self._orphans.get(namespace or "", {}).values())
