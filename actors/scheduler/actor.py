"""The scheduler actor: informers feed the cache and the queue; the leader decides and binds.

Informers (nodes, pending pods ``spec.nodeName=``, bound pods ``spec.nodeName!=``) run on every
instance so a standby has a warm cache. Under leadership one loop pops a pod, decides against the
cache (pure ``decide``), assumes the pod on the chosen node and hands the bind to the binder, which sends
binds to the API in batches (``binder.py``); it never awaits the API between two decisions except for a
free bind slot (at most ``bind_concurrency`` pods decided and not yet answered).
A pod that fits nowhere gets a FailedScheduling event and ``PodScheduled=False``, and waits in the
unschedulable queue for a cluster change or the periodic retry.

Pods with PersistentVolumeClaims (``volumes.py``): a missing claim keeps the pod Pending with an event
naming it; bound claims restrict the nodes to those their volumes reach; unbound WaitForFirstConsumer
claims get ``volume.kubernetes.io/selected-node`` once a node is chosen, and the pod is bound only once
they are (kube-scheduler's PreBind), its bind slot held meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from dataclasses import dataclass
from typing import Any

from actors.scheduler.binder import Binder, PendingBind
from actors.scheduler.bound import BoundPods
from actors.scheduler.cache import SchedulerCache
from actors.scheduler.decide import Scheduled, Unschedulable, decide
from actors.scheduler.errors import BindFailed, BindRejected, SchedulerError
from actors.scheduler.model import node_info, node_view, pod_info, responsible_for, spread_group
from actors.scheduler.queue import SchedulingQueue
from actors.scheduler.volumes import ClaimsBlocked, check_claims
from protocol import rbac_bootstrap
from protocol.bindings import Binding
from protocol.errors import Conflict, NotFound, ShoalError
from protocol.kinds.storage import SELECTED_NODE_ANNOTATION
from protocol.objects import Obj, condition, format_time, meta, name_of, namespace_of, pod_is_terminal, ref, uid_of
from runtime.actor import ActorContext
from runtime.client import ApiClient
from runtime.events import EventRecorder
from runtime.informer import Informer
from runtime.leader import LeaderElector
from runtime.logs import Throttle

COMPONENT = "default-scheduler"
LEASE_NAME = rbac_bootstrap.SCHEDULER_LEASE


@dataclass(frozen=True)
class SchedulerSettings:
    leader_elect: bool = True
    bind_concurrency: int = 512
    """Pods decided (assumed) whose bind has not been answered yet, at most."""
    bind_batch: int = 128
    """Bindings per batched bind request, at most."""
    bind_batches_in_flight: int = 4
    status_concurrency: int = 16
    percentage_of_nodes_to_score: int = 0
    """0: adaptive, as kube-scheduler."""
    unschedulable_timeout: float = 60.0
    initial_backoff: float = 1.0
    max_backoff: float = 10.0
    lease_duration: float = 10.0
    renew_every: float = 2.0
    scheduled_events: bool = True
    """Record a ``Scheduled`` Normal event per bound pod, as kube-scheduler does (``--no-scheduled-events``
    turns it off: one write fewer per pod)."""
    volume_bind_timeout: float = 120.0
    """Seconds a pod waits for its WaitForFirstConsumer claims to be bound before it is tried again."""


@dataclass
class Counters:
    scheduled: int = 0
    attempts: int = 0
    unschedulable: int = 0
    bind_failures: int = 0
    bind_conflicts: int = 0


class SchedulerActor:
    name = "scheduler"
    identity: str | None = rbac_bootstrap.SCHEDULER
    """The Kubernetes user this component acts as (``shoal.user.<identity>.api``, RBAC's role of that name);
    None: the trusted ``shoal.api`` subjects (a caller's own choice, e.g. a test of a wider role)."""

    def __init__(self, settings: SchedulerSettings | None = None, *, seed: int | None = None) -> None:
        self.settings = settings or SchedulerSettings()
        self.cache = SchedulerCache()
        self.queue = SchedulingQueue(initial_backoff=self.settings.initial_backoff,
                                     max_backoff=self.settings.max_backoff,
                                     unschedulable_timeout=self.settings.unschedulable_timeout)
        self.counters = Counters()
        self._bind_failure_log = Throttle(1.0)
        self.rng = random.Random(seed)
        self.instance = ""
        self.leading = False
        self.log: Any = None
        self.client: ApiClient | None = None
        self.recorder: EventRecorder | None = None
        self.elector: LeaderElector | None = None
        self.nodes: Informer | None = None
        self.pending: Informer | None = None
        self.bound: BoundPods | None = None
        self.claims: Informer | None = None
        self.volumes: Informer | None = None
        self.classes: Informer | None = None
        self._claims_changed = asyncio.Event()
        self._binds: asyncio.Semaphore | None = None

    # -- lifecycle ----------------------------------------------------------------------------
    async def start(self, ctx: ActorContext) -> None:
        self.instance, self.log = ctx.instance, ctx.log
        client = self.client = ApiClient(ctx.nc, identity=self.identity)
        self.recorder = EventRecorder(client, COMPONENT, log=ctx.log)
        self.nodes = Informer(client, "Node", log=ctx.log, transform=node_view)
        self.pending = Informer(client, "Pod", field_selector="spec.nodeName=", log=ctx.log)
        self.bound = BoundPods(client, self._on_bound, self.cache.bound_keys, self._bound_gone, log=ctx.log)
        self.claims = Informer(client, "PersistentVolumeClaim", log=ctx.log)
        self.volumes = Informer(client, "PersistentVolume", log=ctx.log)
        self.classes = Informer(client, "StorageClass", log=ctx.log)
        self.nodes.add_handler(self._on_node)
        self.pending.add_handler(self._on_pending)
        self.claims.add_handler(self._on_storage)
        self.volumes.add_handler(self._on_storage)
        for name, informer in (("claims", self.claims), ("volumes", self.volumes), ("classes", self.classes)):
            ctx.supervisor.spawn(f"informer-{name}", informer.run)
        ctx.supervisor.spawn("informer-nodes", self.nodes.run)
        ctx.supervisor.spawn("informer-bound-pods", self.bound.run)
        ctx.supervisor.spawn("informer-pending-pods", self.pending.run)
        ctx.supervisor.spawn("synced", self._wait_synced, restart=False)
        if self.settings.leader_elect:
            self.elector = LeaderElector(client, LEASE_NAME, ctx.instance, log=ctx.log,
                                         lease_duration=self.settings.lease_duration,
                                         renew_every=self.settings.renew_every)
            ctx.supervisor.spawn("leader-election", lambda: self.elector.run(self.lead))  # type: ignore[union-attr]
        else:
            ctx.supervisor.spawn("scheduling", self.lead)

    async def _wait_synced(self) -> None:
        assert self.nodes and self.pending and self.bound
        assert self.claims and self.volumes and self.classes
        for informer in (self.nodes, self.bound, self.pending, self.claims, self.volumes, self.classes):
            await informer.synced.wait()
        self.cache.ready.set()
        self.log.info("scheduler cache synced", nodes=len(self.cache.nodes), pods=len(self.cache.pods),
                      pending=len(self.queue))

    def health(self) -> dict[str, Any]:
        c = self.counters
        return {
            "leader": self.leading, "synced": self.cache.ready.is_set(), "scheduled": c.scheduled,
            "attempts": c.attempts, "unschedulableAttempts": c.unschedulable,
            "bindFailures": c.bind_failures, "bindConflicts": c.bind_conflicts,
            "pending": len(self.queue), "activeQueue": self.queue.active,
            "backoffQueue": self.queue.backing_off,
            "unschedulableQueue": self.queue.unschedulable, "assumed": len(self.cache.assumed_keys()),
            "nodes": len(self.cache.schedulable_nodes()), "boundPods": len(self.cache.pods),
        }

    # -- informer handlers: only update the cache and the queue -----------------------------
    def _on_node(self, event: str, old: Obj | None, new: Obj | None) -> None:
        obj = new if new is not None else old
        if obj is None:
            return
        if event == "DELETED":
            self.cache.remove_node(name_of(obj))
            return
        if self.cache.set_node(node_info(obj)):
            self.queue.move_all()

    def _on_storage(self, event: str, old: Obj | None, new: Obj | None) -> None:
        """A claim or volume changed: pods waiting for one may now fit, or be bound."""
        self.queue.move_all()
        self._claims_changed.set()
        self._claims_changed = asyncio.Event()

    def _on_pending(self, event: str, old: Obj | None, new: Obj | None) -> None:
        obj = new if new is not None else old
        if obj is None:
            return
        key = ref(obj)
        if event == "DELETED" or not responsible_for(obj):
            self.queue.delete(key)
            return
        if self.cache.is_placed(key, str(meta(obj).get("uid", ""))):
            return
        priority = (obj.get("spec") or {}).get("priority")
        prio = priority if isinstance(priority, int) else 0
        if key not in self.queue or event == "ADDED":
            self.queue.add(key, prio)
        elif old is not None and _scheduling_inputs(old) != _scheduling_inputs(obj):
            self.queue.update(key, prio)

    def _on_bound(self, event: str, obj: Obj) -> None:
        """A bound pod changed (or was listed): account it; nothing of it is kept but its ``PodInfo``."""
        m = meta(obj)
        key = ref(obj)
        uid = str(m.get("uid", ""))
        self.queue.delete(key)
        if event == "DELETED" or pod_is_terminal(obj):
            if self.cache.remove_pod(key, uid):
                self.queue.move_all()
            return
        record = self.cache.pods.get(key)
        node = str((obj.get("spec") or {}).get("nodeName"))
        generation = m.get("generation")
        if not isinstance(generation, int) or isinstance(generation, bool):
            generation = None
        if record is not None and record.info.uid == uid and record.node == node:
            if record.assumed:
                # our own bind showing up: what it accounts was computed at decision
                self.cache.confirm(key, generation)
                return
            if generation is not None and generation == record.generation and \
                    spread_group(obj) == record.info.group:
                return  # a status update: the spec (generation) and the group are what they were
        self.cache.add_bound(pod_info(obj), node, generation)

    def _bound_gone(self, key: str) -> None:
        """A relist no longer holds a pod known bound: it went while the watch was away."""
        if self.cache.remove_pod(key):
            self.queue.move_all()

    async def close(self) -> None:
        """Tell the Scheduled events emitted before the stop (briefly), then stop writing them."""
        if self.recorder is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.recorder.flush(), 2.0)
            await self.recorder.close()

    # -- leading ------------------------------------------------------------------------------
    async def lead(self) -> None:
        """Schedule until cancelled (leadership lost or shutdown)."""
        await self.cache.ready.wait()
        self.leading = True
        self.log.info("scheduling started", nodes=len(self.cache.schedulable_nodes()),
                      pending=len(self.queue))
        self._resync_queue()
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(self._housekeeping(), name="scheduler-housekeeping")
                group.create_task(self._schedule_loop(group), name="scheduler-loop")
        finally:
            self.leading = False
            for key in self.cache.assumed_keys():
                if self.cache.forget(key):
                    self.queue.add(key)

    def _resync_queue(self) -> None:
        assert self.pending is not None
        for pod in self.pending.items():
            if responsible_for(pod) and not self.cache.is_placed(ref(pod), str(meta(pod).get("uid", ""))):
                self.queue.add(ref(pod))

    async def _housekeeping(self) -> None:
        while True:
            await asyncio.sleep(0.5)
            self.queue.flush()
            for key in self.cache.expire_assumed(time.monotonic()):
                self.log.warning("assumed pod never showed up bound; forgetting it", pod=key)
                self.queue.add(key)

    async def _schedule_loop(self, group: asyncio.TaskGroup) -> None:
        binds = self._binds = asyncio.Semaphore(self.settings.bind_concurrency)
        statuses = asyncio.Semaphore(self.settings.status_concurrency)
        assert self.client is not None
        binder = Binder(self.client, lambda item, error: self._bind_done(item, error, binds, group),
                        max_batch=self.settings.bind_batch, max_in_flight=self.settings.bind_batches_in_flight)
        group.create_task(binder.run(), name="scheduler-binder")
        while True:
            await binds.acquire()
            key = await self.queue.pop()
            try:
                started = self.schedule_one(key, group, binder, statuses)
            except Exception:
                self.log.error("scheduling a pod failed", pod=key, exc_info=True)
                self.queue.backoff(key)
                started = False
            if not started:
                binds.release()
            await asyncio.sleep(0)  # let informer events and bind replies in between decisions

    def schedule_one(self, key: str, group: asyncio.TaskGroup, binder: Binder, statuses: asyncio.Semaphore) -> bool:
        """Decide for one pod; True when its bind was handed to the binder (it then owns a bind slot)."""
        assert self.pending is not None
        pod = self.pending.get(key)
        if pod is None or not responsible_for(pod):
            return False
        info = pod_info(pod)
        if self.cache.is_placed(key, info.uid):
            return False
        self.counters.attempts += 1
        nodes = self.cache.schedulable_nodes()
        to_select: tuple[str, ...] = ()
        if info.claims:
            assert self.claims and self.volumes and self.classes
            claims = check_claims(info, namespace_of(pod) or "default", self.claims.get, self.volumes.get,
                                  self.classes.get, lambda claim: self._claim_used(claim, key))
            if isinstance(claims, ClaimsBlocked):
                self._unschedulable(pod, f"0/{len(nodes)} nodes are available: {claims.message}.", group, statuses)
                return False
            info, to_select = claims.info, claims.to_select
        decision = decide(info, nodes, start=self.cache.next_start,
                          percentage=self.settings.percentage_of_nodes_to_score, rng=self.rng,
                          named=self.cache.nodes, fits=self.cache.fits)
        if nodes:
            self.cache.next_start = (self.cache.next_start + decision.examined) % len(nodes)
        if isinstance(decision, Unschedulable):
            self._unschedulable(pod, decision.message, group, statuses)
            return False
        assert isinstance(decision, Scheduled)
        self.cache.assume(info, decision.node)
        self.queue.scheduled(key)
        binding = Binding(namespace_of(pod) or "default", name_of(pod), decision.node, uid=uid_of(pod) or None)
        item = PendingBind(binding, pod, decision, time.monotonic())
        if to_select:
            group.create_task(self._bind_after_claims(item, to_select, binder, group), name=f"prebind-{key}")
        else:
            binder.submit(item)
        return True

    def _claim_used(self, claim: str, key: str) -> bool:
        """Does a pod other than ``key`` (bound or assumed) use ``namespace/claim``? A scan of the cache, asked
        only for ReadWriteOncePod claims."""
        namespace, _, name = claim.partition("/")
        return any(other != key and other.partition("/")[0] == namespace and name in record.info.claims
                   for other, record in self.cache.pods.items())

    def _unschedulable(self, pod: Obj, message: str, group: asyncio.TaskGroup, statuses: asyncio.Semaphore) -> None:
        key = ref(pod)
        self.counters.unschedulable += 1
        self.queue.mark_unschedulable(key)
        self.log.info("pod is unschedulable", pod=key, reason=message)
        group.create_task(self._report_unschedulable(pod, message, statuses), name=f"unschedulable-{key}")

    async def _bind_after_claims(self, item: PendingBind, names: tuple[str, ...], binder: Binder,
                                 group: asyncio.TaskGroup) -> None:
        """PreBind: mark each WaitForFirstConsumer claim with the chosen node, wait until they are bound (the
        provisioner made their volumes there), then hand the pod to the binder."""
        assert self.client is not None and self.claims is not None and self._binds is not None
        namespace, node = item.binding.namespace, item.binding.node
        try:
            for name in names:
                claim = self.claims.get(f"{namespace}/{name}")
                annotations = ((claim or {}).get("metadata") or {}).get("annotations") or {}
                if claim is not None and not (claim.get("spec") or {}).get("volumeName") and \
                        annotations.get(SELECTED_NODE_ANNOTATION) != node:
                    await self.client.patch("PersistentVolumeClaim", name, {"metadata": {"annotations": {
                        SELECTED_NODE_ANNOTATION: node}}}, namespace)
            deadline = time.monotonic() + self.settings.volume_bind_timeout
            while not all(_claim_bound(self.claims.get(f"{namespace}/{n}")) for n in names):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError
                changed = self._claims_changed
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(changed.wait(), min(left, 1.0))
        except (ShoalError, TimeoutError) as exc:
            message = f"binding volumes: {exc}" if isinstance(exc, ShoalError) else \
                "binding volumes: timed out waiting for the claims to be bound"
            assert self.recorder is not None
            group.create_task(self.recorder.record(item.pod, "Warning", "FailedScheduling", message),
                              name=f"prebind-failed-{ref(item.pod)}")
            self._bind_done(item, BindFailed(message), self._binds, group)
            return
        binder.submit(item)

    def _bind_done(self, item: PendingBind, error: SchedulerError | None, binds: asyncio.Semaphore,
                   group: asyncio.TaskGroup) -> None:
        """The outcome of one bind: confirm the assumption, or forget it (and retry when worth it)."""
        binds.release()
        key, node, pod = ref(item.pod), item.binding.node, item.pod
        if isinstance(error, BindRejected):
            if error.conflict:
                self.counters.bind_conflicts += 1
            self.cache.forget(key)
            self.log.info("bind rejected", pod=key, node=node, reason=str(error))
        elif error is not None:
            self.counters.bind_failures += 1
            self.cache.forget(key)
            self.queue.backoff(key)
            # an overloaded API fails whole batches: one line a second
            self._bind_failure_log.warning(self.log, "bind failed; will retry", pod=key, node=node, error=str(error))
        else:
            self.counters.scheduled += 1
            self.cache.finish_binding(key, time.monotonic())
            decision = item.context
            self.log.debug("pod bound", pod=key, node=node,
                           score=decision.score if isinstance(decision, Scheduled) else None,
                           ms=round((time.monotonic() - item.queued_at) * 1000, 1))
            if self.settings.scheduled_events and self.recorder is not None:
                self.recorder.emit(pod, "Normal", "Scheduled", f"Successfully assigned {key} to {node}")

    async def _report_unschedulable(self, pod: Obj, message: str, statuses: asyncio.Semaphore) -> None:
        assert self.client is not None and self.recorder is not None
        async with statuses:
            await self.recorder.record(pod, "Warning", "FailedScheduling", message)
            current = condition(pod, "PodScheduled")
            if (current is not None and current.get("status") == "False"
                    and current.get("reason") == "Unschedulable" and current.get("message") == message):
                return
            conditions = [c for c in (pod.get("status") or {}).get("conditions") or []
                          if c.get("type") != "PodScheduled"]
            conditions.append({"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                               "message": message,
                               "lastTransitionTime": format_time(time.time())})
            patch = {"metadata": {"resourceVersion": meta(pod).get("resourceVersion")},
                     "status": {"conditions": conditions}}
            try:
                await self.client.patch("Pod", name_of(pod), patch, namespace_of(pod), status=True)
            except (Conflict, NotFound):
                pass  # the pod changed or went: its next event brings it back if it still needs us
            except ShoalError as exc:
                self.log.warning("could not set PodScheduled=False", pod=ref(pod), error=str(exc))


def _claim_bound(claim: Obj | None) -> bool:
    """Bound as the kubelet needs it: a volume named and the phase Bound."""
    return claim is not None and bool((claim.get("spec") or {}).get("volumeName")) and \
        (claim.get("status") or {}).get("phase") == "Bound"


def _scheduling_inputs(pod: Obj) -> tuple[Any, ...]:
    """What a scheduling decision depends on: a change in anything else (status) needs no retry."""
    m = pod.get("metadata") or {}
    return (m.get("uid"), pod.get("spec"), m.get("labels"), m.get("ownerReferences"),
            m.get("deletionTimestamp"), (pod.get("status") or {}).get("phase"))
