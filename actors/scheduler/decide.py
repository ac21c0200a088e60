"""The pure scheduling decision for one pod: filter a sample of nodes, score the feasible ones, pick one.

Sampling follows kube-scheduler's ``percentageOfNodesToScore``: filtering starts at a rotating index
and stops once enough feasible nodes are found (all nodes below 100; adaptively 50% minus 1% per 125
nodes, never under 5% nor under 100 nodes), so a decision costs O(sampled nodes), not O(cluster).
Only when nothing fits are all nodes examined, to give a complete FailedScheduling message.
A common pod (no selector, affinity, host port or extended resource) takes the sampled nodes a chunk at a
time and reads each node's fit and resource score for its template from the node's memo (``NodeInfo.memo``,
emptied whenever the node changes): the same nodes, examined count and scores as the filter-by-filter loop.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import compress

from actors.scheduler.filters import (
    AFFINITY_MISMATCH,
    FITS,
    NOT_FOUND,
    FilterFn,
    node_resources_fit,
    relevant_filters,
)
from actors.scheduler.model import UNKNOWN_FIT, FitColumns, NodeInfo, PodInfo
from actors.scheduler.scores import SCORES, ScorePlugin, resource_score, score_nodes

MIN_FEASIBLE_NODES = 100
MIN_PERCENTAGE = 5
BASE_PERCENTAGE = 50


def nodes_to_find(total: int, percentage: int = 0) -> int:
    """How many feasible nodes to look for among ``total``; ``percentage`` 0 means adaptive."""
    if total < MIN_FEASIBLE_NODES or percentage >= 100:
        return total
    if percentage <= 0:
        percentage = max(BASE_PERCENTAGE - total // 125, MIN_PERCENTAGE)
    return max(total * percentage // 100, MIN_FEASIBLE_NODES)


@dataclass(frozen=True, slots=True)
class Scheduled:
    node: str
    score: int
    feasible: int
    examined: int


@dataclass(frozen=True, slots=True)
class Unschedulable:
    reasons: dict[str, int]
    total: int
    examined: int

    @property
    def message(self) -> str:
        return failure_message(self.total, self.reasons)


Decision = Scheduled | Unschedulable


def failure_message(total: int, reasons: dict[str, int]) -> str:
    """kube-scheduler's wording: ``0/3 nodes are available: 1 node(s) had ..., 2 Insufficient cpu.``"""
    if total == 0:
        return "0/0 nodes are available: no nodes available to schedule pods."
    parts = sorted(f"{count} {reason}" for reason, count in reasons.items())
    return f"0/{total} nodes are available: {', '.join(parts)}."


def decide(pod: PodInfo, nodes: Sequence[NodeInfo], *, start: int = 0, percentage: int = 0,
           rng: random.Random | None = None, scores: Sequence[ScorePlugin] = SCORES,
           named: Mapping[str, NodeInfo] | None = None, fits: FitColumns | None = None) -> Decision:
    """Choose a node for ``pod`` among ``nodes`` (the cache's schedulable order), starting at ``start``.

    ``examined`` in the result tells the caller how far to rotate the start for the next pod. With
    ``named`` (the nodes by name), a pod whose required affinity names its nodes (a DaemonSet pod) is
    decided among those alone, as Kubernetes' PreFilter result does: the others fail NodeAffinity anyway.
    ``fits``: the cache's fit columns, used when they follow ``nodes`` (the same list).
    """
    if named is not None and pod.node_names is not None:
        return _decide_named(pod, len(nodes), named, percentage=percentage, rng=rng, scores=scores)
    total = len(nodes)
    if total == 0:
        return Unschedulable({}, 0, 0)
    want = nodes_to_find(total, percentage)
    every, unrestricted = relevant_filters(pod)
    # the common pod (no selector, affinity, host port or extended resource): on an unrestricted node only
    # the resource fit can fail, checked inline (node_resources_fit is called only to word a failure)
    simple = unrestricted == (node_resources_fit,) and not pod.other
    start %= total
    if simple:
        columns = fits if fits is not None and fits.nodes is nodes else None
        found = _find_simple(pod, nodes, start, want, every, columns)
        if found is not None:
            feasible_found, examined_found, resource, slots = found
            siblings, soft_tainted = None, None
            if columns is not None:  # what the columns tell of the feasible nodes, read without a look at each
                if pod.group is not None:
                    siblings = columns.siblings(pod.group, slots)
                if not columns.soft_tainted:
                    soft_tainted = False
            return _choose(pod, feasible_found, examined_found, rng=rng, scores=scores,
                           resource=resource if tuple(scores[:2]) == SCORES[:2] else None, siblings=siblings,
                           soft_tainted=soft_tainted)
    pod_cpu, pod_memory = pod.cpu, pod.memory
    feasible: list[NodeInfo] = []
    reasons: dict[str, int] = {}
    examined = 0
    for part in (nodes[start:], nodes[:start]) if start else (nodes,):
        for node in part:
            examined += 1
            if (simple and node.present and not node.restricted and node.pod_count < node.alloc_pods
                    and (not pod_cpu or node.req_cpu + pod_cpu <= node.alloc_cpu)
                    and (not pod_memory or node.req_memory + pod_memory <= node.alloc_memory)):
                feasible.append(node)
                if len(feasible) >= want:
                    break
                continue
            failed: tuple[str, ...] = FITS if node.present else (NOT_FOUND,)
            for run in every if node.restricted else unrestricted:  # run_filters, inlined for speed
                if failed:
                    break
                failed = run(pod, node)
            if failed:
                for reason in failed:
                    reasons[reason] = reasons.get(reason, 0) + 1
                continue
            feasible.append(node)
            if len(feasible) >= want:
                break
        if len(feasible) >= want:
            break
    if not feasible:
        return Unschedulable(reasons, total, examined)
    return _choose(pod, feasible, examined, rng=rng, scores=scores)


def _choose(pod: PodInfo, feasible: list[NodeInfo], examined: int, *, rng: random.Random | None,
            scores: Sequence[ScorePlugin], resource: list[int] | None = None,
            siblings: list[int] | None = None, soft_tainted: bool | None = None) -> Scheduled:
    if len(feasible) == 1:
        return Scheduled(feasible[0].name, 0, 1, examined)
    totals = score_nodes(pod, feasible, scores, resource, siblings, soft_tainted)
    return Scheduled(*_select(feasible, totals, rng or random.Random()), len(feasible), examined)


MIN_CHUNK = 16
"""Nodes filtered at once by ``_find_simple`` at least (a chunk never reaches past ``want`` by more)."""
NO_FIT = -1


def _find_simple(pod: PodInfo, nodes: Sequence[NodeInfo], start: int, want: int, every: tuple[FilterFn, ...],
                 fits: FitColumns | None) -> tuple[list[NodeInfo], int, list[int], list[int]] | None:
    """The first ``want`` feasible nodes from ``start`` (rotating) for a pod that only the resource fit can
    reject on an unrestricted node, how many nodes were examined to find them (the same nodes and count as
    ``decide``'s loop), their resource scores (``scores.resource_scores``) and their slots in ``fits``
    (empty without ``fits``).

    Nodes are taken a chunk at a time (most nodes fit, so a chunk of the nodes still wanted is usually the
    answer), each looked up in its memo: the pod's template either does not fit it by the inline check
    (``NO_FIT``: restricted, absent, or short of room) or has this resource score there. None when no node
    fits (the loop then words the reasons). With ``fits`` (columns that follow ``nodes``), a chunk's values
    are a slice of the template's column rather than a memo lookup per node."""
    total = len(nodes)
    pod_cpu, pod_memory = pod.cpu, pod.memory
    key = f"fit {pod_cpu} {pod_memory} {pod.nonzero_cpu} {pod.nonzero_memory}"
    column = fits.column(key) if fits is not None else None

    def memo_fit(node: NodeInfo) -> int:
        value = resource_score(pod, node) if (
            node.present and not node.restricted and node.pod_count < node.alloc_pods
            and (not pod_cpu or node.req_cpu + pod_cpu <= node.alloc_cpu)
            and (not pod_memory or node.req_memory + pod_memory <= node.alloc_memory)) else NO_FIT
        if column is not None:
            column[node.slot] = value
        else:
            node.memo[key] = value
        return value

    feasible: list[NodeInfo] = []
    resource: list[int] = []
    slots: list[int] = []
    need, examined, at = want, 0, start
    while need > 0 and examined < total:
        size = min(max(need, MIN_CHUNK), total - examined)
        end = at + size
        chunk = nodes[at:end] if end <= total else [*nodes[at:], *nodes[:end - total]]
        if column is not None:
            values = column[at:end] if end <= total else [*column[at:], *column[:end - total]]
            positions = range(at, end) if end <= total else [*range(at, total), *range(end - total)]
        else:
            values = [node.memo.get(key, UNKNOWN_FIT) for node in chunk]
            positions = range(0)
        if UNKNOWN_FIT in values:  # few are: found by index (in C), not by a look at every value
            i = values.index(UNKNOWN_FIT)
            while True:
                values[i] = memo_fit(chunk[i])
                try:
                    i = values.index(UNKNOWN_FIT, i + 1)
                except ValueError:
                    break
        if NO_FIT in values:  # the inline check failed: a restricted node may still pass every filter
            kept = [i for i, v in enumerate(values)
                    if v != NO_FIT or (chunk[i].restricted and chunk[i].present
                                       and all(not run(pod, chunk[i]) for run in every))]
            got = [chunk[i] for i in kept]
            got_values = [values[i] if values[i] != NO_FIT else resource_score(pod, chunk[i]) for i in kept]
            got_slots = [positions[i] for i in kept] if column is not None else []
        else:
            got, got_values, kept, got_slots = list(chunk), values, [], list(positions)
        if len(got) >= need:  # the chunk holds the last node wanted: examined up to it, as the loop
            examined += (kept[need - 1] if kept else need - 1) + 1
            feasible += got[:need]
            resource += got_values[:need]
            slots += got_slots[:need]
            return feasible, examined, resource, slots
        feasible += got
        resource += got_values
        slots += got_slots
        need -= len(got)
        examined += size
        at = end % total
    return (feasible, examined, resource, slots) if feasible else None


def _decide_named(pod: PodInfo, total: int, named: Mapping[str, NodeInfo], *, percentage: int,
                  rng: random.Random | None, scores: Sequence[ScorePlugin]) -> Decision:
    """``decide`` among the nodes ``pod.node_names`` allows; the rest of the ``total`` count as affinity
    mismatches in a failure message."""
    assert pod.node_names is not None
    subset = [node for name in sorted(pod.node_names) if (node := named.get(name)) is not None and node.present]
    decision = decide(pod, subset, percentage=percentage, rng=rng, scores=scores)
    if isinstance(decision, Scheduled):
        return decision
    others = total - len(subset)
    reasons = dict(decision.reasons)
    if others > 0:
        reasons[AFFINITY_MISMATCH] = reasons.get(AFFINITY_MISMATCH, 0) + others
    return Unschedulable(reasons, total, decision.examined)


def _select(nodes: Sequence[NodeInfo], totals: list[int], rng: random.Random) -> tuple[str, int]:
    """The highest total; ties broken uniformly at random."""
    best = max(totals)
    if totals.count(best) == 1:
        return nodes[totals.index(best)].name, best
    ties = list(compress(range(len(totals)), map(best.__eq__, totals)))  # the indices of the best, in C
    return nodes[rng.choice(ties)].name, best
