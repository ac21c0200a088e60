"""Pure decisions of the garbage collector, for one object seen as a dependent and as an owner.

As a dependent (``plan_dependent``): with every owner absent (matched by uid) the object is deleted in
the background; with only some absent, the dangling references are removed and it stays.

As an owner being deleted (``plan_owner``):
- finalizer ``orphan``: remove our ownerReference from every dependent, then the finalizer;
- finalizer ``foregroundDeletion``: delete the dependents not yet being deleted (those with
  ``blockOwnerDeletion`` first, in the foreground themselves; the others in the background); once no
  dependent with ``blockOwnerDeletion`` remains, remove the finalizer so the owner goes.
The executor runs the actions in order and stops at the first failure, so a finalizer is removed
only after the work it guards is done.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from protocol.objects import Obj, is_deleting, meta, uid_of

ORPHAN = "orphan"
FOREGROUND = "foregroundDeletion"


@dataclass(frozen=True, slots=True)
class DeleteObject:
    key: str
    uid: str
    propagation: str = "Background"
    owners_gone: bool = False
    """Deleted because its owners are gone (the executor re-checks them on the live object), rather
    than as the dependent of an owner being deleted in the foreground."""


@dataclass(frozen=True, slots=True)
class RemoveOwnerRefs:
    key: str
    uid: str
    owner_uids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class RemoveFinalizer:
    key: str
    uid: str
    finalizer: str


Action = DeleteObject | RemoveOwnerRefs | RemoveFinalizer


@dataclass(frozen=True, slots=True)
class Dependent:
    """What the owner side needs to know of one dependent."""
    key: str
    uid: str
    blocking: bool
    """Its reference to the owner has ``blockOwnerDeletion``."""
    deleting: bool


def plan_dependent(obj: Obj, key: str, owner_present: Mapping[str, bool]) -> Action | None:
    """``owner_present`` answers, per owner uid, whether that very owner still exists."""
    uids = [str(r.get("uid")) for r in meta(obj).get("ownerReferences") or [] if r.get("uid")]
    if not uids:
        return None
    absent = tuple(u for u in uids if not owner_present.get(u, True))
    if not absent:
        return None
    if len(absent) == len(uids):
        return None if is_deleting(obj) else DeleteObject(key, uid_of(obj), owners_gone=True)
    return RemoveOwnerRefs(key, uid_of(obj), absent)


def plan_owner(owner: Obj, key: str, dependents: list[Dependent]) -> list[Action]:
    if not is_deleting(owner):
        return []
    finalizers = list(meta(owner).get("finalizers") or [])
    uid = uid_of(owner)
    if ORPHAN in finalizers:
        actions: list[Action] = [RemoveOwnerRefs(d.key, d.uid, (uid,)) for d in sorted(dependents, key=_order)]
        actions.append(RemoveFinalizer(key, uid, ORPHAN))
        return actions
    if FOREGROUND in finalizers:
        actions = [DeleteObject(d.key, d.uid, "Foreground" if d.blocking else "Background")
                   for d in sorted(dependents, key=_order) if not d.deleting]
        if not any(d.blocking for d in dependents):
            actions.append(RemoveFinalizer(key, uid, FOREGROUND))
        return actions
    return []


def _order(d: Dependent) -> tuple[int, str]:
    return (0 if d.blocking else 1, d.key)


def without_owners(obj: Obj, owner_uids: tuple[str, ...]) -> Obj | None:
    """``obj`` with the references to ``owner_uids`` removed; None when it has none of them."""
    refs = list(meta(obj).get("ownerReferences") or [])
    kept = [r for r in refs if str(r.get("uid")) not in owner_uids]
    if len(kept) == len(refs):
        return None
    if kept:
        meta(obj)["ownerReferences"] = kept
    else:
        meta(obj).pop("ownerReferences", None)
    return obj


def without_finalizer(obj: Obj, finalizer: str) -> Obj | None:
    finalizers = list(meta(obj).get("finalizers") or [])
    if finalizer not in finalizers:
        return None
    kept = [f for f in finalizers if f != finalizer]
    if kept:
        meta(obj)["finalizers"] = kept
    else:
        meta(obj).pop("finalizers", None)
    return obj
