"""The endpoints controller against a real API: Endpoints follow the pods' addresses, readiness and
deletion; user-managed Endpoints (services without selector) are left alone."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable
from typing import Any

from protocol.errors import NotFound
from protocol.objects import Obj, format_time
from runtime.client import ApiClient
from tests.conftest import ActorRunner
from tests.controllers.conftest import eventually, start_manager


async def make_pod(client: ApiClient, name: str, labels: dict[str, str], ports: list[Obj] | None = None) -> Obj:
    return await client.create({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default", "labels": labels},
        "spec": {"containers": [{"name": "c", "image": "nginx", "ports": ports or [
            {"name": "http", "containerPort": 8080}]}]}})


async def set_status(client: ApiClient, name: str, ip: str, ready: bool) -> None:
    """What a kubelet would report."""
    pod = await client.get("Pod", name, "default")
    pod["status"] = {"phase": "Running", "podIP": ip, "hostIP": "192.168.1.10",
                     "conditions": [{"type": "Ready", "status": "True" if ready else "False",
                                     "lastTransitionTime": format_time(time.time())}]}
    await client.update_status(pod)


async def addresses(client: ApiClient, name: str) -> tuple[list[tuple[str, int]], list[tuple[str, int]]] | None:
    try:
        ep = await client.get("Endpoints", name, "default")
    except NotFound:
        return None
    ready, not_ready = [], []
    for subset in ep.get("subsets") or []:
        for port in subset["ports"]:
            ready += [(a["ip"], port["port"]) for a in subset.get("addresses") or []]
            not_ready += [(a["ip"], port["port"]) for a in subset.get("notReadyAddresses") or []]
    return sorted(ready), sorted(not_ready)


async def test_endpoints_follow_pods(client: ApiClient, runner: ActorRunner) -> None:
    await start_manager(runner, ["endpoints"])
    await client.create({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "default"},
                         "spec": {"selector": {"app": "web"},
                                  "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}})
    await eventually(lambda: _equals(addresses(client, "web"), ([], [])))

    await make_pod(client, "a", {"app": "web"})
    await make_pod(client, "b", {"app": "web"})
    await make_pod(client, "other", {"app": "db"})
    await set_status(client, "a", "10.1.0.1", ready=True)
    await set_status(client, "b", "10.1.0.2", ready=False)
    await set_status(client, "other", "10.1.0.9", ready=True)
    await eventually(lambda: _equals(addresses(client, "web"), ([("10.1.0.1", 8080)], [("10.1.0.2", 8080)])))

    ep = await client.get("Endpoints", "web", "default")
    address = ep["subsets"][0]["addresses"][0]
    pod_a = await client.get("Pod", "a", "default")
    assert address["targetRef"] == {"kind": "Pod", "name": "a", "namespace": "default",
                                    "uid": pod_a["metadata"]["uid"]}
    assert ep["subsets"][0]["ports"] == [{"name": "http", "port": 8080, "protocol": "TCP"}]

    await set_status(client, "b", "10.1.0.2", ready=True)
    await eventually(lambda: _equals(addresses(client, "web"), ([("10.1.0.1", 8080), ("10.1.0.2", 8080)], [])))

    # a pod with a hostPort on the loopback pod network is reached on its node's address
    await make_pod(client, "h", {"app": "web"}, ports=[{"name": "http", "containerPort": 8080, "hostPort": 30080}])
    await set_status(client, "h", "127.88.0.3", ready=True)
    await eventually(lambda: _equals(addresses(client, "web"), (
        [("10.1.0.1", 8080), ("10.1.0.2", 8080), ("192.168.1.10", 30080)], [])))

    await client.delete("Pod", "a", "default")
    await client.delete("Pod", "h", "default")
    await eventually(lambda: _equals(addresses(client, "web"), ([("10.1.0.2", 8080)], [])))

    # a label change takes a pod out
    b = await client.get("Pod", "b", "default")
    b["metadata"]["labels"] = {"app": "old"}
    await client.update(b)
    await eventually(lambda: _equals(addresses(client, "web"), ([], [])))

    # someone overwrites our Endpoints: put back
    await make_pod(client, "c", {"app": "web"})
    await set_status(client, "c", "10.1.0.4", ready=True)
    await eventually(lambda: _equals(addresses(client, "web"), ([("10.1.0.4", 8080)], [])))
    ep = await client.get("Endpoints", "web", "default")
    ep["subsets"] = []
    await client.update(ep)
    await eventually(lambda: _equals(addresses(client, "web"), ([("10.1.0.4", 8080)], [])))

    await client.delete("Service", "web", "default")
    await eventually(lambda: _equals(addresses(client, "web"), None))


async def test_services_without_selector_are_left_alone(client: ApiClient, runner: ActorRunner) -> None:
    await client.create({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "ext", "namespace": "default"},
                         "spec": {"ports": [{"port": 5432}]}})
    manual = {"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "ext", "namespace": "default"},
              "subsets": [{"addresses": [{"ip": "172.16.0.1"}], "ports": [{"port": 5432}]}]}
    await client.create(manual)
    await start_manager(runner, ["endpoints"])
    await make_pod(client, "x", {"app": "x"})
    await set_status(client, "x", "10.1.0.8", ready=True)
    await asyncio.sleep(0.5)
    ep = await client.get("Endpoints", "ext", "default")
    assert ep["subsets"] == [{"addresses": [{"ip": "172.16.0.1"}], "ports": [{"port": 5432}]}]


async def _equals(value: Awaitable[Any], expected: Any) -> bool:
    got = await value
    return bool(got == expected)
