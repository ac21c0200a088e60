"""Picking a pod range the host does not route yet, and naming a conflict (runtime/host_subnets)."""

from __future__ import annotations

import ipaddress
import shutil
import subprocess

import pytest

from agents.kubelet.podnetwork import network_condition, network_spec, with_host_conflicts
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
