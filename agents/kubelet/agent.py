"""The kubelet agent: registers its Node, runs the pods bound to it, reports their status, serves logs.

Reconcile by key, level-triggered: the pods informer (server-side filtered on ``spec.nodeName``), the
runtime relist (PLEG) and the probe scheduler only enqueue pod keys (``namespace/name``); one
``reconcile(key)`` reads the desired pod and the fresh runtime state, asks ``plan.plan`` what to do, lets
``executor.Executor`` do it, then computes the status (``status.compute_status``) and writes it only when it
changed. Nothing is reconciled before the informer has synced, so on a restart the kubelet adopts the
containers of its current pods (same pod uid) instead of restarting them, and removes those of pods that
are gone.

One process can run many agents on one NATS connection (hollow nodes): everything here is per node except
what the caller passes in (runtime, probe scheduler).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from agents.kubelet.config import KubeletConfig
from agents.kubelet.cri import ContainerRuntime, ContainerRuntimeError, RuntimeContainer
from agents.kubelet.executor import Executor
from agents.kubelet.logs_server import LogServer
from agents.kubelet.node import HostMetrics, Metrics, NodeHeartbeat
from agents.kubelet.noderoutes import NodeRoutes
from agents.kubelet.plan import FinishDeletion, PodNotes, RemoveContainer, RemoveSandbox, plan
from agents.kubelet.podnet import PodIPAllocator
from agents.kubelet.podnetwork import PodNetwork
from agents.kubelet.podspec import containers_of, service_env
from agents.kubelet.probes import NetworkProber, Prober, ProbeScheduler, RunningContainer
from agents.kubelet.runtime_cache import RuntimeCache
from agents.kubelet.status import ERR_SHOWN, ProbeView, compute_status
from protocol.errors import Conflict, NotFound
from protocol.objects import (
    Obj,
    is_deleting,
    meta,
    name_of,
    namespace_of,
    pod_is_terminal,
    ref,
    resource_version,
    uid_of,
)
from runtime.actor import ActorContext
from runtime.client import ApiClient
from runtime.events import EventRecorder
from runtime.informer import Informer
from runtime.workqueue import WorkQueue, run_workers

RESYNC_INTERVAL = 60.0


@dataclass
class RuntimeSetup:
    """A runtime made at start (e.g. after starting the Podman service) and how to release what it needs."""

    runtime: ContainerRuntime
    version: str
    close: Callable[[], Awaitable[None]] | None = None


class KubeletAgent:
    name = "kubelet"

    def __init__(
        self,
        config: KubeletConfig,
        *,
        runtime: ContainerRuntime | None = None,
        runtime_factory: Callable[[], Awaitable[RuntimeSetup]] | None = None,
        runtime_name: str = "podman",
        runtime_version: str = "podman",
        prober: Prober | None = None,
        probes: ProbeScheduler | None = None,
        metrics: Metrics | None = None,
        close_runtime: bool = True,
        on_close: Callable[[], Awaitable[None]] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.services: Informer | None = None
        self.runtime: ContainerRuntime | None = runtime  # made by runtime_factory in start() when None
        self._runtime_factory = runtime_factory
        self.runtime_name = runtime_name
        self.runtime_version = runtime_version
        self._prober = prober
        self._shared_probes = probes
        self.metrics = metrics or HostMetrics(config.state_dir, cpu=config.cpu, memory=config.memory)
        self._close_runtime = close_runtime
        self._on_close = on_close
        self.clock = clock
        self.notes: dict[str, PodNotes] = {}  # pod uid -> notes
        self._written: dict[str, tuple[int, Obj]] = {}  # pod uid -> (rv, status) of our last write
        self.phases: dict[str, str] = {}  # pod key -> last phase reported
        self._runtime_ok: tuple[bool, str] = (True, "")
        self._last_relist = 0.0
        self.reconciles = 0
        self.logs: LogServer | None = None
        self.started = asyncio.Event()

    # -- lifecycle --------------------------------------------------------------------------------
    async def start(self, ctx: ActorContext) -> None:
        node = self.config.node_name
        self.log = ctx.log.bind(node=node)
        self.client = ApiClient(ctx.nc, node_scope=node)
        self.queue = WorkQueue(base_delay=0.2, max_delay=30.0)
        self.informer = Informer(self.client, "Pod", None, field_selector=f"spec.nodeName={node}", log=self.log)
        self.informer.add_handler(lambda _event, old, new: self.queue.add(ref(new or old or {})))
        if self.runtime is None:
            if self._runtime_factory is None:
                raise ValueError("KubeletAgent needs a runtime or a runtime_factory")
            setup = await self._runtime_factory()
            self.runtime, self.runtime_version, self._on_close = setup.runtime, setup.version, setup.close
        runtime = self.runtime
        self.cache = RuntimeCache(runtime, node)
        self.pod_network = PodNetwork(self.client, runtime, mode=self.config.pod_network,
                                      cluster=self.config.cluster_name, node=node, cidr=self.config.pod_cidr,
                                      log=self.log)
        self.probes = self._shared_probes or ProbeScheduler(self._prober or NetworkProber(runtime),
                                                            self.queue.add)
        events = EventRecorder(self.client, "kubelet", host=node, log=self.log) if self.config.record_events else None
        self.executor = Executor(runtime, self.client, self.config, events=events, log=self.log,
                                 clock=self.clock)
        self.heartbeat = NodeHeartbeat(self.client, self.config, self.metrics, runtime_version=self.runtime_version,
                                       runtime_ok=lambda: self._runtime_ok, log=self.log, clock=self.clock,
                                       network_condition=self.pod_network.condition)
        self.logs = LogServer(ctx.nc, node, runtime, find_pod=self._find_pod, attempts=self._attempts,
                              log=self.log)
        await self.logs.start()
        sup = ctx.supervisor
        sup.spawn(f"{node}/heartbeat", self.heartbeat.run)
        sup.spawn(f"{node}/informer", self.informer.run)
        sup.spawn(f"{node}/pod-network", self.pod_network.run)
        if self.config.pod_network == "bridge" and self.config.node_routes:
            nodes = Informer(self.client, "Node", log=self.log)
            self.routes = NodeRoutes(node, nodes, log=self.log)
            sup.spawn(f"{node}/nodes", nodes.run)
            sup.spawn(f"{node}/node-routes", self.routes.run)
        if self.config.service_links:
            self.services = Informer(self.client, "Service", log=self.log)
            sup.spawn(f"{node}/services", self.services.run)
        sup.spawn(f"{node}/relist", self._relist_loop)
        sup.spawn(f"{node}/workers", self._work)
        if self._shared_probes is None:
            sup.spawn(f"{node}/probes", self.probes.run)
        self.started.set()

    async def close(self) -> None:
        if self.logs is not None:
            await self.logs.close()
        if hasattr(self, "queue"):
            self.queue.close()
        if hasattr(self, "pod_network") and self._close_runtime:
            await self.pod_network.release()
        if self._close_runtime and self.runtime is not None:
            await self.runtime.close()
        if self._on_close is not None:
            await self._on_close()

    def health(self) -> dict[str, Any]:
        return {
            "node": self.config.node_name,
            "pods": len(self.informer.store) if hasattr(self, "informer") else 0,
            "running": self.running_pods(),
            "registered": hasattr(self, "heartbeat") and self.heartbeat.registered.is_set(),
            "runtime_ok": self._runtime_ok[0],
            "pod_network": self.config.pod_network,
            "queue": len(self.queue) if hasattr(self, "queue") else 0,
            "log_streams": self.logs.streams() if self.logs is not None else 0,
        }

    def running_pods(self) -> int:
        return sum(1 for phase in self.phases.values() if phase == "Running")

    # -- loops ------------------------------------------------------------------------------------
    async def _work(self) -> None:
        await self.pod_network.ready.wait()
        self.pod_ips = PodIPAllocator(self.pod_network.cidr or "")
        await self.informer.synced.wait()
        self.log.info("pods synced; reconciling", pods=len(self.informer.store))
        await run_workers(self.queue, self.reconcile, workers=self.config.workers, log=self.log)

    async def _relist_loop(self) -> None:
        last_resync = time.monotonic()
        while True:
            try:
                for key in await self.cache.relist_changes():
                    self.queue.add(key)
                self._runtime_ok = (True, "")
                self._last_relist = time.monotonic()
            except ContainerRuntimeError as exc:
                self._runtime_ok = (False, f"container runtime is down: {exc}")
                self.log.warning("runtime relist failed", error=str(exc))
            if time.monotonic() - last_resync > RESYNC_INTERVAL:
                last_resync = time.monotonic()
                for key in list(self.informer.store):
                    self.queue.add(key)
            await asyncio.sleep(self.config.relist_interval)

    # -- helpers for the log server -----------------------------------------------------------------
    def _find_pod(self, namespace: str, name: str) -> Obj | None:
        return self.informer.get(f"{namespace}/{name}")

    async def _attempts(self, uid: str) -> list[RuntimeContainer]:
        views = await self.cache.fresh()
        return [c for view in views.values() for c in view.containers if c.pod_uid == uid]

    # -- reconcile --------------------------------------------------------------------------------
    async def reconcile(self, key: str) -> float | None:
        self.reconciles += 1
        pod = self.informer.get(key)
        if pod is not None and (pod.get("spec") or {}).get("nodeName") != self.config.node_name:
            pod = None
        view = await self.cache.view(key)
        uid = uid_of(pod) if pod is not None else ""
        notes = self.notes.setdefault(uid, PodNotes()) if pod is not None else PodNotes()
        specs = {str(c.get("name")): c for c in containers_of(pod)} if pod is not None else {}
        _, mine = view.for_uid(uid)
        notes.liveness_failed = {
            c.id for c in mine if c.state == "running" and c.name in specs and self.probes.failed(c.id, specs[c.name])
        }
        now = self.clock()
        assigned_ip = ""
        if pod is not None and not is_deleting(pod):
            own = next((s.ip for s in view.sandboxes if s.pod_uid == uid and s.ip), None)
            if own is not None:
                self.pod_ips.keep(uid, own)
            in_use = (s.ip for v in self.cache.views.values() for s in v.sandboxes if s.ip)
            assigned_ip = own or self.pod_ips.assign(uid, in_use)
        links = None
        if pod is not None and self.services is not None and (pod.get("spec") or {}).get("enableServiceLinks", True):
            namespace = namespace_of(pod)
            links = service_env([s for s in self.services.items() if namespace_of(s) == namespace],
                                self.config.service_gateway)
        decided = plan(pod, view, notes, now, node_name=self.config.node_name, address=self.config.address,
                       pod_ip=assigned_ip, extra_env=links, cap=self.config.backoff_max,
                       keep_attempts=self.config.keep_attempts)
        if decided.actions:
            await self.executor.execute(pod, decided.actions, notes, key=key)
            if not all(isinstance(a, RemoveSandbox | RemoveContainer | FinishDeletion) for a in decided.actions):
                view = await self.cache.view(key)
        if pod is None or is_deleting(pod):
            self.probes.forget(key)
            self.phases.pop(key, None)
            if pod is None:
                live = {uid_of(p) for p in self.informer.store.values()}
                for gone in [u for u in self.notes if u not in live]:
                    self.notes.pop(gone, None)
                    self._written.pop(gone, None)
                    self.pod_ips.release(gone)
            return None
        sandboxes, mine = view.for_uid(uid)
        pod_ip = next((s.ip for s in sandboxes if s.state == "ready" and s.ip), None)
        running = [RunningContainer(c.id, specs[c.name], c.started_at) for c in mine
                   if c.state == "running" and c.name in specs]
        self.probes.sync(key, running, pod_ip, self.config.address, self.queue.add)
        requeue = decided.requeue_after
        if pod_is_terminal(pod):
            self.phases[key] = str((pod.get("status") or {}).get("phase"))
            return requeue
        ready, started = self.probes.view(running)
        now = self.clock()
        status = compute_status(pod, view, notes, ProbeView(ready, started), now, host_ip=self.config.address,
                                scheme=self.runtime_name, cap=self.config.backoff_max)
        await self._write_status(pod, status)
        self.phases[key] = str(status.get("phase"))
        for failure in notes.failures.values():
            shown = failure.at + ERR_SHOWN - now
            if failure.reason == "ErrImagePull" and shown > 0:
                requeue = shown + 0.05 if requeue is None else min(requeue, shown + 0.05)
        return requeue

    async def _write_status(self, pod: Obj, status: Obj) -> None:
        uid = uid_of(pod)
        rv, current = resource_version(pod), pod.get("status") or {}
        mine = self._written.get(uid)
        if mine is not None and mine[0] > rv:
            rv, current = mine
        if status == current:
            return
        for attempt in range(2):
            obj = {**pod, "metadata": {**meta(pod), "resourceVersion": str(rv)}, "status": status}
            try:
                written = await self.client.update_status(obj)
            except NotFound:
                return
            except Conflict:
                if attempt:
                    raise
                fresh = await self.client.get("Pod", name_of(pod), namespace_of(pod))
                if uid_of(fresh) != uid or is_deleting(fresh):
                    return
                pod, rv = fresh, resource_version(fresh)
                continue
            self._written[uid] = (resource_version(written), written.get("status") or {})
            self.log.debug("pod status written", pod=ref(pod), phase=status.get("phase"))
            return
