"""Pod addresses on the node's pod network: one address per pod, reused while its sandbox lives."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable


class PodNetworkFull(Exception):
    pass


class PodIPAllocator:
    """Hands out addresses of ``cidr`` (never its network, first or broadcast address), one per pod uid.

    In memory only: after a restart the kubelet passes the addresses its sandboxes carry as ``in_use``,
    so adopted pods keep theirs and nothing is handed out twice.
    """

    def __init__(self, cidr: str) -> None:
        self.network = ipaddress.ip_network(cidr)
        self._by_uid: dict[str, str] = {}
        self._next = 2

    def assign(self, uid: str, in_use: Iterable[str]) -> str:
        if uid in self._by_uid:
            return self._by_uid[uid]
        taken = set(in_use) | set(self._by_uid.values())
        size = self.network.num_addresses
        for step in range(max(size - 3, 0)):
            offset = 2 + (self._next - 2 + step) % max(size - 3, 1)
            ip = str(self.network.network_address + offset)
            if ip not in taken:
                self._next = offset + 1
                self._by_uid[uid] = ip
                return ip
        raise PodNetworkFull(f"no free address left in the pod network {self.network}")

    def keep(self, uid: str, ip: str) -> None:
        """Record the address a pod's existing sandbox already has."""
        self._by_uid[uid] = ip

    def release(self, uid: str) -> None:
        self._by_uid.pop(uid, None)
