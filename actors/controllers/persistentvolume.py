"""The PV controller (Kubernetes' persistentvolume-binder): binds claims to volumes and keeps their phases.

Keys are ``claim/<namespace>/<name>`` and ``volume/<name>``, enqueued on changes of claims, volumes and
storage classes (a class appearing may unblock its claims), and of pods mounting claims (a claim being
deleted waits for its last pod, the protection finalizer); ``reconcile`` calls the pure
``persistentvolume_plan`` and writes what it decided. Every write is a compare-and-swap on the version
the informer holds: a stale cache loses with Conflict and the key is reconciled again.
"""

from __future__ import annotations

from typing import Any

from actors.controllers.base import ControllerContext
from actors.controllers.manager import register
from actors.controllers.persistentvolume_plan import (
    Action,
    BindVolume,
    ClaimStatus,
    Event,
    RemoveFinalizer,
    UpdateClaim,
    VolumeStatus,
    plan_claim,
    plan_volume,
)
from protocol.errors import Conflict, NotFound
from protocol.kinds.storage import SELECTED_NODE_ANNOTATION, claim_class
from protocol.kinds.strategy import as_dict, get_path
from protocol.objects import Obj, labels_of, meta, name_of, namespace_of, pod_is_terminal, ref
from runtime.events import EventRecorder
from runtime.workqueue import WorkQueue, run_workers

CLAIM, VOLUME = "claim/", "volume/"


class PersistentVolumeController:
    name = "persistentvolume"

    def __init__(self) -> None:
        self.running = False
        self.queue = WorkQueue()
        self._events: set[tuple[str, str, str]] = set()

    def setup(self, ctx: ControllerContext) -> None:
        self.client = ctx.client
        self.recorder: EventRecorder = ctx.recorder
        self.log = ctx.log.bind(controller=self.name)
        self.claims = ctx.informers.informer("PersistentVolumeClaim")
        self.volumes = ctx.informers.informer("PersistentVolume")
        self.classes = ctx.informers.informer("StorageClass")
        self.nodes = ctx.informers.informer("Node")
        self.pods = ctx.informers.informer("Pod")
        self.pods.add_handler(self._on_pod)
        self.claims.add_handler(self._on_claim)
        self.volumes.add_handler(self._on_volume)
        self.classes.add_handler(self._on_class)

    async def run(self) -> None:
        self.running = True
        for claim in self.claims.items():
            self.queue.add(CLAIM + ref(claim))
        for volume in self.volumes.items():
            self.queue.add(VOLUME + name_of(volume))
        await run_workers(self.queue, self.reconcile, workers=2, log=self.log)

    # -- handlers: enqueue only ------------------------------------------------------------------
    def _on_claim(self, event: str, old: Obj | None, new: Obj | None) -> None:
        obj = new if new is not None else old
        if obj is None:
            return
        self.queue.add(CLAIM + ref(obj))
        for volume in (get_path(obj, "spec", "volumeName"), get_path(old or {}, "spec", "volumeName")):
            if volume:
                self.queue.add(VOLUME + str(volume))
        if event == "DELETED":  # volumes reserved for it are released
            for volume in self.volumes.items():
                if get_path(volume, "spec", "claimRef", "name") == name_of(obj):
                    self.queue.add(VOLUME + name_of(volume))

    def _on_volume(self, event: str, old: Obj | None, new: Obj | None) -> None:
        obj = new if new is not None else old
        if obj is None:
            return
        self.queue.add(VOLUME + name_of(obj))
        claim_ref = as_dict(get_path(obj, "spec", "claimRef"))
        if claim_ref.get("name"):
            self.queue.add(f"{CLAIM}{claim_ref.get('namespace')}/{claim_ref.get('name')}")
        else:  # a volume became available: pending claims may now bind
            for claim in self.claims.items():
                if not get_path(claim, "spec", "volumeName"):
                    self.queue.add(CLAIM + ref(claim))

    def _on_pod(self, event: str, old: Obj | None, new: Obj | None) -> None:
        """A pod mounting claims went or finished: a claim being deleted may now go."""
        obj = new if new is not None else old
        if obj is None or (event != "DELETED" and not pod_is_terminal(obj)):
            return
        for name in _claims_of(obj):
            claim = self.claims.get(f"{namespace_of(obj)}/{name}")
            if claim is not None and meta(claim).get("deletionTimestamp"):
                self.queue.add(f"{CLAIM}{namespace_of(obj)}/{name}")

    def in_use(self, claim: Obj) -> bool:
        """A pod of the claim's namespace that is not finished mounts it (scheduled or not)."""
        namespace, name = namespace_of(claim), name_of(claim)
        return any(namespace_of(p) == namespace and not pod_is_terminal(p) and name in _claims_of(p)
                   for p in self.pods.items())

    def _on_class(self, event: str, old: Obj | None, new: Obj | None) -> None:
        obj = new if new is not None else old
        if obj is None:
            return
        for claim in self.claims.items():
            if claim_class(claim) == name_of(obj) and not get_path(claim, "spec", "volumeName"):
                self.queue.add(CLAIM + ref(claim))

    # -- reconcile ---------------------------------------------------------------------------------
    async def reconcile(self, key: str) -> float | None:
        if key.startswith(CLAIM):
            claim = self.claims.get(key[len(CLAIM):])
            if claim is None:
                return None
            storage_class = self.classes.get(claim_class(claim)) if claim_class(claim) else None
            node = as_dict(meta(claim).get("annotations")).get(SELECTED_NODE_ANNOTATION)
            node_obj = self.nodes.get(str(node)) if node else None
            in_use = bool(meta(claim).get("deletionTimestamp")) and self.in_use(claim)
            actions = plan_claim(claim, self.volumes.items(), storage_class,
                                 labels_of(node_obj) if node_obj is not None else None, in_use)
        else:
            volume = self.volumes.get(key[len(VOLUME):])
            if volume is None:
                return None
            claim_ref = as_dict(get_path(volume, "spec", "claimRef"))
            claim = self.claims.get(f"{claim_ref.get('namespace')}/{claim_ref.get('name')}") if claim_ref else None
            actions = plan_volume(volume, claim)
        written: dict[str, str] = {}  # object -> the resourceVersion our own write in this pass gave it
        for action in actions:
            try:
                await self._execute(action, written)
            except (Conflict, NotFound):
                return 0.2  # our cache was behind: look again once it caught up
        return None

    async def _execute(self, action: Action, written: dict[str, str]) -> None:
        if isinstance(action, BindVolume):
            done = await self.client.update(action.volume)
            written[_key(done)] = str(meta(done).get("resourceVersion"))
            self.log.info("volume claim reference set", volume=name_of(action.volume),
                          claim=get_path(action.volume, "spec", "claimRef"))
        elif isinstance(action, UpdateClaim):
            done = await self.client.update(action.claim)
            written[_key(done)] = str(meta(done).get("resourceVersion"))
        elif isinstance(action, ClaimStatus):
            status: dict[str, Any] = {"phase": action.phase}
            if action.capacity is not None:
                status["capacity"] = {"storage": action.capacity}
            if action.access_modes:
                status["accessModes"] = list(action.access_modes)
            await self._status(action.claim, status, written)
            self.log.info("claim phase", claim=ref(action.claim), phase=action.phase)
        elif isinstance(action, VolumeStatus):
            status = {"phase": action.phase}
            if action.reason:
                status.update(reason=action.reason, message=action.message)
            await self._status(action.volume, status, written)
            self.log.info("volume phase", volume=name_of(action.volume), phase=action.phase)
        elif isinstance(action, RemoveFinalizer):
            finalizers = [f for f in meta(action.obj).get("finalizers") or [] if f != action.finalizer]
            patch = {"metadata": {"resourceVersion": meta(action.obj).get("resourceVersion"),
                                  "finalizers": finalizers}}
            await self.client.patch(str(action.obj.get("kind")), name_of(action.obj), patch, namespace_of(action.obj))
            self.log.info("protection released", object=_key(action.obj), finalizer=action.finalizer)
        elif isinstance(action, Event):
            identity = (ref(action.obj) + "/" + str(meta(action.obj).get("uid")), action.reason, action.message)
            if identity not in self._events:  # one event per object and message, not one per resync
                if len(self._events) > 10_000:
                    self._events.clear()
                self._events.add(identity)
                await self.recorder.record(action.obj, action.type, action.reason, action.message)

    async def _status(self, obj: Obj, status: dict[str, Any], written: dict[str, str]) -> None:
        """Patch the status over the version the plan saw, or over the one this pass just wrote."""
        version = written.get(_key(obj)) or meta(obj).get("resourceVersion")
        patch = {"metadata": {"resourceVersion": version}, "status": status}
        await self.client.patch(str(obj.get("kind")), name_of(obj), patch, namespace_of(obj), status=True)


def _claims_of(pod: Obj) -> set[str]:
    return {str(v["persistentVolumeClaim"].get("claimName")) for v in (pod.get("spec") or {}).get("volumes") or []
            if isinstance(v, dict) and isinstance(v.get("persistentVolumeClaim"), dict)}


def _key(obj: Obj) -> str:
    return f"{obj.get('kind')}/{ref(obj)}"


register(PersistentVolumeController.name, PersistentVolumeController)
