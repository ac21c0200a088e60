"""The namespace controller against a real API: a deleted namespace is emptied, then disappears."""

from __future__ import annotations

from protocol.errors import Forbidden, NotFound
from protocol.objects import Obj, condition, is_deleting, meta
from runtime.client import ApiClient
from tests.conftest import ActorRunner
from tests.controllers.conftest import eventually, start_manager


async def populate(client: ApiClient, ns: str) -> None:
    await client.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    await client.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg", "namespace": ns},
                         "data": {"a": "b"}})
    await client.create({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "namespace": ns},
                         "data": {}})
    await client.create({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "svc", "namespace": ns},
                         "spec": {"selector": {"app": "x"}, "ports": [{"port": 80}]}})
    for i in range(3):
        await client.create({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": f"p{i}", "namespace": ns},
                             "spec": {"containers": [{"name": "c", "image": "busybox"}]}})
    await client.create({"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "rs", "namespace": ns},
                         "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "x"}},
                                  "template": {"metadata": {"labels": {"app": "x"}},
                                               "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}})


async def namespace_gone(client: ApiClient, ns: str) -> bool:
    try:
        await client.get("Namespace", ns)
    except NotFound:
        return True
    return False


async def count(client: ApiClient, ns: str) -> int:
    total = 0
    for kind in ("Pod", "Service", "Secret", "ConfigMap", "ReplicaSet", "Endpoints", "ServiceAccount"):
        total += len((await client.list(kind, ns)).items)
    return total


async def test_namespace_deletion_empties_it_then_it_goes(client: ApiClient, runner: ActorRunner) -> None:
    await populate(client, "team")
    hold = await client.create({"apiVersion": "v1", "kind": "ConfigMap",
                                "metadata": {"name": "held", "namespace": "team",
                                             "finalizers": ["test.shoal.io/hold"]}})
    await start_manager(runner, ["namespace"])
    await client.delete("Namespace", "team")
    ns = await client.get("Namespace", "team")
    assert ns["status"]["phase"] == "Terminating"

    async def only_held_left() -> bool:
        return [meta(c)["name"] for c in (await client.list("ConfigMap", "team")).items] == ["held"] and \
            await count(client, "team") == 1

    await eventually(only_held_left)
    ns = await client.get("Namespace", "team")
    assert is_deleting(ns) and ns["spec"]["finalizers"] == ["kubernetes"]

    async def conditions_written() -> Obj | None:
        n = await client.get("Namespace", "team")
        c = condition(n, "NamespaceFinalizersRemaining")
        return n if c is not None and c["status"] == "True" else None

    ns = await eventually(conditions_written)
    assert "test.shoal.io/hold" in condition(ns, "NamespaceFinalizersRemaining")["message"]  # type: ignore[index]
    assert condition(ns, "NamespaceContentRemaining")["status"] == "True"  # type: ignore[index]
    try:
        await client.create({"apiVersion": "v1", "kind": "ConfigMap",
                             "metadata": {"name": "late", "namespace": "team"}})
        raise AssertionError("created an object in a terminating namespace")
    except Forbidden:
        pass

    held = await client.get("ConfigMap", "held", "team")
    meta(held)["finalizers"] = []
    await client.update(held)
    await eventually(lambda: namespace_gone(client, "team"))
    assert meta(hold)["name"] == "held"


async def test_all_namespace_controllers_together(client: ApiClient, runner: ActorRunner) -> None:
    """With the service-account controller and the collector running too, deletion still converges
    (the service-account controller must not fight it)."""
    await start_manager(runner, ["namespace", "serviceaccount", "gc", "endpoints"])
    await populate(client, "team2")

    async def has_account() -> bool:
        return bool((await client.list("ServiceAccount", "team2")).items)

    await eventually(has_account)
    await client.delete("Namespace", "team2")
    await eventually(lambda: namespace_gone(client, "team2"))
    assert await count(client, "team2") == 0
