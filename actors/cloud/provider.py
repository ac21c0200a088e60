"""The provider port: what the cloud controllers ask of an infrastructure provider.

A provider for a real cloud implements these methods against its API (instances, load balancers,
routes, disks) and registers itself with ``register_provider``; ``--cloud-provider NAME`` selects it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from protocol.objects import Obj


@dataclass(frozen=True)
class LoadBalancer:
    ingress_ips: tuple[str, ...]


@dataclass(frozen=True)
class Route:
    node: str
    destination_cidr: str


class ProviderError(Exception):
    """A provider call failed; ``retryable`` says whether to try again later."""

    def __init__(self, message: str, *, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable


class CloudProvider(Protocol):
    name: str

    async def instance_exists(self, node: Obj) -> bool:
        """False only when the provider knows the machine behind ``node`` is gone for good."""

    async def ensure_load_balancer(self, service: Obj, nodes: list[Obj]) -> LoadBalancer: ...

    async def delete_load_balancer(self, service: Obj) -> None: ...

    async def list_routes(self) -> list[Route]: ...

    async def create_route(self, route: Route) -> None: ...

    async def delete_route(self, route: Route) -> None: ...

    async def ensure_volume(self, name: str, labels: dict[str, str]) -> str:
        """Create the volume if absent; return the provider's identifier for it."""

    async def list_volumes(self) -> list[str]: ...


PROVIDERS: dict[str, Callable[[dict[str, str]], CloudProvider]] = {}


def register_provider(name: str, factory: Callable[[dict[str, str]], CloudProvider]) -> None:
    PROVIDERS[name] = factory
