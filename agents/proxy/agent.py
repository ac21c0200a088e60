"""The proxy agent actor: watches Services and Endpoints and keeps the data path in step.

Level-triggered: any change marks the node's rules dirty; one sync loop recomputes every rule from
the informers' caches (pure ``compute_rules``) and hands them to the data path, so bursts of changes
collapse into one sync.
"""

from __future__ import annotations

import asyncio
from typing import Any

from agents.proxy.datapath import DataPath, choose
from agents.proxy.nftables import NftablesDataPath
from agents.proxy.rules import compute_rules
from agents.proxy.userspace import UserspaceProxy
from protocol.network import DEFAULT_SERVICE_CIDR
from protocol.objects import Obj
from runtime.actor import ActorContext
from runtime.client import ApiClient
from runtime.informer import Informer


class ProxyAgent:
    name = "proxy"

    def __init__(self, node_name: str, *, node_addresses: list[str] | None = None,
                 datapath: DataPath | None = None, drain_seconds: float = 30.0,
                 service_cidr: str = DEFAULT_SERVICE_CIDR) -> None:
        self.node_name = node_name
        self.node_addresses = node_addresses or ["0.0.0.0"]
        self.datapath: DataPath = datapath or choose("userspace", cluster="shoal", service_cidr=service_cidr,
                                                     drain_seconds=drain_seconds)
        self._dirty = asyncio.Event()
        self.syncs = 0
        self.rules = 0
        self.synced = asyncio.Event()

    def health(self) -> dict[str, Any]:
        return {"node": self.node_name, "datapath": self.datapath.name, "syncs": self.syncs, "rules": self.rules,
                **self.datapath.stats()}

    async def start(self, ctx: ActorContext) -> None:
        client = ApiClient(ctx.nc)
        log = ctx.log.bind(node=self.node_name)
        if isinstance(self.datapath, UserspaceProxy | NftablesDataPath):
            self.datapath.log = log
        log.info("proxy data path", datapath=self.datapath.name)
        services = Informer(client, "Service", log=log)
        endpoints = Informer(client, "Endpoints", log=log)

        def changed(_event: str, _old: Obj | None, _new: Obj | None) -> None:
            self._dirty.set()

        services.add_handler(changed)
        endpoints.add_handler(changed)
        ctx.supervisor.spawn("services-informer", services.run)
        ctx.supervisor.spawn("endpoints-informer", endpoints.run)

        async def sync_loop() -> None:
            await services.synced.wait()
            await endpoints.synced.wait()
            self._dirty.set()
            while True:
                await self._dirty.wait()
                await asyncio.sleep(0.02)  # let a burst of changes collapse into one sync
                self._dirty.clear()
                by_key = {f"{e['metadata'].get('namespace')}/{e['metadata']['name']}": e for e in endpoints.items()}
                rules = compute_rules(services.items(), by_key, self.node_addresses, self.node_name)
                await self.datapath.apply(rules)
                self.syncs += 1
                self.rules = len(rules)
                self.synced.set()
                log.debug("rules synced", rules=len(rules))

        async def expire_udp() -> None:
            while True:
                await asyncio.sleep(5)
                if isinstance(self.datapath, UserspaceProxy):
                    self.datapath.expire_udp()

        ctx.supervisor.spawn("sync", sync_loop)
        ctx.supervisor.spawn("udp-expiry", expire_udp)

    async def close(self) -> None:
        await self.datapath.close()
