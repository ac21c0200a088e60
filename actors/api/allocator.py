"""Allocation of Service cluster IPs and node ports, unique across every API actor.

Each allocation is a create-only key in the datastore (``_alloc.clusterip.<ip>``,
``_alloc.nodeport.<port>``): two API actors racing for the same address cannot both win, with no
coordination between them. Released when the Service is deleted.
"""

from __future__ import annotations

import ipaddress
import random
from dataclasses import dataclass

from actors.api.store import Store
from protocol import keys
from protocol.errors import AlreadyExists, Invalid, Unavailable
from protocol.network import DEFAULT_SERVICE_CIDR
from protocol.objects import Obj, meta

ALLOC_PLURAL = "_alloc"


@dataclass(frozen=True)
class AllocatorSettings:
    service_cidr: str = DEFAULT_SERVICE_CIDR
    """Kubernetes' ``--service-cluster-ip-range`` (see ``protocol.network``)."""
    node_ports: tuple[int, int] = (30000, 32767)


def _key(kind: str, value: str) -> str:
    return f"{ALLOC_PLURAL}.{kind}.{keys.encode_token(value)}"


class ServiceAllocator:
    def __init__(self, store: Store, settings: AllocatorSettings | None = None) -> None:
        self.store = store
        self.settings = settings or AllocatorSettings()
        self.network = ipaddress.ip_network(self.settings.service_cidr)

    async def _claim(self, kind: str, value: str, owner: str) -> bool:
        try:
            await self.store.create(_key(kind, value), owner.encode())
            return True
        except AlreadyExists:
            return False

    async def _release(self, kind: str, value: str) -> None:
        record = await self.store.get(_key(kind, value))
        if record is not None and not record.deleted:
            await self.store.delete(_key(kind, value), b"", record.revision)

    async def allocate(self, service: Obj) -> None:
        """Fill spec.clusterIP and node ports of a new Service, claiming each; Invalid if taken."""
        spec = service.get("spec") or {}
        owner = f"{meta(service).get('namespace')}/{meta(service).get('name')}"
        claimed: list[tuple[str, str]] = []
        try:
            if spec.get("type") != "ExternalName" and spec.get("clusterIP") != "None":
                wanted = spec.get("clusterIP")
                if wanted:
                    if ipaddress.ip_address(wanted) not in self.network:
                        raise Invalid(f"spec.clusterIP {wanted} is not in the service range {self.network}",
                                      {"causes": [{"field": "spec.clusterIP", "message": "out of range"}]})
                    if not await self._claim("clusterip", wanted, owner):
                        raise Invalid(f"spec.clusterIP {wanted} is already allocated",
                                      {"causes": [{"field": "spec.clusterIP", "message": "already allocated"}]})
                    claimed.append(("clusterip", wanted))
                else:
                    ip = await self._pick_ip(owner)
                    claimed.append(("clusterip", ip))
                    spec["clusterIP"] = ip
                spec["clusterIPs"] = [spec["clusterIP"]]
            if spec.get("type") in ("NodePort", "LoadBalancer"):
                for i, port in enumerate(spec.get("ports") or []):
                    wanted_port = port.get("nodePort")
                    if wanted_port:
                        lo, hi = self.settings.node_ports
                        if not lo <= wanted_port <= hi or not await self._claim("nodeport", str(wanted_port), owner):
                            raise Invalid(f"spec.ports[{i}].nodePort {wanted_port} is out of range or taken",
                                          {"causes": [{"field": f"spec.ports[{i}].nodePort",
                                                       "message": "out of range or already allocated"}]})
                    else:
                        wanted_port = await self._pick_port(owner)
                        port["nodePort"] = wanted_port
                    claimed.append(("nodeport", str(wanted_port)))
        except BaseException:
            for kind, value in claimed:
                await self._release(kind, value)
            raise
        service["spec"] = spec

    async def _pick_ip(self, owner: str) -> str:
        hosts = self.network.num_addresses - 2
        start = random.randrange(max(hosts, 1))
        for offset in range(min(hosts, 65536)):
            ip = str(self.network.network_address + 1 + (start + offset) % hosts)
            if await self._claim("clusterip", ip, owner):
                return ip
        raise Unavailable(f"the service range {self.network} is full")

    async def _pick_port(self, owner: str) -> int:
        lo, hi = self.settings.node_ports
        start = random.randrange(hi - lo + 1)
        for offset in range(hi - lo + 1):
            port = lo + (start + offset) % (hi - lo + 1)
            if await self._claim("nodeport", str(port), owner):
                return port
        raise Unavailable("no free node port")

    async def release(self, service: Obj) -> None:
        spec = service.get("spec") or {}
        if spec.get("clusterIP") and spec.get("clusterIP") != "None":
            await self._release("clusterip", spec["clusterIP"])
        for port in spec.get("ports") or []:
            if port.get("nodePort"):
                await self._release("nodeport", str(port["nodePort"]))
