"""The garbage collector against a real API: background, foreground and orphan deletion, by uid."""

from __future__ import annotations

import asyncio

from protocol.errors import NotFound
from protocol.objects import Obj, is_deleting, meta, owner_reference
from runtime.client import ApiClient
from tests.conftest import ActorRunner
from tests.controllers.conftest import eventually, start_manager


async def configmap(client: ApiClient, name: str) -> Obj:
    return await client.create({"apiVersion": "v1", "kind": "ConfigMap",
                                "metadata": {"name": name, "namespace": "default"}, "data": {}})


async def dependent(client: ApiClient, name: str, *owners: Obj, block: bool = True,
                    finalizers: list[str] | None = None, kind: str = "Secret") -> Obj:
    m: Obj = {"name": name, "namespace": "default",
              "ownerReferences": [owner_reference(o, controller=False, block=block) for o in owners]}
    if finalizers:
        m["finalizers"] = finalizers
    obj: Obj = {"apiVersion": "v1", "kind": kind, "metadata": m}
    if kind == "Pod":
        obj["spec"] = {"containers": [{"name": "c", "image": "busybox"}]}
    return await client.create(obj)


async def get(client: ApiClient, kind: str, name: str) -> Obj | None:
    try:
        return await client.get(kind, name, "default")
    except NotFound:
        return None


async def absent(client: ApiClient, kind: str, name: str) -> bool:
    return await get(client, kind, name) is None


async def test_background_deletion_by_uid(client: ApiClient, runner: ActorRunner) -> None:
    await start_manager(runner, ["gc"])
    owner = await configmap(client, "owner")
    other = await configmap(client, "other")
    await dependent(client, "d1", owner)
    await dependent(client, "d2", owner, kind="Pod")
    await dependent(client, "shared", owner, other)
    await asyncio.sleep(0.5)
    assert await get(client, "Secret", "d1") is not None  # owners alive: nothing collected

    await client.delete("ConfigMap", "owner", "default")
    await eventually(lambda: absent(client, "Secret", "d1"))
    await eventually(lambda: absent(client, "Pod", "d2"))

    async def dangling_removed() -> bool:
        shared = await get(client, "Secret", "shared")
        assert shared is not None  # still has a live owner
        return [r["uid"] for r in meta(shared)["ownerReferences"]] == [meta(other)["uid"]]

    await eventually(dangling_removed)

    # a recreated owner of the same name is another owner: references to the old uid dangle
    recreated = await configmap(client, "owner")
    assert meta(recreated)["uid"] != meta(owner)["uid"]
    await asyncio.sleep(0.2)
    stale = await dependent(client, "stale", owner)  # names "owner", with the old uid
    fresh = await dependent(client, "fresh", recreated)
    assert meta(stale)["ownerReferences"][0]["name"] == "owner"
    await eventually(lambda: absent(client, "Secret", "stale"))
    await asyncio.sleep(0.3)
    assert await get(client, "Secret", "fresh") is not None
    assert meta(fresh)["ownerReferences"][0]["uid"] == meta(recreated)["uid"]


async def test_foreground_deletion_waits_for_blocking_dependents(client: ApiClient, runner: ActorRunner) -> None:
    await start_manager(runner, ["gc"])
    owner = await configmap(client, "fg")
    await dependent(client, "held", owner, block=True, finalizers=["test.shoal.io/hold"])
    await dependent(client, "loose", owner, block=False)
    await dependent(client, "pod", owner, block=True, kind="Pod")

    await client.delete("ConfigMap", "fg", "default", propagation="Foreground")
    await eventually(lambda: absent(client, "Secret", "loose"))
    await eventually(lambda: absent(client, "Pod", "pod"))

    async def held_deleting() -> Obj | None:
        held = await get(client, "Secret", "held")
        return held if held is not None and is_deleting(held) else None

    held = await eventually(held_deleting)
    await asyncio.sleep(0.5)
    waiting = await get(client, "ConfigMap", "fg")
    assert waiting is not None and is_deleting(waiting)
    assert meta(waiting)["finalizers"] == ["foregroundDeletion"]

    held = await client.get("Secret", "held", "default")
    meta(held)["finalizers"] = [f for f in meta(held)["finalizers"] if f != "test.shoal.io/hold"]
    await client.update(held)
    await eventually(lambda: absent(client, "Secret", "held"))
    await eventually(lambda: absent(client, "ConfigMap", "fg"))


async def test_orphan_deletion_keeps_dependents(client: ApiClient, runner: ActorRunner) -> None:
    await start_manager(runner, ["gc"])
    owner = await configmap(client, "parent")
    other = await configmap(client, "keeper")
    await dependent(client, "child1", owner)
    await dependent(client, "child2", owner, other)

    await client.delete("ConfigMap", "parent", "default", propagation="Orphan")
    await eventually(lambda: absent(client, "ConfigMap", "parent"))
    child1 = await client.get("Secret", "child1", "default")
    child2 = await client.get("Secret", "child2", "default")
    assert not meta(child1).get("ownerReferences")
    assert [r["uid"] for r in meta(child2)["ownerReferences"]] == [meta(other)["uid"]]
    await asyncio.sleep(0.5)
    assert await get(client, "Secret", "child1") is not None
