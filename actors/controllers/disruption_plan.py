"""Pure decisions of the disruption controller: a PodDisruptionBudget's status.

Kubernetes' ``pkg/controller/disruption`` (``trySync``, ``getExpectedPodCount``, ``countHealthyPods``,
``buildDisruptedPodMap``, ``updatePdbStatus``):

- ``expectedPods``: with ``maxUnavailable`` or a percentage ``minAvailable``, the sum of the scales of
  the controllers of the covered pods (each controller once: a ReplicaSet owned by a Deployment counts
  as the Deployment); pods without a controller add nothing (they are reported), a controller that cannot
  be found fails the sync. With an integer ``minAvailable``, the number of covered pods;
- ``desiredHealthy``: ``minAvailable`` (a percentage of expectedPods rounded up), or expectedPods minus
  ``maxUnavailable`` (a percentage rounded up), never below 0;
- ``currentHealthy``: covered pods Ready, not being deleted and not recently evicted
  (``protocol.disruption.is_healthy``);
- ``disruptionsAllowed``: currentHealthy - desiredHealthy, 0 when negative or nothing is expected;
- ``disruptedPods``: the evictions not yet seen as deletions, dropped when the pod is gone, being
  deleted or ``DELETION_TIMEOUT`` old; the controller is asked back when the next one expires.

A failed sync writes ``disruptionsAllowed: 0`` with the DisruptionAllowed condition False/SyncFailed,
so a budget that cannot be computed never lets an eviction through. The controllers' scales come in
as ``scales`` (pod's controller uid -> the controller that counts and its scale); DaemonSets count by
``desiredNumberScheduled`` (Kubernetes has no DaemonSet finder and fails such a sync). Nothing here
does I/O; ``disruption.py`` reads the caches and writes the status.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from protocol.disruption import (
    DELETION_TIMEOUT,
    disrupted_pods,
    is_healthy,
    scaled,
    selects,
    with_condition,
)
from protocol.objects import Obj, controller_of, format_time, is_deleting, meta, name_of


@dataclass(frozen=True, slots=True)
class Scale:
    """The controller a pod's scale is counted from (its uid, so it counts once) and that scale."""

    uid: str
    replicas: int


class SyncFailed(Exception):
    """The budget's expected pod count cannot be computed (a controller is missing)."""


@dataclass
class Plan:
    status: Obj = field(default_factory=dict)
    requeue_after: float | None = None
    """Seconds until an entry of ``disruptedPods`` expires."""
    unmanaged: list[str] = field(default_factory=list)
    """Covered pods without a controller (Kubernetes warns with an UnmanagedPods event)."""
    expired: list[str] = field(default_factory=list)
    """Evicted pods not deleted within ``DELETION_TIMEOUT`` (Kubernetes' NotDeleted event)."""


def covered_pods(pdb: Obj, pods: list[Obj]) -> list[Obj]:
    return [p for p in pods if selects(pdb, p)]


def expected_scale(pods: list[Obj], scales: Mapping[str, Scale]) -> tuple[int, list[str]]:
    """Sum of the controllers' scales, each counted once, and the pods without a controller."""
    counted: dict[str, int] = {}
    unmanaged: list[str] = []
    for pod in pods:
        ref = controller_of(pod)
        if ref is None:
            unmanaged.append(name_of(pod))
            continue
        scale = scales.get(str(ref.get("uid") or ""))
        if scale is None:
            raise SyncFailed(f"found no controllers for pod {name_of(pod)!r}")
        counted[scale.uid] = scale.replicas
    return sum(counted.values()), unmanaged


def expected_and_desired(pdb: Obj, pods: list[Obj], scales: Mapping[str, Scale]) -> tuple[int, int, list[str]]:
    """(expectedPods, desiredHealthy, unmanaged pods) of ``pdb`` over the pods it covers."""
    spec = pdb.get("spec") or {}
    try:
        if spec.get("maxUnavailable") is not None:
            expected, unmanaged = expected_scale(pods, scales)
            unavailable = scaled(spec["maxUnavailable"], expected, round_up=True)
            return expected, max(0, expected - unavailable), unmanaged
        min_available = spec.get("minAvailable")
        if isinstance(min_available, int):
            return len(pods), min_available, []
        if min_available is not None:
            expected, unmanaged = expected_scale(pods, scales)
            return expected, scaled(min_available, expected, round_up=True), unmanaged
    except ValueError as exc:
        raise SyncFailed(str(exc)) from exc
    return len(pods), 0, []  # neither set: validation refuses it; nothing is protected


def plan(pdb: Obj, pods: list[Obj], scales: Mapping[str, Scale], now: float) -> Plan:
    """The status of ``pdb`` given the pods of its namespace and the scales of their controllers."""
    covered = covered_pods(pdb, pods)
    result = Plan()
    previous = pdb.get("status") or {}
    generation = int(meta(pdb).get("generation") or 0)
    try:
        expected, desired, result.unmanaged = expected_and_desired(pdb, covered, scales)
    except SyncFailed as exc:
        result.status = {**previous, "disruptionsAllowed": 0, "observedGeneration": generation,
                         "conditions": with_condition(previous.get("conditions"), allowed=False,
                                                      reason="SyncFailed", message=str(exc), now=now)}
        return result
    by_name = {name_of(p): p for p in covered}
    kept: dict[str, float] = {}
    for name, evicted in disrupted_pods(pdb).items():
        pod = by_name.get(name)
        if pod is None or is_deleting(pod):
            continue
        if evicted + DELETION_TIMEOUT < now:
            result.expired.append(name)
            continue
        kept[name] = evicted
    if kept:
        result.requeue_after = max(0.1, min(kept.values()) + DELETION_TIMEOUT - now) + 0.05
    healthy = sum(1 for p in covered if is_healthy(p, kept, now))
    allowed = healthy - desired
    if expected <= 0 or allowed <= 0:
        allowed = 0
    result.status = {
        "observedGeneration": generation, "expectedPods": expected, "desiredHealthy": desired,
        "currentHealthy": healthy, "disruptionsAllowed": allowed,
        "disruptedPods": {name: format_time(t) for name, t in sorted(kept.items())} or None,
        "conditions": with_condition(previous.get("conditions"), allowed=allowed > 0,
                                     reason="SufficientPods" if allowed > 0 else "InsufficientPods",
                                     message="", now=now),
    }
    return result


def status_changed(previous: Obj, status: Obj) -> bool:
    return any((previous.get(k) or None) != (v or None) if k in ("disruptedPods", "conditions")
               else previous.get(k) != v for k, v in status.items())
