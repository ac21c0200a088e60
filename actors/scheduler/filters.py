"""Filter plugins: pure ``(pod, node) -> reasons`` functions; an empty tuple means the node fits.

Reasons are the strings kube-scheduler reports, so the FailedScheduling message reads the same.
``FILTERS`` lists them in Kubernetes' order; a node is rejected by the first filter that fails.

NodeReady follows Kubernetes, which keeps pods off unready nodes through the ``not-ready`` and
``unreachable`` NoSchedule taints: a Ready condition that is False (Unknown) acts as that taint would,
so pods tolerating it (DaemonSet-like pods) still fit. A node reporting no Ready condition is judged by
its taints alone, as a kubelet registering with the not-ready taint would be. Tolerations match taints
by ``protocol.tolerations``' rule, the one the node lifecycle controller's evictions use too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from actors.scheduler.model import (
    ANY_IP,
    NOT_READY_TAINT,
    UNREACHABLE_TAINT,
    UNSCHEDULABLE_TAINT,
    NodeInfo,
    NodeSelectorTerm,
    PodInfo,
)
from protocol import nodeaffinity
from protocol.nodeaffinity import requirement_matches as requirement_matches
from protocol.tolerations import NO_EXECUTE, NO_SCHEDULE, Taint, find_untolerated_taint

Reasons = tuple[str, ...]
FITS: Reasons = ()

UNSCHEDULABLE = "node(s) were unschedulable"
NOT_READY = "node(s) were not ready"
UNREACHABLE = "node(s) were unreachable"
AFFINITY_MISMATCH = "node(s) didn't match Pod's node affinity/selector"
PORTS_TAKEN = "node(s) didn't have free ports for the requested pod ports"
TOO_MANY_PODS = "Too many pods"
NOT_FOUND = "node(s) not found"
VOLUME_NODE_CONFLICT = "node(s) had volume node affinity conflict"

_UNSCHEDULABLE_TAINT = Taint(UNSCHEDULABLE_TAINT, "", NO_SCHEDULE)
_NOT_READY_TAINT = Taint(NOT_READY_TAINT, "", NO_SCHEDULE)
_UNREACHABLE_TAINT = Taint(UNREACHABLE_TAINT, "", NO_SCHEDULE)
_FILTERED_EFFECTS = frozenset((NO_SCHEDULE, NO_EXECUTE))


def node_unschedulable(pod: PodInfo, node: NodeInfo) -> Reasons:
    if node.unschedulable and not pod.tolerates(_UNSCHEDULABLE_TAINT):
        return (UNSCHEDULABLE,)
    return FITS


def node_ready(pod: PodInfo, node: NodeInfo) -> Reasons:
    if node.ready is None or node.ready == "True":
        return FITS
    if node.ready == "False":
        return FITS if pod.tolerates(_NOT_READY_TAINT) else (NOT_READY,)
    return FITS if pod.tolerates(_UNREACHABLE_TAINT) else (UNREACHABLE,)


def taint_toleration(pod: PodInfo, node: NodeInfo) -> Reasons:
    taint = find_untolerated_taint(pod.tolerations, node.taints, _FILTERED_EFFECTS)
    if taint is not None:
        return (f"node(s) had untolerated taint {{{taint.key}: {taint.value}}}",)
    return FITS


def term_matches(term: NodeSelectorTerm, node: NodeInfo) -> bool:
    """All requirements of the term hold on ``node`` (``protocol.nodeaffinity``'s rule)."""
    return nodeaffinity.term_matches(term, node.labels, node.name)


def node_affinity(pod: PodInfo, node: NodeInfo) -> Reasons:
    if nodeaffinity.node_matches(pod.node_selector, pod.required_terms, node.labels, node.name):
        return FITS
    return (AFFINITY_MISMATCH,)


def volume_binding(pod: PodInfo, node: NodeInfo) -> Reasons:
    """The volumes of the pod's bound claims are reachable from the node (each one's node affinity)."""
    for terms in pod.volume_terms:
        if not any(term_matches(t, node) for t in terms):
            return (VOLUME_NODE_CONFLICT,)
    return FITS


def node_ports(pod: PodInfo, node: NodeInfo) -> Reasons:
    for hp in pod.host_ports:
        used = node.ports.get((hp.protocol, hp.port))
        if used and (hp.ip == ANY_IP or ANY_IP in used or hp.ip in used):
            return (PORTS_TAKEN,)
    return FITS


def node_resources_fit(pod: PodInfo, node: NodeInfo) -> Reasons:
    reasons: list[str] = []
    if node.pod_count + 1 > node.alloc_pods:
        reasons.append(TOO_MANY_PODS)
    if pod.cpu and node.req_cpu + pod.cpu > node.alloc_cpu:
        reasons.append("Insufficient cpu")
    if pod.memory and node.req_memory + pod.memory > node.alloc_memory:
        reasons.append("Insufficient memory")
    for name, amount in pod.other:
        if node.req_other.get(name, 0) + amount > node.alloc_other.get(name, 0):
            reasons.append(f"Insufficient {name}")
    return tuple(reasons)


@dataclass(frozen=True, slots=True)
class FilterPlugin:
    name: str
    run: Callable[[PodInfo, NodeInfo], Reasons]
    relevant: Callable[[PodInfo], bool]
    """False when the plugin cannot reject any node for this pod (skipped, to save time)."""
    restricted_only: bool = False
    """True when the plugin passes on every node that is not ``restricted`` (skipped on those)."""


def _always(pod: PodInfo) -> bool:
    return True


FILTERS: tuple[FilterPlugin, ...] = (
    FilterPlugin("NodeUnschedulable", node_unschedulable, _always, restricted_only=True),
    FilterPlugin("NodeReady", node_ready, _always, restricted_only=True),
    FilterPlugin("TaintToleration", taint_toleration, _always, restricted_only=True),
    FilterPlugin("NodeAffinity", node_affinity,
                 lambda p: bool(p.node_selector) or p.required_terms is not None),
    FilterPlugin("NodePorts", node_ports, lambda p: bool(p.host_ports)),
    FilterPlugin("NodeResourcesFit", node_resources_fit, _always),
    FilterPlugin("VolumeBinding", volume_binding, lambda p: bool(p.volume_terms)),
)


FilterFn = Callable[[PodInfo, NodeInfo], Reasons]


def relevant_filters(pod: PodInfo) -> tuple[tuple[FilterFn, ...], tuple[FilterFn, ...]]:
    """The filters to run for ``pod`` on restricted nodes, and on every other node."""
    relevant = [f for f in FILTERS if f.relevant(pod)]
    return tuple(f.run for f in relevant), tuple(f.run for f in relevant if not f.restricted_only)


def run_filters(pod: PodInfo, node: NodeInfo,
                filters: tuple[tuple[FilterFn, ...], tuple[FilterFn, ...]] | None = None) -> Reasons:
    """The first failing filter's reasons, or FITS."""
    if not node.present:
        return (NOT_FOUND,)
    every, unrestricted = filters if filters is not None else relevant_filters(pod)
    for run in every if node.restricted else unrestricted:
        reasons = run(pod, node)
        if reasons:
            return reasons
    return FITS
