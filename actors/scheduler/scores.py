"""Score plugins: pure ``(pod, node) -> int`` functions, normalized to 0..100 across the feasible nodes.

Weights follow kube-scheduler's defaults. Spreading counts the pods of the same group (controller, or
namespace + labels) already on a node, assumed pods included: fewer siblings score higher.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from operator import add, attrgetter

from actors.scheduler.filters import term_matches
from actors.scheduler.model import NodeInfo, PodInfo
from protocol.tolerations import PREFER_NO_SCHEDULE

MAX_SCORE = 100


def least_allocated(pod: PodInfo, node: NodeInfo) -> int:
    """Mean share of cpu and memory left free once the pod is placed (non-zero requests), 0..100."""
    alloc, used = node.alloc_cpu, node.nonzero_cpu + pod.nonzero_cpu
    cpu = (alloc - used) * MAX_SCORE // alloc if alloc > 0 and used <= alloc else 0
    alloc, used = node.alloc_memory, node.nonzero_memory + pod.nonzero_memory
    memory = (alloc - used) * MAX_SCORE // alloc if alloc > 0 and used <= alloc else 0
    return (cpu + memory) // 2


def balanced_allocation(pod: PodInfo, node: NodeInfo) -> int:
    """100 when cpu and memory would be used in the same proportion, less as they drift apart."""
    if node.alloc_cpu <= 0 or node.alloc_memory <= 0:
        return 0
    cpu = (node.nonzero_cpu + pod.nonzero_cpu) / node.alloc_cpu
    memory = (node.nonzero_memory + pod.nonzero_memory) / node.alloc_memory
    if cpu > 1.0:
        cpu = 1.0
    if memory > 1.0:
        memory = 1.0
    std = (cpu - memory if cpu > memory else memory - cpu) / 2
    return int((1 - std) * MAX_SCORE)


def siblings(pod: PodInfo, node: NodeInfo) -> int:
    """Raw: pods of the pod's group on the node (reverse-normalized: fewer is better)."""
    return node.groups.get(pod.group, 0) if pod.group is not None else 0


def siblings_many(pod: PodInfo, nodes: Sequence[NodeInfo]) -> list[int]:
    group = pod.group
    if group is None:
        return [0] * len(nodes)
    return [node.groups.get(group, 0) for node in nodes]


def intolerable_prefer_no_schedule(pod: PodInfo, node: NodeInfo) -> int:
    """Raw: PreferNoSchedule taints the pod does not tolerate (reverse-normalized)."""
    count = 0
    for taint in node.taints:
        # a toleration of another effect cannot match (Kubernetes filters them out first, to the same end)
        if taint.effect == PREFER_NO_SCHEDULE and not pod.tolerates(taint):
            count += 1
    return count


def preferred_affinity(pod: PodInfo, node: NodeInfo) -> int:
    """Raw: sum of the weights of the preferred node-affinity terms the node matches (normalized)."""
    return sum(weight for weight, term in pod.preferred_terms if term_matches(term, node))


def normalize(scores: Sequence[int], *, reverse: bool) -> list[int]:
    """Kubernetes' DefaultNormalizeScore: scale to 0..100 by the maximum, optionally reversed."""
    top = max(scores, default=0)
    if top == 0:
        return [MAX_SCORE if reverse else 0] * len(scores)
    if reverse:
        return [MAX_SCORE - MAX_SCORE * s // top for s in scores]
    return [MAX_SCORE * s // top for s in scores]


@dataclass(frozen=True, slots=True)
class ScorePlugin:
    name: str
    weight: int
    run: Callable[[PodInfo, NodeInfo], int]
    normalize: str | None
    """None: the score is already 0..100; "max" or "reverse": normalized across feasible nodes."""
    relevant: Callable[[PodInfo], bool]
    node_relevant: Callable[[NodeInfo], bool] | None = None
    """When no node is relevant, every node would score the same: the plugin is skipped."""
    many: Callable[[PodInfo, Sequence[NodeInfo]], list[int]] | None = None
    """``run`` over many nodes at once, when that is cheaper than a call per node (same results)."""


def _always(pod: PodInfo) -> bool:
    return True


def _soft_tainted(node: NodeInfo) -> bool:
    return node.soft_tainted


SCORES: tuple[ScorePlugin, ...] = (
    ScorePlugin("LeastAllocated", 1, least_allocated, None, _always),
    ScorePlugin("BalancedAllocation", 1, balanced_allocation, None, _always),
    ScorePlugin("PodSpread", 2, siblings, "reverse", lambda p: p.group is not None, many=siblings_many),
    ScorePlugin("TaintToleration", 3, intolerable_prefer_no_schedule, "reverse", _always, _soft_tainted),
    ScorePlugin("NodeAffinity", 2, preferred_affinity, "max", lambda p: bool(p.preferred_terms)),
)


def resource_scores(pod: PodInfo, nodes: Sequence[NodeInfo]) -> list[int]:
    """``least_allocated + balanced_allocation`` per node (both weight 1), fused into one pass: the same
    arithmetic as the two plugins, at a fraction of the cost (they run on every feasible node of every pod).
    Each node's result is memoized in ``NodeInfo.memo`` until its usage or allocatable changes."""
    key = (pod.nonzero_cpu, pod.nonzero_memory)
    totals = [node.memo.get(key, -1) for node in nodes]
    if -1 in totals:
        for i, total in enumerate(totals):
            if total < 0:
                node = nodes[i]
                totals[i] = node.memo[key] = resource_score(pod, node)
    return totals


def resource_score(pod: PodInfo, node: NodeInfo) -> int:
    """``least_allocated + balanced_allocation``, the arithmetic inlined."""
    alloc_cpu, alloc_memory = node.alloc_cpu, node.alloc_memory
    used_cpu, used_memory = node.nonzero_cpu + pod.nonzero_cpu, node.nonzero_memory + pod.nonzero_memory
    cpu = (alloc_cpu - used_cpu) * MAX_SCORE // alloc_cpu if alloc_cpu > 0 and used_cpu <= alloc_cpu else 0
    memory = ((alloc_memory - used_memory) * MAX_SCORE // alloc_memory
              if alloc_memory > 0 and used_memory <= alloc_memory else 0)
    total = (cpu + memory) // 2
    if alloc_cpu > 0 and alloc_memory > 0:
        cpu_share = used_cpu / alloc_cpu
        memory_share = used_memory / alloc_memory
        if cpu_share > 1.0:
            cpu_share = 1.0
        if memory_share > 1.0:
            memory_share = 1.0
        std = (cpu_share - memory_share if cpu_share > memory_share else memory_share - cpu_share) / 2
        total += int((1 - std) * MAX_SCORE)
    return total


_FUSED = SCORES[:2]
"""LeastAllocated and BalancedAllocation: always relevant, weight 1, not normalized; see ``resource_scores``."""
_SPREAD = SCORES[2]
"""PodSpread: relevant when the pod has a group, reverse-normalized (``normalize``), summed inline."""


def score_nodes(pod: PodInfo, nodes: Sequence[NodeInfo], plugins: Sequence[ScorePlugin] = SCORES,
                resource: list[int] | None = None, siblings: list[int] | None = None,
                soft_tainted: bool | None = None) -> list[int]:
    """The weighted sum of every relevant plugin's normalized score, per node. ``resource``: the nodes'
    ``resource_scores``, ``siblings``: their ``siblings_many``, and ``soft_tainted``: whether any of them is,
    when the caller knows already."""
    if tuple(plugins[:2]) == _FUSED:
        totals = resource if resource is not None else resource_scores(pod, nodes)
        plugins = plugins[2:]
    else:
        totals = [0] * len(nodes)
    for plugin in plugins:
        if not plugin.relevant(pod):
            continue
        if plugin is _SPREAD:  # the same arithmetic as below, each count's points looked up (the sums in C)
            raw = siblings if siblings is not None else siblings_many(pod, nodes)
            top = max(raw, default=0)
            weight = _SPREAD.weight
            if top == 0:
                totals = list(map((weight * MAX_SCORE).__add__, totals))
            else:
                points = [weight * (MAX_SCORE - MAX_SCORE * r // top) for r in range(top + 1)]
                totals = list(map(add, totals, map(points.__getitem__, raw)))
            continue
        if plugin.node_relevant is not None:
            if plugin.node_relevant is _soft_tainted:
                relevant = soft_tainted if soft_tainted is not None else any(map(_SOFT_TAINTED, nodes))
            else:
                relevant = any(map(plugin.node_relevant, nodes))
            if not relevant:
                continue
        run = plugin.run
        raw = plugin.many(pod, nodes) if plugin.many is not None else [run(pod, node) for node in nodes]
        if plugin.normalize is not None:
            raw = normalize(raw, reverse=plugin.normalize == "reverse")
        weight = plugin.weight
        totals = [t + weight * s for t, s in zip(totals, raw, strict=True)]
    return totals


_SOFT_TAINTED = attrgetter("soft_tainted")
