"""Hollow nodes through the real API: 50 fake-runtime kubelets register, renew leases and run pods."""

from __future__ import annotations

import asyncio

from actors.api.server import ApiActor
from agents.hollow.nodes import HollowNodes, HollowSettings
from protocol.objects import condition_true, parse_time
from runtime.client import ApiClient
from tests.agents.kubelet_helpers import eventually, phase, pod_manifest
from tests.conftest import ActorRunner

NODES = 50


async def test_fifty_hollow_nodes(runner: ActorRunner, api: ApiActor, client: ApiClient) -> None:
    hollow = HollowNodes(HollowSettings(nodes=NODES, lease_interval=1.0, status_interval=2.0, relist_interval=0.5))
    await runner.start(hollow, lambda: len(hollow.agents) == NODES)

    async def all_registered() -> bool:
        nodes = (await client.list("Node", label_selector="shoal.io/hollow=true")).items
        return len(nodes) == NODES and all(condition_true(n, "Ready") for n in nodes)

    await eventually(all_registered, timeout=60, interval=0.3, what="50 hollow nodes registered and Ready")
    async def all_leases() -> list[dict[str, object]] | None:
        items = (await client.list("Lease", "kube-node-lease")).items
        return items if len(items) == NODES else None

    leases = await eventually(all_leases, timeout=10, interval=0.3, what="50 leases")
    first = {lease["metadata"]["name"]: parse_time(lease["spec"]["renewTime"]) for lease in leases}

    async def renewed() -> bool:
        now = (await client.list("Lease", "kube-node-lease")).items
        return all((parse_time(x["spec"]["renewTime"]) or 0) > (first[x["metadata"]["name"]] or 0) for x in now)

    await eventually(renewed, timeout=10, interval=0.3, what="every lease renewed")

    names = []
    for i in range(100):
        pod = await client.create(pod_manifest(f"hp-{i}", [{"name": "c", "image": "busybox"}]))
        names.append(pod["metadata"]["name"])
    await asyncio.gather(*(client.bind(name, "default", f"hollow-{i % NODES}") for i, name in enumerate(names)))

    async def all_running() -> bool:
        pods = (await client.list("Pod", "default")).items
        return sum(1 for p in pods if phase(p) == "Running") == len(names)

    await eventually(all_running, timeout=60, interval=0.3, what="100 pods Running on hollow nodes")
    pods = (await client.list("Pod", "default")).items
    assert {p["status"]["hostIP"] for p in pods} and all(p["spec"]["nodeName"].startswith("hollow-") for p in pods)
    await eventually(lambda: asyncio.sleep(0, hollow.health()["pods_running"] == len(names)), timeout=10,
                     what="health counts pods")
    health = hollow.health()
    assert health["nodes"] == NODES and health["registered"] == NODES
    # each node only holds its own pods (server-side filtered watches)
    assert all(len(a.informer.store) == 2 for a in hollow.agents)
