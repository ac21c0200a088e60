"""ReplicaSets of a Deployment: template hashes, revision annotations, surge/unavailable math. Pure.

A Deployment owns one ReplicaSet per distinct pod template. The ReplicaSet is named
``<deployment>-<hash>``; the hash is also the ``pod-template-hash`` label added to its selector and
template, so the ReplicaSets of one Deployment never fight over pods. ``deployment.kubernetes.io/revision``
numbers the templates in the order they were rolled out.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import re
from typing import Any

from protocol.objects import Obj, meta, name_of, owner_reference, parse_time

HASH_LABEL = "pod-template-hash"
REVISION = "deployment.kubernetes.io/revision"
REVISION_HISTORY = "deployment.kubernetes.io/revision-history"
DESIRED_REPLICAS = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS = "deployment.kubernetes.io/max-replicas"
CHANGE_CAUSE = "kubernetes.io/change-cause"
_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


# -- numbers --------------------------------------------------------------------------------------
def spec_replicas(obj: Obj | None) -> int:
    if obj is None:
        return 0
    value = (obj.get("spec") or {}).get("replicas")
    return 1 if value is None else int(value)


def status_int(obj: Obj | None, field: str) -> int:
    return int(((obj or {}).get("status") or {}).get(field) or 0)


def available(rs: Obj | None) -> int:
    """Available pods of ``rs`` we may count on: never more than its spec asks for (pods above the
    spec are about to be deleted, so a status not yet caught up with a scale-down does not count them)."""
    return min(status_int(rs, "availableReplicas"), spec_replicas(rs))


def resolve_int_or_percent(value: Any, total: int, *, round_up: bool) -> int:
    """``3`` -> 3; ``"25%"`` of ``total``, rounded up (surge) or down (unavailable) as Kubernetes does."""
    if value is None:
        return 0
    if isinstance(value, int):
        return value
    text = str(value).strip()
    match = re.fullmatch(r"(\d+)%", text)
    if match is None:
        return int(text)
    exact = int(match.group(1)) * total / 100
    return math.ceil(exact) if round_up else math.floor(exact)


def fenceposts(deployment: Obj) -> tuple[int, int]:
    """(maxSurge, maxUnavailable) of a rolling update, as Kubernetes' ``ResolveFenceposts``: surge rounds
    up, unavailable down, both zero would stall so unavailable becomes 1, unavailable never exceeds
    replicas. Recreate has neither (its Available condition then needs every replica)."""
    spec = deployment.get("spec") or {}
    strategy = spec.get("strategy") or {}
    if strategy.get("type") == "Recreate":
        return 0, 0
    rolling = strategy.get("rollingUpdate") or {}
    replicas = spec_replicas(deployment)
    surge = resolve_int_or_percent(rolling.get("maxSurge", "25%"), replicas, round_up=True)
    unavailable = resolve_int_or_percent(rolling.get("maxUnavailable", "25%"), replicas, round_up=False)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, min(unavailable, replicas)


def max_unavailable(deployment: Obj) -> int:
    return fenceposts(deployment)[1]


# -- templates and hashes -------------------------------------------------------------------------
def template_without_hash(template: Obj) -> Obj:
    clean = copy.deepcopy(template)
    labels = (clean.get("metadata") or {}).get("labels")
    if isinstance(labels, dict):
        labels.pop(HASH_LABEL, None)
    return clean


def template_hash(template: Obj, collision_count: int | None = None) -> str:
    """A stable short hash of a pod template (the ``pod-template-hash`` label), 10 characters."""
    text = json.dumps(template_without_hash(template), sort_keys=True, separators=(",", ":"), default=str)
    if collision_count:
        text += f"#{collision_count}"
    number = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")
    out = []
    for _ in range(10):
        number, digit = divmod(number, len(_ALPHABET))
        out.append(_ALPHABET[digit])
    return "".join(out)


def deployment_hash(deployment: Obj) -> str:
    template = (deployment.get("spec") or {}).get("template") or {}
    return template_hash(template, (deployment.get("status") or {}).get("collisionCount"))


# -- revisions -------------------------------------------------------------------------------------
def revision_of(obj: Obj) -> int:
    try:
        return int((meta(obj).get("annotations") or {}).get(REVISION) or 0)
    except (TypeError, ValueError):
        return 0


def max_revision(replicasets: list[Obj]) -> int:
    return max((revision_of(rs) for rs in replicasets), default=0)


def created_at(obj: Obj) -> float:
    return parse_time(meta(obj).get("creationTimestamp")) or 0.0


def by_age(replicasets: list[Obj]) -> list[Obj]:
    """Oldest first (creation time, then name), the order Kubernetes scales old ReplicaSets down in."""
    return sorted(replicasets, key=lambda rs: (created_at(rs), name_of(rs)))


def replica_annotations(deployment: Obj) -> dict[str, str]:
    surge, _ = fenceposts(deployment)
    replicas = spec_replicas(deployment)
    return {DESIRED_REPLICAS: str(replicas), MAX_REPLICAS: str(replicas + surge)}


def new_replicaset(deployment: Obj, replicas: int, revision: int) -> Obj:
    """The ReplicaSet for the deployment's current template (not yet created)."""
    spec = deployment.get("spec") or {}
    pod_hash = deployment_hash(deployment)
    template = template_without_hash(spec.get("template") or {})
    template.setdefault("metadata", {}).setdefault("labels", {})[HASH_LABEL] = pod_hash
    selector = copy.deepcopy(spec.get("selector") or {})
    selector.setdefault("matchLabels", {})[HASH_LABEL] = pod_hash
    annotations = {REVISION: str(revision), **replica_annotations(deployment)}
    cause = (meta(deployment).get("annotations") or {}).get(CHANGE_CAUSE)
    if cause:
        annotations[CHANGE_CAUSE] = cause
    rs_meta: Obj = {
        "name": f"{name_of(deployment)}-{pod_hash}",
        "namespace": meta(deployment).get("namespace") or "default",
        "labels": dict(template["metadata"]["labels"]),
        "annotations": annotations,
        "ownerReferences": [owner_reference(deployment, controller=True, block=True)],
    }
    return {
        "apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": rs_meta,
        "spec": {"replicas": replicas, "minReadySeconds": int(spec.get("minReadySeconds") or 0),
                 "selector": selector, "template": template},
        "status": {},
    }


def find_new_replicaset(deployment: Obj, replicasets: list[Obj]) -> Obj | None:
    """The ReplicaSet running the deployment's current template: by hash label, else by template."""
    pod_hash = deployment_hash(deployment)
    for rs in replicasets:
        if (meta(rs).get("labels") or {}).get(HASH_LABEL) == pod_hash:
            return rs
    template = template_without_hash((deployment.get("spec") or {}).get("template") or {})
    for rs in by_age(replicasets):
        if template_without_hash((rs.get("spec") or {}).get("template") or {}) == template:
            return rs
    return None
