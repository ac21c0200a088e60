"""Picking a pod range the host does not route yet, and naming a conflict (runtime/host_subnets)."""

from __future__ import annotations

import asyncio
import ipaddress
import shutil
import subprocess

import pytest
import structlog

from agents.kubelet.podnetwork import (
    NetworkSpec,
    PodNetwork,
    PodNetworkError,
    network_condition,
    network_spec,
    with_host_conflicts,
)
from runtime.host_subnets import conflicting, free_block, used_subnets

Net = ipaddress.IPv4Network


def test_free_block_avoids_every_routed_subnet() -> None:
    used = [Net("198.18.0.0/24"), Net("198.18.2.0/23")]
    for _ in range(50):
        block = Net(free_block("198.18.0.0/22", 24, used))
        assert block == Net("198.18.1.0/24")


def test_free_block_refuses_when_everything_overlaps() -> None:
    with pytest.raises(ValueError, match=r"no /24 of 198\.18\.0\.0/23 is free"):
        free_block("198.18.0.0/23", 24, [Net("198.18.0.0/16")])


def test_conflicting_names_the_overlapping_routes_only() -> None:
    used = [Net("192.0.2.0/24"), Net("198.18.0.0/16")]
    assert conflicting("198.18.7.0/24", used) == ["198.18.0.0/16"]
    assert conflicting("198.51.100.0/24", used) == []


@pytest.mark.skipif(shutil.which("ip") is None, reason="iproute2 is not installed")
def test_used_subnets_reads_the_hosts_routes() -> None:
    out = subprocess.run(["ip", "-4", "route", "show", "table", "all"], capture_output=True, text=True).stdout
    routed = {line.split()[0] for line in out.splitlines()
              if line and line.split()[0] not in ("default", "local", "broadcast") and "/" in line.split()[0]}
    assert {str(n) for n in used_subnets()} >= routed


def test_a_network_that_cannot_be_made_is_reported_on_the_node() -> None:
    spec = network_spec("c", "n", "198.18.0.0/24")
    assert network_condition("bridge", spec, "198.18.0.0/24")["status"] == "False"
    failed = network_condition("bridge", None, None, "subnet 198.18.0.0/24 is already used on the host")
    assert failed["status"] == "True" and failed["reason"] == "NetworkSetupFailed"
    assert "already used" in failed["message"]
    assert network_condition("bridge", None, None)["reason"] == "NoPodCIDR"


def test_a_conflict_with_a_host_route_says_what_to_do() -> None:
    routed = used_subnets()
    if not routed:
        pytest.skip("this host routes no subnet")
    message = with_host_conflicts("creating network x: subnet in use", str(routed[0]))
    assert str(routed[0]) in message and "--cluster-cidr" in message
    if not conflicting("203.0.113.248/29"):
        assert with_host_conflicts("boom", "203.0.113.248/29") == "boom"


class FlakyNetworks:
    """A runtime whose first network creations fail as netavark's do when the host routes the subnet."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.used: NetworkSpec | None = None

    async def ensure_network(self, spec: NetworkSpec) -> None:
        if self.failures > 0:
            self.failures -= 1
            raise PodNetworkError(f"creating network {spec.name} {spec.subnet}: subnet is already used on the host")

    async def remove_network(self, name: str) -> None:
        return None

    def use_network(self, spec: NetworkSpec | None) -> None:
        self.used = spec


async def test_a_node_whose_network_cannot_be_made_is_not_ready_until_it_is() -> None:
    runtime = FlakyNetworks(failures=2)
    changes: list[bool] = []
    net = PodNetwork(None, runtime, mode="bridge", cluster="c", node="n",  # type: ignore[arg-type]
                     cidr="203.0.113.0/24", log=structlog.get_logger(), poll=0.01)
    assert net.runtime_status() == (False, "container runtime network not ready: NetworkReady=false "
                                           "reason:NetworkPluginNotReady message:waiting for node IPAM to assign "
                                           "spec.podCIDR")
    net.on_change = lambda: changes.append(net.ready.is_set())
    await asyncio.wait_for(net.run(), 30)
    assert changes[0] is False and changes[-1] is True  # told of the failure, then of readiness
    assert net.runtime_status() == (True, "") and runtime.used is not None and runtime.used.subnet == "203.0.113.0/24"
    assert net.condition()["reason"] == "BridgePodNetwork"


def test_the_failure_is_what_ready_says() -> None:
    net = PodNetwork(None, FlakyNetworks(0), mode="bridge", cluster="c", node="n",  # type: ignore[arg-type]
                     cidr=None, log=structlog.get_logger())
    net.error = "creating network x: subnet 198.18.0.0/24 is already used on the host"
    ok, message = net.runtime_status()
    assert not ok and message.endswith("message:creating network x: subnet 198.18.0.0/24 is already used on the host")
    assert net.condition()["reason"] == "NetworkSetupFailed"
