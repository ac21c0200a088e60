"""Pure decisions of the StatefulSet controller: pods with ordinal names, in order, each with its claims.

Kubernetes' ``pkg/controller/statefulset`` (``stateful_set_control.go``, ``stateful_set_utils.go``), as
pure functions:

- identity: the pod of ordinal ``i`` is ``<set>-<i>`` with ``hostname`` = its name, ``subdomain`` =
  ``spec.serviceName``, labels ``statefulset.kubernetes.io/pod-name``, ``apps.kubernetes.io/pod-index``
  and ``controller-revision-hash``; each ``volumeClaimTemplates`` entry becomes the claim
  ``<template>-<set>-<i>``, mounted as the pod volume named after the template, created before the pod;
- ``plan``: ordinals ``[start, start+replicas)`` are wanted, the others condemned. Failed or succeeded
  pods are deleted (re-created next pass). A missing pod is created -- with ``OrderedReady`` only once
  every lower ordinal is Running and available (``minReadySeconds``), one at a time; with ``Parallel`` all
  at once. Condemned pods go highest ordinal first: ``OrderedReady`` deletes one, and only while every other
  pod is healthy; ``Parallel`` deletes them all;
- revisions: the update revision is the current template's hash; a pod missing below the partition (or,
  with no partition given, below ``status.currentReplicas``) is re-created at the current revision, from its
  ControllerRevision's template (Kubernetes' ``isCurrentRevisionNeeded``). ``RollingUpdate`` replaces the
  pods at ordinals ``>= partition`` whose revision is not the update revision, highest ordinal first,
  at most ``maxUnavailable`` (default 1) unavailable at a time, waiting for each replacement to be healthy;
  ``OnDelete`` replaces a pod only when someone deletes it. The rollout is complete when every pod is
  updated and ready: the current revision becomes the update revision;
- claims: with ``persistentVolumeClaimRetentionPolicy.whenDeleted: Delete`` a claim carries an owner
  reference to the set (the garbage collector deletes it with the set); with ``whenScaled: Delete`` the
  claims of condemned ordinals are deleted once their pod is gone. Otherwise claims are kept;
- ``compute_status``: replicas, readyReplicas, availableReplicas, currentReplicas, updatedReplicas,
  currentRevision, updateRevision, observedGeneration, collisionCount.

Nothing here does I/O; ``statefulset.py`` executes the actions.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field

from actors.controllers.claim_plan import AdoptPod, ReleasePod, claim_actions, claim_plan
from actors.controllers.daemonset_plan import HASH_LABEL
from actors.controllers.deployment_revisions import resolve_int_or_percent, template_hash
from actors.controllers.replication_plan import is_available, ready_since
from protocol.objects import Obj, is_deleting, labels_of, meta, name_of, owner_reference, pod_is_ready
from protocol.selectors import spec_selector

POD_NAME_LABEL = "statefulset.kubernetes.io/pod-name"
POD_INDEX_LABEL = "apps.kubernetes.io/pod-index"
ORDERED_READY = "OrderedReady"
PARALLEL = "Parallel"
ROLLING_UPDATE = "RollingUpdate"
ON_DELETE = "OnDelete"
DELETE = "Delete"


# -- actions ------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class CreateClaims:
    claims: tuple[Obj, ...]
    """Claims of a pod about to be created (existing ones are left alone)."""


@dataclass(frozen=True, slots=True)
class CreatePod:
    pod: Obj


@dataclass(frozen=True, slots=True)
class DeletePod:
    name: str
    reason: str
    """``failed``, ``condemned`` or ``update``: why it goes (for the event)."""


@dataclass(frozen=True, slots=True)
class DeleteClaims:
    names: tuple[str, ...]


Action = AdoptPod | ReleasePod | CreateClaims | CreatePod | DeletePod | DeleteClaims


@dataclass(frozen=True)
class Plan:
    actions: list[Action] = field(default_factory=list)
    status: Obj = field(default_factory=dict)
    requeue_after: float | None = None
    """Seconds until a pod becomes available (``minReadySeconds``) and the set should be looked at again."""


# -- identity ----------------------------------------------------------------------------------
def update_revision(sts: Obj) -> str:
    """The name of the current template's ControllerRevision, ``<set>-<hash>``: the pods'
    ``controller-revision-hash`` label, as Kubernetes labels StatefulSet pods."""
    spec = sts.get("spec") or {}
    hash_ = template_hash(spec.get("template") or {}, (sts.get("status") or {}).get("collisionCount"))
    return f"{name_of(sts)}-{hash_}"


def ordinal_of(sts: Obj, pod: Obj) -> int | None:
    """The ordinal in ``<set>-<ordinal>``, None when the name is not one of the set's."""
    match = re.fullmatch(re.escape(name_of(sts)) + r"-(0|[1-9][0-9]*)", name_of(pod))
    return int(match.group(1)) if match else None


def pod_name(sts: Obj, ordinal: int) -> str:
    return f"{name_of(sts)}-{ordinal}"


def claim_name(template: Obj, sts: Obj, ordinal: int) -> str:
    return f"{(template.get('metadata') or {}).get('name')}-{name_of(sts)}-{ordinal}"


def claim_templates(sts: Obj) -> list[Obj]:
    return [t for t in (sts.get("spec") or {}).get("volumeClaimTemplates") or [] if isinstance(t, dict)]


def retention(sts: Obj, when: str) -> str:
    policy = (sts.get("spec") or {}).get("persistentVolumeClaimRetentionPolicy") or {}
    return str(policy.get(when) or "Retain")


def claim_object(sts: Obj, template: Obj, ordinal: int) -> Obj:
    """The claim of ``template`` for the pod of ``ordinal``: the set's matchLabels, the template's spec."""
    tmeta = template.get("metadata") or {}
    labels = dict(tmeta.get("labels") or {})
    labels.update(((sts.get("spec") or {}).get("selector") or {}).get("matchLabels") or {})
    claim_meta: Obj = {"name": claim_name(template, sts, ordinal), "namespace": meta(sts).get("namespace") or "default",
                       "labels": labels}
    if tmeta.get("annotations"):
        claim_meta["annotations"] = dict(tmeta["annotations"])
    if retention(sts, "whenDeleted") == DELETE:
        claim_meta["ownerReferences"] = [owner_reference(sts, controller=False, block=True)]
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": claim_meta,
            "spec": copy.deepcopy(template.get("spec") or {})}


def stateful_pod(sts: Obj, template: Obj, ordinal: int, revision: str) -> Obj:
    """The pod of ``ordinal`` from ``template`` (the current or the update revision's) at ``revision``."""
    template = copy.deepcopy(template)
    tmeta = template.get("metadata") or {}
    name = pod_name(sts, ordinal)
    labels = dict(tmeta.get("labels") or {})
    labels.update({HASH_LABEL: revision, POD_NAME_LABEL: name, POD_INDEX_LABEL: str(ordinal)})
    pod_meta: Obj = {"name": name, "namespace": meta(sts).get("namespace") or "default", "labels": labels,
                     "ownerReferences": [owner_reference(sts, controller=True, block=True)]}
    if tmeta.get("annotations"):
        pod_meta["annotations"] = dict(tmeta["annotations"])
    spec = template.get("spec") or {}
    spec["hostname"] = name
    service = (sts.get("spec") or {}).get("serviceName")
    if service:
        spec["subdomain"] = service
    claims = claim_templates(sts)
    if claims:
        names = {(t.get("metadata") or {}).get("name") for t in claims}
        volumes = [v for v in spec.get("volumes") or [] if v.get("name") not in names]
        volumes.extend({"name": (t.get("metadata") or {}).get("name"),
                        "persistentVolumeClaim": {"claimName": claim_name(t, sts, ordinal)}} for t in claims)
        spec["volumes"] = volumes
    return {"apiVersion": "v1", "kind": "Pod", "metadata": pod_meta, "spec": spec}


# -- health ------------------------------------------------------------------------------------
def _phase(pod: Obj) -> str:
    return str((pod.get("status") or {}).get("phase") or "Pending")


def is_failed(pod: Obj) -> bool:
    return _phase(pod) in ("Failed", "Succeeded")


def is_healthy(pod: Obj, min_ready: int, now: float) -> bool:
    """Running, ready for ``minReadySeconds`` and not terminating (Kubernetes' ``isRunningAndAvailable``)."""
    return _phase(pod) == "Running" and not is_deleting(pod) and is_available(pod, min_ready, now)


def revision_of(pod: Obj) -> str:
    return str(labels_of(pod).get(HASH_LABEL) or "")


# -- the plan ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Facts:
    start: int
    replicas: int
    policy: str
    strategy: str
    partition: int
    max_unavailable: int
    min_ready: int


def facts_of(sts: Obj) -> Facts:
    spec = sts.get("spec") or {}
    replicas = int(spec.get("replicas", 1) or 0)
    strategy = spec.get("updateStrategy") or {}
    rolling = strategy.get("rollingUpdate") or {}
    max_unavailable = max(1, resolve_int_or_percent(rolling.get("maxUnavailable", 1), replicas, round_up=True))
    return Facts(start=int((spec.get("ordinals") or {}).get("start") or 0), replicas=replicas,
                 policy=str(spec.get("podManagementPolicy") or ORDERED_READY),
                 strategy=str(strategy.get("type") or ROLLING_UPDATE), partition=int(rolling.get("partition") or 0),
                 max_unavailable=max_unavailable, min_ready=int(spec.get("minReadySeconds") or 0))


def current_revision(sts: Obj, templates: dict[str, Obj]) -> str:
    """``status.currentRevision`` while its template is known, else the update revision."""
    current = str((sts.get("status") or {}).get("currentRevision") or "")
    return current if current in templates else update_revision(sts)


def _needs_current(sts: Obj, f: Facts, ordinal: int) -> bool:
    """Kubernetes' ``isCurrentRevisionNeeded``: a re-created pod keeps the old template below the partition
    (below ``status.currentReplicas`` only when no partition is given, which defaulting never leaves)."""
    if f.strategy != ROLLING_UPDATE:
        return False
    rolling = ((sts.get("spec") or {}).get("updateStrategy") or {}).get("rollingUpdate") or {}
    if rolling.get("partition") is None:
        return ordinal < f.start + int((sts.get("status") or {}).get("currentReplicas") or 0)
    return ordinal < f.start + f.partition


def plan(sts: Obj, pods: list[Obj], claims: set[str] | None, templates: dict[str, Obj], now: float, *,
         expectations_satisfied: bool = True) -> Plan:
    """What to do for ``sts`` given the pods of its namespace, the names of the namespace's claims (None when
    the server has no PersistentVolumeClaim kind: no claims are made) and the templates of its revisions
    by hash (the current template's included)."""
    f = facts_of(sts)
    claimed = claim_plan(sts, spec_selector(sts), pods)
    actions: list[Action] = [*claim_actions(claimed)]
    update = update_revision(sts)
    templates = {**templates, update: (sts.get("spec") or {}).get("template") or {}}
    current = current_revision(sts, templates)
    by_ordinal: dict[int, Obj] = {}
    condemned: list[tuple[int, Obj]] = []
    wanted = range(f.start, f.start + f.replicas)
    for kept in claimed.kept:
        ordinal = ordinal_of(sts, kept)
        if ordinal is not None and ordinal in wanted and ordinal not in by_ordinal:
            by_ordinal[ordinal] = kept
        else:
            condemned.append((-1 if ordinal is None else ordinal, kept))
    status = compute_status(sts, claimed.kept, current, update, now)
    result = Plan(actions, status, _next_available(claimed.kept, f.min_ready, now))
    if is_deleting(sts) or not expectations_satisfied:
        return result
    monotonic = f.policy != PARALLEL
    blocked = unhealthy = False  # a pod created or deleted in this pass / a pod not yet available
    for ordinal in wanted:
        pod = by_ordinal.get(ordinal)
        if pod is not None and is_failed(pod) and not is_deleting(pod):
            actions.append(DeletePod(name_of(pod), "failed"))
            blocked = True  # re-created next pass, once the deletion is seen
            if monotonic:
                break
            continue
        if pod is None:
            revision = current if _needs_current(sts, f, ordinal) else update
            if claims is not None:
                missing = tuple(claim_object(sts, t, ordinal) for t in claim_templates(sts)
                                if claim_name(t, sts, ordinal) not in claims)
                if missing:
                    actions.append(CreateClaims(missing))
            actions.append(CreatePod(stateful_pod(sts, templates.get(revision) or templates[update], ordinal,
                                                  revision)))
            blocked = True
            if monotonic:
                break
            continue
        if not is_healthy(pod, f.min_ready, now):
            unhealthy = True
            if monotonic:
                break
    if monotonic and (blocked or unhealthy):
        return result
    condemned.sort(key=lambda item: item[0], reverse=True)
    for index, (_, pod) in enumerate(condemned):
        if is_deleting(pod):
            if monotonic:
                return result
            continue
        if monotonic and any(not is_healthy(p, f.min_ready, now) for _, p in condemned[index + 1:]):
            return result
        actions.append(DeletePod(name_of(pod), "condemned"))
        if monotonic:
            return result
    if claims is not None and retention(sts, "whenScaled") == DELETE:
        live = {ordinal_of(sts, p) for p in claimed.kept}
        gone = tuple(sorted(name for name in claims for t in claim_templates(sts)
                            if (o := _claim_ordinal(name, t, sts)) is not None and o not in wanted and o not in live))
        if gone:
            actions.append(DeleteClaims(gone))
    if blocked or f.strategy != ROLLING_UPDATE:
        return result
    actions.extend(rolling_update(f, by_ordinal, update, now))  # Parallel: within maxUnavailable
    return result


def _claim_ordinal(name: str, template: Obj, sts: Obj) -> int | None:
    prefix = f"{(template.get('metadata') or {}).get('name')}-{name_of(sts)}-"
    rest = name[len(prefix):] if name.startswith(prefix) else ""
    return int(rest) if re.fullmatch(r"0|[1-9][0-9]*", rest) else None


def rolling_update(f: Facts, by_ordinal: dict[int, Obj], update: str, now: float) -> list[DeletePod]:
    """Outdated pods at ordinals ``>= partition`` to delete, highest first, within ``maxUnavailable``."""
    targets = sorted((o for o in by_ordinal if o >= f.start + f.partition), reverse=True)
    missing = sum(1 for o in range(f.start + f.partition, f.start + f.replicas) if o not in by_ordinal)
    unavailable = missing + sum(1 for o in targets if not is_healthy(by_ordinal[o], f.min_ready, now))
    deletes: list[DeletePod] = []
    for ordinal in targets:
        pod = by_ordinal[ordinal]
        if revision_of(pod) == update or is_deleting(pod):
            continue
        healthy = is_healthy(pod, f.min_ready, now)
        if healthy and unavailable >= f.max_unavailable:
            break
        deletes.append(DeletePod(name_of(pod), "update"))
        if healthy:
            unavailable += 1
    return deletes


def _next_available(pods: list[Obj], min_ready: int, now: float) -> float | None:
    if min_ready <= 0:
        return None
    waits = [since + min_ready - now for p in pods if (since := ready_since(p)) is not None and since + min_ready > now]
    return max(0.1, min(waits)) + 0.05 if waits else None


def compute_status(sts: Obj, pods: list[Obj], current: str, update: str, now: float) -> Obj:
    """Kubernetes' counts: every pod created and not terminal; the rollout completes when all are updated
    and ready (``completeRollingUpdate``)."""
    f = facts_of(sts)
    live = [p for p in pods if not is_failed(p)]
    counted = [p for p in live if not is_deleting(p)]
    ready = sum(1 for p in counted if pod_is_ready(p) and _phase(p) == "Running")
    available = sum(1 for p in counted if is_healthy(p, f.min_ready, now))
    updated = sum(1 for p in live if revision_of(p) == update)
    current_count = sum(1 for p in live if revision_of(p) == current)
    if updated == len(live) == ready == f.replicas:
        current, current_count = update, updated
    status: Obj = {"observedGeneration": meta(sts).get("generation") or 0, "replicas": len(live),
                   "readyReplicas": ready, "availableReplicas": available, "currentReplicas": current_count,
                   "updatedReplicas": updated, "currentRevision": current, "updateRevision": update,
                   "collisionCount": int((sts.get("status") or {}).get("collisionCount") or 0)}
    return status


def status_changed(previous: Obj, status: Obj) -> bool:
    return any(previous.get(k) != v for k, v in status.items())
