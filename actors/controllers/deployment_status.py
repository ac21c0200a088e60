"""A Deployment's status and its Available/Progressing conditions, from its ReplicaSets. Pure.

Mirrors Kubernetes' ``calculateStatus`` and ``syncRolloutStatus``: counts are sums over the ReplicaSets'
statuses; Available says whether ``replicas - maxUnavailable`` pods are available; Progressing says
whether the rollout is moving (ReplicaSetUpdated), done (NewReplicaSetAvailable), paused, or stuck past
``progressDeadlineSeconds`` (ProgressDeadlineExceeded).
"""

from __future__ import annotations

from actors.controllers.deployment_revisions import (
    max_unavailable,
    spec_replicas,
    status_int,
)
from protocol.objects import Obj, condition, format_time, meta, name_of, parse_time

_SETTLED = ("NewReplicaSetAvailable", "DeploymentPaused")
_MOVING = ("ReplicaSetUpdated", "NewReplicaSetCreated", "DeploymentResumed")


def complete(deployment: Obj, status: Obj) -> bool:
    """Every replica updated and available, and no old pods left (kube's ``DeploymentComplete``)."""
    replicas = spec_replicas(deployment)
    return bool(status.get("updatedReplicas") == replicas and status.get("replicas") == replicas
            and status.get("availableReplicas") == replicas
            and int(status.get("observedGeneration") or 0) >= int(meta(deployment).get("generation") or 0))


def _progressed(old: Obj, new: Obj) -> bool:
    def n(status: Obj, field: str) -> int:
        return int(status.get(field) or 0)

    return (n(new, "updatedReplicas") > n(old, "updatedReplicas") or n(new, "replicas") < n(old, "replicas")
            or n(new, "readyReplicas") > n(old, "readyReplicas")
            or n(new, "availableReplicas") > n(old, "availableReplicas"))


def _condition(previous: Obj | None, kind: str, status: str, reason: str, message: str, now: str,
               *, touch: bool = True) -> Obj:
    keep_transition = previous is not None and previous.get("status") == status
    same = keep_transition and previous is not None and previous.get("reason") == reason
    return {
        "type": kind, "status": status, "reason": reason, "message": message,
        "lastUpdateTime": now if (touch and not same) or previous is None
        else previous.get("lastUpdateTime", now),
        "lastTransitionTime": previous.get("lastTransitionTime", now) if keep_transition and previous
        else now,
    }


def compute_status(deployment: Obj, new_rs: Obj | None, replicasets: list[Obj], now: float, *,
                   new_rs_created: bool = False) -> Obj:
    """The status to write; ``replicasets`` is every ReplicaSet the deployment owns (new one included)."""
    spec = deployment.get("spec") or {}
    previous = deployment.get("status") or {}
    stamp = format_time(now)
    available = sum(status_int(rs, "availableReplicas") for rs in replicasets)
    total = sum(spec_replicas(rs) for rs in replicasets)
    status: Obj = {
        "observedGeneration": int(meta(deployment).get("generation") or 0),
        "replicas": sum(status_int(rs, "replicas") for rs in replicasets),
        "updatedReplicas": status_int(new_rs, "replicas") if new_rs is not None else 0,
        "readyReplicas": sum(status_int(rs, "readyReplicas") for rs in replicasets),
        "availableReplicas": available,
        "unavailableReplicas": max(0, total - available),
    }
    if previous.get("collisionCount") is not None:
        status["collisionCount"] = previous["collisionCount"]

    old_available = condition(deployment, "Available")
    if available >= spec_replicas(deployment) - max_unavailable(deployment):
        avail = _condition(old_available, "Available", "True", "MinimumReplicasAvailable",
                           "Deployment has minimum availability.", stamp, touch=False)
    else:
        avail = _condition(old_available, "Available", "False", "MinimumReplicasUnavailable",
                           "Deployment does not have minimum availability.", stamp, touch=False)

    old_progress = condition(deployment, "Progressing")
    rs_name = name_of(new_rs) if new_rs is not None else ""
    progress: Obj | None = old_progress
    if spec.get("paused"):
        progress = _condition(old_progress, "Progressing", "Unknown", "DeploymentPaused",
                              "Deployment is paused", stamp)
    elif complete(deployment, status) and new_rs is not None:
        progress = _condition(old_progress, "Progressing", "True", "NewReplicaSetAvailable",
                              f'ReplicaSet "{rs_name}" has successfully progressed.', stamp, touch=False)
    elif new_rs_created:
        progress = _condition(None, "Progressing", "True", "NewReplicaSetCreated",
                              f'Created new replica set "{rs_name}"', stamp)
    elif old_progress is not None and old_progress.get("reason") == "DeploymentPaused":
        progress = _condition(old_progress, "Progressing", "Unknown", "DeploymentResumed",
                              "Deployment is resumed", stamp)
    elif _progressed(previous, status) or old_progress is None or (
            old_progress.get("reason") == "NewReplicaSetAvailable" and new_rs is not None):
        progress = _condition(None, "Progressing", "True", "ReplicaSetUpdated",
                              f'ReplicaSet "{rs_name}" is progressing.', stamp)
        if old_progress is not None and old_progress.get("status") == "True":
            progress["lastTransitionTime"] = old_progress.get("lastTransitionTime", stamp)
    elif timed_out(deployment, now):
        progress = _condition(old_progress, "Progressing", "False", "ProgressDeadlineExceeded",
                              f'ReplicaSet "{rs_name}" has timed out progressing.', stamp)
    others = [c for c in previous.get("conditions") or []
              if c.get("type") not in ("Available", "Progressing")]
    status["conditions"] = [avail, *([progress] if progress is not None else []), *others]
    return status


def timed_out(deployment: Obj, now: float) -> bool:
    """The rollout has not progressed for ``progressDeadlineSeconds``."""
    deadline = (deployment.get("spec") or {}).get("progressDeadlineSeconds")
    cond = condition(deployment, "Progressing")
    if deadline is None or cond is None or cond.get("reason") in _SETTLED:
        return False
    since = parse_time(cond.get("lastUpdateTime"))
    return since is not None and since + int(deadline) < now


def seconds_to_deadline(deployment: Obj, status: Obj, now: float) -> float | None:
    """When an incomplete rollout should be looked at again to notice it timed out."""
    deadline = (deployment.get("spec") or {}).get("progressDeadlineSeconds")
    cond = next((c for c in status.get("conditions") or [] if c.get("type") == "Progressing"), None)
    if deadline is None or cond is None or cond.get("reason") not in _MOVING:
        return None
    since = parse_time(cond.get("lastUpdateTime")) or now
    return max(1.0, since + int(deadline) - now + 1)
