"""Scheduler + hollow kubelets through the real API: 100 nodes, 1,000 pods, all bound and Running."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from agents.hollow.nodes import HollowNodes, HollowSettings
from protocol.objects import condition_true, name_of
from protocol.quantity import cpu_millis
from runtime.client import ApiClient
from tests.conftest import ActorRunner
from tests.scheduler.test_scheduler_integration import create_all, start_scheduler

NODES, PODS = 100, 1000


def pod(i: int) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": f"hp-{i}", "labels": {"app": f"a{i % 10}"}},
            "spec": {"containers": [{"name": "c", "image": "busybox",
                                     "resources": {"requests": {"cpu": "300m", "memory": "64Mi"}}}]}}


@pytest.mark.slow
async def test_thousand_pods_run_on_hundred_hollow_nodes(runner: ActorRunner, client: ApiClient) -> None:
    hollow = HollowNodes(HollowSettings(nodes=NODES, cpu="4", memory="8Gi", lease_interval=2.0,
                                        status_interval=5.0, relist_interval=0.5))
    await runner.start(hollow, lambda: len(hollow.agents) == NODES)

    async def registered() -> bool:
        nodes = (await client.list("Node")).items
        return len(nodes) == NODES and all(condition_true(n, "Ready") for n in nodes)

    while not await registered():
        await asyncio.sleep(0.3)
    await start_scheduler(runner)
    await create_all(client, [pod(i) for i in range(PODS)])
    deadline = asyncio.get_running_loop().time() + 240
    while True:
        pods = (await client.list("Pod", "default")).items
        running = [p for p in pods if (p.get("status") or {}).get("phase") == "Running"]
        if len(running) == PODS:
            break
        assert asyncio.get_running_loop().time() < deadline, f"only {len(running)}/{PODS} pods Running"
        await asyncio.sleep(1)
    per_node = Counter(p["spec"]["nodeName"] for p in pods)
    assert sum(per_node.values()) == PODS and len(per_node) == NODES  # spread over every node
    for node, count in per_node.items():  # none over its 4 CPUs (300m each: at most 13 pods)
        assert count * cpu_millis("300m") <= cpu_millis("4"), node
    # every node kept its heartbeat through the burst
    nodes = (await client.list("Node")).items
    assert all(condition_true(n, "Ready") for n in nodes), [name_of(n) for n in nodes if not condition_true(n, "Ready")]
    # pods of one app are spread: no node holds more than twice the even share
    for app in {p["metadata"]["labels"]["app"] for p in pods}:
        spread = Counter(p["spec"]["nodeName"] for p in pods if p["metadata"]["labels"]["app"] == app)
        assert max(spread.values()) <= 2 * -(-100 // NODES) + 1, (app, spread.most_common(3))
