"""CRUD round trips, optimistic concurrency, finalizers and admission against a real API actor."""

from __future__ import annotations

import asyncio

import pytest

from protocol.errors import AlreadyExists, BadRequest, Conflict, Forbidden, Invalid, NotFound
from runtime.client import ApiClient


def pod(name: str, **labels: str) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": labels},
            "spec": {"containers": [{"name": "c", "image": "localhost/shoal/busybox"}]}}


async def test_create_defaults_and_get(client: ApiClient) -> None:
    created = await client.create(pod("web.1", app="web"))
    m = created["metadata"]
    assert m["namespace"] == "default" and m["uid"] and m["creationTimestamp"] and m["generation"] == 1
    assert int(m["resourceVersion"]) > 0
    assert created["spec"]["restartPolicy"] == "Always"
    assert created["status"]["phase"] == "Pending"
    got = await client.get("pods", "web.1")
    assert got == created
    with pytest.raises(AlreadyExists):
        await client.create(pod("web.1"))
    with pytest.raises(NotFound):
        await client.get("pods", "missing")


async def test_update_conflict_on_stale_resource_version(client: ApiClient) -> None:
    created = await client.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg"},
                                   "data": {"a": "1"}})
    first = dict(created, data={"a": "2"})
    updated = await client.update(first)
    assert int(updated["metadata"]["resourceVersion"]) > int(created["metadata"]["resourceVersion"])
    stale = dict(created, data={"a": "3"})
    with pytest.raises(Conflict):
        await client.update(stale)
    assert (await client.get("cm", "cfg"))["data"] == {"a": "2"}


async def test_generation_bumps_on_spec_change_only_and_status_is_separate(client: ApiClient) -> None:
    dep = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
           "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                    "template": {"metadata": {"labels": {"app": "web"}},
                                 "spec": {"containers": [{"name": "c", "image": "img"}]}}}}
    created = await client.create(dep)
    labelled = dict(created)
    labelled["metadata"] = dict(created["metadata"], labels={"team": "a"})
    after_labels = await client.update(labelled)
    assert after_labels["metadata"]["generation"] == 1
    after_labels["spec"]["replicas"] = 3
    after_labels["status"] = {"replicas": 99}
    scaled = await client.update(after_labels)
    assert scaled["metadata"]["generation"] == 2
    assert scaled["status"] == {}, "update must not write status"
    scaled["status"] = {"replicas": 3}
    with_status = await client.update_status(scaled)
    assert with_status["status"] == {"replicas": 3} and with_status["metadata"]["generation"] == 2


async def test_merge_patch(client: ApiClient) -> None:
    await client.create(pod("p", app="a", tier="x"))
    patched = await client.patch("pods", "p", {"metadata": {"labels": {"tier": None, "new": "y"}}})
    assert patched["metadata"]["labels"] == {"app": "a", "new": "y"}
    status = await client.patch("pods", "p", {"status": {"phase": "Running"}}, status=True)
    assert status["status"]["phase"] == "Running"
    with pytest.raises(Invalid):
        await client.patch("pods", "p", {"spec": {"containers": []}})


async def test_list_with_label_selector_and_namespaces(client: ApiClient) -> None:
    await client.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "other"}})
    await client.create(pod("a", app="web", env="prod"))
    await client.create(pod("b", app="web", env="dev"))
    other = pod("c", app="web")
    other["metadata"]["namespace"] = "other"
    await client.create(other)
    names = lambda lst: sorted(p["metadata"]["name"] for p in lst.items)  # noqa: E731
    assert names(await client.list("pods", "default")) == ["a", "b"]
    assert names(await client.list("pods")) == ["a", "b", "c"]
    assert names(await client.list("pods", label_selector="app=web,env in (prod)")) == ["a"]
    assert names(await client.list("pods", label_selector="env!=prod")) == ["b", "c"]
    assert names(await client.list("pods", label_selector="!env")) == ["c"]
    listing = await client.list("pods")
    assert listing.resource_version >= max(int(p["metadata"]["resourceVersion"]) for p in listing.items)


async def test_admission_requires_namespace(client: ApiClient) -> None:
    bad = pod("x")
    bad["metadata"]["namespace"] = "nope"
    with pytest.raises(NotFound, match="shoal create namespace nope"):
        await client.create(bad)
    assert {n["metadata"]["name"] for n in (await client.list("ns")).items} >= {"default", "kube-system"}
    with pytest.raises(Forbidden):
        await client.delete("ns", "default")


async def test_delete_with_finalizers_and_preconditions(client: ApiClient) -> None:
    obj = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "f", "finalizers": ["x/y"]}}
    created = await client.create(obj)
    with pytest.raises(Conflict):
        await client.delete("cm", "f", resource_version=int(created["metadata"]["resourceVersion"]) - 1)
    marked = await client.delete("cm", "f")
    assert marked["metadata"]["deletionTimestamp"]
    still = await client.get("cm", "f")
    still["metadata"]["finalizers"] = []
    await client.update(still)
    with pytest.raises(NotFound):
        await client.get("cm", "f")
    # the name can be reused after deletion
    await client.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "f"}})


async def test_bound_pod_deletion_is_graceful_and_bind_is_exclusive(client: ApiClient) -> None:
    await client.create(pod("g"))
    bound = await client.bind("g", "default", "node-1")
    assert bound["spec"]["nodeName"] == "node-1"
    with pytest.raises(Conflict):
        await client.bind("g", "default", "node-2")
    marked = await client.delete("pods", "g")
    assert marked["metadata"]["deletionTimestamp"] and marked["metadata"]["deletionGracePeriodSeconds"] == 30
    await client.get("pods", "g")  # still there: its kubelet must confirm
    await client.delete("pods", "g", grace_period=0)
    with pytest.raises(NotFound):
        await client.get("pods", "g")


async def test_generate_name_and_concurrent_creates(client: ApiClient) -> None:
    objs = [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"generateName": "gen-"}} for _ in range(20)]
    created = await asyncio.gather(*(client.create(o) for o in objs))
    names = {c["metadata"]["name"] for c in created}
    assert len(names) == 20 and all(n.startswith("gen-") for n in names)


async def test_invalid_objects_get_field_paths(client: ApiClient) -> None:
    bad = pod("UPPER")
    bad["spec"]["containers"][0]["image"] = 5
    bad["spec"]["containers"].append({"name": "c"})
    with pytest.raises(Invalid) as info:
        await client.create(bad)
    fields = {c["field"] for c in info.value.causes}
    assert {"metadata.name", "spec.containers[0].image", "spec.containers[1].image",
            "spec.containers[1].name"} <= fields
    with pytest.raises(BadRequest, match="unknown kind"):
        await client.request("shoal.api.create.pods.default", {"object": {"kind": "Gizmo", "metadata": {}}})
