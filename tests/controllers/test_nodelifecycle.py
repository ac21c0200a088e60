"""The node lifecycle controller against a real API: a node that stops renewing its Lease turns
Ready=Unknown and gets the unreachable taints, its pods are evicted (and force-deleted, since no
kubelet confirms), and renewing again removes the taints."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from actors.controllers.nodelifecycle_plan import UNKNOWN_REASON
from protocol.errors import NotFound, ShoalError
from protocol.objects import Obj, condition, format_micro_time, format_time, is_deleting
from protocol.tolerations import UNREACHABLE
from runtime.client import ApiClient
from tests.conftest import ActorRunner, cancel_and_wait
from tests.controllers.conftest import eventually, start_manager

GRACE = 2.0






def ready_node(name: str) -> Obj:
    now = format_time(time.time())
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name}, "spec": {},
            "status": {"conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                                       "lastHeartbeatTime": now, "lastTransitionTime": now}],
                       "addresses": [{"type": "InternalIP", "address": "192.168.1.10"}]}}


class LeaseRenewer:
    """Stands in for a kubelet's lease loop; ``stop()``/``start()`` simulate it dying and coming back."""

    def __init__(self, client: ApiClient, node: str, every: float = 0.3) -> None:
        self.client, self.node, self.every = client, node, every
        self.task: asyncio.Task[None] | None = None

    async def _loop(self) -> None:
        while True:
            with contextlib.suppress(ShoalError):
                lease = await self.client.get("Lease", self.node, "kube-node-lease")
                lease["spec"]["renewTime"] = format_micro_time(time.time())
                await self.client.update(lease)
            await asyncio.sleep(self.every)

    def start(self) -> None:
        self.task = asyncio.create_task(self._loop())

    async def stop(self) -> None:
        if self.task is not None:
            await cancel_and_wait(self.task)
            self.task = None


@pytest.fixture
async def renewer(client: ApiClient) -> AsyncIterator[LeaseRenewer]:
    await client.create(ready_node("n1"))
    await client.create({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                         "metadata": {"name": "n1", "namespace": "kube-node-lease"},
                         "spec": {"holderIdentity": "n1", "leaseDurationSeconds": 40,
                                  "renewTime": format_micro_time(time.time())}})
    r = LeaseRenewer(client, "n1")
    r.start()
    try:
        yield r
    finally:
        await r.stop()


async def bound_pod(client: ApiClient, name: str, node: str, toleration_seconds: int | None) -> Obj:
    spec: Obj = {"containers": [{"name": "c", "image": "busybox"}], "terminationGracePeriodSeconds": 1}
    if toleration_seconds is not None:
        spec["tolerations"] = [{"key": UNREACHABLE, "operator": "Exists", "effect": "NoExecute",
                                "tolerationSeconds": toleration_seconds}]
    pod = await client.create({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default"},
                               "spec": spec})
    pod = await client.bind(name, "default", node)
    now = format_time(time.time())
    pod["status"] = {"phase": "Running", "podIP": "10.1.0.5", "hostIP": "192.168.1.10",
                     "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": now}]}
    return await client.update_status(pod)


def taint_keys(node: Obj) -> set[tuple[str, str]]:
    return {(t["key"], t["effect"]) for t in (node.get("spec") or {}).get("taints") or []}


async def test_lost_node_is_tainted_its_pods_evicted_and_recovery_untaints(
        client: ApiClient, runner: ActorRunner, renewer: LeaseRenewer) -> None:
    await bound_pod(client, "short", "n1", toleration_seconds=2)
    await bound_pod(client, "patient", "n1", toleration_seconds=None)  # the API's default: 300 s
    manager = await start_manager(runner, ["nodelifecycle"], node_monitor_grace_period=GRACE,
                                  pod_eviction_timeout=300, eviction_rate=50)
    controller: Any = manager.controllers[0]

    await asyncio.sleep(GRACE * 1.5)  # renewing: nothing happens
    node = await client.get("Node", "n1")
    assert condition(node, "Ready")["status"] == "True"  # type: ignore[index]
    assert taint_keys(node) == set()

    await renewer.stop()
    lost_at = time.monotonic()

    async def unreachable() -> Obj | None:
        n = await client.get("Node", "n1")
        return n if taint_keys(n) == {(UNREACHABLE, "NoExecute"), (UNREACHABLE, "NoSchedule")} else None

    node = await eventually(unreachable, timeout=GRACE + 5)
    # the last renewal the controller saw may precede stop() by up to one renewal interval
    assert time.monotonic() - lost_at >= GRACE - renewer.every - 0.2
    ready = condition(node, "Ready")
    assert ready is not None and ready["status"] == "Unknown" and ready["reason"] == UNKNOWN_REASON

    async def gone(name: str) -> bool:
        try:
            await client.get("Pod", name, "default")
        except NotFound:
            return True
        return False

    # tolerationSeconds 2, then terminationGracePeriodSeconds 1 with no kubelet: force-deleted
    await eventually(lambda: gone("short"), timeout=10)
    assert controller.evictions >= 1 and controller.force_deletions >= 1
    patient = await client.get("Pod", "patient", "default")
    assert not is_deleting(patient)
    assert condition(patient, "Ready")["status"] == "False"  # type: ignore[index]  # marked not ready

    events = (await client.list("Event", "default")).items
    reasons = {(e["involvedObject"]["name"], e["reason"]) for e in events}
    assert ("short", "TaintManagerEviction") in reasons
    assert ("n1", "NodeNotReady") in reasons

    renewer.start()

    async def untainted() -> bool:
        return taint_keys(await client.get("Node", "n1")) == set()

    await eventually(untainted, timeout=5)
    assert not is_deleting(await client.get("Pod", "patient", "default"))


async def test_not_ready_node_gets_not_ready_taints_and_default_timeout_applies(
        client: ApiClient, runner: ActorRunner, renewer: LeaseRenewer) -> None:
    # a pod with no toleration for not-ready at all: evicted after pod_eviction_timeout (1 s here)
    pod = await client.create({"apiVersion": "v1", "kind": "Pod",
                               "metadata": {"name": "bare", "namespace": "default"},
                               "spec": {"containers": [{"name": "c", "image": "busybox"}],
                                        "terminationGracePeriodSeconds": 1}})
    pod["spec"]["tolerations"] = []  # drop the API's defaults
    await client.update(pod)
    await client.bind("bare", "default", "n1")
    await start_manager(runner, ["nodelifecycle"], node_monitor_grace_period=GRACE, pod_eviction_timeout=1,
                        eviction_rate=50)
    node = await client.get("Node", "n1")
    node["status"]["conditions"][0].update(status="False", reason="KubeletNotReady",
                                           lastHeartbeatTime=format_time(time.time() + 1))
    await client.update_status(node)

    async def not_ready_tainted() -> bool:
        return taint_keys(await client.get("Node", "n1")) == {("node.kubernetes.io/not-ready", "NoExecute"),
                                                              ("node.kubernetes.io/not-ready", "NoSchedule")}

    await eventually(not_ready_tainted, timeout=5)

    async def deleting() -> bool:
        return is_deleting(await client.get("Pod", "bare", "default"))

    await eventually(deleting, timeout=5)
    # the node's kubelet is alive (lease renewed): no force deletion, it confirms itself
    await asyncio.sleep(2)
    assert is_deleting(await client.get("Pod", "bare", "default"))
