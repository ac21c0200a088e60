"""The Node object and its heartbeats: registration, status conditions, and the node Lease.

``node_object``/``node_status`` build the Node from measurements (pure); ``HostMetrics`` measures this host
(``/proc/meminfo``, ``shutil.disk_usage`` of the state dir, ``/proc`` process count against ``pid_max``);
``StaticMetrics`` reports fixed values with no pressure (hollow nodes). ``NodeHeartbeat.run`` registers the
Node (create, or update when it exists), then renews ``kube-node-lease/<node>`` every
``lease_renew_interval`` and writes the Node status (``lastHeartbeatTime``) every ``node_status_interval``
or at once when a condition changes. API errors are ridden out with back-off.

Pressure thresholds follow the kubelet's default hard evictions: memory.available < 100Mi,
nodefs.available < 10%; PID pressure when fewer than 5% of ``pid_max`` remain.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import platform
import shutil
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from agents.kubelet.config import KUBELET_VERSION, KubeletConfig
from protocol.errors import AlreadyExists, Conflict, NotFound, ShoalError
from protocol.objects import Obj, condition, format_micro_time, format_time, meta
from protocol.quantity import cpu_millis, memory_bytes
from runtime.client import ApiClient
from runtime.events import EventRecorder
from runtime.logs import Throttle

LEASE_NAMESPACE = "kube-node-lease"
FAILURE_LOG = Throttle(1.0)
"""One per process: the thousands of nodes of a hollow process fail together when the API sheds load."""
MEMORY_EVICTION_BYTES = 100 * 2**20
DISK_EVICTION_RATIO = 0.10
PID_EVICTION_RATIO = 0.05


@dataclass(frozen=True, slots=True)
class Measurements:
    cpu_millis: int
    memory_bytes: int
    memory_available: int | None = None
    disk_free_ratio: float | None = None
    pids_free_ratio: float | None = None


class Metrics(Protocol):
    def measure(self) -> Measurements: ...


def parse_meminfo(text: str) -> dict[str, int]:
    """``/proc/meminfo`` as bytes per field."""
    out: dict[str, int] = {}
    for line in text.splitlines():
        name, _, rest = line.partition(":")
        parts = rest.split()
        if parts and parts[0].isdigit():
            out[name.strip()] = int(parts[0]) * (1024 if len(parts) > 1 and parts[1] == "kB" else 1)
    return out


class HostMetrics:
    def __init__(self, state_dir: Path, *, cpu: str | None = None, memory: str | None = None) -> None:
        self.state_dir = state_dir
        self.cpu = cpu
        self.memory = memory

    def measure(self) -> Measurements:
        info: dict[str, int] = {}
        try:
            info = parse_meminfo(Path("/proc/meminfo").read_text())
        except OSError:
            pass
        cpu = cpu_millis(self.cpu) if self.cpu else (os.cpu_count() or 1) * 1000
        memory = memory_bytes(self.memory) if self.memory else info.get("MemTotal", 0)
        disk: float | None = None
        path = self.state_dir if self.state_dir.exists() else Path("/")
        try:
            usage = shutil.disk_usage(path)
            disk = usage.free / usage.total if usage.total else None
        except OSError:
            pass
        pids: float | None = None
        try:
            pid_max = int(Path("/proc/sys/kernel/pid_max").read_text())
            used = sum(1 for name in os.listdir("/proc") if name.isdigit())
            pids = 1 - used / pid_max
        except (OSError, ValueError):
            pass
        return Measurements(cpu, memory, info.get("MemAvailable"), disk, pids)


class StaticMetrics:
    def __init__(self, cpu: str = "8", memory: str = "32Gi") -> None:
        self.value = Measurements(cpu_millis(cpu), memory_bytes(memory))

    def measure(self) -> Measurements:
        return self.value


def _cond(kind: str, pressure: bool, ok_reason: str, bad_reason: str, ok_msg: str, bad_msg: str) -> Obj:
    return {"type": kind, "status": "True" if pressure else "False",
            "reason": bad_reason if pressure else ok_reason, "message": bad_msg if pressure else ok_msg}


def conditions(m: Measurements, runtime_ok: bool, runtime_message: str) -> list[Obj]:
    """Node conditions without times (``node_status`` adds them). Pure."""
    mem = m.memory_available is not None and m.memory_available < MEMORY_EVICTION_BYTES
    disk = m.disk_free_ratio is not None and m.disk_free_ratio < DISK_EVICTION_RATIO
    pid = m.pids_free_ratio is not None and m.pids_free_ratio < PID_EVICTION_RATIO
    ready = runtime_ok
    return [
        _cond("MemoryPressure", mem, "KubeletHasSufficientMemory", "KubeletHasInsufficientMemory",
              "kubelet has sufficient memory available", "kubelet has insufficient memory available"),
        _cond("DiskPressure", disk, "KubeletHasNoDiskPressure", "KubeletHasDiskPressure",
              "kubelet has no disk pressure", "kubelet has disk pressure"),
        _cond("PIDPressure", pid, "KubeletHasSufficientPID", "KubeletHasInsufficientPID",
              "kubelet has sufficient PID available", "kubelet has insufficient PID available"),
        {"type": "Ready", "status": "True" if ready else "False",
         "reason": "KubeletReady" if ready else "KubeletNotReady",
         "message": "kubelet is posting ready status" if ready else runtime_message},
    ]


def node_status(config: KubeletConfig, m: Measurements, conds: list[Obj], old: Obj | None, now: float,
                runtime_version: str) -> Obj:
    """The Node's status; conditions keep ``lastTransitionTime`` while unchanged. Pure."""
    previous = {c.get("type"): c for c in (old or {}).get("conditions") or [] if isinstance(c, dict)}
    stamped = []
    for c in conds:
        before = previous.get(c["type"])
        since = before.get("lastTransitionTime") if before and before.get("status") == c["status"] else None
        stamped.append({**c, "lastHeartbeatTime": format_time(now), "lastTransitionTime": since or format_time(now)})
    capacity = {"cpu": _cpu(m.cpu_millis), "memory": f"{m.memory_bytes // 1024}Ki", "pods": str(config.max_pods)}
    return {
        "capacity": capacity,
        "allocatable": dict(capacity),
        "conditions": stamped,
        "addresses": [{"type": "InternalIP", "address": config.address},
                      {"type": "Hostname", "address": config.node_name}],
        "nodeInfo": {
            "kubeletVersion": KUBELET_VERSION,
            "containerRuntimeVersion": runtime_version,
            "operatingSystem": platform.system().lower(),
            "architecture": _arch(),
            "kernelVersion": platform.release(),
            "osImage": platform.platform(),
            "hostname": socket.gethostname(),
        },
        "daemonEndpoints": {"kubeletEndpoint": {"subject": f"shoal.node.{config.node_name}"}},
    }


def _cpu(millis: int) -> str:
    return str(millis // 1000) if millis % 1000 == 0 else f"{millis}m"


def _arch() -> str:
    machine = platform.machine().lower()
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(machine, machine)


def node_labels(config: KubeletConfig) -> dict[str, str]:
    return {
        **config.labels,
        "kubernetes.io/hostname": config.node_name,
        "kubernetes.io/os": platform.system().lower(),
        "kubernetes.io/arch": _arch(),
    }


def node_object(config: KubeletConfig, status: Obj) -> Obj:
    return {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": config.node_name, "labels": node_labels(config)},
            "spec": {"podCIDR": config.pod_cidr, "podCIDRs": [config.pod_cidr]} if config.pod_cidr else {},
            "status": status}


def _comparable(status: Obj) -> Obj:
    """A status without heartbeat times: what "changed" means."""
    return {**status, "conditions": [{k: v for k, v in c.items() if k != "lastHeartbeatTime"}
                                     for c in status.get("conditions") or []]}


class NodeHeartbeat:
    def __init__(self, client: ApiClient, config: KubeletConfig, metrics: Metrics, *,
                 runtime_version: str, runtime_ok: Callable[[], tuple[bool, str]], log: Any,
                 events: EventRecorder | None = None, clock: Callable[[], float] = time.time,
                 network_condition: Callable[[], Obj] | None = None) -> None:
        self.client = client
        self.config = config
        self.metrics = metrics
        self.runtime_version = runtime_version
        self.runtime_ok = runtime_ok
        self.log = log
        self.clock = clock
        self.network_condition = network_condition
        self.node: Obj | None = None
        self.lease: Obj | None = None
        self.registered = asyncio.Event()
        self.renewals = 0
        self.status_writes = 0
        self.events = events
        self._ready: str | None = None  # the Ready status last told in an event
        self.wake = asyncio.Event()
        """Set when something the status reports changed (the pod network): written without waiting."""
        self._started = False

    def _status(self) -> Obj:
        m = self.metrics.measure()
        ok, message = self.runtime_ok()
        old = (self.node or {}).get("status")
        conds = conditions(m, ok, message)
        if self.network_condition is not None:
            conds.append(self.network_condition())
        return node_status(self.config, m, conds, old, self.clock(), self.runtime_version)

    async def register(self) -> None:
        status = await asyncio.to_thread(self._status) if self.config.measure_host else self._status()
        try:
            self.node = await self.client.create(node_object(self.config, status))
            self.log.info("node registered")
        except AlreadyExists:
            current = await self.client.get("Node", self.config.node_name)
            labels = meta(current).setdefault("labels", {})
            if any(labels.get(k) != v for k, v in node_labels(self.config).items()):
                labels.update(node_labels(self.config))
                current = await self.client.update(current)
            current["status"] = {**(current.get("status") or {}), **status}
            self.node = await self.client.update_status(current)
            self.log.info("node re-registered")
        self.status_writes += 1
        self.registered.set()
        if self.events is not None and not self._started:
            self._started = True
            await self.events.record(self.node, "Normal", "Starting", "Starting kubelet.")
        await self._tell_readiness()

    async def _tell_readiness(self) -> None:
        """``NodeReady``/``NodeNotReady`` when the Ready condition written changes, as the kubelet's setter."""
        ready = str((condition(self.node or {}, "Ready") or {}).get("status") or "")
        if self.events is None or ready == self._ready or ready not in ("True", "False"):
            return
        self._ready = ready
        reason = "NodeReady" if ready == "True" else "NodeNotReady"
        await self.events.record(self.node or {}, "Normal", reason,
                                 f"Node {self.config.node_name} status is now: {reason}")

    async def write_status(self, *, force: bool) -> None:
        assert self.node is not None
        status = await asyncio.to_thread(self._status) if self.config.measure_host else self._status()
        if not force and _comparable(status) == _comparable(self.node.get("status") or {}):
            return
        obj = {**self.node, "status": status}
        meta(obj).pop("resourceVersion", None)
        try:
            self.node = await self.client.update_status(obj)
        except NotFound:
            self.node = None
            self.registered.clear()
            raise
        self.status_writes += 1
        await self._tell_readiness()

    async def renew_lease(self) -> None:
        now = self.clock()
        if self.lease is None:
            try:
                self.lease = await self.client.get("Lease", self.config.node_name, LEASE_NAMESPACE)
            except NotFound:
                owner = [{"apiVersion": "v1", "kind": "Node", "name": self.config.node_name,
                          "uid": meta(self.node or {}).get("uid", "")}] if self.node else []
                self.lease = await self.client.create({
                    "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                    "metadata": {"name": self.config.node_name, "namespace": LEASE_NAMESPACE,
                                 "ownerReferences": owner},
                    "spec": {"holderIdentity": self.config.node_name,
                             "leaseDurationSeconds": self.config.lease_duration,
                             "renewTime": format_micro_time(now), "acquireTime": format_micro_time(now)},
                })
                self.renewals += 1
                return
        lease = {**self.lease, "spec": {**(self.lease.get("spec") or {}),
                                        "holderIdentity": self.config.node_name,
                                        "leaseDurationSeconds": self.config.lease_duration,
                                        "renewTime": format_micro_time(now)}}
        try:
            self.lease = await self.client.update(lease)
            self.renewals += 1
        except (Conflict, NotFound):
            self.lease = None
            raise

    async def run(self) -> None:
        delay = 0.2
        while True:  # register, riding out an API that is not up yet
            try:
                await self.register()
                break
            except ShoalError as exc:
                FAILURE_LOG.warning(self.log, "node registration failed; retrying", error=str(exc), retry_in=delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)
        began = time.monotonic()
        next_lease = began + self.config.phase * self.config.lease_renew_interval
        next_status = began + self.config.phase * self.config.node_status_interval
        delay = 0.2
        while True:
            now = time.monotonic()
            try:
                if not self.registered.is_set():
                    await self.register()
                if now >= next_lease:
                    await self.renew_lease()
                    next_lease = now + self.config.lease_renew_interval
                await self.write_status(force=now >= next_status)
                if now >= next_status:
                    next_status = now + self.config.node_status_interval
                delay = 0.2
            except ShoalError as exc:
                FAILURE_LOG.warning(self.log, "node heartbeat failed; retrying", error=str(exc), retry_in=delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), max(0.05, min(next_lease, next_status) - time.monotonic()))
            self.wake.clear()
