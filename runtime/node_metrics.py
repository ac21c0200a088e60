"""Reading pod usage from a node's kubelet over NATS (the client side of ``agents/kubelet/metrics_server.py``).

``node_pod_usage(client, node)`` asks ``shoal.node.<node>.metrics`` and returns the pods' usage: per pod,
its containers' CPU (millicores) and memory (bytes), when it was read and over which window. Raises
Unavailable when no kubelet serves the node, Timeout when it does not answer in time.
"""

from __future__ import annotations

from dataclasses import dataclass

from protocol import subjects
from protocol.errors import Unavailable
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
