"""The Deployment controller: rolls a pod template out through ReplicaSets ("deployment").

Handlers enqueue deployment keys (``namespace/name``): on deployment changes, on changes to the
ReplicaSets they own (or orphans their selector matches), and on pod deletions (Recreate waits for old
pods to be gone). ``reconcile`` adopts/releases ReplicaSets (``claim_plan`` decides,
``controllerref.ControllerRefManager`` patches), asks ``deployment_plan.plan`` what to do, executes it
and writes the status.

Every ReplicaSet write is an ``update`` carrying the cached resourceVersion: when the cache is behind
the controller's own earlier writes, the write fails with Conflict and the key is retried, so a stale
cache never scales a ReplicaSet twice (the role expectations play in the replication controller).
"""

from __future__ import annotations

import contextlib
import copy
import time

from actors.controllers.base import ControllerContext, QueueController
from actors.controllers.claim_plan import claim_plan, is_controlled_by
from actors.controllers.controllerref import ControllerRefManager
from actors.controllers.deployment_plan import (
    CreateReplicaSet,
    DeleteReplicaSet,
    SetDeploymentRevision,
    UpdateReplicaSet,
    plan,
)
from actors.controllers.deployment_revisions import REVISION, find_new_replicaset
from actors.controllers.deployment_status import complete, seconds_to_deadline
from actors.controllers.manager import register
from actors.controllers.replication_index import NamespaceIndex
from actors.controllers.replication_plan import status_changed
from protocol.errors import AlreadyExists, NotFound
from protocol.objects import (
    Obj,
    controller_of,
    meta,
    name_of,
    namespace_of,
    pod_is_terminal,
    split_ref,
    uid_of,
)
from protocol.selectors import spec_selector
from runtime.informer import Informer


class DeploymentController(QueueController):
    name = "deployment"

    def __init__(self, *, workers: int = 5) -> None:
        super().__init__(workers=workers)
        self.deployment_index = NamespaceIndex()
        self.rs_index = NamespaceIndex()
        self.pod_index = NamespaceIndex()

    # -- wiring -------------------------------------------------------------------------------
    def setup(self, ctx: ControllerContext) -> None:
        self.bind(ctx)
        self.refs = ControllerRefManager(ctx.client, "ReplicaSet", self.log)
        self.deployments = self.watch_primary("Deployment")
        self.replicasets: Informer = ctx.informers.informer("ReplicaSet")
        self.pods: Informer = ctx.informers.informer("Pod")
        self.deployments.add_handler(self.deployment_index.handle)
        self.deployments.add_handler(self.on_primary)
        self.replicasets.add_handler(self.rs_index.handle)
        self.replicasets.add_handler(self._on_replicaset)
        self.pods.add_handler(self.pod_index.handle)
        self.pods.add_handler(self._on_pod)

    # -- handlers -------------------------------------------------------------------------------
    def _owner_keys(self, rs: Obj) -> set[str]:
        owner = controller_of(rs)
        if owner is not None:
            if owner.get("kind") == "Deployment":
                return {f"{namespace_of(rs)}/{owner.get('name')}"}
            return set()
        return set(self.deployment_index.selecting(rs, spec_selector))

    def _on_replicaset(self, event: str, old: Obj | None, new: Obj | None) -> None:
        keys = self._owner_keys(new) if new is not None else set()
        if old is not None:
            keys |= self._owner_keys(old)
        for key in keys:
            self.queue.add(key)

    def _on_pod(self, event: str, old: Obj | None, new: Obj | None) -> None:
        """Only the end of a pod matters here: Recreate waits for the old pods to be gone."""
        pod = new if new is not None else old
        if pod is None or event != "DELETED":
            return
        owner = controller_of(pod)
        if owner is None or owner.get("kind") != "ReplicaSet":
            return
        rs = self.rs_index.get(namespace_of(pod), str(owner.get("name", "")))
        if rs is not None:
            for key in self._owner_keys(rs):
                self.queue.add(key)

    # -- reconcile ----------------------------------------------------------------------------
    async def reconcile(self, key: str) -> float | None:
        deployment = self.deployments.get(key)
        if deployment is None:
            return None
        namespace, _ = split_ref(key)
        selector = spec_selector(deployment)
        claimed = claim_plan(deployment, selector, self.rs_index.in_namespace(namespace))
        owned = await self.refs.claim(deployment, claimed)
        result = plan(deployment, owned, old_pods_running=self._old_pods_running(deployment, owned),
                      now=time.time())
        latest = {name_of(rs): rs for rs in owned}
        for action in result.actions:
            if isinstance(action, CreateReplicaSet):
                if not await self._create(deployment, action.replicaset, latest):
                    return 0.1
            elif isinstance(action, UpdateReplicaSet):
                await self._update(deployment, latest, action)
            elif isinstance(action, DeleteReplicaSet):
                with contextlib.suppress(NotFound):
                    await self.client.delete("ReplicaSet", action.name, namespace)
            elif isinstance(action, SetDeploymentRevision):
                patch = {"metadata": {"annotations": {REVISION: str(action.revision)}}}
                await self.client.patch("Deployment", name_of(deployment), patch, namespace)
        if status_changed(deployment.get("status") or {}, result.status):
            status = {**result.status, "conditions": result.status.get("conditions")}
            with contextlib.suppress(NotFound):
                await self.client.patch("Deployment", name_of(deployment), {"status": status}, namespace,
                                        status=True)
        if complete(deployment, result.status) or (deployment.get("spec") or {}).get("paused"):
            return None
        return seconds_to_deadline(deployment, result.status, time.time())

    def _old_pods_running(self, deployment: Obj, owned: list[Obj]) -> bool:
        if ((deployment.get("spec") or {}).get("strategy") or {}).get("type") != "Recreate":
            return False
        new_rs = find_new_replicaset(deployment, owned)
        old_uids = {uid_of(rs) for rs in owned if new_rs is None or uid_of(rs) != uid_of(new_rs)}
        for pod in self.pod_index.in_namespace(namespace_of(deployment)):
            owner = controller_of(pod)
            if owner is not None and owner.get("uid") in old_uids and not pod_is_terminal(pod):
                return True
        return False

    async def _create(self, deployment: Obj, rs: Obj, latest: dict[str, Obj]) -> bool:
        """Create the new ReplicaSet; False when a foreign ReplicaSet holds its name (hash collision)."""
        try:
            created = await self.client.create(rs)
        except AlreadyExists:
            existing = await self.client.get("ReplicaSet", name_of(rs), namespace_of(rs))
            if is_controlled_by(existing, deployment):
                latest[name_of(existing)] = existing
                return True  # ours: the cache had not seen it yet
            count = int((deployment.get("status") or {}).get("collisionCount") or 0) + 1
            await self.client.patch("Deployment", name_of(deployment), {"status": {"collisionCount": count}},
                                    namespace_of(deployment), status=True)
            return False
        latest[name_of(created)] = created
        replicas = int((created.get("spec") or {}).get("replicas") or 0)
        if replicas > 0:
            await self.ctx.recorder.record(deployment, "Normal", "ScalingReplicaSet",
                                           f"Scaled up replica set {name_of(created)} from 0 to {replicas}")
        return True

    async def _update(self, deployment: Obj, latest: dict[str, Obj], action: UpdateReplicaSet) -> None:
        rs = copy.deepcopy(latest[action.name])
        before = int((rs.get("spec") or {}).get("replicas") or 0)
        rs.setdefault("spec", {})["replicas"] = action.replicas
        meta(rs).setdefault("annotations", {}).update(action.annotations)
        latest[action.name] = await self.client.update(rs)  # carries resourceVersion: Conflict if stale
        if before != action.replicas:
            direction = "up" if action.replicas > before else "down"
            await self.ctx.recorder.record(
                deployment, "Normal", "ScalingReplicaSet",
                f"Scaled {direction} replica set {action.name} from {before} to {action.replicas}")


register("deployment", DeploymentController)
