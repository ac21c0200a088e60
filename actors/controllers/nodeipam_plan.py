"""Node IPAM as pure functions: which ``spec.podCIDR`` a Node gets (Kubernetes' range allocator).

The cluster CIDR is cut into blocks of ``/node_mask``; a Node without a podCIDR gets the lowest free
block. A block is taken when a Node (or a write of ours not yet seen by the informer) holds it. A
Node that already has a podCIDR keeps it, even outside the cluster CIDR (a kubelet given its own
``--pod-cidr``): node IPAM never rewrites an assignment. When every block is taken the Node is reported
(``CIDRsExhausted``) and stays without one until a Node is deleted.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

from protocol.objects import Obj, is_deleting

Network = ipaddress.IPv4Network


@dataclass(frozen=True, slots=True)
class SetPodCIDR:
    node: str
    cidr: str


@dataclass(frozen=True, slots=True)
class CIDRsExhausted:
    node: str
    cluster_cidr: str


Action = SetPodCIDR | CIDRsExhausted


def pod_cidrs(node: Obj) -> list[str]:
    spec = node.get("spec") or {}
    found = [str(c) for c in spec.get("podCIDRs") or [] if c]
    if spec.get("podCIDR") and str(spec["podCIDR"]) not in found:
        found.insert(0, str(spec["podCIDR"]))
    return found


def taken(cidrs: Iterable[str], cluster: Network) -> set[Network]:
    """The blocks of ``cluster`` that these podCIDRs occupy (others, and garbage, are ignored)."""
    out: set[Network] = set()
    for text in cidrs:
        try:
            net = ipaddress.ip_network(text)
        except ValueError:
            continue
        if isinstance(net, ipaddress.IPv4Network) and net.overlaps(cluster):
            out.add(net)
    return out


def first_free(cluster: Network, node_mask: int, used: set[Network]) -> Network | None:
    for block in cluster.subnets(new_prefix=node_mask):
        if not any(block.overlaps(u) for u in used):
            return block
    return None


def plan(node: Obj | None, used: set[Network], cluster: Network, node_mask: int) -> list[Action]:
    """What to do for one Node, given the blocks already taken (including by other Nodes)."""
    if node is None or is_deleting(node) or pod_cidrs(node):
        return []
    name = str((node.get("metadata") or {}).get("name"))
    block = first_free(cluster, node_mask, used)
    if block is None:
        return [CIDRsExhausted(name, str(cluster))]
    return [SetPodCIDR(name, str(block))]
