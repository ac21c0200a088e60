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


@dataclass(frozen=True)
class VolumeRequest:
    """A volume the volume controller asks for: the PV's name, the claim's namespace and name, the size,
    the class's parameters and the node the scheduler chose (None for Immediate binding)."""

    name: str
    namespace: str
    claim: str
    size_bytes: int
    parameters: tuple[tuple[str, str], ...] = ()
    node: str | None = None


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

    def storage_classes(self) -> list[Obj]:
        """The StorageClasses the provider serves (the first marked default is the cluster's default class);
        the cloud controller manager creates those that do not exist."""

    @property
    def provisioner(self) -> str:
        """The ``provisioner`` of the provider's classes (``shoal.io/local-path``); "" for none."""

    async def provision_volume(self, request: VolumeRequest) -> Obj:
        """Make a volume for a claim; return the PersistentVolume spec fields that name it (its source,
        e.g. ``{"hostPath": {...}}``; ``nodeAffinity`` when only some nodes reach it). Idempotent per name."""

    async def delete_volume(self, volume: Obj) -> None:
        """Delete what ``provision_volume`` made for this PersistentVolume (idempotent)."""


PROVIDERS: dict[str, Callable[[dict[str, str]], CloudProvider]] = {}


def register_provider(name: str, factory: Callable[[dict[str, str]], CloudProvider]) -> None:
    PROVIDERS[name] = factory
