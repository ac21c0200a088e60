"""The ``kubernetes`` Service in ``default``, kept by the gateways as Kubernetes' API servers keep theirs.

A gateway started with an advertised address (``--advertise-address``, an address pods can reach: the node's
address, not loopback; or ``--advertise-node``: the first address of that node's ``podCIDR``, its bridge, which
the gateway then also listens on) makes sure that:

- the Service ``default/kubernetes`` exists: no selector, port 443 (``https``) to the gateways' port, cluster IP
  the first address of the service range (``kubernetes_service_ip``, as Kubernetes has it; the serving
  certificate carries it: ``shoal.kubeconfig.IN_CLUSTER_NAMES``);
- its address is in the Endpoints ``default/kubernetes`` (each gateway adds its own, every ``RESYNC`` seconds,
  and takes it out when it stops). The proxies then DNAT the cluster IP to the gateways, and the kubelets put
  ``KUBERNETES_SERVICE_HOST``/``PORT`` in every pod, so the official clients' ``load_incluster_config()`` works.
A gateway that dies without stopping leaves its address behind until an operator removes it (Kubernetes'
lease-based endpoint reconciler is not implemented).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
from typing import Any

from protocol.errors import AlreadyExists, Conflict, Invalid, NotFound
from protocol.network import DEFAULT_SERVICE_CIDR
from protocol.objects import Obj
from runtime.client import ApiClient

NAME, NAMESPACE = "kubernetes", "default"
RESYNC = 30.0


def kubernetes_service_ip(service_cidr: str = DEFAULT_SERVICE_CIDR) -> str:
    return str(ipaddress.ip_network(service_cidr).network_address + 1)


def service(port: int, cluster_ip: str | None) -> Obj:
    spec: dict[str, Any] = {"type": "ClusterIP", "sessionAffinity": "None",
                            "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": port}]}
    if cluster_ip:
        spec["clusterIP"] = cluster_ip
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": NAME, "namespace": NAMESPACE,
                         "labels": {"component": "apiserver", "provider": "kubernetes"}}, "spec": spec}


def with_address(endpoints: Obj | None, address: str, port: int, present: bool) -> Obj | None:
    """``endpoints`` with ``address`` added (``present``) or removed; None when nothing changes. Pure."""
    current = endpoints or {"apiVersion": "v1", "kind": "Endpoints",
                            "metadata": {"name": NAME, "namespace": NAMESPACE}}
    subsets = current.get("subsets") or []
    addresses = [a for s in subsets for a in s.get("addresses") or [] if a.get("ip") != address]
    had = any(a.get("ip") == address for s in subsets for a in s.get("addresses") or [])
    ports = [{"name": "https", "port": port, "protocol": "TCP"}]
    same_ports = all(s.get("ports") == ports for s in subsets)
    if had == present and same_ports and endpoints is not None:
        return None
    if present:
        addresses.append({"ip": address})
    addresses.sort(key=lambda a: str(a.get("ip")))
    return {**current, "subsets": [{"addresses": addresses, "ports": ports}] if addresses else []}


class ApiServiceKeeper:
    def __init__(self, client: ApiClient, address: str, port: int, *, service_cidr: str = DEFAULT_SERVICE_CIDR,
                 log: Any) -> None:
        self.client, self.address, self.port, self.log = client, address, port, log
        self.cluster_ip = kubernetes_service_ip(service_cidr)

    async def ensure_service(self) -> None:
        try:
            await self.client.get("Service", NAME, NAMESPACE)
            return
        except NotFound:
            pass
        try:
            await self.client.create(service(self.port, self.cluster_ip))
        except AlreadyExists:
            return
        except Invalid as exc:  # the first address is taken: any address (the certificate will not name it)
            self.log.warning("kubernetes service: first service address taken", error=exc.message)
            with contextlib.suppress(AlreadyExists):
                await self.client.create(service(self.port, None))

    async def set_address(self, present: bool) -> None:
        for _ in range(5):
            try:
                current: Obj | None = await self.client.get("Endpoints", NAME, NAMESPACE)
            except NotFound:
                current = None
            wanted = with_address(current, self.address, self.port, present)
            if wanted is None:
                return
            try:
                if current is None:
                    await self.client.create(wanted)
                else:
                    await self.client.update(wanted)
                return
            except (Conflict, AlreadyExists):
                continue

    async def run(self) -> None:
        while True:
            try:
                await self.ensure_service()
                await self.set_address(True)
            except Exception as exc:  # the API may be briefly away: the next round repairs
                self.log.warning("kubernetes service not kept", error=str(exc))
            await asyncio.sleep(RESYNC)
