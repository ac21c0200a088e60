"""Serving the node's pod usage over NATS on ``shoal.node.<node>.metrics`` (what the kubelet's Summary API
and metrics-server give Kubernetes' HPA and ``kubectl top``).

Request (msgpack envelope): ``{"v": 1}``. Answer: ``{"v": 1, "ok": true, "node", "pods": [{"namespace",
"name", "uid", "timestamp", "window", "containers": [{"name", "cpu", "memory"}]}]}`` with ``cpu`` in
millicores (the rate of the container's CPU time over ``window`` seconds) and ``memory`` in bytes (in use
now), for every running container of a pod bound to this node. Nothing is written to the datastore:
usage is read from the runtime when asked (Podman's one-shot stats; the fake runtime's scripted usage).

The CPU rate is computed from two samples of the runtime's cumulative CPU counter: the previous answer's
and this one's; a container seen for the first time gets its average since it started (``window`` then
is its age). Samples of containers gone are forgotten.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from nats.aio.client import Client
from nats.aio.msg import Msg

from agents.kubelet.cri import ContainerRuntime, ContainerUsage, RuntimeContainer
from agents.kubelet.plan import PodRuntimeView
from protocol import codec, subjects
from protocol.errors import ShoalError, Unavailable

Views = Callable[[], Awaitable[Mapping[str, PodRuntimeView]]]
Sample = tuple[int, float]
"""(cumulative CPU nanoseconds, when)."""


def cpu_rate(usage: ContainerUsage, previous: Sample | None, started_at: float | None) -> tuple[int, float]:
    """(millicores, window seconds) of ``usage`` since ``previous`` or, without one, since the start."""
    if previous is not None and usage.at > previous[1] and usage.cpu_nanoseconds >= previous[0]:
        window = usage.at - previous[1]
        return round((usage.cpu_nanoseconds - previous[0]) / window / 1e6), window
    window = usage.at - started_at if started_at is not None and usage.at > started_at else 0.0
    return (round(usage.cpu_nanoseconds / window / 1e6) if window > 0 else 0), window


class MetricsServer:
    def __init__(self, nc: Client, node_name: str, runtime: ContainerRuntime, *, views: Views, log: Any) -> None:
        self.nc = nc
        self.node_name = node_name
        self.runtime = runtime
        self.views = views
        self.log = log
        self._samples: dict[str, Sample] = {}
        self._sub: Any = None

    @property
    def subject(self) -> str:
        return subjects.node_agent(self.node_name, "metrics")

    async def start(self) -> None:
        self._sub = await self.nc.subscribe(self.subject, cb=self._on_request)

    async def close(self) -> None:
        if self._sub is not None:
            with contextlib.suppress(Exception):
                await self._sub.unsubscribe()

    async def _on_request(self, msg: Msg) -> None:
        if not msg.reply:
            return
        try:
            answer = codec.ok(node=self.node_name, pods=await self.pod_usage())
        except ShoalError as exc:
            answer = codec.error(exc)
        except Exception as exc:  # the runtime failed: say so rather than time the caller out
            answer = codec.error(Unavailable(f"metrics of node {self.node_name}: {exc}"))
        await self.nc.publish(msg.reply, answer)

    async def pod_usage(self) -> list[dict[str, Any]]:
        views = await self.views()
        running: dict[str, tuple[str, RuntimeContainer]] = {}
        for key, view in views.items():
            for container in view.containers:
                if container.state == "running":
                    running[container.id] = (key, container)
        usages = await self.runtime.container_usage(list(running))
        pods: dict[str, dict[str, Any]] = {}
        samples: dict[str, Sample] = {}
        for usage in usages:
            if usage.container_id not in running:
                continue
            key, container = running[usage.container_id]
            millicores, window = cpu_rate(usage, self._samples.get(usage.container_id), container.started_at)
            samples[usage.container_id] = (usage.cpu_nanoseconds, usage.at)
            namespace, _, name = key.partition("/")
            pod = pods.setdefault(key, {"namespace": namespace, "name": name, "uid": container.pod_uid,
                                        "timestamp": usage.at, "window": window, "containers": []})
            pod["window"] = max(pod["window"], window)
            pod["containers"].append({"name": container.name, "cpu": millicores, "memory": usage.memory_bytes})
        self._samples = samples
        return list(pods.values())
