"""What the controllers whose owners keep pods by selector share (ReplicaSet, ReplicationController,
DaemonSet, StatefulSet): the wiring of ``base.QueueController`` plus, per owner key, the expectations
(``expectations.Expectations``, forgotten when the owner goes), a by-namespace index of the owners and
of the pods, the owner controlling a pod (``owner_key``), the owners whose selector matches an orphan
(``matching``), the pod handler queueing the owners a pod change concerns (``on_pod``, through
``enqueue_owner``), and carrying out a plan's adoptions and releases (``claim_pods``) and pod deletions
(``delete_pods``).

Each controller still registers its own handlers, so what it watches and in which order stays in its
``setup``.
"""

from __future__ import annotations

from actors.controllers.base import ControllerContext, QueueController
from actors.controllers.claim_plan import AdoptPod, ClaimPlan, ReleasePod, controller_key
from actors.controllers.controllerref import ControllerRefManager
from actors.controllers.expectations import Expectations
from actors.controllers.podcontrol import delete_pods, owners_of_pod_change
from actors.controllers.replication_index import NamespaceIndex
from protocol.objects import Obj, namespace_of
from protocol.selectors import Selector, spec_selector


class PodOwnerController(QueueController):
    """A controller of ``kind`` owners, each controlling the pods of its namespace its selector matches."""

    def __init__(self, kind: str, *, workers: int) -> None:
        super().__init__(workers=workers)
        self.kind = kind
        self.expectations = Expectations()
        """Per owner key: pods being created (counted) and deleted (by pod key), not yet seen."""
        self.pod_index = NamespaceIndex()
        self.owner_index = NamespaceIndex()

    def bind(self, ctx: ControllerContext) -> None:
        super().bind(ctx)
        self.refs = ControllerRefManager(ctx.client, "Pod", self.log)

    def forget(self, key: str) -> None:
        self.expectations.forget(key)

    def selector_of(self, owner: Obj) -> Selector:
        """The selector of ``owner``'s pods: its ``spec.selector`` unless a kind says otherwise."""
        return spec_selector(owner)

    def owner_key(self, obj: Obj) -> str | None:
        """The key of the owner of our kind that controls ``obj`` (None when it is not ours)."""
        return controller_key(obj, self.kind, self.owner_index.get)

    def matching(self, pod: Obj) -> list[str]:
        """The owners whose selector matches ``pod`` (an orphan they may adopt)."""
        return self.owner_index.selecting(pod, self.selector_of)

    def on_pod(self, event: str, old: Obj | None, new: Obj | None) -> None:
        """Pod informer handler: queue the owners the change concerns (``podcontrol.owners_of_pod_change``),
        the expectations it satisfies recorded."""
        pod = new if new is not None else old
        if pod is None:
            return
        for key in owners_of_pod_change(event, old, pod, self.expectations, owner_key=self.owner_key,
                                        matching=self.matching):
            self.enqueue_owner(key)

    def enqueue_owner(self, key: str) -> None:
        """Queue an owner because of one of its pods (or an orphan it may adopt): at once by default."""
        self.queue.add(key)

    async def claim_pods(self, owner: Obj, actions: list[object]) -> None:
        """Carry out the ``AdoptPod`` and ``ReleasePod`` actions of a plan, the pods as the pod index holds
        them (one gone since is skipped)."""
        namespace = namespace_of(owner)
        adopt = [p for a in actions if isinstance(a, AdoptPod)
                 if (p := self.pod_index.get(namespace, a.name)) is not None]
        release = [p for a in actions if isinstance(a, ReleasePod)
                   if (p := self.pod_index.get(namespace, a.name)) is not None]
        await self.refs.claim(owner, ClaimPlan(adopt=adopt, release=release))

    async def delete_pods(self, owner: Obj, key: str, names: list[str]) -> list[str]:
        """Delete the named pods of ``owner`` (``podcontrol.delete_pods``); the errors, one line each."""
        return await delete_pods(self.client, self.ctx.recorder, self.expectations, owner, key, names)
