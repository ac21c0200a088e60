"""Routes to other nodes' pod CIDRs: the plan, table-tested, and the routes in the kernel of two network
namespaces standing for two machines (198.51.100.1 and .2 on a veth pair; node b's "pods" are an address of
its podCIDR on b's loopback). The namespaces are removed afterwards, pass or fail."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest

from agents.kubelet.noderoutes import NodeRoutes, RoutePlan, plan, pod_cidrs, wanted_routes
from agents.kubelet.podnetwork_nat import PodNatError, PodNatExemption, render
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


def test_pod_cidrs_own_and_all_valid() -> None:
    assert pod_cidrs("a", NODES) == ("198.18.1.0/24", ["198.18.1.0/24", "198.18.1.128/25", "198.18.2.0/24",
                                                      "198.18.4.0/24", "198.18.5.0/24", "198.18.6.0/24",
                                                      "198.18.8.0/24"])
    assert pod_cidrs("c", NODES)[0] is None  # no podCIDR yet: nothing to exempt


def test_render_exempts_own_pods_to_every_pod_cidr() -> None:
    script = render("shoal-t-a-pods", "198.18.1.0/24", ["198.18.2.0/24", "198.18.1.128/25", "198.18.3.0/24"])
    assert script.startswith("table ip shoal-t-a-pods {}\ndelete table ip shoal-t-a-pods\n")
    assert "elements = { 198.18.1.0/24, 198.18.2.0/23 }" in script  # merged: an interval set has no overlaps
    assert "ip saddr 198.18.1.0/24 ip daddr @pod-cidrs ct status & dnat == 0 snat ip to ip saddr" in script
    assert "priority srcnat - 10" in script  # before netavark's masquerade (srcnat)
    with pytest.raises(ValueError):
        render("t", "garbage", [])
    with pytest.raises(PodNatError):
        PodNatExemption("bad name", log=None)


PEER_SERVER = """
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("198.18.2.1", 7000))
s.listen()
while True:
    c, peer = s.accept()
    c.sendall(peer[0].encode())
    c.close()
"""

PEER_CLIENT = """
import socket, sys
c = socket.create_connection(("198.18.2.1", 7000), timeout=3)
print(c.recv(100).decode())
"""


@pytest.fixture
def pod_behind_a(two_hosts: tuple[str, str]) -> Iterator[tuple[str, str, str]]:
    """A "pod" namespace behind host a (198.18.1.2 on a veth, a at 198.18.1.1 forwarding), a masquerade of
    everything leaving a's pod subnet standing for netavark's, and a server on b's "pod" address telling
    each client the address it came from (routes both ways, as the nodes' NodeRoutes make them)."""
    if shutil.which("nft") is None:
        pytest.skip("needs nft")
    a, b = two_hosts
    pod = f"shoalrt{os.getpid()}p"
    server = None
    try:
        ip("netns", "add", pod)
        ip("link", "add", "veth0", "netns", a, "type", "veth", "peer", "name", "eth0", "netns", pod)
        ip("-n", a, "addr", "add", "198.18.1.1/24", "dev", "veth0")
        ip("-n", a, "link", "set", "veth0", "up")
        ip("-n", pod, "addr", "add", "198.18.1.2/24", "dev", "eth0")
        ip("-n", pod, "link", "set", "eth0", "up")
        ip("-n", pod, "route", "add", "default", "via", "198.18.1.1")
        subprocess.run(["ip", "netns", "exec", a, "sysctl", "-qw", "net.ipv4.ip_forward=1"], check=True)
        ip("-n", b, "route", "add", "198.18.1.0/24", "via", "198.51.100.1")
        ip("-n", a, "route", "add", "198.18.2.0/24", "via", "198.51.100.2")  # NodeRoutes replaces it
        netavark = ("table ip standin {\n chain post {\n type nat hook postrouting priority srcnat; policy accept;\n"
                    " ip saddr 198.18.1.0/24 ip daddr != 198.18.1.0/24 masquerade\n }\n}\n")
        subprocess.run(["ip", "netns", "exec", a, "nft", "-f", "-"], input=netavark, text=True, check=True)
        server = subprocess.Popen(["ip", "netns", "exec", b, sys.executable, "-c", PEER_SERVER])
        yield a, b, pod
    finally:
        if server is not None:
            server.kill()
            server.wait()
        ip("netns", "del", pod, check=False)


def seen_from(pod: str) -> str:
    for _ in range(50):  # the server may still be starting
        done = subprocess.run(["ip", "netns", "exec", pod, sys.executable, "-c", PEER_CLIENT],
                              capture_output=True, text=True, check=False, timeout=10)
        if done.returncode == 0:
            return done.stdout.strip()
        time.sleep(0.1)
    raise AssertionError(f"the pod of a does not reach b's pod: {done.stderr[-500:]}")


async def test_pod_to_pod_across_nodes_keeps_the_pod_address(pod_behind_a: tuple[str, str, str],
                                                              runner: ActorRunner, client: ApiClient) -> None:
    a, _b, pod = pod_behind_a
    assert seen_from(pod) == "198.51.100.1"  # masqueraded: b's pod sees host a, not the pod
    for obj in (node("a", "198.51.100.1", "198.18.1.0/24"), node("b", "198.51.100.2", "198.18.2.0/24")):
        status = obj.pop("status")
        created = await client.create({"apiVersion": "v1", **obj})
        await client.update_status({**created, "status": status})

    class Holder:
        name = "routes"

        async def start(self, ctx: Any) -> None:
            nodes = Informer(ApiClient(ctx.nc), "Node", log=ctx.log)
            nat = PodNatExemption("shoal-t-a-pods", log=ctx.log, nft_command=("ip", "netns", "exec", a, "nft"))
            self.routes = NodeRoutes("a", nodes, log=ctx.log, ip_command=("ip", "-n", a), nat=nat)
            ctx.supervisor.spawn("nodes", nodes.run)
            ctx.supervisor.spawn("routes", self.routes.run)

    holder = Holder()
    await runner.start(holder, ready=lambda: hasattr(holder, "routes") and holder.routes.syncs > 0)
    assert seen_from(pod) == "198.18.1.2"  # without NAT: b's pod sees a's pod itself
    # traffic to anywhere else is still masqueraded: b's own address is no pod address
    listed = subprocess.run(["ip", "netns", "exec", a, "nft", "list", "table", "ip", "shoal-t-a-pods"],
                            capture_output=True, text=True, check=True).stdout
    assert "198.18.1.0/24, 198.18.2.0/24" in listed or "198.18.1.0-198.18.2.255" in listed, listed
