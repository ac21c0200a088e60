"""The cloud volume controller: the provider's StorageClasses exist, claims of them get volumes, Released
volumes of reclaim policy Delete are deleted (``volume_plan``).

Keys are ``claim/<namespace>/<name>`` and ``volume/<name>``. The provider's classes are created when the
controller starts (and left alone when they exist: an administrator may change which class is default).
The cloud controller manager creates them, not the API actor's bootstrap, because they are the provider's:
a cluster without a cloud controller manager has nobody to provision their volumes, and a default class
there would leave every claim Pending.
"""

from __future__ import annotations

from actors.cloud.base import CloudContext, run_controller
from actors.cloud.volume_plan import Delete, Provision, plan_claim, plan_volume, volume_name
from protocol.errors import AlreadyExists, NotFound
from protocol.kinds.storage import claim_class
from protocol.objects import Obj, name_of, ref
from runtime.workqueue import WorkQueue

CLAIM, VOLUME = "claim/", "volume/"


class VolumeController:
    name = "volume"

    def __init__(self) -> None:
        self.queue = WorkQueue()

    def setup(self, ctx: CloudContext) -> None:
        self.ctx = ctx
        self.claims = ctx.informers.informer("PersistentVolumeClaim")
        self.volumes = ctx.informers.informer("PersistentVolume")
        self.classes = ctx.informers.informer("StorageClass")
        self.claims.add_handler(self._on_claim)
        self.volumes.add_handler(self._on_volume)
        self.classes.add_handler(self._on_class)

    def _on_claim(self, event: str, _old: Obj | None, new: Obj | None) -> None:
        if new is not None:
            self.queue.add(CLAIM + ref(new))

    def _on_volume(self, event: str, _old: Obj | None, new: Obj | None) -> None:
        if new is not None:
            self.queue.add(VOLUME + name_of(new))

    def _on_class(self, event: str, _old: Obj | None, new: Obj | None) -> None:
        if new is None:
            return
        for claim in self.claims.items():
            if claim_class(claim) == name_of(new):
                self.queue.add(CLAIM + ref(claim))

    async def run(self) -> None:
        await self.ensure_classes()
        for claim in self.claims.items():
            self.queue.add(CLAIM + ref(claim))
        for volume in self.volumes.items():
            self.queue.add(VOLUME + name_of(volume))
        await run_controller(self.queue, self.reconcile, self.ctx.log)

    async def ensure_classes(self) -> None:
        for storage_class in self.ctx.provider.storage_classes():
            if self.classes.get(name_of(storage_class)) is not None:
                continue
            try:
                await self.ctx.client.create(storage_class)
                self.ctx.log.info("storage class created", name=name_of(storage_class))
            except AlreadyExists:
                pass

    async def reconcile(self, key: str) -> float | None:
        provisioner = self.ctx.provider.provisioner
        if key.startswith(CLAIM):
            claim = self.claims.get(key[len(CLAIM):])
            klass = self.classes.get(claim_class(claim)) if claim is not None and claim_class(claim) else None
            exists = claim is not None and self.volumes.get(volume_name(claim)) is not None
            for provision in plan_claim(claim, klass, provisioner, exists):
                await self._provision(provision, claim)
        else:
            for delete in plan_volume(self.volumes.get(key[len(VOLUME):]), provisioner):
                await self._delete(delete)
        return None

    async def _provision(self, action: Provision, claim: Obj | None) -> None:
        source = await self.ctx.provider.provision_volume(action.request)
        volume = {**action.volume, "spec": {**action.volume["spec"], **source}}
        try:
            await self.ctx.client.create(volume)
        except AlreadyExists:
            return
        self.ctx.counts["volumes"] = self.ctx.counts.get("volumes", 0) + 1
        self.ctx.log.info("volume provisioned", volume=action.request.name, node=action.request.node,
                          claim=f"{action.request.namespace}/{action.request.claim}")
        if claim is not None:
            await self.ctx.recorder.record(claim, "Normal", "ProvisioningSucceeded",
                                           f"Successfully provisioned volume {action.request.name}")

    async def _delete(self, action: Delete) -> None:
        await self.ctx.provider.delete_volume(action.volume)
        try:
            await self.ctx.client.delete("PersistentVolume", name_of(action.volume))
        except NotFound:
            return
        self.ctx.counts["volumes_deleted"] = self.ctx.counts.get("volumes_deleted", 0) + 1
        self.ctx.log.info("volume deleted", volume=name_of(action.volume))
