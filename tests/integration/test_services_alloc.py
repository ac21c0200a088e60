"""Service address allocation: unique cluster IPs and node ports across API actors, kept on update."""

from __future__ import annotations

import asyncio

import pytest

from protocol.errors import Invalid
from runtime.client import ApiClient
from tests.conftest import ActorRunner, start_api


def svc(name: str, type_: str = "ClusterIP", **spec: object) -> dict:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
            "spec": {"type": type_, "selector": {"app": name}, "ports": [{"port": 80}], **spec}}


async def test_allocation_is_unique_and_stable(runner: ActorRunner, client: ApiClient) -> None:
    await start_api(runner)  # a second API actor races the first for addresses
    created = await asyncio.gather(*(client.create(svc(f"s{i}", "NodePort")) for i in range(30)))
    ips = [c["spec"]["clusterIP"] for c in created]
    ports = [c["spec"]["ports"][0]["nodePort"] for c in created]
    assert len(set(ips)) == 30 and all(ip.startswith("198.19.") for ip in ips)
    assert len(set(ports)) == 30 and all(30000 <= p <= 32767 for p in ports)
    assert created[0]["spec"]["ports"][0]["targetPort"] == 80
    # an update that omits the allocated fields (like re-applying the same YAML) keeps them
    again = svc("s0", "NodePort")
    again["metadata"]["labels"] = {"x": "y"}
    updated = await client.update(again)
    assert updated["spec"]["clusterIP"] == ips[0] and updated["spec"]["ports"][0]["nodePort"] == ports[0]
    with pytest.raises(Invalid, match="already allocated"):
        await client.create(svc("dup", clusterIP=ips[1]))
    await client.delete("svc", "s1")
    reused = await client.create(svc("reuse", clusterIP=ips[1]))
    assert reused["spec"]["clusterIP"] == ips[1]
    headless = await client.create(svc("headless", clusterIP="None"))
    assert headless["spec"]["clusterIP"] == "None"
