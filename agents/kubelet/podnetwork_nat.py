"""Pod-to-pod traffic without NAT: Kubernetes' network model says a pod sees another pod's own address.

Podman's bridge networks (netavark) masquerade everything that leaves a network's subnet for another
subnet, so a pod on vm1 reaching a pod on vm2 arrives from vm1's address. kubenet avoids this with a
non-masquerade CIDR; here the kubelet keeps one nftables table of its own, ``ip shoal-<cluster>-<node>-pods``,
whose source-NAT chain runs just before netavark's (priority ``srcnat - 10``) and gives traffic from this
node's podCIDR to any node's podCIDR an identity source NAT (``snat to ip saddr``): the kernel takes only
one source-NAT decision per connection, so netavark's masquerade is never applied to it, and the address
is unchanged. Connections that were DNAT'ed (Service traffic, hostPorts) are left alone: the proxy and
netavark decide about those (the proxy masquerades Service traffic, which hairpin needs).

``render`` is pure; ``PodNatExemption`` replaces the table in one ``nft -f`` transaction when the CIDRs
change. The table stays when the kubelet stops (its pods keep running), like the node routes.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
from collections.abc import Iterable, Sequence
from typing import Any

_UNSAFE = re.compile(r"[^a-zA-Z0-9_-]")


class PodNatError(Exception):
    """``nft`` is missing or refused the table."""


def table_name(cluster: str, node: str) -> str:
    return _UNSAFE.sub("-", f"shoal-{cluster}-{node}")[:56] + "-pods"


def render(table: str, own_cidr: str, pod_cidrs: Iterable[str]) -> str:
    """The ``nft -f`` script replacing ``table``: no NAT from ``own_cidr`` to ``pod_cidrs`` (own included)."""
    own = ipaddress.IPv4Network(own_cidr)
    nets = sorted({ipaddress.IPv4Network(c) for c in pod_cidrs} | {own})
    merged = list(ipaddress.collapse_addresses(nets))  # an interval set refuses overlapping elements
    elements = ", ".join(str(n) for n in merged)
    return "\n".join([
        f"table ip {table} {{}}",
        f"delete table ip {table}",
        f"table ip {table} {{",
        f"    set pod-cidrs {{ type ipv4_addr; flags interval; elements = {{ {elements} }} }}",
        "    chain postrouting {",
        "        type nat hook postrouting priority srcnat - 10; policy accept;",
        f"        ip saddr {own} ip daddr @pod-cidrs ct status & dnat == 0 snat ip to ip saddr "
        'comment "pod to pod without NAT"',
        "    }",
        "}",
    ]) + "\n"


class PodNatExemption:
    """Keeps the table in step with this node's podCIDR and the cluster's pod CIDRs."""

    def __init__(self, table: str, *, log: Any, nft_command: Sequence[str] = ("nft",)) -> None:
        if not re.fullmatch(r"[a-zA-Z][a-zA-Z0-9_-]*", table):
            raise PodNatError(f"bad nftables table name {table!r}")
        self.table = table
        self.log = log
        self.nft = list(nft_command)
        self.applied: tuple[str, tuple[str, ...]] | None = None

    async def _run(self, script: str) -> None:
        try:
            proc = await asyncio.create_subprocess_exec(*self.nft, "-f", "-", stdin=asyncio.subprocess.PIPE,
                                                        stdout=asyncio.subprocess.PIPE,
                                                        stderr=asyncio.subprocess.PIPE)
        except FileNotFoundError as exc:
            raise PodNatError(f"{self.nft[0]} is not installed") from exc
        _, err = await proc.communicate(script.encode())
        if proc.returncode != 0:
            raise PodNatError(f"nft -f refused the table {self.table}: {err.decode().strip()[:1000]}")

    async def apply(self, own_cidr: str, pod_cidrs: Iterable[str]) -> bool:
        """Replace the table if the CIDRs changed; True when it was written."""
        wanted = (own_cidr, tuple(sorted(set(pod_cidrs))))
        if wanted == self.applied:
            return False
        await self._run(render(self.table, own_cidr, wanted[1]))
        self.applied = wanted
        self.log.info("pod-to-pod traffic without NAT", table=self.table, own=own_cidr, pod_cidrs=list(wanted[1]))
        return True

    async def delete(self) -> None:
        """Remove the table (idempotent)."""
        await self._run(f"table ip {self.table} {{}}\ndelete table ip {self.table}\n")
        self.applied = None
