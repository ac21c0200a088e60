"""Node IPAM planning, table-tested: the lowest free block, taken blocks, kept assignments, exhaustion."""

from __future__ import annotations

import ipaddress

import pytest

from actors.controllers.nodeipam_plan import CIDRsExhausted, SetPodCIDR, first_free, plan, pod_cidrs, taken
from protocol.network import NetworkConfigError, check_ranges

CLUSTER = ipaddress.IPv4Network("198.18.0.0/16")


def node(name: str, cidr: str | None = None, deleting: bool = False) -> dict:
    metadata: dict = {"name": name}
    if deleting:
        metadata["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    return {"kind": "Node", "metadata": metadata, "spec": {"podCIDR": cidr} if cidr else {}}


def nets(*texts: str) -> set[ipaddress.IPv4Network]:
    return {ipaddress.IPv4Network(t) for t in texts}


@pytest.mark.parametrize(("obj", "used", "expected"), [
    (node("a"), set(), [SetPodCIDR("a", "198.18.0.0/24")]),
    (node("b"), nets("198.18.0.0/24", "198.18.1.0/24"), [SetPodCIDR("b", "198.18.2.0/24")]),
    (node("c"), nets("198.18.0.0/24", "198.18.2.0/24"), [SetPodCIDR("c", "198.18.1.0/24")]),  # a hole is reused
    (node("d", "198.18.9.0/24"), set(), []),  # an assignment is never rewritten
    (node("e", "127.88.0.0/16"), set(), []),  # nor one the kubelet brought (outside the cluster CIDR)
    (node("f", deleting=True), set(), []),
    (None, set(), []),
    (node("g"), nets("198.18.0.0/16"), [CIDRsExhausted("g", "198.18.0.0/16")]),
])
def test_plan(obj: dict | None, used: set[ipaddress.IPv4Network], expected: list) -> None:
    assert plan(obj, used, CLUSTER, 24) == expected


def test_taken_ignores_other_ranges_and_garbage() -> None:
    assert taken(["198.18.3.0/24", "127.88.0.0/16", "not-a-cidr", "198.19.0.0/24"], CLUSTER) == nets("198.18.3.0/24")


def test_pod_cidrs_merges_both_fields() -> None:
    assert pod_cidrs({"spec": {"podCIDR": "198.18.1.0/24", "podCIDRs": ["198.18.1.0/24"]}}) == ["198.18.1.0/24"]
    assert pod_cidrs({"spec": {}}) == []


def test_first_free_with_smaller_blocks() -> None:
    assert first_free(ipaddress.IPv4Network("198.18.0.0/23"), 25, nets("198.18.0.0/25")) == \
        ipaddress.IPv4Network("198.18.0.128/25")


@pytest.mark.parametrize(("cluster", "service", "mask", "message"), [
    ("198.18.0.0/16", "198.18.128.0/17", 24, "overlap"),
    ("198.18.0.0/15", "198.19.0.0/16", 24, "overlap"),
    ("nonsense", "198.19.0.0/16", 24, "not a network"),
    ("198.18.0.0/16", "198.19.0.0/16", 12, "mask"),
    ("fd00::/64", "198.19.0.0/16", 24, "IPv4"),
])
def test_bad_address_plans_are_refused(cluster: str, service: str, mask: int, message: str) -> None:
    with pytest.raises(NetworkConfigError, match=message):
        check_ranges(cluster, service, mask)


def test_default_plan_is_valid() -> None:
    plan_ = check_ranges()
    assert str(plan_.cluster) == "198.18.0.0/16" and str(plan_.service) == "198.19.0.0/16"
