"""The official ``kubernetes`` Python client against Shoal through the gateway: CRUD with every patch type,
list paging and selectors, ``kubernetes.watch.Watch``, typed errors as ``ApiException`` with a Status body,
and the scale and status subresources. The client is blocking: each call runs in a thread."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import pytest
from kubernetes import client, config, watch
from kubernetes.client import ApiException

from runtime.client import ApiClient
from tests.gateway.conftest import Gateway

T = TypeVar("T")


def api(gateway: Gateway) -> client.ApiClient:
    return config.new_client_from_config(str(gateway.kubeconfig))


async def call(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    return await asyncio.to_thread(fn, *args, **kwargs)


def configmap(name: str, labels: dict[str, str] | None = None, **data: str) -> client.V1ConfigMap:
    return client.V1ConfigMap(metadata=client.V1ObjectMeta(name=name, labels=labels), data=data)


async def test_crud_and_every_patch_type(gateway: Gateway) -> None:
    v1 = client.CoreV1Api(api(gateway))
    created = await call(v1.create_namespaced_config_map, "default", configmap("one", {"app": "a"}, mode="fast"))
    assert created.metadata.uid and created.metadata.resource_version
    got = await call(v1.read_namespaced_config_map, "one", "default")
    assert got.data == {"mode": "fast"} and got.metadata.labels == {"app": "a"}
    got.data["mode"] = "slow"
    replaced = await call(v1.replace_namespaced_config_map, "one", "default", got)
    assert replaced.data == {"mode": "slow"}
    stale = got  # still at the old resourceVersion: a compare-and-swap that must fail
    with pytest.raises(ApiException) as conflict:
        await call(v1.replace_namespaced_config_map, "one", "default", stale)
    assert conflict.value.status == 409 and json.loads(conflict.value.body)["reason"] == "Conflict"
    merged = await call(v1.patch_namespaced_config_map, "one", "default", {"data": {"extra": "1"}})
    assert merged.data == {"mode": "slow", "extra": "1"}
    json_patched = await call(v1.patch_namespaced_config_map, "one", "default",
                              [{"op": "remove", "path": "/data/extra"}, {"op": "add", "path": "/data/x", "value": "y"}])
    assert json_patched.data == {"mode": "slow", "x": "y"}
    await call(v1.delete_namespaced_config_map, "one", "default")
    with pytest.raises(ApiException) as missing:
        await call(v1.read_namespaced_config_map, "one", "default")
    body = json.loads(missing.value.body)
    assert missing.value.status == 404 and body["kind"] == "Status" and body["reason"] == "NotFound"
    with pytest.raises(ApiException) as exists:
        await call(v1.create_namespace, client.V1Namespace(metadata=client.V1ObjectMeta(name="default")))
    assert exists.value.status == 409 and json.loads(exists.value.body)["reason"] == "AlreadyExists"


async def test_list_selectors_and_paging(gateway: Gateway) -> None:
    v1 = client.CoreV1Api(api(gateway))
    for n in range(7):
        await call(v1.create_namespaced_config_map, "default",
                   configmap(f"cm-{n}", {"parity": "even" if n % 2 == 0 else "odd"}, n=str(n)))
    even = await call(v1.list_namespaced_config_map, "default", label_selector="parity=even")
    assert [c.metadata.name for c in even.items] == ["cm-0", "cm-2", "cm-4", "cm-6"]
    named = await call(v1.list_namespaced_config_map, "default", field_selector="metadata.name=cm-3")
    assert [c.metadata.name for c in named.items] == ["cm-3"]
    names: list[str] = []
    token = None
    pages = 0
    while True:
        page = await call(v1.list_namespaced_config_map, "default", limit=3, _continue=token)
        names += [c.metadata.name for c in page.items]
        pages += 1
        token = page.metadata._continue
        if not token:
            break
        assert page.metadata.remaining_item_count == 7 - len(names)
    assert names == [f"cm-{n}" for n in range(7)] and pages == 3
    everywhere = await call(v1.list_config_map_for_all_namespaces)
    assert {c.metadata.name for c in everywhere.items} >= set(names)
    await call(v1.delete_collection_namespaced_config_map, "default", label_selector="parity=odd")
    left = await call(v1.list_namespaced_config_map, "default")
    assert [c.metadata.name for c in left.items] == ["cm-0", "cm-2", "cm-4", "cm-6"]


async def test_watch_from_a_list(gateway: Gateway) -> None:
    v1 = client.CoreV1Api(api(gateway))
    listed = await call(v1.list_namespaced_config_map, "default")
    seen: list[tuple[str, str, dict[str, str] | None]] = []
    ready = threading.Event()

    def follow() -> None:
        w = watch.Watch()
        ready.set()
        for event in w.stream(v1.list_namespaced_config_map, "default",
                              resource_version=listed.metadata.resource_version, timeout_seconds=30):
            seen.append((event["type"], event["object"].metadata.name, event["object"].data))
            if event["type"] == "DELETED":
                w.stop()

    follower = asyncio.create_task(asyncio.to_thread(follow))
    await asyncio.to_thread(ready.wait)
    await call(v1.create_namespaced_config_map, "default", configmap("w", mode="a"))
    await call(v1.patch_namespaced_config_map, "w", "default", {"data": {"mode": "b"}})
    await call(v1.delete_namespaced_config_map, "w", "default")
    await asyncio.wait_for(follower, 30)
    assert seen == [("ADDED", "w", {"mode": "a"}), ("MODIFIED", "w", {"mode": "b"}), ("DELETED", "w", {"mode": "b"})]


async def test_scale_and_status_subresources(gateway: Gateway, api_client: ApiClient) -> None:
    apps = client.AppsV1Api(api(gateway))
    dep = client.V1Deployment(
        metadata=client.V1ObjectMeta(name="web"),
        spec=client.V1DeploymentSpec(
            replicas=1, selector=client.V1LabelSelector(match_labels={"app": "web"}),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels={"app": "web"}),
                spec=client.V1PodSpec(containers=[client.V1Container(name="web", image="busybox")]))))
    await call(apps.create_namespaced_deployment, "default", dep)
    scale = await call(apps.read_namespaced_deployment_scale, "web", "default")
    assert scale.spec.replicas == 1 and scale.status.selector == "app=web"
    scaled = await call(apps.patch_namespaced_deployment_scale, "web", "default", {"spec": {"replicas": 4}})
    assert scaled.spec.replicas == 4
    assert (await api_client.get("Deployment", "web", "default"))["spec"]["replicas"] == 4
    patched = await call(apps.patch_namespaced_deployment_status, "web", "default",
                         {"status": {"observedGeneration": 7, "replicas": 3}})
    assert patched.status.replicas == 3
    stored = await api_client.get("Deployment", "web", "default")
    assert stored["status"]["replicas"] == 3 and stored["spec"]["replicas"] == 4
    # a status written through the main resource is ignored, as in Kubernetes
    await call(apps.patch_namespaced_deployment, "web", "default", {"status": {"replicas": 9}})
    assert (await api_client.get("Deployment", "web", "default"))["status"]["replicas"] == 3


async def test_create_from_yaml(gateway: Gateway, api_client: ApiClient, tmp_path: Any) -> None:
    from kubernetes import utils

    from tests.gateway.test_kubectl import MANIFEST
    path = tmp_path / "app.yaml"
    path.write_text(MANIFEST)
    created = await call(utils.create_from_yaml, api(gateway), str(path))
    assert [o.kind for group in created for o in group] == ["Deployment", "Service", "ConfigMap"]
    assert (await api_client.get("Service", "web", "default"))["spec"]["ports"][0]["port"] == 80
