"""The kubelet agent: registers its Node, runs the pods bound to it, reports their status, serves logs.

Reconcile by key, level-triggered: the pods informer (server-side filtered on ``spec.nodeName``), the
runtime relist (PLEG) and the probe scheduler only enqueue pod keys (``namespace/name``); the pod worker
(``worker.PodWorker``) reconciles one key at a time: gather (the desired pod and the fresh runtime state),
plan (``plan.plan``, pure), execute (``executor.Executor``), report (``status.compute_status``, written only
when it changed). Nothing is reconciled before the informer has synced, so on a restart the kubelet adopts
the containers of its current pods (same pod uid) instead of restarting them, and removes those of pods
that are gone.

Everything that needs the NATS connection is made at start by ``assemble`` into one ``NodeParts``; before
start the agent holds ``parts = None`` and nothing else is missing.

One process can run many agents on one NATS connection (hollow nodes): everything here is per node except
what the caller passes in (runtime, probe scheduler).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from agents.kubelet.cluster import cluster_id
from agents.kubelet.config import KubeletConfig
from agents.kubelet.cri import ContainerRuntime, ContainerRuntimeError, RuntimeContainer
from agents.kubelet.executor import Executor
from agents.kubelet.logs_server import LogServer
from agents.kubelet.metrics_server import MetricsServer
from agents.kubelet.node import HostMetrics, Metrics, NodeHeartbeat
from agents.kubelet.noderoutes import NodeRoutes
from agents.kubelet.podman_streams import PodmanStreams
from agents.kubelet.podnet import PodIPAllocator
from agents.kubelet.podnetwork import PodNetwork
from agents.kubelet.podnetwork_nat import PodNatExemption
from agents.kubelet.podnetwork_nat import table_name as nat_table
from agents.kubelet.probes import NetworkProber, Prober, ProbeScheduler
from agents.kubelet.runtime_cache import RuntimeCache, relist_pause
from agents.kubelet.stream_server import StreamServer
from agents.kubelet.volumes import PodVolumes, node_fetch, node_token, pod_facts
from agents.kubelet.worker import PodWorker, StatusWriter
from protocol.objects import Obj, ref, uid_of
from runtime.actor import ActorContext
from runtime.client import ApiClient
from runtime.event_correlator import EventCorrelator
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


@dataclass(frozen=True)
class NodeParts:
    """The collaborators of one running kubelet, all made together by ``assemble``."""

    client: ApiClient
    queue: WorkQueue
    informer: Informer  # the pods bound to this node
    services: Informer | None  # for service links; None when they are off
    cache: RuntimeCache
    probes: ProbeScheduler
    own_probes: bool  # the probe scheduler is this agent's to run (not shared by hollow nodes)
    worker: PodWorker
    volumes: PodVolumes
    pod_network: PodNetwork
    routes: NodeRoutes | None  # routes to other nodes' pod networks (bridge mode)
    nodes: Informer | None  # the Nodes, for those routes
    heartbeat: NodeHeartbeat
    logs: LogServer
    usage: MetricsServer
    """Pod usage on request (``shoal.node.<node>.metrics``)."""
    streams: StreamServer | None = None  # exec and port-forward (runtimes with a Podman socket)


def assemble(
    ctx: ActorContext,
    config: KubeletConfig,
    runtime: ContainerRuntime,
    *,
    runtime_name: str,
    runtime_version: str,
    metrics: Metrics,
    runtime_ok: Callable[[], tuple[bool, str]],
    log: Any,
    prober: Prober | None = None,
    shared_probes: ProbeScheduler | None = None,
    event_correlator: EventCorrelator | None = None,
    clock: Callable[[], float] = time.time,
) -> NodeParts:
    """Make every collaborator of a kubelet on ``ctx``'s connection (no I/O: nothing is started)."""
    node = config.node_name
    client = ApiClient(ctx.nc, node_scope=node)
    queue = WorkQueue(base_delay=0.2, max_delay=30.0)
    informer = Informer(client, "Pod", None, field_selector=f"spec.nodeName={node}", log=log)
    statuses = StatusWriter(client, log)

    def enqueue(_event: str, old: Obj | None, new: Obj | None) -> None:
        if not statuses.is_echo(old, new):  # our own status write, back: nothing new to act on
            queue.add(ref(new or old or {}))

    informer.add_handler(enqueue)
    services = Informer(client, "Service", log=log) if config.service_links else None
    cache = RuntimeCache(runtime, node)
    probes = shared_probes or ProbeScheduler(prober or NetworkProber(runtime), queue.add)
    events = (EventRecorder(client, "kubelet", host=node, log=log, correlator=event_correlator)
              if config.record_events else None)
    volumes = PodVolumes(config.state_dir, node_fetch(client, node), node=node, ttl=config.volume_refresh, log=log,
                         facts=pod_facts(config, metrics), token=node_token(client, node))
    executor = Executor(runtime, client, config, events=events, log=log, clock=clock, prepare=volumes.prepare)
    pod_network = PodNetwork(client, runtime, mode=config.pod_network, cluster=config.cluster_name, node=node,
                             cidr=config.pod_cidr, log=log)
    nodes = Informer(client, "Node", log=log) if config.pod_network == "bridge" and config.node_routes else None
    routes = (NodeRoutes(node, nodes, log=log, nat=PodNatExemption(nat_table(config.cluster_name, node), log=log))
              if nodes is not None else None)
    worker = PodWorker(config, pods=informer, services=services, cache=cache, probes=probes, executor=executor,
                       statuses=statuses, pod_ips=None,
                       requeue=queue.add, runtime_name=runtime_name, volumes=volumes, clock=clock)
    def node_ok() -> tuple[bool, str]:  # Ready needs the runtime up and the pod network made
        up = runtime_ok()
        return up if not up[0] else pod_network.runtime_status()

    heartbeat = NodeHeartbeat(client, config, metrics, runtime_version=runtime_version, runtime_ok=node_ok,
                              log=log, events=events, clock=clock, network_condition=pod_network.condition)
    pod_network.on_change = heartbeat.wake.set  # told at once, not at the next heartbeat

    def find_pod(namespace: str, name: str) -> Obj | None:
        return informer.get(f"{namespace}/{name}")

    async def attempts(uid: str) -> list[RuntimeContainer]:
        views = await cache.fresh()
        return [c for view in views.values() for c in view.containers if c.pod_uid == uid]

    logs = LogServer(ctx.nc, node, runtime, find_pod=find_pod, attempts=attempts, log=log)
    socket = getattr(runtime, "socket_url", None)  # exec, attach, port-forward: Podman only (hollow nodes: none)
    streams = StreamServer(ctx.nc, node, PodmanStreams(socket), find_pod=find_pod, attempts=attempts,
                           log=log) if isinstance(socket, str) else None
    usage = MetricsServer(ctx.nc, node, runtime, views=cache.fresh, log=log)
    return NodeParts(client=client, queue=queue, informer=informer, services=services, cache=cache, probes=probes,
                     own_probes=shared_probes is None, worker=worker, volumes=volumes, pod_network=pod_network,
                     routes=routes, nodes=nodes, heartbeat=heartbeat,
                     logs=logs, usage=usage, streams=streams)


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
        event_correlator: EventCorrelator | None = None,
        metrics: Metrics | None = None,
        close_runtime: bool = True,
        on_close: Callable[[], Awaitable[None]] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if runtime is None and runtime_factory is None:
            raise ValueError("KubeletAgent needs a runtime or a runtime_factory")
        self.config = config
        self.runtime: ContainerRuntime | None = runtime  # made by runtime_factory in start() when None
        self._runtime_factory = runtime_factory
        self.runtime_name = runtime_name
        self.runtime_version = runtime_version
        self._prober = prober
        self._shared_probes = probes
        self._event_correlator = event_correlator
        """Shared by the nodes of a hollow process (its keys name the node): one bounded cache, not one each."""
        self.metrics = metrics or HostMetrics(config.state_dir, cpu=config.cpu, memory=config.memory)
        self._close_runtime = close_runtime
        self._on_close = on_close
        self.clock = clock
        self._runtime_ok: tuple[bool, str] = (True, "")
        self._last_relist = 0.0
        self.parts: NodeParts | None = None
        """Made by ``start``; None before."""
        self.started = asyncio.Event()

    def _started_parts(self) -> NodeParts:
        if self.parts is None:
            raise RuntimeError(f"kubelet {self.config.node_name} is not started")
        return self.parts

    # Shortcuts for callers that look inside a started kubelet (hollow nodes, tests).
    @property
    def informer(self) -> Informer:
        return self._started_parts().informer

    @property
    def services(self) -> Informer | None:
        return self._started_parts().services

    @property
    def heartbeat(self) -> NodeHeartbeat:
        return self._started_parts().heartbeat

    @property
    def reconciles(self) -> int:
        return self.parts.worker.reconciles if self.parts is not None else 0

    # -- lifecycle --------------------------------------------------------------------------------
    async def start(self, ctx: ActorContext) -> None:
        node = self.config.node_name
        log = ctx.log.bind(node=node)
        runtime = self.runtime
        if runtime is None:
            assert self._runtime_factory is not None  # checked in __init__
            setup = await self._runtime_factory()
            runtime, self.runtime_version, self._on_close = setup.runtime, setup.version, setup.close
            self.runtime = runtime
        set_cluster = getattr(runtime, "set_cluster", None)  # runtimes shared with other clusters (Podman)
        if set_cluster is not None:
            set_cluster(await cluster_id(ApiClient(ctx.nc), log))
        parts = self.parts = assemble(
            ctx, self.config, runtime, runtime_name=self.runtime_name, runtime_version=self.runtime_version,
            metrics=self.metrics, runtime_ok=lambda: self._runtime_ok, log=log, prober=self._prober,
            shared_probes=self._shared_probes, event_correlator=self._event_correlator, clock=self.clock)
        await parts.logs.start()
        await parts.usage.start()
        if parts.streams is not None:
            await parts.streams.start()
        sup = ctx.supervisor
        sup.spawn(f"{node}/heartbeat", parts.heartbeat.run)
        sup.spawn(f"{node}/informer", parts.informer.run)
        sup.spawn(f"{node}/pod-network", parts.pod_network.run)
        if parts.nodes is not None and parts.routes is not None:
            sup.spawn(f"{node}/nodes", parts.nodes.run)
            sup.spawn(f"{node}/node-routes", parts.routes.run)
        if parts.services is not None:
            sup.spawn(f"{node}/services", parts.services.run)
        sup.spawn(f"{node}/relist", lambda: self._relist_loop(parts, log))
        sup.spawn(f"{node}/workers", lambda: self._work(parts, log))
        if parts.own_probes:
            sup.spawn(f"{node}/probes", parts.probes.run)
        self.started.set()

    async def close(self) -> None:
        if self.parts is not None:
            await self.parts.logs.close()
            await self.parts.usage.close()
            if self.parts.streams is not None:
                await self.parts.streams.close()
            self.parts.queue.close()
            events = self.parts.worker.executor.events
            if events is not None:  # what was emitted before the stop is still told, briefly
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(events.flush(), 2.0)
                await events.close()
            if self._close_runtime and await self.parts.pod_network.release() and self.parts.routes is not None:
                await self.parts.routes.release()  # no pod left: its NAT exemption goes with the network
        if self._close_runtime and self.runtime is not None:
            await self.runtime.close()
        if self._on_close is not None:
            await self._on_close()

    def health(self) -> dict[str, Any]:
        parts = self.parts
        return {
            "node": self.config.node_name,
            "pods": len(parts.informer.store) if parts is not None else 0,
            "running": self.running_pods(),
            "registered": parts is not None and parts.heartbeat.registered.is_set(),
            "runtime_ok": self._runtime_ok[0],
            "pod_network": self.config.pod_network,
            "queue": len(parts.queue) if parts is not None else 0,
            "log_streams": parts.logs.streams() if parts is not None else 0,
        }

    def running_pods(self) -> int:
        return self.parts.worker.running_pods() if self.parts is not None else 0

    # -- loops ------------------------------------------------------------------------------------
    async def _work(self, parts: NodeParts, log: Any) -> None:
        await parts.pod_network.ready.wait()  # the node's podCIDR is known (node IPAM), its network exists
        parts.worker.pod_ips = PodIPAllocator(parts.pod_network.cidr or "")
        await parts.informer.synced.wait()
        log.info("pods synced; reconciling", pods=len(parts.informer.store))
        await run_workers(parts.queue, parts.worker.reconcile, workers=self.config.workers, log=log)

    async def _relist_loop(self, parts: NodeParts, log: Any) -> None:
        phase = self.config.phase
        await asyncio.sleep(phase * self.config.relist_interval)
        last_resync = time.monotonic() - phase * RESYNC_INTERVAL
        while True:
            began = time.monotonic()
            try:
                for key in await parts.cache.relist_changes():
                    parts.queue.add(key)
                self._runtime_ok = (True, "")
                self._last_relist = time.monotonic()
            except ContainerRuntimeError as exc:
                self._runtime_ok = (False, f"container runtime is down: {exc}")
                log.warning("runtime relist failed", error=str(exc))
            took = time.monotonic() - began
            if time.monotonic() - last_resync > RESYNC_INTERVAL:
                last_resync = time.monotonic()
                if parts.informer.synced.is_set():
                    await parts.volumes.cleanup_orphans({uid_of(p) for p in parts.informer.store.values()})
                for key in list(parts.informer.store):
                    parts.queue.add(key)
            await asyncio.sleep(relist_pause(self.config.relist_interval, took, self.config.relist_share))

    async def reconcile(self, key: str) -> float | None:
        """One pass of the pod worker over ``key`` (see ``worker.PodWorker.reconcile``)."""
        return await self._started_parts().worker.reconcile(key)
