"""What the scheduler knows about pods and nodes, parsed once from the objects into plain ints and tuples.

``PodInfo`` is immutable and built once per pod (requests in millicores and bytes, tolerations, node
selection, host ports, spreading group). ``NodeInfo`` holds a node's static facts (labels, taints,
allocatable) plus the running sums of what the pods on it request; the cache mutates those sums, the
plugins only read them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from protocol import nodeaffinity
from protocol.interning import Interner
from protocol.nodeaffinity import (
    named_nodes,
    node_affinity_of,
    node_selector_of,
    required_terms_of,
    term_of,
)
from protocol.objects import Obj, controller_of, labels_of, meta, name_of, namespace_of, ref, uid_of
from protocol.quantity import QuantityError, cpu_millis, memory_bytes
from protocol.tolerations import (
    NOT_READY,
    UNREACHABLE,
    UNSCHEDULABLE,
    Taint,
    Toleration,
    taints_of,
    toleration_of,
    tolerations_tolerate_taint,
)

DEFAULT_SCHEDULER = "default-scheduler"
DEFAULT_MAX_PODS = 110
"""A node reporting no ``pods`` capacity is taken to allow the kubelet's default maxPods."""
NONZERO_CPU = 100
"""Millicores a container without a cpu request counts for when scoring (Kubernetes' default)."""
NONZERO_MEMORY = 200 * 2**20
NOT_READY_TAINT = NOT_READY
UNREACHABLE_TAINT = UNREACHABLE
UNSCHEDULABLE_TAINT = UNSCHEDULABLE
ANY_IP = "0.0.0.0"
NodeSelectorTerm = nodeaffinity.NodeSelectorTerm
SelectorRequirement = nodeaffinity.SelectorRequirement
"""Node selection lives in ``protocol.nodeaffinity``, shared with the DaemonSet controller."""


@dataclass(frozen=True, slots=True)
class HostPort:
    ip: str
    protocol: str
    port: int


@dataclass(frozen=True, slots=True)
class PodInfo:
    key: str
    uid: str
    cpu: int = 0
    memory: int = 0
    other: tuple[tuple[str, int], ...] = ()
    nonzero_cpu: int = NONZERO_CPU
    nonzero_memory: int = NONZERO_MEMORY
    node_selector: tuple[tuple[str, str], ...] = ()
    required_terms: tuple[NodeSelectorTerm, ...] | None = None
    """None: no required node affinity. An empty tuple matches no node, as in Kubernetes."""
    node_names: frozenset[str] | None = None
    """The only nodes the required terms can match by name (``metadata.name In``), None when any can."""
    preferred_terms: tuple[tuple[int, NodeSelectorTerm], ...] = ()
    tolerations: tuple[Toleration, ...] = ()
    host_ports: tuple[HostPort, ...] = ()
    group: str | None = None
    """Pods of one group are spread across nodes: the controller's uid, else namespace + labels."""
    priority: int = 0
    claims: tuple[str, ...] = ()
    """The PersistentVolumeClaims the pod mounts (names in its namespace); empty for most pods."""
    volume_terms: tuple[tuple[NodeSelectorTerm, ...], ...] = ()
    """Node affinity of the volumes its bound claims use: a node must match a term of each
    (filled in per attempt by ``volumes.check_claims``, not by ``pod_info``)."""

    def tolerates(self, taint: Taint) -> bool:
        return tolerations_tolerate_taint(self.tolerations, taint)


@dataclass(slots=True)
class NodeInfo:
    name: str
    present: bool = True
    """False for a placeholder holding pods bound to a node the cache has not seen (or no longer sees)."""
    labels: dict[str, str] = field(default_factory=dict)
    taints: tuple[Taint, ...] = ()
    unschedulable: bool = False
    ready: str | None = "True"
    """The Ready condition's status, None when the node reports no Ready condition."""
    alloc_cpu: int = 0
    alloc_memory: int = 0
    alloc_pods: int = DEFAULT_MAX_PODS
    alloc_other: dict[str, int] = field(default_factory=dict)
    req_cpu: int = 0
    req_memory: int = 0
    req_other: dict[str, int] = field(default_factory=dict)
    nonzero_cpu: int = 0
    nonzero_memory: int = 0
    pod_count: int = 0
    ports: dict[tuple[str, int], dict[str, int]] = field(default_factory=dict)
    """(protocol, port) -> host IP -> number of pods using it."""
    groups: dict[str, int] = field(default_factory=dict)
    restricted: bool = False
    """Cordoned, not ready or carrying a NoSchedule/NoExecute taint: node-scoped filters must run."""
    soft_tainted: bool = False
    """Carries a PreferNoSchedule taint: the taint score must run."""
    memo: dict[object, int] = field(default_factory=dict, compare=False, repr=False)
    """Memo of pure per-node results by pod template, emptied by ``add_usage`` and ``refresh`` (change usage,
    allocatable and flags only through them): a node is examined for thousands of pods between two changes
    of its usage, and the pods of one template ask the same. ``scores.resource_scores`` keeps its result under
    the pod's non-zero (cpu, memory); ``decide`` keeps a common pod's fit and score under a string key
    (in ``fits`` instead, for a node in the cache's schedulable order)."""
    slot: int = field(default=-1, compare=False, repr=False)
    """The node's index in the cache's schedulable order, while ``fits`` is set."""
    fits: FitColumns | None = field(default=None, compare=False, repr=False)
    """The columns of that order, which hold this node's fits at ``slot``; None outside it."""

    def __post_init__(self) -> None:
        self.refresh()

    def changed(self) -> None:
        """Forget what was memoized about the node (its usage, allocatable or flags changed)."""
        self.memo.clear()
        if self.fits is not None:
            self.fits.forget(self.slot)

    def refresh(self) -> None:
        """Recompute the flags derived from the static facts (after changing them)."""
        self.changed()
        self.restricted = self.unschedulable or self.ready not in (None, "True") or any(
            t.effect != "PreferNoSchedule" for t in self.taints)
        self.soft_tainted = any(t.effect == "PreferNoSchedule" for t in self.taints)
        if self.fits is not None:
            self.fits.mark_soft_tainted(self.slot, self.soft_tainted)

    def static(self) -> tuple[Any, ...]:
        """The node's scheduling-relevant facts, to tell a heartbeat from a change worth a retry."""
        return (self.present, tuple(sorted(self.labels.items())), self.taints, self.unschedulable, self.ready,
                self.alloc_cpu, self.alloc_memory, self.alloc_pods, tuple(sorted(self.alloc_other.items())))


def _amount(resource: str, value: Any) -> int:
    try:
        return cpu_millis(value) if resource == "cpu" else memory_bytes(value)
    except (QuantityError, TypeError, ValueError, ArithmeticError):
        return 0


def _resource_map(value: Any) -> dict[str, int]:
    if not isinstance(value, dict):
        return {}
    return {str(k): _amount(str(k), v) for k, v in value.items()}


def _requests(container: Any) -> dict[str, int]:
    resources = container.get("resources") if isinstance(container, dict) else None
    return _resource_map(resources.get("requests") if isinstance(resources, dict) else None)


def pod_requests(spec: Obj) -> tuple[dict[str, int], int, int]:
    """Effective requests: max(sum of containers, largest init container) per resource, plus overhead.

    Also returns the non-zero cpu and memory used for scoring (defaults for containers without requests).
    """
    total: dict[str, int] = {}
    nz_cpu = nz_mem = 0
    for c in spec.get("containers") or []:
        req = _requests(c)
        for k, v in req.items():
            total[k] = total.get(k, 0) + v
        nz_cpu += req.get("cpu") or NONZERO_CPU
        nz_mem += req.get("memory") or NONZERO_MEMORY
    for c in spec.get("initContainers") or []:
        req = _requests(c)
        for k, v in req.items():
            total[k] = max(total.get(k, 0), v)
        nz_cpu = max(nz_cpu, req.get("cpu") or NONZERO_CPU)
        nz_mem = max(nz_mem, req.get("memory") or NONZERO_MEMORY)
    for k, v in _resource_map(spec.get("overhead")).items():
        total[k] = total.get(k, 0) + v
    return total, nz_cpu, nz_mem


def _host_ports(spec: Obj) -> tuple[HostPort, ...]:
    host_network = bool(spec.get("hostNetwork"))
    ports = []
    for c in spec.get("containers") or []:
        for p in (c.get("ports") if isinstance(c, dict) else None) or []:
            if not isinstance(p, dict):
                continue
            port = p.get("hostPort") or (p.get("containerPort") if host_network else 0)
            if isinstance(port, int) and port > 0:
                ports.append(HostPort(str(p.get("hostIP") or ANY_IP), str(p.get("protocol") or "TCP"), port))
    return tuple(ports)


def spread_group(pod: Obj) -> str | None:
    owner = controller_of(pod)
    if owner is not None and owner.get("uid"):
        return f"owner/{owner['uid']}"
    labels = labels_of(pod)
    if labels:
        return f"labels/{namespace_of(pod) or ''}/" + ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
    return None


SHARED_MAX = 8192
"""Distinct pod templates ``pod_info`` remembers before it starts over (a bound on memory, not on correctness)."""
_shared: Interner[tuple[Any, ...], tuple[Any, ...]] = Interner(SHARED_MAX)


def shared(facts: tuple[Any, ...]) -> tuple[Any, ...]:
    """One tuple (and so one set of field values) for all equal ``facts``: the pods of a ReplicaSet request the
    same, select the same nodes and spread in the same group, so their ``PodInfo`` point to one copy of each
    field instead of a copy per pod (at 150,000 pods most of the scheduler's memory was such copies)."""
    return _shared.get(facts, facts)


def pod_info(pod: Obj) -> PodInfo:
    spec: Obj = pod.get("spec") or {}
    total, nz_cpu, nz_mem = pod_requests(spec)
    cpu, memory = total.pop("cpu", 0), total.pop("memory", 0)
    affinity = node_affinity_of(spec)
    required_terms = required_terms_of(spec)
    preferred = tuple(
        (int(p.get("weight") or 0), term_of(p.get("preference")))
        for p in affinity.get("preferredDuringSchedulingIgnoredDuringExecution") or ()
        if isinstance(p, dict) and isinstance(p.get("weight"), int))
    priority = spec.get("priority")
    facts = shared((
        cpu, memory, tuple(sorted((k, v) for k, v in total.items() if v > 0)), nz_cpu, nz_mem,
        node_selector_of(spec), required_terms, named_nodes(required_terms), preferred,
        tuple(toleration_of(t) for t in spec.get("tolerations") or ()), _host_ports(spec), spread_group(pod),
        priority if isinstance(priority, int) and not isinstance(priority, bool) else 0, _claims(spec)))
    return PodInfo(ref(pod), uid_of(pod), *facts)


def _claims(spec: Obj) -> tuple[str, ...]:
    volumes = spec.get("volumes")
    if not volumes:
        return ()
    out = []
    for v in volumes:
        source = v.get("persistentVolumeClaim") if isinstance(v, dict) else None
        if isinstance(source, dict) and source.get("claimName"):
            out.append(str(source["claimName"]))
    return tuple(dict.fromkeys(out))


def selector_terms(terms: Any) -> tuple[NodeSelectorTerm, ...]:
    """``nodeSelectorTerms`` parsed (a PersistentVolume's node affinity)."""
    return tuple(term_of(t) for t in terms or ())


def responsible_for(pod: Obj) -> bool:
    """Whether this scheduler should place ``pod``: ours, unbound, not being deleted, not finished."""
    spec = pod.get("spec") or {}
    if spec.get("nodeName") or (spec.get("schedulerName") or DEFAULT_SCHEDULER) != DEFAULT_SCHEDULER:
        return False
    if meta(pod).get("deletionTimestamp"):
        return False
    return (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed")


NODE_METADATA = ("name", "uid", "labels", "resourceVersion")


def node_view(node: Obj) -> Obj:
    """What ``node_info`` reads of a Node: the scheduler's node informer keeps this (Kubernetes' SetTransform),
    not the addresses, node info and condition messages a kubelet reports."""
    m = node.get("metadata") or {}
    status = node.get("status") or {}
    view: Obj = {k: status[k] for k in ("allocatable", "capacity") if k in status}
    conditions = status.get("conditions")
    if conditions:
        view["conditions"] = [{"type": "Ready", "status": c.get("status")} for c in conditions
                              if isinstance(c, dict) and c.get("type") == "Ready"]
    return {"apiVersion": node.get("apiVersion"), "kind": node.get("kind"),
            "metadata": {k: m[k] for k in NODE_METADATA if k in m}, "spec": node.get("spec") or {}, "status": view}


def node_info(node: Obj) -> NodeInfo:
    """A NodeInfo with the node's static facts and no pods (allocatable falls back to capacity)."""
    spec: Obj = node.get("spec") or {}
    status: Obj = node.get("status") or {}
    alloc = _resource_map(status.get("allocatable")) or _resource_map(status.get("capacity"))
    ready: str | None = None
    for cond in status.get("conditions") or ():
        if isinstance(cond, dict) and cond.get("type") == "Ready":
            ready = str(cond.get("status") or "Unknown")
    pods = alloc.pop("pods", None)
    return NodeInfo(
        name=name_of(node), labels=dict(labels_of(node)), taints=taints_of(node),
        unschedulable=bool(spec.get("unschedulable")), ready=ready,
        alloc_cpu=alloc.pop("cpu", 0), alloc_memory=alloc.pop("memory", 0),
        alloc_pods=DEFAULT_MAX_PODS if pods is None else pods, alloc_other=alloc,
    )



UNKNOWN_FIT = -2
"""A slot of a ``FitColumns`` column not computed since its node last changed."""
MAX_FIT_COLUMNS = 64
"""Pod templates ``FitColumns`` keeps columns for (the oldest is dropped): a bound on memory, 8 bytes a node each."""
MAX_GROUP_COLUMNS = 64
"""Pod groups ``FitColumns`` keeps sibling counts for (the least recently used is dropped), bounded likewise."""
UNKNOWN_COUNT = -1
"""A slot of a group's column not read since the column was made."""


class FitColumns:
    """Per common pod template, one value per node of the cache's schedulable order (indexed by
    ``NodeInfo.slot``): the template's fit and resource score there, as ``decide`` computes it. A chunk of
    nodes is then read as one list slice instead of a memo lookup per node. ``NodeInfo.changed`` marks the
    node's slot unknown in every column, as it empties the node's memo.

    Per pod group, likewise: the group's pods on each node (``NodeInfo.groups``), which PodSpread scores,
    kept in step by ``add_usage``. And the slots of soft-tainted nodes, kept by ``NodeInfo.refresh``: while
    there are none, TaintToleration need not look at any node."""

    __slots__ = ("_columns", "_groups", "nodes", "soft_tainted")

    def __init__(self, nodes: list[NodeInfo]) -> None:
        self.nodes = nodes
        """The order the columns follow (``decide`` uses them only with this very list)."""
        self._columns: dict[str, list[int]] = {}
        self._groups: dict[str, list[int]] = {}
        self.soft_tainted: set[int] = {node.slot for node in nodes if node.soft_tainted}
        """Slots of the nodes carrying a PreferNoSchedule taint (set ``slot`` before making the columns)."""

    def column(self, key: str) -> list[int]:
        column = self._columns.get(key)
        if column is None:
            if len(self._columns) >= MAX_FIT_COLUMNS:
                del self._columns[next(iter(self._columns))]
            column = self._columns[key] = [UNKNOWN_FIT] * len(self.nodes)
        return column

    def forget(self, slot: int) -> None:
        for column in self._columns.values():
            column[slot] = UNKNOWN_FIT

    def siblings(self, group: str, slots: Sequence[int]) -> list[int]:
        """The group's pods on the nodes at ``slots``. A group's column starts unknown and is filled as its
        slots are read (a column dropped for another group costs no pass over every node)."""
        column = self._groups.pop(group, None)
        if column is None:
            if len(self._groups) >= MAX_GROUP_COLUMNS:
                del self._groups[next(iter(self._groups))]
            column = [UNKNOWN_COUNT] * len(self.nodes)
        self._groups[group] = column  # (re)inserted last: the least recently used is first
        values = list(map(column.__getitem__, slots))
        if UNKNOWN_COUNT in values:
            for i, value in enumerate(values):
                if value == UNKNOWN_COUNT:
                    slot = slots[i]
                    values[i] = column[slot] = self.nodes[slot].groups.get(group, 0)
        return values

    def mark_soft_tainted(self, slot: int, tainted: bool) -> None:
        if tainted:
            self.soft_tainted.add(slot)
        else:
            self.soft_tainted.discard(slot)

    def count_siblings(self, slot: int, group: str, count: int) -> None:
        column = self._groups.get(group)
        if column is not None:
            column[slot] = count

def add_usage(node: NodeInfo, pod: PodInfo, sign: int = 1) -> None:
    """Add (sign=1) or remove (sign=-1) ``pod``'s requests, ports and group from ``node``'s sums."""
    node.changed()
    node.req_cpu += sign * pod.cpu
    node.req_memory += sign * pod.memory
    node.nonzero_cpu += sign * pod.nonzero_cpu
    node.nonzero_memory += sign * pod.nonzero_memory
    node.pod_count += sign
    for name, amount in pod.other:
        left = node.req_other.get(name, 0) + sign * amount
        if left:
            node.req_other[name] = left
        else:
            node.req_other.pop(name, None)
    for hp in pod.host_ports:
        ips = node.ports.setdefault((hp.protocol, hp.port), {})
        count = ips.get(hp.ip, 0) + sign
        if count > 0:
            ips[hp.ip] = count
        else:
            ips.pop(hp.ip, None)
            if not ips:
                del node.ports[(hp.protocol, hp.port)]
    if pod.group is not None:
        count = node.groups.get(pod.group, 0) + sign
        if count > 0:
            node.groups[pod.group] = count
        else:
            node.groups.pop(pod.group, None)
        if node.fits is not None:
            node.fits.count_siblings(node.slot, pod.group, max(count, 0))
