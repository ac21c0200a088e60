"""The DNS agent: one cluster DNS server per node, answering from its own Service and Endpoints informers.

It listens on the given addresses (``--listen``, e.g. loopback for tests) and, with ``gateway=True``, on
the node's pod-network gateway (the first address of the Node's ``spec.podCIDR``: the address pods get
as their ``nameserver``), once the kubelet has made that bridge (binding is retried until it exists).
Names outside the cluster domain are forwarded to ``upstreams``.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
from typing import Any

from agents.dns.records import resolve
from agents.dns.server import DnsHandler, DnsServer
from protocol.errors import ShoalError
from protocol.network import CLUSTER_DOMAIN
from runtime.actor import ActorContext
from runtime.client import ApiClient
from runtime.informer import Informer

FORBIDDEN_UPSTREAMS = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")
"""Resolvers never forwarded to by default: the private ranges our test machines must not reach.
On a real host pass ``--forbid-upstream ''``."""


def resolv_conf_nameservers(text: str) -> list[str]:
    """The ``nameserver`` addresses of a resolv.conf text."""
    found = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0] == "nameserver":
            with contextlib.suppress(ValueError):
                found.append(str(ipaddress.ip_address(parts[1])))
    return found


def allowed_upstreams(addresses: list[str], forbidden: list[str], own: list[str]) -> list[str]:
    """Drop forbidden resolvers, and our own listening addresses (forwarding to ourselves would loop)."""
    nets = [ipaddress.ip_network(f) for f in forbidden if f]
    return [a for a in addresses
            if a not in own and not any(ipaddress.ip_address(a) in n for n in nets if n.version == 4)]


class DnsAgent:
    name = "dns"

    def __init__(self, node_name: str, *, listen: list[tuple[str, int]] | None = None, gateway: bool = False,
                 gateway_port: int = 53, domain: str = CLUSTER_DOMAIN,
                 upstreams: list[tuple[str, int]] | None = None) -> None:
        self.node_name = node_name
        self.listen = listen or []
        self.gateway = gateway
        self.gateway_port = gateway_port
        self.domain = domain
        self.upstreams = upstreams or []
        self.synced = asyncio.Event()
        self.server: DnsServer | None = None
        self.gateway_address: str | None = None

    def health(self) -> dict[str, Any]:
        stats = self.server.handler.stats.as_dict() if self.server is not None else {}
        return {"node": self.node_name, "listening": [f"{h}:{p}" for h, p in self.server.bound] if self.server else [],
                "upstreams": [f"{h}:{p}" for h, p in self.upstreams], **stats}

    async def start(self, ctx: ActorContext) -> None:
        client = ApiClient(ctx.nc)
        log = ctx.log.bind(node=self.node_name)
        services = Informer(client, "Service", log=log)
        endpoints = Informer(client, "Endpoints", log=log)
        ctx.supervisor.spawn("services-informer", services.run)
        ctx.supervisor.spawn("endpoints-informer", endpoints.run)

        def answer(qname: str, qtype: str) -> Any:
            return resolve(qname, qtype, domain=self.domain, services=services.get, endpoints=endpoints.get)

        self.server = DnsServer(DnsHandler(answer, self.domain, self.upstreams))
        handler = self.server.handler

        def changed(_event: str, _old: Any, _new: Any) -> None:
            handler.invalidate()

        services.add_handler(changed)
        endpoints.add_handler(changed)
        await services.synced.wait()
        await endpoints.synced.wait()
        for host, port in self.listen:
            bound = await self.server.listen(host, port)
            log.info("dns listening", address=f"{bound[0]}:{bound[1]}")
        self.synced.set()
        if self.gateway:
            ctx.supervisor.spawn("gateway-listener", lambda: self._listen_on_gateway(client, log))

    async def _listen_on_gateway(self, client: ApiClient, log: Any) -> None:
        assert self.server is not None
        delay = 0.5
        while True:
            try:
                spec = (await client.get("Node", self.node_name)).get("spec") or {}
                cidr = (spec.get("podCIDRs") or [spec.get("podCIDR")])[0]
                if cidr:
                    address = str(ipaddress.IPv4Network(cidr).network_address + 1)
                    await self.server.listen(address, self.gateway_port)
                    self.gateway_address = address
                    log.info("dns listening on the pod network gateway", address=f"{address}:{self.gateway_port}")
                    return
            except (ShoalError, OSError) as exc:  # no Node/podCIDR yet, or the bridge not made yet
                log.debug("gateway not ready for dns", error=str(exc))
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)

    async def close(self) -> None:
        if self.server is not None:
            await self.server.close()
