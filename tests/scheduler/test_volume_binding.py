"""The scheduler and PersistentVolumeClaims: the pure claim check and VolumeBinding filter (table tests), then
against a real API actor with the PV controller and the cloud volume controller: a missing claim keeps a pod
Pending with an event naming it, a pod whose claim is bound to node A goes only to A, and a
WaitForFirstConsumer claim gets the chosen node and is provisioned there before the pod is bound."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

from actors.cloud.local import LocalProvider
from actors.cloud.manager import CloudControllerManager
from actors.scheduler.decide import Scheduled, Unschedulable, decide
from actors.scheduler.filters import VOLUME_NODE_CONFLICT, run_filters, volume_binding
from actors.scheduler.model import NodeInfo, pod_info
from actors.scheduler.volumes import RWOP_CONFLICT, ClaimsBlocked, ClaimsReady, check_claims
from protocol.kinds.storage import node_affinity_to
from protocol.objects import Obj
from runtime.client import ApiClient
from tests.conftest import ActorRunner
from tests.controllers.conftest import start_manager
from tests.scheduler.helpers import make_node, make_pod, wait_until
from tests.scheduler.test_scheduler_integration import start_scheduler


def claim_volume(name: str) -> Obj:
    return {"name": name, "persistentVolumeClaim": {"claimName": name}}


def pod_with(*claims: str) -> Obj:
    return make_pod("p", volumes=[claim_volume(c) for c in claims] + [{"name": "tmp", "emptyDir": {}}])


def pvc(name: str, volume: str | None = None, klass: str | None = None, deleting: bool = False) -> Obj:
    meta: Obj = {"name": name, "namespace": "default"}
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    spec: Obj = {}
    if volume:
        spec["volumeName"] = volume
    if klass is not None:
        spec["storageClassName"] = klass
    return {"kind": "PersistentVolumeClaim", "metadata": meta, "spec": spec}


PVS = {"on-a": {"metadata": {"name": "on-a"}, "spec": {"nodeAffinity": node_affinity_to("a")}},
       "anywhere": {"metadata": {"name": "anywhere"}, "spec": {}}}
CLASSES = {"wffc": {"metadata": {"name": "wffc"}, "volumeBindingMode": "WaitForFirstConsumer"},
           "now": {"metadata": {"name": "now"}, "volumeBindingMode": "Immediate"}}


def check(pod: Obj, claims: list[Obj]) -> ClaimsReady | ClaimsBlocked:
    by_key = {f"default/{c['metadata']['name']}": c for c in claims}
    return check_claims(pod_info(pod), "default", by_key.get, PVS.get, CLASSES.get)


def test_pods_without_claims_have_none() -> None:
    assert pod_info(make_pod("p", volumes=[{"name": "t", "emptyDir": {}}])).claims == ()
    assert pod_info(pod_with("a", "b", "a")).claims == ("a", "b")


@pytest.mark.parametrize(("claims", "message"), [
    ([], 'persistentvolumeclaim "data" not found'),
    ([pvc("data", deleting=True)], 'persistentvolumeclaim "data" is being deleted'),
    ([pvc("data", "gone")], 'persistentvolume "gone" not found'),
    ([pvc("data", klass="now")], "pod has unbound immediate PersistentVolumeClaims"),
    ([pvc("data")], "pod has unbound immediate PersistentVolumeClaims"),
])
def test_claims_that_block_scheduling(claims: list[Obj], message: str) -> None:
    assert check(pod_with("data"), claims) == ClaimsBlocked(message)


def test_bound_claims_bring_node_affinity_and_wffc_claims_wait_for_a_node() -> None:
    result = check(pod_with("pinned", "free", "later"),
                   [pvc("pinned", "on-a"), pvc("free", "anywhere"), pvc("later", klass="wffc")])
    assert isinstance(result, ClaimsReady) and result.to_select == ("later",)
    assert len(result.info.volume_terms) == 1
    a, b = NodeInfo("a", labels={"kubernetes.io/hostname": "a"}), NodeInfo("b", labels={"kubernetes.io/hostname": "b"})
    assert volume_binding(result.info, a) == () and volume_binding(result.info, b) == (VOLUME_NODE_CONFLICT,)
    nodes = [NodeInfo(n, labels={"kubernetes.io/hostname": n}, alloc_cpu=4000, alloc_memory=2**33)
             for n in ("b", "c", "a", "d")]
    for start in range(4):
        decision = decide(result.info, nodes, start=start, rng=random.Random(start))
        assert isinstance(decision, Scheduled) and decision.node == "a"
    nowhere = decide(result.info, nodes[:2])
    assert isinstance(nowhere, Unschedulable) and nowhere.reasons == {VOLUME_NODE_CONFLICT: 2}
    assert run_filters(result.info, nodes[0]) == (VOLUME_NODE_CONFLICT,)


# -- against a real API actor ---------------------------------------------------------------------------
async def events_for(client: ApiClient, name: str) -> list[Obj]:
    return [e for e in (await client.list("events", "default")).items
            if (e.get("involvedObject") or {}).get("name") == name]


def claim(name: str, **spec: Any) -> Obj:
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": name},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}, **spec}}


async def node_of(client: ApiClient, name: str) -> str | None:
    return (await client.get("Pod", name, "default"))["spec"].get("nodeName")


async def test_a_missing_claim_keeps_the_pod_pending_until_it_exists(
        client: ApiClient, runner: ActorRunner, tmp_path: Path) -> None:
    await client.create(make_node("a"))
    await start_scheduler(runner)
    await start_manager(runner, ["persistentvolume"])
    await client.create(make_pod("p", volumes=[claim_volume("data")]))

    async def failed() -> list[Obj]:
        return [e for e in await events_for(client, "p") if e.get("reason") == "FailedScheduling"]

    (event,) = await wait_until(failed, 15, "a FailedScheduling event")
    assert event["message"] == '0/1 nodes are available: persistentvolumeclaim "data" not found.'
    async def not_scheduled() -> bool:
        pod = await client.get("Pod", "p", "default")
        return pod["spec"].get("nodeName") is None and any(
            c["type"] == "PodScheduled" and c["status"] == "False" for c in pod["status"].get("conditions") or [])

    await wait_until(not_scheduled, 15, "PodScheduled=False")
    # the claim appears, bound to a volume on node a: the pod goes there
    await client.create({"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": "pv-a"},
                         "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
                                  "hostPath": {"path": str(tmp_path)}, "nodeAffinity": node_affinity_to("a")}})
    await client.create(claim("data", storageClassName=""))
    assert await wait_until(lambda: node_of(client, "p"), 20, "the pod bound") == "a"


async def test_a_pod_goes_where_its_volume_is(client: ApiClient, runner: ActorRunner, tmp_path: Path) -> None:
    for name in ("a", "b", "c"):
        await client.create(make_node(name))
    await client.create({"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": "pv-b"},
                         "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
                                  "hostPath": {"path": str(tmp_path)}, "nodeAffinity": node_affinity_to("b")}})
    await client.create(claim("data", storageClassName=""))
    await start_manager(runner, ["persistentvolume"])

    async def bound() -> bool:
        return bool((await client.get("PersistentVolumeClaim", "data", "default"))["spec"].get("volumeName"))

    await wait_until(bound, 15, "the claim bound")
    await start_scheduler(runner)
    for i in range(6):
        await client.create(make_pod(f"p{i}", volumes=[claim_volume("data")]))
    for i in range(6):
        assert await wait_until(lambda i=i: node_of(client, f"p{i}"), 20, "bound") == "b"


async def test_wait_for_first_consumer_is_provisioned_on_the_chosen_node(
        client: ApiClient, runner: ActorRunner, tmp_path: Path) -> None:
    for name in ("a", "b"):
        await client.create(make_node(name))
    await start_manager(runner, ["persistentvolume"])
    await runner.start(CloudControllerManager(LocalProvider(tmp_path, volume_dir=str(tmp_path / "lp")),
                                              leader_elect=False), ready=lambda: True)
    await wait_until(lambda: _exists(client, "StorageClass", "local-path"), 15, "the default class")
    await client.create(claim("data"))
    await start_scheduler(runner)
    await client.create(make_pod("p", volumes=[claim_volume("data")]))
    chosen = await wait_until(lambda: node_of(client, "p"), 30, "the pod bound")
    bound = await client.get("PersistentVolumeClaim", "data", "default")
    assert bound["metadata"]["annotations"]["volume.kubernetes.io/selected-node"] == chosen
    assert bound["status"]["phase"] == "Bound", "the pod is bound only once its claim is"
    pv = await client.get("PersistentVolume", bound["spec"]["volumeName"])
    assert pv["spec"]["nodeAffinity"] == node_affinity_to(chosen)
    # a second pod using the claim follows the volume
    await client.create(make_pod("q", volumes=[claim_volume("data")]))
    assert await wait_until(lambda: node_of(client, "q"), 20, "the second pod bound") == chosen


async def _exists(client: ApiClient, kind: str, name: str) -> bool:
    try:
        await client.get(kind, name)
        return True
    except Exception:
        return False


def test_a_read_write_once_pod_claim_in_use_blocks_another_pod() -> None:
    claim = pvc("data", "anywhere")
    claim["spec"]["accessModes"] = ["ReadWriteOncePod"]
    by_key = {"default/data": claim}
    asked: list[str] = []

    def used(key: str) -> bool:
        asked.append(key)
        return True

    blocked = check_claims(pod_info(pod_with("data")), "default", by_key.get, PVS.get, CLASSES.get, used)
    assert blocked == ClaimsBlocked(RWOP_CONFLICT) and asked == ["default/data"]
    free = check_claims(pod_info(pod_with("data")), "default", by_key.get, PVS.get, CLASSES.get, lambda k: False)
    assert isinstance(free, ClaimsReady)
    claim["spec"]["accessModes"] = ["ReadWriteOnce"]
    asked.clear()
    assert isinstance(check_claims(pod_info(pod_with("data")), "default", by_key.get, PVS.get, CLASSES.get, used),
                      ClaimsReady) and asked == [], "other modes never ask"
