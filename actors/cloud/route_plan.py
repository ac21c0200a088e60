"""Pure decision of the cloud route controller: the provider's routes follow the nodes' pod CIDRs.

Every node with ``spec.podCIDR`` wants a route ``(node, podCIDR)``; routes the provider has and no node
wants are deleted. The route table is one key (``ROUTES_KEY``): it is planned as a whole. Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from actors.cloud.provider import Route
from protocol.objects import Obj, name_of

ROUTES_KEY = "all"
"""The route controller's only key: the whole route table."""


@dataclass(frozen=True)
class RoutePlan:
    create: list[Route] = field(default_factory=list)
    delete: list[Route] = field(default_factory=list)


def wanted_routes(nodes: list[Obj]) -> set[Route]:
    return {Route(name_of(n), str((n.get("spec") or {}).get("podCIDR")))
            for n in nodes if (n.get("spec") or {}).get("podCIDR")}


def plan(nodes: list[Obj], existing: list[Route]) -> RoutePlan:
    """Routes to create (wanted, missing) and to delete (present, unwanted), each sorted."""
    wanted, have = wanted_routes(nodes), set(existing)
    key = lambda r: (r.node, r.destination_cidr)  # noqa: E731
    return RoutePlan(create=sorted(wanted - have, key=key), delete=sorted(have - wanted, key=key))
