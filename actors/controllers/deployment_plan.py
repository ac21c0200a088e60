"""Pure decisions of the Deployment controller: which ReplicaSets to create, scale and delete.

``plan(deployment, replicasets, old_pods_running=..., now=...)`` follows kube-controller-manager's
deployment controller one pass at a time:

- a paused deployment, or one whose replicas changed (a *scaling event*), is only scaled: the
  single active ReplicaSet takes the new count, or the count is shared proportionally between several;
- RollingUpdate scales the new ReplicaSet up within ``replicas + maxSurge`` pods, then old ones down
  while at least ``replicas - maxUnavailable`` pods stay available (unhealthy old pods go first);
- Recreate scales every old ReplicaSet to 0, waits until their pods are gone, then brings up the new;
- once the rollout is complete, old ReplicaSets beyond ``revisionHistoryLimit`` are deleted.

``rollback_template`` and ``revision_history`` serve ``shoal rollout undo`` / ``rollout history``.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

from actors.controllers.claim_plan import is_controlled_by
from actors.controllers.deployment_revisions import (
    CHANGE_CAUSE,
    DESIRED_REPLICAS,
    HASH_LABEL,
    REVISION,
    REVISION_HISTORY,
    available,
    by_age,
    fenceposts,
    find_new_replicaset,
    max_revision,
    new_replicaset,
    replica_annotations,
    revision_of,
    spec_replicas,
    status_int,
    template_without_hash,
)
from actors.controllers.deployment_status import complete, compute_status
from protocol.errors import NotFound
from protocol.objects import Obj, is_deleting, meta, name_of


# -- actions --------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class CreateReplicaSet:
    replicaset: Obj


@dataclass(frozen=True, slots=True)
class UpdateReplicaSet:
    """Set ``spec.replicas`` and merge ``annotations`` (an event is recorded when replicas change)."""

    name: str
    replicas: int
    previous: int
    annotations: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class DeleteReplicaSet:
    name: str


@dataclass(frozen=True, slots=True)
class SetDeploymentRevision:
    revision: int


Action = CreateReplicaSet | UpdateReplicaSet | DeleteReplicaSet | SetDeploymentRevision


@dataclass
class Plan:
    actions: list[Action] = field(default_factory=list)
    status: Obj = field(default_factory=dict)
    new_rs: Obj | None = None


class _Work:
    """ReplicaSets as this pass leaves them: scaling one updates the copy later steps look at."""

    def __init__(self, deployment: Obj, replicasets: list[Obj]) -> None:
        self.deployment = deployment
        self.rses = {name_of(rs): copy.deepcopy(rs) for rs in replicasets}
        self.actions: list[Action] = []

    def scale(self, rs: Obj, replicas: int, extra: dict[str, str] | None = None) -> None:
        current = self.rses.get(name_of(rs), rs)
        annotations = {**replica_annotations(self.deployment), **(extra or {})}
        have = meta(current).get("annotations") or {}
        previous = spec_replicas(current)
        if previous == replicas and all(have.get(k) == v for k, v in annotations.items()):
            return
        self.actions.append(UpdateReplicaSet(name_of(current), replicas, previous, annotations))
        current.setdefault("spec", {})["replicas"] = replicas
        meta(current).setdefault("annotations", {}).update(annotations)

    def get(self, rs: Obj) -> Obj:
        return self.rses.get(name_of(rs), rs)


# -- the pass -------------------------------------------------------------------------------------
def plan(deployment: Obj, replicasets: list[Obj], *, old_pods_running: bool, now: float) -> Plan:
    """One pass over ``deployment`` and the ReplicaSets it controls."""
    owned = [rs for rs in replicasets if is_controlled_by(rs, deployment)]
    new_rs = find_new_replicaset(deployment, owned)
    old = [rs for rs in owned if new_rs is None or name_of(rs) != name_of(new_rs)]
    spec = deployment.get("spec") or {}
    work = _Work(deployment, owned)
    created = False
    if is_deleting(deployment):
        return Plan([], compute_status(deployment, new_rs, owned, now), new_rs)
    recreate = (spec.get("strategy") or {}).get("type") == "Recreate"
    if spec.get("paused") or is_scaling_event(deployment, new_rs, old):
        scale(work, new_rs, old)
        if spec.get("paused"):
            work.actions.extend(prune_history(deployment, new_rs, [work.get(rs) for rs in old]))
    else:
        new_revision = max_revision(old) + 1
        if new_rs is None:
            if not recreate or not (any(spec_replicas(rs) > 0 for rs in old) or old_pods_running_any(
                    old, old_pods_running)):
                all_now = [work.get(rs) for rs in old]
                replicas = new_rs_replicas(deployment, all_now, None)
                new_rs = new_replicaset(deployment, replicas, new_revision)
                work.actions.append(CreateReplicaSet(new_rs))
                work.rses[name_of(new_rs)] = copy.deepcopy(new_rs)
                created = True
        elif revision_of(new_rs) < new_revision:
            work.actions.append(_bump_revision(work, deployment, new_rs, new_revision))
        if new_rs is not None and str(revision_of(work.get(new_rs))) != (
                meta(deployment).get("annotations") or {}).get(REVISION):
            work.actions.append(SetDeploymentRevision(revision_of(work.get(new_rs))))
        if recreate:
            rollout_recreate(work, new_rs, old, old_pods_running)
        elif new_rs is not None:
            rollout_rolling(work, new_rs, old)
    current = [work.get(rs) for rs in owned] + ([work.get(new_rs)] if created and new_rs is not None else [])
    current_new = work.get(new_rs) if new_rs is not None else None
    status = compute_status(deployment, current_new, current, now, new_rs_created=created)
    if not spec.get("paused") and complete(deployment, status) and not work.actions:
        work.actions.extend(prune_history(deployment, current_new, [work.get(rs) for rs in old]))
    return Plan(work.actions, status, current_new)


def old_pods_running_any(old: list[Obj], pods_running: bool) -> bool:
    """Old pods still exist: the caller saw some, or an old ReplicaSet's status still counts some."""
    return pods_running or any(status_int(rs, "replicas") > 0 for rs in old)


def _bump_revision(work: _Work, deployment: Obj, rs: Obj, revision: int) -> UpdateReplicaSet:
    """A template rolled out again (a rollback) takes the next revision; the old number goes to history."""
    current = work.get(rs)
    annotations = meta(current).get("annotations") or {}
    extra = {REVISION: str(revision)}
    old_revision = annotations.get(REVISION)
    if old_revision:
        history = [h for h in (annotations.get(REVISION_HISTORY) or "").split(",") if h]
        extra[REVISION_HISTORY] = ",".join([*history, old_revision])
    cause = (meta(deployment).get("annotations") or {}).get(CHANGE_CAUSE)
    if cause:
        extra[CHANGE_CAUSE] = cause
    action = UpdateReplicaSet(name_of(current), spec_replicas(current), spec_replicas(current),
                              {**replica_annotations(deployment), **extra})
    meta(current).setdefault("annotations", {}).update(action.annotations)
    return action


def new_rs_replicas(deployment: Obj, replicasets: list[Obj], new_rs: Obj | None) -> int:
    """How many replicas the new ReplicaSet may have now (kube's ``NewRSNewReplicas``)."""
    replicas = spec_replicas(deployment)
    if ((deployment.get("spec") or {}).get("strategy") or {}).get("type") == "Recreate":
        return replicas
    surge, _ = fenceposts(deployment)
    current = sum(spec_replicas(rs) for rs in replicasets) + (0 if new_rs is None or any(
        name_of(rs) == name_of(new_rs) for rs in replicasets) else spec_replicas(new_rs))
    have = spec_replicas(new_rs)
    max_total = replicas + surge
    if current >= max_total:
        return have
    return have + max(0, min(max_total - current, replicas - have))


def rollout_rolling(work: _Work, new_rs: Obj, old: list[Obj]) -> None:
    """Scale the new ReplicaSet up, or else old ones down, within maxSurge/maxUnavailable."""
    deployment = work.deployment
    replicas = spec_replicas(deployment)
    new_rs = work.get(new_rs)
    have = spec_replicas(new_rs)
    if have > replicas:
        work.scale(new_rs, replicas)
        return
    if have < replicas:
        everything = [work.get(rs) for rs in old] + [new_rs]
        target = new_rs_replicas(deployment, everything, new_rs)
        if target != have:
            work.scale(new_rs, target)
            return
    old_now = [work.get(rs) for rs in old]
    if sum(spec_replicas(rs) for rs in old_now) == 0:
        return
    _, unavailable = fenceposts(deployment)
    min_available = replicas - unavailable
    all_pods = sum(spec_replicas(rs) for rs in old_now) + spec_replicas(new_rs)
    new_unavailable = spec_replicas(new_rs) - available(new_rs)
    max_scaled_down = all_pods - min_available - new_unavailable
    if max_scaled_down <= 0:
        return
    # first the old pods that are not available anyway: removing them costs nothing
    cleaned = 0
    for rs in by_age(old_now):
        rs = work.get(rs)
        if cleaned >= max_scaled_down:
            break
        unhealthy = spec_replicas(rs) - available(rs)
        if spec_replicas(rs) == 0 or unhealthy <= 0:
            continue
        down = min(max_scaled_down - cleaned, unhealthy)
        work.scale(rs, spec_replicas(rs) - down)
        cleaned += down
    # then available ones, as long as minAvailable stays available
    old_now = [work.get(rs) for rs in old]
    available_now = sum(available(rs) for rs in old_now) + available(new_rs)
    budget = min(available_now - min_available, max_scaled_down - cleaned)
    for rs in by_age(old_now):
        if budget <= 0:
            break
        rs = work.get(rs)
        if spec_replicas(rs) == 0:
            continue
        down = min(spec_replicas(rs), budget)
        work.scale(rs, spec_replicas(rs) - down)
        budget -= down


def rollout_recreate(work: _Work, new_rs: Obj | None, old: list[Obj], old_pods_running: bool) -> None:
    """Old ReplicaSets to 0; when their pods are gone, the new one to ``replicas``."""
    active_old = [work.get(rs) for rs in old if spec_replicas(work.get(rs)) > 0]
    if active_old:
        for rs in active_old:
            work.scale(rs, 0)
        return
    if old_pods_running_any([work.get(rs) for rs in old], old_pods_running) or new_rs is None:
        return
    work.scale(work.get(new_rs), spec_replicas(work.deployment))


# -- scaling (paused deployments, replicas changed mid-rollout) -----------------------------------
def is_scaling_event(deployment: Obj, new_rs: Obj | None, old: list[Obj]) -> bool:
    """An active ReplicaSet was sized for a different ``replicas`` than the deployment's now."""
    desired = str(spec_replicas(deployment))
    for rs in [*old, *([new_rs] if new_rs is not None else [])]:
        if spec_replicas(rs) <= 0:
            continue
        annotated = (meta(rs).get("annotations") or {}).get(DESIRED_REPLICAS)
        if annotated is not None and annotated != desired:
            return True
    return False


def scale(work: _Work, new_rs: Obj | None, old: list[Obj]) -> None:
    """Kube's ``scale``: one active ReplicaSet takes all; a saturated new one retires the old; otherwise
    the change is shared among active ReplicaSets in proportion to their size (largest first)."""
    deployment = work.deployment
    replicas = spec_replicas(deployment)
    everything = [work.get(rs) for rs in [*([new_rs] if new_rs is not None else []), *old]]
    active = [rs for rs in everything if spec_replicas(rs) > 0]
    if len(active) <= 1:
        target = active[0] if active else (new_rs if new_rs is not None else
                                           (max(old, key=revision_of) if old else None))
        if target is not None:
            work.scale(work.get(target), replicas)
        return
    newest = work.get(new_rs) if new_rs is not None else None
    if newest is not None and spec_replicas(newest) == replicas and available(newest) >= replicas:
        for rs in old:
            if spec_replicas(work.get(rs)) > 0:
                work.scale(work.get(rs), 0)
        return
    surge, _ = fenceposts(deployment)
    allowed = replicas + surge if replicas > 0 else 0
    total = sum(spec_replicas(rs) for rs in active)
    to_add = allowed - total
    sign = -1 if to_add > 0 else 1  # growing: newer first; shrinking: older first
    order = sorted(active, key=lambda rs: (-spec_replicas(rs), sign * revision_of(rs)))
    shares = {name_of(rs): 0 for rs in order}
    if to_add != 0:
        given = 0
        for rs in order:
            share = int(to_add * spec_replicas(rs) / total)
            share = max(share, -spec_replicas(rs))
            shares[name_of(rs)] = share
            given += share
        leftover = to_add - given
        first = order[0]
        shares[name_of(first)] = max(shares[name_of(first)] + leftover, -spec_replicas(first))
    for rs in order:
        work.scale(rs, spec_replicas(rs) + shares[name_of(rs)])


# -- history ---------------------------------------------------------------------------------------
def prune_history(deployment: Obj, new_rs: Obj | None, old: list[Obj]) -> list[Action]:
    """Delete the oldest scaled-down ReplicaSets beyond ``revisionHistoryLimit``."""
    limit = (deployment.get("spec") or {}).get("revisionHistoryLimit")
    limit = 10 if limit is None else int(limit)
    cleanable = [rs for rs in old if not is_deleting(rs)
                 and (new_rs is None or name_of(rs) != name_of(new_rs))]
    excess = len(cleanable) - limit
    if excess <= 0:
        return []
    actions: list[Action] = []
    for rs in sorted(cleanable, key=lambda r: (revision_of(r), name_of(r)))[:excess]:
        settled = status_int(rs, "observedGeneration") >= int(meta(rs).get("generation") or 0)
        if spec_replicas(rs) == 0 and status_int(rs, "replicas") == 0 and settled:
            actions.append(DeleteReplicaSet(name_of(rs)))
    return actions


@dataclass(frozen=True, slots=True)
class Revision:
    revision: int
    replicaset: str
    change_cause: str | None
    template: Obj


def revision_history(deployment: Obj, replicasets: list[Obj]) -> list[Revision]:
    """``rollout history``: one entry per ReplicaSet the deployment owns, oldest revision first."""
    owned = [rs for rs in replicasets if is_controlled_by(rs, deployment)]
    entries = [Revision(revision_of(rs), name_of(rs), (meta(rs).get("annotations") or {}).get(CHANGE_CAUSE),
                        template_without_hash((rs.get("spec") or {}).get("template") or {}))
               for rs in owned if revision_of(rs) > 0]
    return sorted(entries, key=lambda e: e.revision)


class RevisionNotFound(NotFound):
    """``rollout undo --to-revision`` named a revision no ReplicaSet of the deployment carries."""


def rollback_template(deployment: Obj, replicasets: list[Obj], to_revision: int = 0) -> Obj:
    """``rollout undo``: the deployment with the pod template of revision ``to_revision`` (0: the one
    before the current). Write the result back with ``update`` (keeping its resourceVersion as the
    precondition); the controller then sees a new template, finds the old ReplicaSet by its
    ``pod-template-hash``, gives it the next revision and rolls out to it as to any new template.
    """
    history = revision_history(deployment, replicasets)
    if not history:
        raise RevisionNotFound(f'no rollout history found for deployment "{name_of(deployment)}"')
    if to_revision == 0:
        current = history[-1].revision
        earlier = [e for e in history if e.revision < current]
        if not earlier:
            raise RevisionNotFound("no previous revision to roll back to for deployment "
                                   f'"{name_of(deployment)}"')
        target = earlier[-1]
    else:
        found = [e for e in history if e.revision == to_revision]
        if not found:
            raise RevisionNotFound(f"unable to find specified revision {to_revision} in history",
                                   {"revision": to_revision})
        target = found[0]
    result = copy.deepcopy(deployment)
    template = copy.deepcopy(target.template)
    (template.get("metadata") or {}).get("labels", {}).pop(HASH_LABEL, None)
    result.setdefault("spec", {})["template"] = template
    annotations = meta(result).setdefault("annotations", {})
    if target.change_cause:
        annotations[CHANGE_CAUSE] = target.change_cause
    else:
        annotations.pop(CHANGE_CAUSE, None)
    return result
