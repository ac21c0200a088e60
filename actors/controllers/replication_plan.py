"""Pure decisions of the replication controllers (ReplicaSet and ReplicationController).

``plan(owner, selector, pods, now)`` looks at one owner and the pods of its namespace and returns the
actions that bring actual state to desired state: adopt orphans the selector matches, release owned
pods it no longer matches (``claim_plan``), create or delete pods to reach ``spec.replicas`` (at most ``BURST_REPLICAS``
a pass), and the status to write. Nothing here does I/O; ``replication.py`` executes the actions.
"""

from __future__ import annotations

import copy
from collections import Counter
from dataclasses import dataclass, field

from actors.controllers.claim_plan import AdoptPod, ReleasePod, claim_actions, claim_plan
from protocol.objects import (
    Obj,
    condition,
    format_time,
    is_deleting,
    labels_of,
    meta,
    name_of,
    owner_reference,
    parse_time,
    pod_is_ready,
    pod_is_terminal,
)
from protocol.selectors import Selector, from_label_selector, from_match_labels

BURST_REPLICAS = 500
"""Most pods created or deleted in one pass, as kube-controller-manager's ``burstReplicas``."""


# -- actions ------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class CreatePods:
    count: int


@dataclass(frozen=True, slots=True)
class DeletePods:
    """Delete these pods of the owner (the DaemonSet and Job plans use this action too)."""

    names: tuple[str, ...]


Action = AdoptPod | ReleasePod | CreatePods | DeletePods


@dataclass
class Plan:
    actions: list[Action] = field(default_factory=list)
    status: Obj = field(default_factory=dict)
    active: list[Obj] = field(default_factory=list)
    """The active pods the owner controls (after adoption): what the status counts."""
    requeue_after: float | None = None
    """Seconds until a ready pod becomes available (minReadySeconds), when one is waiting."""


# -- reading owners and pods --------------------------------------------------------------------
def selector_of(owner: Obj) -> Selector:
    """ReplicationController: equality map (defaults to the template labels); ReplicaSet: LabelSelector."""
    spec = owner.get("spec") or {}
    if owner.get("kind") == "ReplicationController":
        labels = spec.get("selector") or ((spec.get("template") or {}).get("metadata") or {}).get("labels")
        return from_match_labels(labels)
    return from_label_selector(spec.get("selector"))


def desired_replicas(owner: Obj) -> int:
    value = (owner.get("spec") or {}).get("replicas")
    return 1 if value is None else int(value)


def is_active(pod: Obj) -> bool:
    """Counts toward replicas: neither finished nor being deleted."""
    return not pod_is_terminal(pod) and not is_deleting(pod)


def ready_since(pod: Obj) -> float | None:
    cond = condition(pod, "Ready")
    if cond is None or cond.get("status") != "True":
        return None
    return parse_time(cond.get("lastTransitionTime")) or 0.0


def is_available(pod: Obj, min_ready_seconds: int, now: float) -> bool:
    if min_ready_seconds <= 0:
        return pod_is_ready(pod)  # no time to parse (a pass at scale asks this of every pod)
    since = ready_since(pod)
    if since is None:
        return False
    return min_ready_seconds <= 0 or since + min_ready_seconds <= now


def restarts(pod: Obj) -> int:
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    return sum(int(c.get("restartCount") or 0) for c in statuses)


_PHASE_RANK = {"Pending": 0, "Unknown": 1, "Running": 2}


def deletion_order(pods: list[Obj]) -> list[Obj]:
    """Pods in the order to delete them, as Kubernetes' ``ActivePodsWithRanks``: unscheduled before
    scheduled, Pending < Unknown < Running, not ready before ready, pods sharing a node with more of
    their siblings first, ready for less time first, more restarts first, newer first."""
    per_node = Counter((p.get("spec") or {}).get("nodeName") for p in pods)

    def key(pod: Obj) -> tuple[int, int, int, int, float, int, float, str]:
        node = (pod.get("spec") or {}).get("nodeName")
        phase = (pod.get("status") or {}).get("phase", "Pending")
        ready = pod_is_ready(pod)
        since = ready_since(pod) or 0.0
        created = parse_time(meta(pod).get("creationTimestamp")) or 0.0
        return (1 if node else 0, _PHASE_RANK.get(phase, 0), 1 if ready else 0,
                -per_node[node] if node else 0, -since if ready else 0.0, -restarts(pod), -created,
                name_of(pod))

    return sorted(pods, key=key)


# -- planning -----------------------------------------------------------------------------------
def replica_diff(desired: int, active: list[Obj], burst: int = BURST_REPLICAS) -> Action | None:
    """Create or delete (at most ``burst``) so ``active`` reaches ``desired``."""
    diff = len(active) - desired
    if diff < 0:
        return CreatePods(min(-diff, burst))
    if diff > 0:
        victims = deletion_order(active)[: min(diff, burst)]
        return DeletePods(tuple(name_of(p) for p in victims))
    return None


def plan(owner: Obj, pods: list[Obj], now: float, *, burst: int = BURST_REPLICAS,
         expectations_satisfied: bool = True, create_error: str | None = None) -> Plan:
    """Decide one pass for ``owner`` over the pods of its namespace.

    Creations and deletions happen only when the owner is not being deleted and no earlier
    creations/deletions are still unobserved (``expectations_satisfied``).
    """
    claimed = claim_plan(owner, selector_of(owner), pods)
    active = [p for p in claimed.kept if is_active(p)]
    result = Plan(actions=[*claim_actions(claimed)], active=active)
    if expectations_satisfied and not is_deleting(owner):
        action = replica_diff(desired_replicas(owner), active, burst)
        if action is not None:
            result.actions.append(action)
    min_ready = int((owner.get("spec") or {}).get("minReadySeconds") or 0)
    result.status = compute_status(owner, active, now, create_error=create_error)
    if min_ready > 0:
        waits = [since + min_ready - now for p in active
                 if (since := ready_since(p)) is not None and since + min_ready > now]
        if waits:
            result.requeue_after = max(0.1, min(waits)) + 0.05
    return result


def compute_status(owner: Obj, active: list[Obj], now: float, *, create_error: str | None = None) -> Obj:
    """Status from the active pods the owner controls (kube's ``calculateStatus``)."""
    template = (owner.get("spec") or {}).get("template") or {}
    template_labels = (template.get("metadata") or {}).get("labels") or {}
    min_ready = int((owner.get("spec") or {}).get("minReadySeconds") or 0)
    previous = owner.get("status") or {}
    status: Obj = {
        "replicas": len(active),
        "fullyLabeledReplicas": sum(1 for p in active
                                    if all(labels_of(p).get(k) == v for k, v in template_labels.items())),
        "readyReplicas": sum(1 for p in active if pod_is_ready(p)),
        "availableReplicas": sum(1 for p in active if is_available(p, min_ready, now)),
        "observedGeneration": int(meta(owner).get("generation") or 0),
    }
    conditions = [c for c in previous.get("conditions") or [] if c.get("type") != "ReplicaFailure"]
    if create_error is not None:
        old = condition(owner, "ReplicaFailure")
        conditions.append({"type": "ReplicaFailure", "status": "True", "reason": "FailedCreate",
                           "message": create_error,
                           "lastTransitionTime": (old or {}).get("lastTransitionTime") or format_time(now)})
    if conditions:
        status["conditions"] = conditions
    return status


def status_changed(previous: Obj, status: Obj) -> bool:
    """Whether writing ``status`` would change the stored status (absent conditions equal empty ones)."""
    return any((previous.get(k) or None) != (status.get(k) or None) if k == "conditions"
               else previous.get(k) != status.get(k) for k in (*status, "conditions"))


def pod_from_template(owner: Obj) -> Obj:
    """A new pod for ``owner``: the template's labels, annotations and spec, named ``<owner>-xxxxx``."""
    template = copy.deepcopy((owner.get("spec") or {}).get("template") or {})
    tmeta = template.get("metadata") or {}
    pod_meta: Obj = {
        "generateName": f"{name_of(owner)}-",
        "namespace": meta(owner).get("namespace") or "default",
        "labels": dict(tmeta.get("labels") or {}),
        "ownerReferences": [owner_reference(owner, controller=True, block=True)],
    }
    if tmeta.get("annotations"):
        pod_meta["annotations"] = dict(tmeta["annotations"])
    if tmeta.get("finalizers"):
        pod_meta["finalizers"] = list(tmeta["finalizers"])
    return {"apiVersion": "v1", "kind": "Pod", "metadata": pod_meta, "spec": template.get("spec") or {}}


def slow_start_batches(count: int, initial: int = 1) -> list[int]:
    """Batch sizes for ``count`` calls: 1, 2, 4, ... as kube's ``slowStartBatch``, so a failing
    template costs one failed call, not hundreds."""
    sizes: list[int] = []
    size, remaining = max(1, initial), count
    while remaining > 0:
        take = min(size, remaining)
        sizes.append(take)
        remaining -= take
        size *= 2
    return sizes
