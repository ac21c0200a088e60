"""Pure decisions of the node lifecycle controller: node health, condition taints, NoExecute evictions.

Times here are of two sorts and never mixed: ``now``/``last_heartbeat``/``since`` are this controller's
own ``time.monotonic()`` readings of when it *observed* something (a Lease renewal, a kubelet status
heartbeat, a taint, a pod entering deletion); ``wall_now`` is only written into objects for humans
(``lastTransitionTime``, ``timeAdded``) and never compared with another machine's clock.

- ``node_plan``: after ``grace`` seconds without an observed heartbeat the node's kubelet conditions
  become Unknown (reason ``NodeStatusUnknown``); the condition taints follow reachability and Ready:
  stale heartbeat (or Ready=Unknown reported as such) → ``node.kubernetes.io/unreachable``,
  Ready=False → ``node.kubernetes.io/not-ready``, both with effects NoSchedule and NoExecute.
  A fresh heartbeat on a node whose Unknown came from us (the kubelet has not posted since) counts as
  reachable: the taints go at once; the kubelet rewrites Ready on its next status update.
- ``eviction_delay``: the taint manager's rule, per NoExecute taint the earliest of
  ``observed + tolerationSeconds`` over the pod's matching tolerations (matched by
  ``protocol.tolerations``, the scheduler's rule too); a NoExecute taint the pod does
  not tolerate evicts at once, except the two condition taints, which wait ``default_timeout``
  (``pod_eviction_timeout``) as Kubernetes' default tolerations would.
- ``force_delete_delay``: a pod being deleted on an unreachable (or vanished) node has no kubelet to
  confirm its termination; once its grace period has passed on our clock it is deleted with
  gracePeriodSeconds=0, as Kubernetes' pod garbage collector does, so its controller replaces it.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass

from protocol.objects import Obj, condition, format_time
from protocol.tolerations import (
    NO_EXECUTE,
    NOT_READY,
    UNREACHABLE,
    matching_tolerations,
    min_toleration_seconds,
    taint_of,
    tolerations_of,
)

CONDITION_TAINT_KEYS = (NOT_READY, UNREACHABLE)
TAINT_EFFECTS = ("NoSchedule", "NoExecute")
KUBELET_CONDITIONS = ("Ready", "MemoryPressure", "DiskPressure", "PIDPressure")
UNKNOWN_REASON = "NodeStatusUnknown"
UNKNOWN_MESSAGE = "Kubelet stopped posting node status."

TaintId = tuple[str, str]
"""(key, effect): what identifies a taint on one node."""


@dataclass(frozen=True, slots=True)
class NodePlan:
    status: Obj | None = None
    """The node status to write (conditions turned Unknown), or None."""
    taints: list[Obj] | None = None
    """The new ``spec.taints``, or None when unchanged."""
    became_unknown: bool = False
    health: str = "Ready"
    """Ready, NotReady or Unreachable: what the taints now say."""
    requeue_after: float | None = None


# -- node health ------------------------------------------------------------------------------------
def ready_status(node: Obj) -> str | None:
    cond = condition(node, "Ready")
    return str(cond.get("status")) if cond is not None else None


def unknown_is_ours(node: Obj) -> bool:
    cond = condition(node, "Ready")
    return cond is not None and cond.get("status") == "Unknown" and cond.get("reason") == UNKNOWN_REASON


def mark_unknown(node: Obj, wall_now: float) -> Obj:
    """The node's status with its kubelet conditions set to Unknown (Ready added when missing).
    ``lastHeartbeatTime`` is kept: it is the kubelet's, and changing it would look like a heartbeat."""
    status = copy.deepcopy(node.get("status") or {})
    conditions = list(status.get("conditions") or [])
    if not any(c.get("type") == "Ready" for c in conditions):
        conditions.append({"type": "Ready"})
    for cond in conditions:
        if cond.get("type") in KUBELET_CONDITIONS and cond.get("status") != "Unknown":
            cond["status"] = "Unknown"
            cond["reason"] = UNKNOWN_REASON
            cond["message"] = UNKNOWN_MESSAGE
            cond["lastTransitionTime"] = format_time(wall_now)
    status["conditions"] = conditions
    return status


def health_of(node: Obj, *, stale: bool) -> str:
    if stale:
        return "Unreachable"
    ready = ready_status(node)
    if ready == "False":
        return "NotReady"
    if ready == "Unknown" and not unknown_is_ours(node):
        return "Unreachable"
    return "Ready"


def desired_taints(node: Obj, health: str, wall_now: float) -> list[Obj] | None:
    """``spec.taints`` with the condition taints ``health`` calls for; None when nothing changes.
    Taints of other keys are kept as they are; kept condition taints keep their ``timeAdded``."""
    current = list((node.get("spec") or {}).get("taints") or [])
    wanted_key = {"Unreachable": UNREACHABLE, "NotReady": NOT_READY}.get(health)
    out = [t for t in current if t.get("key") not in CONDITION_TAINT_KEYS]
    if wanted_key is not None:
        for effect in TAINT_EFFECTS:
            existing = next((t for t in current
                             if t.get("key") == wanted_key and t.get("effect") == effect), None)
            out.append(existing or {"key": wanted_key, "effect": effect, "timeAdded": format_time(wall_now)})
    return None if sorted(map(_taint_order, out)) == sorted(map(_taint_order, current)) else out


def _taint_order(taint: Obj) -> tuple[str, str, str, str]:
    return (str(taint.get("key")), str(taint.get("effect")), str(taint.get("value")), str(taint.get("timeAdded")))


def node_plan(node: Obj, *, last_heartbeat: float, now: float, grace: float, wall_now: float) -> NodePlan:
    """Decide one pass over ``node`` given when we last observed its heartbeat."""
    stale = now - last_heartbeat > grace
    status: Obj | None = None
    if stale:
        known = [c for c in (node.get("status") or {}).get("conditions") or []
                 if c.get("type") in KUBELET_CONDITIONS and c.get("status") != "Unknown"]
        if known or ready_status(node) is None:
            status = mark_unknown(node, wall_now)
    health = health_of(node, stale=stale)
    return NodePlan(status=status, taints=desired_taints(node, health, wall_now),
                    became_unknown=status is not None and ready_status(node) != "Unknown", health=health,
                    requeue_after=None if stale else last_heartbeat + grace - now + 0.05)


# -- taints and tolerations -------------------------------------------------------------------------
def noexecute_taints(node: Obj) -> list[Obj]:
    return [t for t in (node.get("spec") or {}).get("taints") or [] if t.get("effect") == "NoExecute"]


def eviction_delay(pod: Obj, taints: list[Obj], observed: Mapping[TaintId, float], now: float,
                   default_timeout: float) -> float | None:
    """Seconds until ``pod`` must be evicted from a node with NoExecute ``taints`` (0: now; None: never).

    ``observed`` holds, per taint, when this controller first saw it (monotonic); a taint not in it
    counts from ``now``.
    """
    tolerations = tolerations_of(pod)
    deadline: float | None = None
    for taint in map(taint_of, taints):
        if taint.effect != NO_EXECUTE:
            continue
        since = observed.get((taint.key, NO_EXECUTE), now)
        matching = matching_tolerations(tolerations, taint)
        seconds: float | None
        if not matching:
            if taint.key not in CONDITION_TAINT_KEYS:
                return 0.0
            seconds = default_timeout
        else:
            seconds = min_toleration_seconds(matching)
        if seconds is not None:
            due = since + seconds
            deadline = due if deadline is None else min(deadline, due)
    return None if deadline is None else max(0.0, deadline - now)


def force_delete_delay(pod: Obj, *, since: float, now: float) -> float:
    """Seconds until a pod observed entering deletion at ``since`` may be force-deleted (0: now)."""
    grace = (pod.get("metadata") or {}).get("deletionGracePeriodSeconds")
    if grace is None:
        grace = (pod.get("spec") or {}).get("terminationGracePeriodSeconds", 30)
    return max(0.0, since + float(grace or 0) - now)


# -- eviction rate ----------------------------------------------------------------------------------
class TokenBucket:
    """At most ``rate`` takes a second, ``burst`` at once. ``rate <= 0`` stops evictions altogether
    (as ``--node-eviction-rate=0`` does in Kubernetes). Deterministic: callers pass the time."""

    def __init__(self, rate: float, burst: float = 1.0, *, now: float = 0.0) -> None:
        self.rate = rate
        self.burst = max(1.0, burst)
        self.tokens = self.burst
        self.stamp = now

    def take(self, now: float) -> float:
        """Take a token and return 0, or return the seconds to wait before one is available."""
        if self.rate <= 0:
            return 60.0
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / self.rate
