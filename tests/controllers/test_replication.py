"""Replication controllers against a real API: ReplicaSets and ReplicationControllers keep their pods."""

from __future__ import annotations

import asyncio
from typing import Any

from actors.controllers.replication import ReplicaController
from protocol.objects import Obj, controller_of, is_deleting, name_of, uid_of
from runtime.client import ApiClient
from tests.conftest import cancel_and_wait
from tests.controllers.conftest import StartControllers, eventually

CONTAINERS = [{"name": "web", "image": "nginx:1.25"}]


def replicaset(name: str, replicas: int, labels: dict[str, str] | None = None) -> Obj:
    labels = labels or {"app": name}
    return {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": name, "namespace": "default"},
            "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels}, "spec": {"containers": CONTAINERS}}}}


async def owned_pods(client: ApiClient, owner: Obj) -> list[Obj]:
    pods = (await client.list("Pod", "default")).items
    return [p for p in pods if (controller_of(p) or {}).get("uid") == uid_of(owner) and not is_deleting(p)]


async def settled(client: ApiClient, kind: str, name: str, replicas: int) -> Obj | None:
    """The owner once it has exactly ``replicas`` pods and its status says they are all available."""
    owner = await client.get(kind, name, "default")
    status = owner.get("status") or {}
    pods = await owned_pods(client, owner)
    done = (len(pods) == replicas and status.get("replicas") == replicas
            and status.get("availableReplicas") == replicas and status.get("readyReplicas") == replicas
            and status.get("observedGeneration") == owner["metadata"]["generation"])
    return owner if done else None


async def test_replicaset_gets_its_pods_and_replaces_deleted_ones(
        client: ApiClient, start_controllers: StartControllers, pod_status_simulator: Any) -> None:
    await start_controllers("replicaset")
    rs = await client.create(replicaset("web", 3))
    await eventually(lambda: settled(client, "ReplicaSet", "web", 3))
    pods = await owned_pods(client, rs)
    assert all(name_of(p).startswith("web-") for p in pods)
    ref = controller_of(pods[0]) or {}
    assert ref["kind"] == "ReplicaSet" and ref["blockOwnerDeletion"] is True
    assert pods[0]["metadata"]["labels"] == {"app": "web"}

    victim = name_of(pods[0])
    await client.delete("Pod", victim, "default")

    async def replaced() -> bool:
        names = {name_of(p) for p in await owned_pods(client, rs)}
        return len(names) == 3 and victim not in names

    await eventually(replaced)
    await eventually(lambda: settled(client, "ReplicaSet", "web", 3))
    events = (await client.list("Event", "default")).items
    reasons = {e["reason"] for e in events if e["involvedObject"]["name"] == "web"}
    assert "SuccessfulCreate" in reasons


async def test_scale_up_and_down(client: ApiClient, start_controllers: StartControllers,
                                 pod_status_simulator: Any) -> None:
    await start_controllers("replicaset")
    rs = await client.create(replicaset("scaler", 2))
    await eventually(lambda: settled(client, "ReplicaSet", "scaler", 2))
    for replicas in (5, 1, 0, 2):
        rs = await client.get("ReplicaSet", "scaler", "default")
        rs["spec"]["replicas"] = replicas
        await client.update(rs)
        await eventually(lambda r=replicas: settled(client, "ReplicaSet", "scaler", r))  # type: ignore[misc]
    events = (await client.list("Event", "default")).items
    assert any(e["reason"] == "SuccessfulDelete" for e in events)


async def test_orphans_are_adopted_and_mismatching_pods_released(
        client: ApiClient, start_controllers: StartControllers, pod_status_simulator: Any) -> None:
    await start_controllers("replicaset")
    orphan = await client.create({"apiVersion": "v1", "kind": "Pod",
                                  "metadata": {"name": "stray", "namespace": "default", "labels": {"app": "adopt"}},
                                  "spec": {"containers": CONTAINERS}})
    rs = await client.create(replicaset("adopt", 2))
    await eventually(lambda: settled(client, "ReplicaSet", "adopt", 2))
    adopted = await client.get("Pod", "stray", "default")
    assert (controller_of(adopted) or {}).get("uid") == uid_of(rs)
    assert name_of(orphan) in {name_of(p) for p in await owned_pods(client, rs)}

    await client.patch("Pod", "stray", {"metadata": {"labels": {"app": "elsewhere"}}}, "default")

    async def released() -> bool:
        pod = await client.get("Pod", "stray", "default")
        return controller_of(pod) is None

    await eventually(released)
    await eventually(lambda: settled(client, "ReplicaSet", "adopt", 2))
    assert "stray" not in {name_of(p) for p in await owned_pods(client, rs)}


async def test_replication_controller(client: ApiClient, start_controllers: StartControllers,
                                      pod_status_simulator: Any) -> None:
    await start_controllers("replication")
    await client.create({"apiVersion": "v1", "kind": "ReplicationController",
                         "metadata": {"name": "legacy", "namespace": "default"},
                         "spec": {"replicas": 2, "selector": {"app": "legacy"},
                                  "template": {"metadata": {"labels": {"app": "legacy"}},
                                               "spec": {"containers": CONTAINERS}}}})
    rc = await eventually(lambda: settled(client, "ReplicationController", "legacy", 2))
    assert rc["status"]["fullyLabeledReplicas"] == 2
    rc["spec"]["replicas"] = 3
    await client.update(rc)
    await eventually(lambda: settled(client, "ReplicationController", "legacy", 3))


async def test_expectations_prevent_double_creation(client: ApiClient, start_controllers: StartControllers,
                                                    pod_status_simulator: Any) -> None:
    manager = await start_controllers("replicaset")
    controller = manager.controllers[0]
    assert isinstance(controller, ReplicaController)
    created: list[str] = []
    watch = client.watch("Pod", "default")

    async def count() -> None:
        async for event in watch:
            if event.type == "ADDED":
                created.append(name_of(event.object))

    counter = asyncio.create_task(count())
    try:
        await asyncio.sleep(0.2)
        await client.create(replicaset("burst", 10))
        await eventually(lambda: _true(controller.owners.get("default/burst") is not None))
        # several passes racing on the same stale cache must not add pods beyond replicas
        await asyncio.gather(*(controller.reconcile("default/burst") for _ in range(3)))
        rs = await eventually(lambda: settled(client, "ReplicaSet", "burst", 10))
        await asyncio.sleep(0.5)
        assert len(await owned_pods(client, rs)) == 10
        assert len(created) == 10
    finally:
        await cancel_and_wait(counter)
        await watch.close()


async def _true(value: bool) -> bool:
    return value
