"""The controller-manager actor: runs the selected controllers under one leader election.

``python -m actors.controllers --controllers replication,deployment,...`` (default: all). Each
controller can also run alone in its own process, as kube-controller-manager's ``--controllers``.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from typing import Any

from actors.controllers.base import Controller, ControllerContext
from protocol import rbac_bootstrap
from runtime.actor import ActorContext
from runtime.client import ApiClient
from runtime.events import EventRecorder
from runtime.informers import InformerFactory
from runtime.leader import LeaderElector

ControllerFactory = Callable[[], Controller]
EVENT_SOURCES = {"replicaset": "replicaset-controller", "replication": "replication-controller",
                 "deployment": "deployment-controller", "nodelifecycle": "node-controller",
                 "namespace": "namespace-controller", "endpoints": "endpoint-controller",
                 "gc": "garbage-collector-controller", "serviceaccount": "service-account-controller"}
"""The ``source.component`` of each controller's Events, as kube-controller-manager names them."""
REGISTRY: dict[str, ControllerFactory] = {}
"""Controllers by name; each controller module registers itself here (see ``register``)."""


def register(name: str, factory: ControllerFactory) -> None:
    REGISTRY[name] = factory


def load_builtin() -> None:
    """Import the controller modules that exist; each calls ``register`` on import."""
    import importlib
    import pkgutil

    import actors.controllers as package

    for module in pkgutil.iter_modules(package.__path__):
        if module.name not in ("base", "manager", "__main__"):
            importlib.import_module(f"actors.controllers.{module.name}")


class ControllerManager:
    name = "controller-manager"
    identity: str | None = rbac_bootstrap.CONTROLLER_MANAGER
    """The Kubernetes user this component acts as (``shoal.user.<identity>.api``, RBAC's role of that name);
    None: the trusted ``shoal.api`` subjects (a caller's own choice, e.g. a test of a wider role)."""

    def __init__(self, controllers: list[str] | None = None, *, leader_elect: bool = True,
                 options: dict[str, Any] | None = None,
                 lease_name: str = rbac_bootstrap.CONTROLLER_MANAGER_LEASE) -> None:
        load_builtin()
        chosen = controllers or sorted(REGISTRY)
        unknown = [c for c in chosen if c not in REGISTRY]
        if unknown:
            raise SystemExit(f"unknown controllers {unknown}; known: {sorted(REGISTRY)}")
        self.controller_names = chosen
        self.leader_elect = leader_elect
        self.options = options or {}
        self.lease_name = lease_name
        self.controllers: list[Controller] = []
        self.leading = False

    def health(self) -> dict[str, Any]:
        """Which controllers run, whether leading, and the figures of those that keep some (``stats()``)."""
        stats = {c.name: figures() for c in self.controllers if callable(figures := getattr(c, "stats", None))}
        return {"controllers": self.controller_names, "leading": self.leading, "stats": stats}

    async def start(self, ctx: ActorContext) -> None:
        client = ApiClient(ctx.nc, identity=self.identity)
        if not self.leader_elect:
            ctx.supervisor.spawn("controllers", lambda: self._lead(ctx, client))
            return
        elector = LeaderElector(client, self.lease_name, ctx.instance, log=ctx.log)
        ctx.supervisor.spawn("leader-election", lambda: elector.run(lambda: self._lead(ctx, client)))

    async def _lead(self, ctx: ActorContext, client: ApiClient) -> None:
        """Everything the leader does; cancelled as a whole when leadership is lost."""
        from runtime.supervisor import Supervisor

        supervisor = Supervisor(ctx.log)
        self.leading = True
        try:
            informers = InformerFactory(client, log=ctx.log)
            cctx = ControllerContext(client=client, informers=informers,
                                     recorder=EventRecorder(client, "controller-manager", log=ctx.log),
                                     supervisor=supervisor, log=ctx.log, options=self.options)
            self.controllers = [REGISTRY[name]() for name in self.controller_names]
            for controller in self.controllers:
                source = EVENT_SOURCES.get(controller.name, f"{controller.name}-controller")
                controller.setup(dataclasses.replace(cctx, recorder=EventRecorder(client, source, log=ctx.log)))
            informers.start(supervisor)
            await informers.wait_synced()
            ctx.log.info("informers synced; controllers running", controllers=self.controller_names)
            for controller in self.controllers:
                supervisor.spawn(f"controller-{controller.name}", controller.run)
            await asyncio.Event().wait()
        finally:
            self.leading = False
            await supervisor.close()
