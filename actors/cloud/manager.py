"""The cloud controller manager actor: node, service, route and volume controllers over a provider.

Each controller is keyed and level-triggered like those of the controller manager; the provider
is the only side effect outside the API. Leader-elected (Lease ``kube-system/shoal-cloud-controller-manager``).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import actors.cloud.local  # noqa: F401  (registers the "local" provider)
from actors.cloud.provider import PROVIDERS, CloudProvider, ProviderError, Route
from protocol.errors import NotFound, ShoalError
from protocol.objects import Obj, meta, name_of, ref, split_ref
from runtime.actor import ActorContext
from runtime.client import ApiClient
from runtime.events import EventRecorder
from runtime.informers import InformerFactory
from runtime.leader import LeaderElector
from runtime.supervisor import Supervisor
from runtime.workqueue import WorkQueue, run_workers

LB_FINALIZER = "service.kubernetes.io/load-balancer-cleanup"
RESYNC = 30.0


class CloudControllerManager:
    name = "cloud-controller-manager"

    def __init__(self, provider: CloudProvider, *, leader_elect: bool = True, resync: float = RESYNC) -> None:
        self.provider = provider
        self.leader_elect = leader_elect
        self.resync = resync
        self.counts: dict[str, int] = {"nodes_removed": 0, "load_balancers": 0, "routes": 0, "volumes": 0}

    def health(self) -> dict[str, Any]:
        return {"provider": self.provider.name, **self.counts}

    async def start(self, ctx: ActorContext) -> None:
        client = ApiClient(ctx.nc)
        if self.leader_elect:
            elector = LeaderElector(client, "shoal-cloud-controller-manager", ctx.instance, log=ctx.log)
            ctx.supervisor.spawn("leader-election", lambda: elector.run(lambda: self._lead(ctx, client)))
        else:
            ctx.supervisor.spawn("controllers", lambda: self._lead(ctx, client))

    async def _lead(self, ctx: ActorContext, client: ApiClient) -> None:
        supervisor = Supervisor(ctx.log)
        log = ctx.log.bind(provider=self.provider.name)
        recorder = EventRecorder(client, "cloud-controller-manager", log=log)
        informers = InformerFactory(client, log=log)
        nodes, services, pods = informers.informer("Node"), informers.informer("Service"), informers.informer("Pod")
        queues = {name: WorkQueue() for name in ("node", "service", "route", "volume")}

        def on_node(_event: str, _old: Obj | None, new: Obj | None) -> None:
            if new is not None:
                queues["node"].add(ref(new))
            queues["route"].add("all")

        def enqueue(queue: WorkQueue) -> Any:
            def handler(_event: str, _old: Obj | None, new: Obj | None) -> None:
                if new is not None:
                    queue.add(ref(new))
            return handler

        nodes.add_handler(on_node)
        services.add_handler(enqueue(queues["service"]))
        pods.add_handler(enqueue(queues["volume"]))

        async def reconcile_node(key: str) -> float | None:
            node = nodes.get(key)
            if node is None:
                return None
            if not await self.provider.instance_exists(node):
                log.info("provider says the machine is gone: deleting its node", node=key)
                await recorder.record(node, "Normal", "DeletingNode", f"Deleting node {key} because it does "
                                      f"not exist in the cloud provider")
                try:
                    await client.delete("Node", key)
                except NotFound:
                    pass
                self.counts["nodes_removed"] += 1
                return None
            return self.resync

        async def reconcile_service(key: str) -> float | None:
            service = services.get(key)
            if service is None:
                return None
            is_lb = (service.get("spec") or {}).get("type") == "LoadBalancer"
            finalizers = list(meta(service).get("finalizers") or [])
            ns, name = split_ref(key)
            if meta(service).get("deletionTimestamp") or not is_lb:
                if LB_FINALIZER in finalizers:
                    await self.provider.delete_load_balancer(service)
                    finalizers.remove(LB_FINALIZER)
                    pinned = {"finalizers": finalizers, "resourceVersion": meta(service)["resourceVersion"]}
                    await client.patch("Service", name, {"metadata": pinned}, ns)
                    if is_lb:
                        return None
                    await client.patch("Service", name, {"status": {"loadBalancer": {}}}, ns, status=True)
                return None
            if LB_FINALIZER not in finalizers:
                await client.patch("Service", name, {"metadata": {"finalizers": [*finalizers, LB_FINALIZER]}}, ns)
            lb = await self.provider.ensure_load_balancer(service, nodes.items())
            ingress = [{"ip": ip} for ip in lb.ingress_ips]
            if ((service.get("status") or {}).get("loadBalancer") or {}).get("ingress") != ingress:
                await client.patch("Service", name, {"status": {"loadBalancer": {"ingress": ingress}}}, ns,
                                   status=True)
                await recorder.record(service, "Normal", "EnsuredLoadBalancer", "Ensured load balancer")
                self.counts["load_balancers"] += 1
            return None

        async def reconcile_routes(_key: str) -> float | None:
            wanted = {Route(name_of(n), str((n.get("spec") or {}).get("podCIDR")))
                      for n in nodes.items() if (n.get("spec") or {}).get("podCIDR")}
            existing = set(await self.provider.list_routes())
            for route in wanted - existing:
                await self.provider.create_route(route)
                self.counts["routes"] += 1
            for route in existing - wanted:
                await self.provider.delete_route(route)
            return self.resync

        async def reconcile_volumes(key: str) -> float | None:
            pod = pods.get(key)
            if pod is None:
                return None
            ns = meta(pod).get("namespace") or "default"
            for volume in (pod.get("spec") or {}).get("volumes") or []:
                claim = (volume.get("persistentVolumeClaim") or {}).get("claimName")
                if claim:
                    await self.provider.ensure_volume(f"shoal-{ns}-{claim}", {"io.shoal.namespace": ns,
                                                                              "io.shoal.claim": claim})
                    self.counts["volumes"] += 1
            return None

        informers.start(supervisor)
        try:
            await informers.wait_synced()
            queues["route"].add("all")
            for key in [ref(n) for n in nodes.items()]:
                queues["node"].add(key)
            loops = {"node": reconcile_node, "service": reconcile_service, "route": reconcile_routes,
                     "volume": reconcile_volumes}
            for name, fn in loops.items():
                supervisor.spawn(f"{name}-controller", lambda q=queues[name], f=fn: run_workers(  # type: ignore[misc]
                    q, _guarded(f, log), workers=2, log=log))
            await asyncio.Event().wait()
        finally:
            await supervisor.close()


def _guarded(fn: Any, log: Any) -> Any:
    async def run(key: str) -> float | None:
        try:
            result: float | None = await fn(key)
            return result
        except ProviderError as exc:
            log.warning("provider call failed", key=key, error=str(exc))
            if exc.retryable:
                raise
            return None
        except ShoalError:
            raise

    return run


def build_provider(name: str, state_dir: str) -> CloudProvider:
    factory = PROVIDERS.get(name)
    if factory is None:
        raise SystemExit(f"unknown cloud provider {name!r}; known: {sorted(PROVIDERS)}")
    return factory({"state_dir": str(Path(state_dir))})
