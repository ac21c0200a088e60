"""Routes to other nodes' pod CIDRs: the plan, table-tested, and the routes in the kernel of two network
namespaces standing for two machines (198.51.100.1 and .2 on a veth pair; node b's "pods" are an address of
its podCIDR on b's loopback). The namespaces are removed afterwards, pass or fail."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from agents.kubelet.noderoutes import NodeRoutes, RoutePlan, plan, wanted_routes
from protocol.objects import Obj
from runtime.client import ApiClient
from runtime.informer import Informer
from tests.conftest import ActorRunner
from tests.proxy.test_proxy_agent import wait_until


def node(name: str, ip: str | None, cidr: str | None) -> Obj:
    return {"kind": "Node", "metadata": {"name": name},
            "spec": {"podCIDR": cidr, "podCIDRs": [cidr]} if cidr else {},
            "status": {"addresses": [{"type": "InternalIP", "address": ip}] if ip else []}}


NODES = [node("a", "198.51.100.1", "198.18.1.0/24"), node("b", "198.51.100.2", "198.18.2.0/24"),
         node("c", "198.51.100.3", None), node("d", None, "198.18.4.0/24"),
         node("e", "198.51.100.1", "198.18.5.0/24"),  # a second kubelet on a's machine: reached directly
         node("f", "127.0.0.1", "198.18.6.0/24"), node("g", "198.51.100.7", "198.18.1.128/25"),
         node("h", "192.0.2.2", "198.18.8.0/24"), node("i", "198.51.100.9", "garbage")]


def test_wanted_routes_skip_own_local_incomplete_and_overlapping() -> None:
    assert wanted_routes("a", NODES, ["127.0.0.1", "192.0.2.2"]) == {"198.18.2.0/24": "198.51.100.2"}
    assert wanted_routes("zz", [], []) == {}


@pytest.mark.parametrize(("wanted", "installed", "expected"), [
    ({"198.18.2.0/24": "198.51.100.2"}, {}, RoutePlan((("198.18.2.0/24", "198.51.100.2"),), ())),
    ({"198.18.2.0/24": "198.51.100.2"}, {"198.18.2.0/24": "198.51.100.2"}, RoutePlan((), ())),
    ({"198.18.2.0/24": "198.51.100.3"}, {"198.18.2.0/24": "198.51.100.2"},
     RoutePlan((("198.18.2.0/24", "198.51.100.3"),), ())),  # the node moved
    ({}, {"198.18.2.0/24": "198.51.100.2"}, RoutePlan((), ("198.18.2.0/24",))),  # the node is gone
])
def test_plan(wanted: dict[str, str], installed: dict[str, str], expected: RoutePlan) -> None:
    assert plan(wanted, installed) == expected


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check, timeout=20)


@pytest.fixture
def two_hosts() -> Iterator[tuple[str, str]]:
    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.skip("needs root and iproute2")
    a, b = f"shoalrt{os.getpid()}a", f"shoalrt{os.getpid()}b"
    try:
        ip("netns", "add", a)
        ip("netns", "add", b)
        ip("link", "add", "eth0", "netns", a, "type", "veth", "peer", "name", "eth0", "netns", b)
        for ns, host in ((a, "1"), (b, "2")):
            ip("-n", ns, "addr", "add", f"198.51.100.{host}/24", "dev", "eth0")
            ip("-n", ns, "link", "set", "eth0", "up")
            ip("-n", ns, "link", "set", "lo", "up")
        ip("-n", b, "addr", "add", "198.18.2.1/32", "dev", "lo")  # a "pod" of node b
        yield a, b
    finally:
        ip("netns", "del", a, check=False)
        ip("netns", "del", b, check=False)


PROBE = """
import socket, sys
try:
    socket.create_connection((sys.argv[1], 9), timeout=2).close()
except ConnectionRefusedError:
    pass  # the other host's kernel answered: the address is reachable
except OSError as exc:
    sys.exit(f"unreachable: {exc}")
"""


def reaches(ns: str, address: str) -> bool:
    """A TCP connection attempt from namespace ``ns``: refused (or accepted) means routed both ways."""
    done = subprocess.run(["ip", "netns", "exec", ns, sys.executable, "-c", PROBE, address],
                          capture_output=True, check=False, timeout=10)
    return done.returncode == 0


async def test_routes_follow_nodes_in_the_kernel(two_hosts: tuple[str, str], runner: ActorRunner,
                                                  client: ApiClient) -> None:
    a, _ = two_hosts
    for obj in (node("a", "198.51.100.1", "198.18.1.0/24"), node("b", "198.51.100.2", "198.18.2.0/24")):
        status = obj.pop("status")
        created = await client.create({"apiVersion": "v1", **obj})
        await client.update_status({**created, "status": status})
    assert not reaches(a, "198.18.2.1")  # no route yet: b's pods are out of reach

    class Holder:
        name = "routes"

        async def start(self, ctx: Any) -> None:
            nodes = Informer(ApiClient(ctx.nc), "Node", log=ctx.log)
            self.routes = NodeRoutes("a", nodes, log=ctx.log, ip_command=("ip", "-n", a))
            ctx.supervisor.spawn("nodes", nodes.run)
            ctx.supervisor.spawn("routes", self.routes.run)

    holder = Holder()
    await runner.start(holder, ready=lambda: hasattr(holder, "routes") and holder.routes.syncs > 0)

    async def routed() -> bool:
        return "198.18.2.0/24 via 198.51.100.2" in ip("-n", a, "route", "show", "proto", "90").stdout

    await wait_until(routed)
    assert reaches(a, "198.18.2.1")  # a reaches a pod address of b through b

    b_node = await client.get("Node", "b")
    b_node["spec"]["podCIDR"], b_node["spec"]["podCIDRs"] = "198.18.3.0/24", ["198.18.3.0/24"]
    await client.update(b_node)

    async def moved() -> bool:
        shown = ip("-n", a, "route", "show", "proto", "90").stdout
        return "198.18.3.0/24 via 198.51.100.2" in shown and "198.18.2.0/24" not in shown

    await wait_until(moved)
    await client.delete("Node", "b")

    async def removed() -> bool:
        return ip("-n", a, "route", "show", "proto", "90").stdout.strip() == ""

    await wait_until(removed)
