"""Which objects an owner claims: the pure half of Kubernetes' ``BaseControllerRefManager.ClaimObject``.

An owner (ReplicaSet, ReplicationController, Deployment) controls the objects of its namespace whose
controller reference names its uid. ``claim_plan(owner, selector, candidates)`` sorts the candidates:

- owned, and the selector matches: kept;
- owned, the selector no longer matches: released (the ownerReference removed) -- unless the owner is
  being deleted, when it is kept: its dependents belong to the garbage collector then;
- an orphan (no controller) the selector matches, not being deleted, of the owner's namespace, while
  the owner is not being deleted: adopted (and kept);
- owned by another controller, or anything else: ignored.

``claim_actions`` turns a pod claim into the ``AdoptPod``/``ReleasePod`` actions of the pod owners' plans
(ReplicaSet, DaemonSet, StatefulSet); ``controller_key`` finds the owner key of a dependent.
``controllerref.ControllerRefManager`` sends the adopt/release patches. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from protocol.objects import Obj, controller_of, is_deleting, labels_of, name_of, namespace_of, ref, uid_of
from protocol.selectors import Selector


@dataclass(frozen=True)
class ClaimPlan:
    kept: list[Obj] = field(default_factory=list)
    """Candidates the owner controls after the plan is carried out (adoptees included), in input order."""
    adopt: list[Obj] = field(default_factory=list)
    release: list[Obj] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class AdoptPod:
    name: str


@dataclass(frozen=True, slots=True)
class ReleasePod:
    name: str


def claim_actions(claimed: ClaimPlan) -> list[AdoptPod | ReleasePod]:
    """The actions carrying out a claim of pods: the adoptions, then the releases."""
    return [*(AdoptPod(name_of(p)) for p in claimed.adopt), *(ReleasePod(name_of(p)) for p in claimed.release)]


def controller_key(obj: Obj, kind: str, lookup: Callable[[str | None, str], Obj | None]) -> str | None:
    """The key of the owner of ``kind`` controlling ``obj``, found by ``lookup(namespace, name)``; None when
    its controller is of another kind, not found, or another object of that name (its uid differs)."""
    owner_ref = controller_of(obj)
    if owner_ref is None or owner_ref.get("kind") != kind:
        return None
    owner = lookup(namespace_of(obj), str(owner_ref.get("name", "")))
    if owner is None or uid_of(owner) != owner_ref.get("uid"):
        return None
    return ref(owner)


def is_controlled_by(obj: Obj, owner: Obj) -> bool:
    """Whether ``obj``'s controller reference names ``owner`` (by uid: a recreated owner is another)."""
    ref = controller_of(obj)
    return ref is not None and ref.get("uid") == uid_of(owner)


def claim_plan(owner: Obj, selector: Selector, candidates: list[Obj]) -> ClaimPlan:
    """Sort ``candidates`` into kept, to adopt and to release for ``owner`` (see the module docstring)."""
    plan = ClaimPlan()
    owner_deleting = is_deleting(owner)
    owner_namespace = namespace_of(owner)
    owner_uid = uid_of(owner)
    for obj in candidates:
        controller = controller_of(obj)
        if controller is not None and controller.get("uid") != owner_uid:
            continue  # another owner's: ignored without evaluating the selector (most pods, at scale)
        matches = selector.matches(labels_of(obj))
        if controller is not None:
            if matches or owner_deleting:
                plan.kept.append(obj)
            else:
                plan.release.append(obj)
        elif (matches and not owner_deleting and not is_deleting(obj)
              and (not owner_namespace or namespace_of(obj) == owner_namespace)):
            plan.adopt.append(obj)
            plan.kept.append(obj)
    return plan
