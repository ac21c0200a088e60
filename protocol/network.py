"""The cluster's address plan: where pods and Services get their addresses. Pure, no I/O.

Kubernetes' ``--cluster-cidr`` (pod addresses; node IPAM cuts one ``/node_mask`` block per Node for its
``spec.podCIDR``) and ``--service-cluster-ip-range`` (Service cluster IPs). The defaults are in ranges
reserved for benchmarking (RFC 2544): our machines may send traffic only there, never to 10/8,
172.16/12 or 192.168/16. Every component that is given these ranges checks them with ``check_ranges``
at start, so a cluster where pod and Service addresses overlap never comes up.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

DEFAULT_CLUSTER_CIDR = "198.18.0.0/16"
DEFAULT_SERVICE_CIDR = "198.19.0.0/16"
DEFAULT_NODE_CIDR_MASK = 24
CLUSTER_DOMAIN = "cluster.local"


class NetworkConfigError(ValueError):
    """The address plan is unusable (not a network, overlapping ranges, a mask that does not fit)."""


@dataclass(frozen=True, slots=True)
class AddressPlan:
    cluster: ipaddress.IPv4Network
    service: ipaddress.IPv4Network
    node_mask: int


def _network(text: str, what: str) -> ipaddress.IPv4Network:
    try:
        net = ipaddress.ip_network(text)
    except ValueError as exc:
        raise NetworkConfigError(f"{what} {text!r} is not a network address range (e.g. 198.18.0.0/16)") from exc
    if not isinstance(net, ipaddress.IPv4Network):
        raise NetworkConfigError(f"{what} {text!r}: only IPv4 ranges are supported")
    return net


def check_ranges(cluster_cidr: str = DEFAULT_CLUSTER_CIDR, service_cidr: str = DEFAULT_SERVICE_CIDR,
                 node_mask: int = DEFAULT_NODE_CIDR_MASK) -> AddressPlan:
    """Parse and check the address plan; ``NetworkConfigError`` says what is wrong."""
    cluster = _network(cluster_cidr, "cluster CIDR")
    service = _network(service_cidr, "service CIDR")
    if cluster.overlaps(service):
        raise NetworkConfigError(f"cluster CIDR {cluster} and service CIDR {service} overlap")
    if not cluster.prefixlen <= node_mask <= 30:
        raise NetworkConfigError(f"node CIDR mask /{node_mask} must lie between the cluster CIDR's "
                                 f"/{cluster.prefixlen} and /30")
    if service.prefixlen > 30:
        raise NetworkConfigError(f"service CIDR {service} is too small")
    return AddressPlan(cluster, service, node_mask)
