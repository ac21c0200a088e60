"""Reading pod usage from a node's kubelet over NATS (the client side of ``agents/kubelet/metrics_server.py``).

``node_pod_usage(client, node)`` asks ``shoal.node.<node>.metrics`` and returns the pods' usage: per pod,
its containers' CPU (millicores) and memory (bytes), when it was read and over which window. Raises
Unavailable when no kubelet serves the node, Timeout when it does not answer in time. ``usage_by_node``
asks several nodes at once; ``node_total`` is a node's figure (its pods' usage summed).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

from protocol import subjects
from protocol.errors import ShoalError, Unavailable
from runtime.client import ApiClient


@dataclass(frozen=True, slots=True)
class PodUsage:
    namespace: str
    name: str
    cpu_millicores: int
    """Summed over the pod's running containers."""
    memory_bytes: int
    timestamp: float
    window: float
    containers: tuple[tuple[str, int, int], ...] = ()
    """(name, millicores, bytes) per running container."""


async def node_pod_usage(client: ApiClient, node: str, *, timeout: float = 5.0) -> list[PodUsage]:
    try:
        reply = await client.request(subjects.node_agent(node, "metrics"), {"v": 1}, timeout=timeout)
    except Unavailable:
        raise Unavailable(f"no kubelet answers for node {node}: its metrics are unavailable") from None
    out = []
    for pod in reply.get("pods") or []:
        containers = tuple((str(c.get("name")), int(c.get("cpu") or 0), int(c.get("memory") or 0))
                           for c in pod.get("containers") or [])
        out.append(PodUsage(str(pod.get("namespace")), str(pod.get("name")), sum(c[1] for c in containers),
                            sum(c[2] for c in containers), float(pod.get("timestamp") or 0.0),
                            float(pod.get("window") or 0.0), containers))
    return out


async def usage_by_node(client: ApiClient, nodes: Sequence[str]) -> dict[str, list[PodUsage] | ShoalError]:
    """Each node's pod usage, or the error its kubelet answered with (or its silence), asked at once."""
    answers = await asyncio.gather(*(node_pod_usage(client, n) for n in nodes), return_exceptions=True)
    out: dict[str, list[PodUsage] | ShoalError] = {}
    for node, answer in zip(nodes, answers, strict=True):
        if isinstance(answer, BaseException) and not isinstance(answer, ShoalError):
            raise answer
        out[node] = answer
    return out


def node_total(pods: Sequence[PodUsage]) -> tuple[int, int]:
    """(millicores, bytes) of a node: its pods' usage summed (what runs outside pods is not counted)."""
    return sum(p.cpu_millicores for p in pods), sum(p.memory_bytes for p in pods)
