"""Adopting and releasing dependents: the I/O half of Kubernetes' ``PodControllerRefManager``.

``claim_plan`` decides; this sends the patches. Both are patches of ``metadata.ownerReferences`` with
the cached object's resourceVersion as a precondition, so a concurrent change is never overwritten: a
Conflict or NotFound means the object changed or went, and its watch event requeues the owner.

Before adopting, the owner is read fresh (``can_adopt``): an owner deleted or recreated since the
cache saw it must not take orphans (Kubernetes' ``RecheckDeletionTimestamp``).
"""

from __future__ import annotations

from typing import Any

from actors.controllers.claim_plan import ClaimPlan
from protocol.errors import Conflict, NotFound
from protocol.objects import (
    Obj,
    is_deleting,
    meta,
    name_of,
    namespace_of,
    owner_reference,
    ref,
    uid_of,
)
from runtime.client import ApiClient


def owner_patch(owner: Obj, obj: Obj, *, adopt: bool) -> Obj:
    """The patch making ``owner`` the controller of ``obj`` (adopt) or no owner of it (release)."""
    refs = [r for r in meta(obj).get("ownerReferences") or [] if r.get("uid") != uid_of(owner)]
    if adopt:
        refs.append(owner_reference(owner, controller=True, block=True))
    return {"metadata": {"ownerReferences": refs or None, "resourceVersion": meta(obj).get("resourceVersion")}}


class ControllerRefManager:
    """Sends adopt/release patches for dependents of kind ``kind`` (Pod, ReplicaSet, ...)."""

    def __init__(self, client: ApiClient, kind: str, log: Any) -> None:
        self.client = client
        self.kind = kind
        self.log = log

    async def can_adopt(self, owner: Obj) -> bool:
        """Whether ``owner`` is still there, the same object, and not being deleted."""
        try:
            fresh = await self.client.get(str(owner.get("kind", "")), name_of(owner), namespace_of(owner))
        except NotFound:
            return False
        return uid_of(fresh) == uid_of(owner) and not is_deleting(fresh)

    async def adopt(self, owner: Obj, obj: Obj) -> Obj | None:
        """Make ``owner`` the controller of ``obj``; the patched object, or None when it changed or went."""
        return await self._patch(owner, obj, adopt=True)

    async def release(self, owner: Obj, obj: Obj) -> Obj | None:
        """Remove ``owner``'s reference from ``obj``; the patched object, or None when it changed or went."""
        return await self._patch(owner, obj, adopt=False)

    async def claim(self, owner: Obj, plan: ClaimPlan) -> list[Obj]:
        """Carry ``plan`` out; the objects ``owner`` controls afterwards (adoptees as patched, adoptions
        that did not happen left out)."""
        adopted: dict[str, Obj | None] = {}
        if plan.adopt and await self.can_adopt(owner):
            for obj in plan.adopt:
                adopted[name_of(obj)] = await self.adopt(owner, obj)
        for obj in plan.release:
            await self.release(owner, obj)
        adoptees = {name_of(obj) for obj in plan.adopt}
        claimed: list[Obj] = []
        for obj in plan.kept:
            if name_of(obj) not in adoptees:
                claimed.append(obj)
            elif (patched := adopted.get(name_of(obj))) is not None:
                claimed.append(patched)
        return claimed

    async def _patch(self, owner: Obj, obj: Obj, *, adopt: bool) -> Obj | None:
        try:
            patched = await self.client.patch(self.kind, name_of(obj), owner_patch(owner, obj, adopt=adopt),
                                              namespace_of(obj))
        except (NotFound, Conflict):
            return None  # it changed or went: its event requeues the owner
        self.log.debug(f"{self.kind.lower()} adopted" if adopt else f"{self.kind.lower()} released",
                       owner=ref(owner), name=name_of(obj))
        return patched
