"""Which cluster this kubelet belongs to: the uid of the cluster's ``kube-system`` namespace (what Kubernetes
tools use as a cluster id). Every container the kubelet creates is labelled with it and it touches no other,
so two clusters on one machine's Podman (even with the same node name) never take each other's pods for
orphans."""

from __future__ import annotations

import asyncio
from typing import Any

from protocol.errors import ShoalError
from runtime.client import ApiClient

SYSTEM_NAMESPACE = "kube-system"


async def cluster_id(client: ApiClient, log: Any, *, retry: float = 1.0) -> str:
    """The id, waiting for the API (and the namespace, which API actors create at start) as long as it takes."""
    while True:
        try:
            namespace = await client.get("namespaces", SYSTEM_NAMESPACE)
            uid = (namespace.get("metadata") or {}).get("uid")
            if isinstance(uid, str) and uid:
                return uid
        except ShoalError as exc:
            log.info("waiting for the cluster's id", error=exc.message)
        await asyncio.sleep(retry)
