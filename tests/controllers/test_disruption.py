"""The disruption controller against a real API: PodDisruptionBudget status follows pods and scales."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from protocol.errors import Invalid, NotFound, TooManyRequests
from protocol.objects import Obj, is_deleting, name_of, pod_is_ready
from runtime.client import ApiClient
from tests.controllers.conftest import StartControllers, eventually

NS = "default"


def deployment(name: str, replicas: int) -> Obj:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": NS},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}}


def budget(name: str, app: str, **spec: Any) -> Obj:
    return {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": name, "namespace": NS},
            "spec": {"selector": {"matchLabels": {"app": app}}, **spec}}


async def status_is(client: ApiClient, name: str, **wanted: int) -> Obj | None:
    pdb = await client.get("PodDisruptionBudget", name, NS)
    status = pdb.get("status") or {}
    ok = all(status.get(k) == v for k, v in wanted.items()) and \
        status.get("observedGeneration") == pdb["metadata"]["generation"]
    return status if ok else None


async def test_budget_status_follows_pods_and_scale(client: ApiClient, start_controllers: StartControllers,
                                                    pod_status_simulator: Any) -> None:
    await start_controllers("deployment", "replicaset", "disruption")
    await client.create(deployment("web", 4))
    await client.create(budget("web-max", "web", maxUnavailable=1))
    await client.create(budget("web-min", "web", minAvailable="50%"))
    await client.create(budget("web-int", "web", minAvailable=4))
    status = await eventually(lambda: status_is(client, "web-max", expectedPods=4, desiredHealthy=3,
                                                currentHealthy=4, disruptionsAllowed=1), timeout=20)
    allowed = status["conditions"][0]
    assert (allowed["type"], allowed["status"], allowed["reason"]) == ("DisruptionAllowed", "True", "SufficientPods")
    await eventually(lambda: status_is(client, "web-min", expectedPods=4, desiredHealthy=2, disruptionsAllowed=2))
    status = await eventually(lambda: status_is(client, "web-int", expectedPods=4, desiredHealthy=4,
                                                disruptionsAllowed=0))
    assert status["conditions"][0]["reason"] == "InsufficientPods"

    # the Deployment scales: the expected count follows it
    deploy = await client.get("Deployment", "web", NS)
    deploy["spec"]["replicas"] = 6
    await client.update(deploy)
    await eventually(lambda: status_is(client, "web-max", expectedPods=6, desiredHealthy=5, currentHealthy=6,
                                       disruptionsAllowed=1), timeout=20)
    await eventually(lambda: status_is(client, "web-int", expectedPods=6, desiredHealthy=4, disruptionsAllowed=2))

    # a pod without a controller is covered (healthy) but adds nothing to a scale-based expectation
    await client.create({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "stray", "namespace": NS,
                                                                         "labels": {"app": "web"}},
                         "spec": {"containers": [{"name": "c", "image": "nginx"}]}})
    await eventually(lambda: status_is(client, "web-max", expectedPods=6, desiredHealthy=5, currentHealthy=7,
                                       disruptionsAllowed=2))

    # a budget changed is observed at its new generation
    pdb = await client.get("PodDisruptionBudget", "web-max", NS)
    pdb["spec"]["maxUnavailable"] = "50%"
    await client.update(pdb)
    await eventually(lambda: status_is(client, "web-max", expectedPods=6, desiredHealthy=3, disruptionsAllowed=4))


async def test_invalid_budgets_are_refused(client: ApiClient) -> None:
    for spec in ({"minAvailable": 1, "maxUnavailable": 1}, {"minAvailable": "ten"}, {"maxUnavailable": -1},
                 {"minAvailable": 1, "unhealthyPodEvictionPolicy": "Sometimes"}):
        try:
            await client.create(budget("bad", "web", **spec))
        except Invalid:
            continue
        raise AssertionError(f"accepted {spec}")


async def test_eviction_honours_the_budget(client: ApiClient, start_controllers: StartControllers,
                                           pod_status_simulator: Any) -> None:
    await start_controllers("deployment", "replicaset", "disruption")
    await client.create(deployment("db", 3))
    await client.create(budget("db-pdb", "db", minAvailable=2))
    await eventually(lambda: status_is(client, "db-pdb", currentHealthy=3, desiredHealthy=2, disruptionsAllowed=1),
                     timeout=20)

    async def live() -> list[Obj]:
        pods = (await client.list("Pod", NS, label_selector="app=db")).items
        return [p for p in pods if not is_deleting(p)]

    first, second, third = [name_of(p) for p in await live()]
    # two evictions race for the one disruption allowed: exactly one wins
    results = await asyncio.gather(client.evict(first, NS), client.evict(second, NS), return_exceptions=True)
    won = [r for r in results if isinstance(r, dict)]
    refused = [r for r in results if isinstance(r, TooManyRequests)]
    assert len(won) == 1 and len(refused) == 1, results
    assert "needs 2 healthy pods" in refused[0].details["causes"][0]["message"]

    # the replacement becomes ready: the budget allows one again, and the eviction goes through
    async def replaced() -> bool:
        pods = await live()
        return len(pods) == 3 and all(pod_is_ready(p) for p in pods)

    await eventually(replaced, timeout=20)
    await eventually(lambda: status_is(client, "db-pdb", currentHealthy=3, disruptionsAllowed=1), timeout=20)
    loser = second if name_of(won[0]) == first else first
    evicted = await client.evict(loser, NS)
    assert name_of(evicted) == loser
    with pytest.raises(TooManyRequests):
        await client.evict(third, NS)  # spent again

    # a pod no budget covers is simply deleted
    await client.create({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "free", "namespace": NS},
                         "spec": {"containers": [{"name": "c", "image": "nginx"}]}})
    await client.evict("free", NS)
    with pytest.raises(NotFound):
        await client.evict("free", NS)
