"""A hollow node that stops heartbeating: its pods are evicted and recreated on the healthy nodes."""

from __future__ import annotations

import asyncio

import pytest

from agents.hollow.nodes import HollowNodes, HollowSettings
from protocol.objects import condition, is_deleting
from runtime.client import ApiClient
from tests.conftest import ActorRunner
from tests.controllers.conftest import eventually, start_manager
from tests.scheduler.test_scheduler_integration import start_scheduler

REPLICAS = 6


def replicaset() -> dict:
    return {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "web"},
            "spec": {"replicas": REPLICAS, "selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web"}},
                                  "spec": {"terminationGracePeriodSeconds": 1,
                                           "tolerations": [
                                               {"key": "node.kubernetes.io/unreachable", "operator": "Exists",
                                                "effect": "NoExecute", "tolerationSeconds": 1}],
                                           "containers": [{"name": "c", "image": "busybox"}]}}}}


@pytest.mark.slow
async def test_pods_of_a_silent_node_are_recreated_elsewhere(runner: ActorRunner, client: ApiClient) -> None:
    healthy = HollowNodes(HollowSettings(nodes=2, prefix="ok-", lease_interval=1.0, status_interval=1.0,
                                         relist_interval=0.3))
    doomed = HollowNodes(HollowSettings(nodes=1, prefix="doomed-", lease_interval=1.0, status_interval=1.0,
                                        relist_interval=0.3))
    await runner.start(healthy, lambda: len(healthy.agents) == 2)
    stop_doomed = await runner.start(doomed, lambda: len(doomed.agents) == 1)
    await eventually(lambda: _count_nodes(client, 3), timeout=20)
    await start_scheduler(runner)
    await start_manager(runner, ["nodelifecycle", "replicaset"], node_monitor_grace_period=3.0,
                        pod_eviction_timeout=1.0, eviction_rate=50)
    await client.create(replicaset())

    async def running() -> list[dict]:
        pods = [p for p in (await client.list("Pod", "default", label_selector="app=web")).items
                if (p.get("status") or {}).get("phase") == "Running" and not is_deleting(p)]
        return pods if len(pods) == REPLICAS else []

    pods = await eventually(running, timeout=30)
    victims = {p["metadata"]["name"] for p in pods if p["spec"]["nodeName"] == "doomed-0"}
    assert victims, "the spread put some pods on every node"
    stop_doomed.set()  # the node's kubelet dies: no more heartbeats

    async def replaced() -> list[dict]:
        now = await running()
        names = {p["metadata"]["name"] for p in now}
        ok = now and not (names & victims) and all(p["spec"]["nodeName"].startswith("ok-") for p in now)
        return now if ok else []

    await eventually(replaced, timeout=60)
    node = await client.get("Node", "doomed-0")
    assert (condition(node, "Ready") or {}).get("status") == "Unknown"
    assert any(t["key"] == "node.kubernetes.io/unreachable" for t in node["spec"].get("taints") or [])
    await asyncio.sleep(1)
    assert len(await running()) == REPLICAS  # exactly the desired count, no extra pods


async def _count_nodes(client: ApiClient, n: int) -> bool:
    return len((await client.list("Node")).items) == n
