"""The provider for local machines: what "the cloud" is when Shoal runs on your own hosts.

- Instances: a machine exists while it is in the inventory directory (``<state>/machines/<node>``);
  removing the file is how an operator says a machine is gone for good. Nodes absent from an
  inventory that was never populated are kept (the provider knows nothing of them).
- Load balancers: an address from a loopback range (``127.78.0.0/16`` by default), published in the
  Service's ``status.loadBalancer.ingress``; the proxy agents listen on it like on a cluster IP.
- Routes: recorded in ``<state>/routes.json`` (one machine needs no routes; on several machines an
  operator or a script applies them).
- Volumes: the StorageClass ``local-path`` (the cluster's default, provisioner ``shoal.io/local-path``,
  ``WaitForFirstConsumer`` and reclaim policy Delete, as Rancher's local-path-provisioner): a volume is a
  directory ``<volume_dir>/<pv>_<namespace>_<claim>`` on the node the scheduler chose, a ``hostPath``
  PersistentVolume of type DirectoryOrCreate pinned to that node by ``nodeAffinity``; the kubelet creates
  the directory when a pod first mounts it. ``delete_volume`` removes the directory where the cloud
  controller manager runs (on a one-machine cluster, the node itself).
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import json
import posixpath
import shutil
from pathlib import Path

from actors.cloud.provider import CloudProvider, LoadBalancer, ProviderError, Route, VolumeRequest, register_provider
from protocol.kinds.storage import DEFAULT_CLASS_ANNOTATION, node_affinity_to
from protocol.kinds.strategy import get_path
from protocol.objects import Obj, name_of, namespace_of

PROVISIONER = "shoal.io/local-path"
DEFAULT_CLASS = "local-path"
DEFAULT_VOLUME_DIR = "/var/lib/shoal/local-path"


class LocalProvider:
    name = "local"

    def __init__(self, state_dir: Path, *, lb_cidr: str = "127.78.0.0/16",
                 volume_dir: str | None = None) -> None:
        self.state_dir = state_dir
        self.volume_dir = volume_dir or str(state_dir.absolute() / "local-path")
        self.machines = state_dir / "machines"
        self.routes_file = state_dir / "routes.json"
        self.lb_network = ipaddress.ip_network(lb_cidr)

    async def instance_exists(self, node: Obj) -> bool:
        if not self.machines.is_dir() or not any(self.machines.iterdir()):
            return True
        return (self.machines / name_of(node)).exists()

    def lb_address(self, service: Obj) -> str:
        digest = hashlib.sha256(f"{namespace_of(service)}/{name_of(service)}".encode()).digest()
        hosts = self.lb_network.num_addresses - 2
        return str(self.lb_network.network_address + 1 + int.from_bytes(digest[:4], "big") % hosts)

    async def ensure_load_balancer(self, service: Obj, nodes: list[Obj]) -> LoadBalancer:
        return LoadBalancer((self.lb_address(service),))

    async def delete_load_balancer(self, service: Obj) -> None:
        return None

    def _read_routes(self) -> list[Route]:
        if not self.routes_file.exists():
            return []
        return [Route(r["node"], r["destinationCIDR"]) for r in json.loads(self.routes_file.read_text())]

    def _write_routes(self, routes: list[Route]) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.routes_file.write_text(json.dumps(
            [{"node": r.node, "destinationCIDR": r.destination_cidr} for r in routes], indent=2))

    async def list_routes(self) -> list[Route]:
        return self._read_routes()

    async def create_route(self, route: Route) -> None:
        routes = [r for r in self._read_routes() if r.node != route.node] + [route]
        self._write_routes(routes)

    async def delete_route(self, route: Route) -> None:
        self._write_routes([r for r in self._read_routes() if r != route])

    # -- volumes ------------------------------------------------------------------------------------
    @property
    def provisioner(self) -> str:
        return PROVISIONER

    def storage_classes(self) -> list[Obj]:
        return [{"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
                 "metadata": {"name": DEFAULT_CLASS, "annotations": {DEFAULT_CLASS_ANNOTATION: "true"}},
                 "provisioner": PROVISIONER, "reclaimPolicy": "Delete",
                 "volumeBindingMode": "WaitForFirstConsumer", "allowVolumeExpansion": False}]

    def volume_path(self, request: VolumeRequest) -> str:
        return posixpath.join(self.volume_dir, f"{request.name}_{request.namespace}_{request.claim}")

    async def provision_volume(self, request: VolumeRequest) -> Obj:
        if request.node is None:
            raise ProviderError(f"{PROVISIONER} volumes are node-local: use a WaitForFirstConsumer class so that "
                                "the scheduler chooses the node first", retryable=False)
        return {"hostPath": {"path": self.volume_path(request), "type": "DirectoryOrCreate"},
                "nodeAffinity": node_affinity_to(request.node)}

    async def delete_volume(self, volume: Obj) -> None:
        path = str(get_path(volume, "spec", "hostPath", "path") or "")
        if not path or posixpath.dirname(path) != self.volume_dir:
            raise ProviderError(f"volume {name_of(volume)} is not under {self.volume_dir}: not deleting {path!r}",
                                retryable=False)
        await asyncio.to_thread(shutil.rmtree, path, True)


def _factory(options: dict[str, str]) -> CloudProvider:
    return LocalProvider(Path(options.get("state_dir") or "."), lb_cidr=options.get("lb_cidr", "127.78.0.0/16"),
                         volume_dir=options.get("volume_dir") or None)


register_provider("local", _factory)
