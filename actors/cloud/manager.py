"""The cloud controller manager actor: node, route, service and volume controllers over a provider.

Each controller (``node.py``, ``route.py``, ``service.py``, ``volume.py``) has the shape of the
controller manager's: informer handlers enqueue keys, ``reconcile(key)`` calls a pure ``*_plan`` and
carries it out (see ``base.py``); the provider is the only side effect outside the API.
Leader-elected (Lease ``kube-system/shoal-cloud-controller-manager``).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import actors.cloud.local  # noqa: F401  (registers the "local" provider)
from actors.cloud.base import RESYNC, CloudContext, CloudController
from actors.cloud.node import NodeController
from actors.cloud.provider import PROVIDERS, CloudProvider
from actors.cloud.route import RouteController
from actors.cloud.service import ServiceController
from actors.cloud.service_plan import LB_FINALIZER
from actors.cloud.volume import VolumeController
from protocol import rbac_bootstrap
from runtime.actor import ActorContext
from runtime.client import ApiClient
from runtime.events import EventRecorder
from runtime.informers import InformerFactory
from runtime.leader import LeaderElector
from runtime.supervisor import Supervisor

__all__ = ["LB_FINALIZER", "RESYNC", "CloudControllerManager", "build_provider"]


class CloudControllerManager:
    name = "cloud-controller-manager"
    identity: str | None = rbac_bootstrap.CLOUD_CONTROLLER_MANAGER
    """The Kubernetes user this component acts as (``shoal.user.<identity>.api``, RBAC's role of that name);
    None: the trusted ``shoal.api`` subjects (a caller's own choice, e.g. a test of a wider role)."""

    def __init__(self, provider: CloudProvider, *, leader_elect: bool = True, resync: float = RESYNC) -> None:
        self.provider = provider
        self.leader_elect = leader_elect
        self.resync = resync
        self.counts: dict[str, int] = {"nodes_removed": 0, "load_balancers": 0, "routes": 0, "volumes": 0}

    def health(self) -> dict[str, Any]:
        return {"provider": self.provider.name, **self.counts}

    async def start(self, ctx: ActorContext) -> None:
        client = ApiClient(ctx.nc, identity=self.identity)
        if self.leader_elect:
            elector = LeaderElector(client, rbac_bootstrap.CLOUD_CONTROLLER_MANAGER_LEASE, ctx.instance, log=ctx.log)
            ctx.supervisor.spawn("leader-election", lambda: elector.run(lambda: self._lead(ctx, client)))
        else:
            ctx.supervisor.spawn("controllers", lambda: self._lead(ctx, client))

    async def _lead(self, ctx: ActorContext, client: ApiClient) -> None:
        """Everything the leader does; cancelled as a whole when leadership is lost."""
        supervisor = Supervisor(ctx.log)
        log = ctx.log.bind(provider=self.provider.name)
        informers = InformerFactory(client, log=log)
        cctx = CloudContext(client=client, informers=informers, provider=self.provider, log=log,
                            recorder=EventRecorder(client, "cloud-controller-manager", log=log),
                            resync=self.resync, counts=self.counts)
        controllers: list[CloudController] = [NodeController(), RouteController(), ServiceController(),
                                              VolumeController()]
        for controller in controllers:
            controller.setup(cctx)
        informers.start(supervisor)
        try:
            await informers.wait_synced()
            for controller in controllers:
                supervisor.spawn(f"{controller.name}-controller", controller.run)
            await asyncio.Event().wait()
        finally:
            await supervisor.close()


def build_provider(name: str, state_dir: str) -> CloudProvider:
    factory = PROVIDERS.get(name)
    if factory is None:
        raise SystemExit(f"unknown cloud provider {name!r}; known: {sorted(PROVIDERS)}")
    return factory({"state_dir": str(Path(state_dir))})
