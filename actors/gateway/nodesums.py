"""Per-node sums of the pods bound to each node, for the web console's cluster view; pure (no I/O).

A pod is reduced to its ``Facts`` once (node, CPU and memory requests, running or not) and never kept whole;
``NodeSums`` adds and subtracts those facts as pods come and go and says which nodes' totals changed, so a
feed (``nodesummary``) can send only those. The figures are the ones the console used to sum in the browser:
a node's pods are its non-terminated pods (phase neither ``Succeeded`` nor ``Failed``), each costing the sum of
its containers' requests or its largest init container's, whichever is larger (as the scheduler counts, without
the pod overhead); ``notRunning`` counts those whose phase is not ``Running`` (``Pending``, ``Unknown``). Pods not
bound to a node yet are summed under the node ``""`` (shown as "unscheduled"). Terminated pods cost nothing and
are not remembered.

Memory: one small tuple per non-terminated pod (its key, an interned node name, three numbers), and one
four-number list per node: ~200 bytes a pod in CPython, 29.7 MiB at 150,000 pods (``bench_console``).
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

from protocol.objects import Obj
from protocol.quantity import QuantityError, cpu_millis, memory_bytes

FIELDS = ("pods", "cpu", "memory", "notRunning")
"""The order of a node's totals on the wire: pods, CPU requested (millicores), memory requested (bytes), pods
not running."""

Totals = tuple[int, int, int, int]
TERMINATED = frozenset({"Succeeded", "Failed"})


class Facts(NamedTuple):
    """What one non-terminated pod costs its node."""

    node: str
    cpu: int
    """Millicores requested."""
    memory: int
    """Bytes requested."""
    running: bool


def _field(obj: Any, name: str) -> Any:
    """``obj[name]`` when ``obj`` is a mapping, else None: stored objects were validated, but a figure is never
    worth an exception."""
    return obj.get(name) if isinstance(obj, dict) else None


def _request(container: Any, resource: str) -> int:
    value = _field(_field(_field(container, "resources"), "requests"), resource)
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        return 0
    try:
        return cpu_millis(value) if resource == "cpu" else memory_bytes(value)
    except QuantityError:
        return 0


def _requested(spec: Any, resource: str) -> int:
    containers = _field(spec, "containers")
    inits = _field(spec, "initContainers")
    containers = containers if isinstance(containers, list) else []
    inits = inits if isinstance(inits, list) else []
    return max(sum(_request(c, resource) for c in containers),
               max((_request(c, resource) for c in inits), default=0))


def facts(pod: Obj) -> Facts | None:
    """A pod's facts, or None for a terminated pod (it costs its node nothing)."""
    phase = _field(pod.get("status"), "phase")
    if phase in TERMINATED:
        return None
    spec = pod.get("spec")
    node = _field(spec, "nodeName")
    return Facts(sys.intern(node) if isinstance(node, str) else "", _requested(spec, "cpu"),
                 _requested(spec, "memory"), phase == "Running")


def pod_key(pod: Obj) -> str:
    metadata = pod.get("metadata")
    return f"{_field(metadata, 'namespace') or ''}/{_field(metadata, 'name') or ''}"


class NodeSums:
    """The totals per node of the pods applied to it, kept up to date one pod at a time."""

    def __init__(self) -> None:
        self._pods: dict[str, Facts] = {}
        self._nodes: dict[str, list[int]] = {}

    def __len__(self) -> int:
        """How many non-terminated pods are counted."""
        return len(self._pods)

    def apply(self, key: str, new: Facts | None) -> tuple[str, ...]:
        """Pod ``key`` now has the facts ``new`` (None: deleted or terminated); returns the nodes whose totals
        changed (none when nothing did, e.g. a status update that changed no figure)."""
        old = self._pods.get(key)
        if old == new:
            return ()
        if old is not None:
            self._add(old, -1)
        if new is None:
            self._pods.pop(key, None)
        else:
            self._pods[key] = new
            self._add(new, 1)
        nodes = {found.node for found in (old, new) if found is not None}
        return tuple(nodes)

    def replace(self, pods: Mapping[str, Facts]) -> set[str]:
        """Start over from a complete list (after a relist); returns the nodes whose totals differ."""
        before = self._nodes
        self._pods, self._nodes = {}, {}
        for key, found in pods.items():
            self._pods[key] = found
            self._add(found, 1)
        return {node for node in before.keys() | self._nodes.keys() if before.get(node) != self._nodes.get(node)}

    def totals(self, node: str) -> Totals | None:
        """A node's totals, None when no non-terminated pod is on it."""
        found = self._nodes.get(node)
        return (found[0], found[1], found[2], found[3]) if found is not None else None

    def snapshot(self, nodes: Iterable[str] | None = None) -> dict[str, Totals | None]:
        """Every node's totals, or those of ``nodes`` (None for a node with no pods left)."""
        names = self._nodes.keys() if nodes is None else nodes
        return {node: self.totals(node) for node in names}

    def _add(self, found: Facts, sign: int) -> None:
        totals = self._nodes.get(found.node)
        if totals is None:
            totals = self._nodes[found.node] = [0, 0, 0, 0]
        totals[0] += sign
        totals[1] += sign * found.cpu
        totals[2] += sign * found.memory
        totals[3] += sign * (not found.running)
        if totals[0] == 0:
            del self._nodes[found.node]
