"""The provider for local machines: what "the cloud" is when Shoal runs on your own hosts.

- Instances: a machine exists while it is in the inventory directory (``<state>/machines/<node>``);
  removing the file is how an operator says a machine is gone for good. Nodes absent from an
  inventory that was never populated are kept (the provider knows nothing of them).
- Load balancers: an address from a loopback range (``127.78.0.0/16`` by default), published in the
  Service's ``status.loadBalancer.ingress``; the proxy agents listen on it like on a cluster IP.
- Routes: recorded in ``<state>/routes.json`` (one machine needs no routes; on several machines an
  operator or a script applies them).
- Volumes: Podman named volumes (``podman volume create``), kept when unused (Retain).
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import json
import shutil
from pathlib import Path

from actors.cloud.provider import CloudProvider, LoadBalancer, ProviderError, Route, register_provider
from protocol.objects import Obj, name_of, namespace_of


class LocalProvider:
    name = "local"

    def __init__(self, state_dir: Path, *, lb_cidr: str = "127.78.0.0/16", podman: str | None = None) -> None:
        self.state_dir = state_dir
        self.machines = state_dir / "machines"
        self.routes_file = state_dir / "routes.json"
        self.lb_network = ipaddress.ip_network(lb_cidr)
        self.podman = podman if podman is not None else (shutil.which("podman") or "")

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

    async def _podman(self, *args: str) -> str:
        if not self.podman:
            raise ProviderError("podman is not installed: volumes need it", retryable=False)
        proc = await asyncio.create_subprocess_exec(self.podman, *args, stdout=asyncio.subprocess.PIPE,
                                                    stderr=asyncio.subprocess.PIPE)
        out, err = await proc.communicate()
        if proc.returncode != 0:
            raise ProviderError(f"podman {' '.join(args)} failed: {err.decode().strip()}")
        return out.decode()

    async def ensure_volume(self, name: str, labels: dict[str, str]) -> str:
        existing = await self.list_volumes()
        if name not in existing:
            label_args = [a for k, v in labels.items() for a in ("--label", f"{k}={v}")]
            await self._podman("volume", "create", *label_args, name)
        return name

    async def list_volumes(self) -> list[str]:
        out = await self._podman("volume", "ls", "--format", "{{.Name}}")
        return [line for line in out.splitlines() if line]


def _factory(options: dict[str, str]) -> CloudProvider:
    return LocalProvider(Path(options.get("state_dir") or "."), lb_cidr=options.get("lb_cidr", "127.78.0.0/16"))


register_provider("local", _factory)
