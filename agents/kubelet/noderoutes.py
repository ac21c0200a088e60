"""Routes to the other nodes' pods: each node reaches every other node's ``spec.podCIDR`` via that node's
address (the host-gateway model of kubenet with cloud routes, or flannel's host-gw), kept in step with the
Node objects as nodes come, change and go.

``wanted_routes`` and ``plan`` are pure. ``NodeRoutes`` applies the plan with ``ip route replace`` /
``ip route del`` (protocol ``PROTO``, so ``ip route show proto 90`` lists them), and only ever deletes a
route of that protocol. Routes stay when the kubelet stops (pods keep running through a restart); the
next kubelet adopts them. A node whose address is this node's own (two kubelets on one machine) or
another local address, or whose podCIDR overlaps this node's, gets no route: it is reached directly.
Nodes on one L2 segment need nothing else; across routers, those routers need the same routes (a cloud's
route table), which is what the cloud provider's routes record. With ``nat`` (``podnetwork_nat``), traffic
from this node's pods to every node's podCIDR also leaves without NAT (the pod keeps its address).
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from agents.kubelet.podnetwork_nat import PodNatError, PodNatExemption
from protocol.objects import Obj, name_of

PROTO = "90"


@dataclass(frozen=True, slots=True)
class RoutePlan:
    replace: tuple[tuple[str, str], ...]  # (cidr, via)
    delete: tuple[str, ...]  # cidrs


def internal_ip(node: Obj) -> str | None:
    for address in (node.get("status") or {}).get("addresses") or []:
        if address.get("type") == "InternalIP" and address.get("address"):
            return str(address["address"])
    return None


def pod_cidr(node: Obj) -> str | None:
    spec = node.get("spec") or {}
    found = [c for c in spec.get("podCIDRs") or [] if c] or ([spec["podCIDR"]] if spec.get("podCIDR") else [])
    return str(found[0]) if found else None


def wanted_routes(own: str, nodes: Iterable[Obj], local_addresses: Iterable[str]) -> dict[str, str]:
    """``{podCIDR: via}`` for every other node that has both a podCIDR and a remote InternalIP."""
    nodes = list(nodes)
    local = set(local_addresses)
    own_node = next((n for n in nodes if name_of(n) == own), None)
    own_cidr = pod_cidr(own_node) if own_node is not None else None
    own_ip = internal_ip(own_node) if own_node is not None else None
    wanted: dict[str, str] = {}
    for node in nodes:
        cidr, via = pod_cidr(node), internal_ip(node)
        if name_of(node) == own or cidr is None or via is None or via == own_ip or via in local:
            continue
        try:
            net, gateway = ipaddress.IPv4Network(cidr), ipaddress.IPv4Address(via)
        except ValueError:
            continue
        if gateway.is_loopback or (own_cidr is not None and net.overlaps(ipaddress.IPv4Network(own_cidr))):
            continue
        wanted[str(net)] = str(gateway)
    return wanted


def pod_cidrs(own: str, nodes: Iterable[Obj]) -> tuple[str | None, list[str]]:
    """This node's podCIDR and every node's (valid IPv4 ones only): what pod-to-pod traffic is between."""
    own_cidr: str | None = None
    found: list[str] = []
    for node in nodes:
        cidr = pod_cidr(node)
        try:
            net = str(ipaddress.IPv4Network(cidr)) if cidr else None
        except ValueError:
            net = None
        if net is None:
            continue
        found.append(net)
        if name_of(node) == own:
            own_cidr = net
    return own_cidr, sorted(set(found))


def plan(wanted: dict[str, str], installed: dict[str, str]) -> RoutePlan:
    """Replace what is missing or points elsewhere; delete what we installed and nobody wants."""
    return RoutePlan(replace=tuple(sorted((c, v) for c, v in wanted.items() if installed.get(c) != v)),
                     delete=tuple(sorted(c for c in installed if c not in wanted)))


class RouteError(Exception):
    """``ip`` refused a route change."""


class NodeRoutes:
    """Keeps this host's routes to the other nodes' pod CIDRs in step with ``nodes`` (an informer)."""

    def __init__(self, node_name: str, nodes: Any, *, log: Any, ip_command: Sequence[str] = ("ip",),
                 nat: PodNatExemption | None = None) -> None:
        self.node_name = node_name
        self.nodes = nodes
        self.log = log
        self.nat = nat
        self.ip = list(ip_command)
        self.installed: dict[str, str] = {}
        self.dirty = asyncio.Event()
        self.syncs = 0
        nodes.add_handler(lambda *_: self.dirty.set())

    async def _ip(self, *args: str) -> str:
        proc = await asyncio.create_subprocess_exec(*self.ip, *args, stdout=asyncio.subprocess.PIPE,
                                                    stderr=asyncio.subprocess.PIPE)
        out, err = await proc.communicate()
        if proc.returncode != 0:
            raise RouteError(f"ip {' '.join(args)}: {err.decode().strip()}")
        return out.decode()

    async def local_addresses(self) -> list[str]:
        out = await self._ip("-o", "-4", "addr", "show")
        return [line.split()[3].split("/")[0] for line in out.splitlines() if len(line.split()) > 3]

    async def sync(self) -> RoutePlan:
        wanted = wanted_routes(self.node_name, self.nodes.items(), await self.local_addresses())
        decided = plan(wanted, self.installed)
        for cidr, via in decided.replace:
            try:
                await self._ip("route", "replace", cidr, "via", via, "proto", PROTO)
                self.installed[cidr] = via
                self.log.info("route to a node's pods", cidr=cidr, via=via)
            except RouteError as exc:
                self.log.warning("route not installed", cidr=cidr, via=via, error=str(exc))
        for cidr in decided.delete:
            try:
                await self._ip("route", "del", cidr, "proto", PROTO)
            except RouteError as exc:
                self.log.info("route already gone", cidr=cidr, error=str(exc))
            self.installed.pop(cidr, None)
        await self._sync_nat()
        self.syncs += 1
        return decided

    async def _sync_nat(self) -> None:
        if self.nat is None:
            return
        own, cidrs = pod_cidrs(self.node_name, self.nodes.items())
        if own is None:
            return
        try:
            await self.nat.apply(own, cidrs)
        except PodNatError as exc:  # pods still reach each other, masqueraded by Podman
            self.log.warning("pod-to-pod traffic is masqueraded", error=str(exc))

    async def release(self) -> None:
        """The node's pod network is gone (no pod left): remove the NAT exemption table. The routes to the
        other nodes stay (the host still reaches their pods; the next kubelet adopts them)."""
        if self.nat is None:
            return
        try:
            await self.nat.delete()
            self.log.info("pod NAT exemption removed", table=self.nat.table)
        except PodNatError as exc:
            self.log.warning("pod NAT exemption not removed", table=self.nat.table, error=str(exc))

    async def adopt(self) -> None:
        """Take over the routes of protocol ``PROTO`` already on this host (a previous kubelet's): they are
        kept through a restart, so pods on other nodes stay reachable, and deleted once unwanted."""
        for line in (await self._ip("route", "show", "proto", PROTO)).splitlines():
            parts = line.split()
            if len(parts) >= 3 and parts[1] == "via":
                self.installed[parts[0]] = parts[2]

    async def run(self) -> None:
        await self.nodes.synced.wait()
        await self.adopt()
        while True:
            self.dirty.clear()
            await self.sync()
            try:
                await asyncio.wait_for(self.dirty.wait(), 30.0)  # and a periodic resync
            except TimeoutError:
                pass
