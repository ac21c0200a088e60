"""The node IPAM controller against a real API: distinct pod CIDRs for Nodes created together, kept ones
untouched, a freed block reused."""

from __future__ import annotations

import asyncio

from protocol.objects import Obj
from runtime.client import ApiClient
from tests.conftest import ActorRunner
from tests.controllers.conftest import eventually, start_manager


def node(name: str, cidr: str | None = None) -> Obj:
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name},
            "spec": {"podCIDR": cidr, "podCIDRs": [cidr]} if cidr else {}}


async def cidr_of(client: ApiClient, name: str) -> str | None:
    spec = (await client.get("Node", name)).get("spec") or {}
    return spec.get("podCIDR") if spec.get("podCIDRs") == [spec.get("podCIDR")] else None


async def test_nodes_get_distinct_blocks_and_a_freed_block_is_reused(client: ApiClient, runner: ActorRunner) -> None:
    await client.create(node("kept", "198.18.0.0/24"))
    await client.create(node("outside", "127.88.0.0/16"))
    await start_manager(runner, ["nodeipam"], cluster_cidr="198.18.0.0/22")
    await asyncio.gather(*(client.create(node(f"n{i}")) for i in range(3)))
    cidrs = [await eventually(lambda i=i: cidr_of(client, f"n{i}")) for i in range(3)]
    assert sorted(cidrs) == ["198.18.1.0/24", "198.18.2.0/24", "198.18.3.0/24"]
    assert await cidr_of(client, "kept") == "198.18.0.0/24"
    assert await cidr_of(client, "outside") == "127.88.0.0/16"

    await client.create(node("late"))  # the /22 is full: no block for it ...
    await asyncio.sleep(0.5)
    assert await cidr_of(client, "late") is None
    await client.delete("Node", "n1")  # ... until one is freed
    freed = cidrs[1]
    assert await eventually(lambda: cidr_of(client, "late")) == freed
