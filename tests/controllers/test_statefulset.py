"""The StatefulSet controller end to end: a real nats-server, API, scheduler, controller manager and hollow
kubelets (the real kubelet on the fake runtime). Pods are bound by the scheduler, run by the kubelets."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from actors.cloud.local import LocalProvider
from actors.cloud.manager import CloudControllerManager
from actors.controllers.daemonset_plan import HASH_LABEL
from actors.controllers.statefulset import CLAIMS_SUPPORTED
from actors.controllers.statefulset_plan import POD_INDEX_LABEL, POD_NAME_LABEL
from agents.hollow.nodes import HollowNodes
from protocol.errors import NotFound
from protocol.objects import Obj, is_deleting, meta, name_of, pod_is_ready
from runtime.client import ApiClient
from runtime.informer import Informer
from runtime.nats_server import NatsServer
from tests.cli.conftest import ShoalCli
from tests.conftest import ActorRunner, cancel_and_wait
from tests.controllers.conftest import StartControllers, eventually
from tests.controllers.test_daemonset import start_nodes
from tests.scheduler.test_scheduler_integration import start_scheduler

NS = "default"


def statefulset(name: str, replicas: int, *, policy: str = "OrderedReady", image: str = "db:1",
                never_ready: bool = False, claims: bool = False) -> Obj:
    container: Obj = {"name": "db", "image": image}
    if never_ready:  # the fake runtime's exec fails: the readiness probe never passes
        container["env"] = [{"name": "SHOAL_FAKE_EXEC_EXIT_CODE", "value": "1"}]
        container["readinessProbe"] = {"exec": {"command": ["true"]}, "periodSeconds": 1}
    spec: Obj = {"replicas": replicas, "serviceName": name, "podManagementPolicy": policy,
                 "selector": {"matchLabels": {"sts": name}},
                 "template": {"metadata": {"labels": {"sts": name}}, "spec": {"containers": [container]}}}
    if claims:
        spec["volumeClaimTemplates"] = [{"metadata": {"name": "data"}, "spec": {
            "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}]
    return {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": name, "namespace": NS},
            "spec": spec}


@pytest.fixture
async def cluster(runner: ActorRunner, client: ApiClient, start_controllers: StartControllers
                  ) -> AsyncIterator[HollowNodes]:
    """Two hollow nodes, a scheduler and the StatefulSet controller."""
    hollow, _ = await start_nodes(runner, client, 2)
    await start_scheduler(runner)
    await start_controllers("statefulset")
    yield hollow


class PodLog:
    """Every pod change, in order, with what the cache held at that moment."""

    def __init__(self, client: ApiClient) -> None:
        self.informer = Informer(client, "Pod")
        self.created: list[tuple[str, dict[str, bool]]] = []
        """(pod, readiness of the other pods) at each pod's creation."""
        self.deleting: list[str] = []
        self.informer.add_handler(self._on)

    def _on(self, event: str, old: Obj | None, new: Obj | None) -> None:
        if event == "ADDED" and new is not None:
            self.created.append((name_of(new), {name_of(p): pod_is_ready(p) for p in self.informer.items()
                                                if name_of(p) != name_of(new)}))
        elif new is not None and is_deleting(new) and (old is None or not is_deleting(old)):
            self.deleting.append(name_of(new))
        elif event == "DELETED" and old is not None and not is_deleting(old):
            self.deleting.append(name_of(old))


@pytest.fixture
async def pod_log(client: ApiClient) -> AsyncIterator[PodLog]:
    log = PodLog(client)
    task = asyncio.create_task(log.informer.run())
    await log.informer.synced.wait()
    try:
        yield log
    finally:
        await cancel_and_wait(task)


async def settled(client: ApiClient, name: str, replicas: int) -> dict[str, Obj] | None:
    """The set's pods by name once exactly ``web-0..replicas-1`` run Ready, updated, and the status says so."""
    sts = await client.get("StatefulSet", name, NS)
    status = sts.get("status") or {}
    pods = {name_of(p): p for p in (await client.list("Pod", NS)).items
            if p["metadata"]["labels"].get("sts") == name}
    done = (set(pods) == {f"{name}-{i}" for i in range(replicas)} and all(pod_is_ready(p) for p in pods.values())
            and not any(is_deleting(p) for p in pods.values())
            and status.get("replicas") == replicas and status.get("readyReplicas") == replicas
            and status.get("availableReplicas") == replicas and status.get("updatedReplicas") == replicas
            and status.get("currentReplicas") == replicas
            and status.get("currentRevision") == status.get("updateRevision")
            and status.get("observedGeneration") == meta(sts).get("generation"))
    return pods if done else None


async def test_ordered_ready_creates_in_order_and_scales_down_in_reverse(
        client: ApiClient, cluster: HollowNodes, pod_log: PodLog) -> None:
    await client.create(statefulset("web", 3))
    pods = await eventually(lambda: settled(client, "web", 3), timeout=30)
    assert [n for n, _ in pod_log.created] == ["web-0", "web-1", "web-2"]
    for index, (_, others) in enumerate(pod_log.created):
        assert others == {f"web-{i}": True for i in range(index)}  # every lower ordinal was Ready first
    web1 = pods["web-1"]
    assert web1["spec"]["hostname"] == "web-1" and web1["spec"]["subdomain"] == "web"
    labels = web1["metadata"]["labels"]
    assert labels[POD_NAME_LABEL] == "web-1" and labels[POD_INDEX_LABEL] == "1"
    sts = await client.get("StatefulSet", "web", NS)
    assert labels[HASH_LABEL] == sts["status"]["updateRevision"]
    revision = await client.get("ControllerRevision", labels[HASH_LABEL], NS)
    assert revision["revision"] == 1

    # a deleted pod comes back with the same name
    uid = meta(pods["web-1"])["uid"]
    await client.delete("Pod", "web-1", NS)
    again = await eventually(lambda: settled(client, "web", 3), timeout=30)
    assert meta(again["web-1"])["uid"] != uid

    await client.patch("StatefulSet", "web", {"spec": {"replicas": 0}}, NS)
    async def gone() -> bool:
        return await settled(client, "web", 0) is not None

    await eventually(gone, timeout=30)
    assert pod_log.deleting == ["web-1", "web-2", "web-1", "web-0"]  # the manual delete, then highest first


async def test_ordered_ready_waits_for_readiness_parallel_does_not(client: ApiClient, cluster: HollowNodes) -> None:
    await client.create(statefulset("ordered", 3, never_ready=True))
    await client.create(statefulset("parallel", 3, policy="Parallel", never_ready=True))

    async def parallel_all_running() -> list[Obj] | None:
        pods = [p for p in (await client.list("Pod", NS)).items if p["metadata"]["labels"].get("sts") == "parallel"]
        running = len(pods) == 3 and all((p.get("status") or {}).get("phase") == "Running" for p in pods)
        return pods if running else None

    await eventually(parallel_all_running, timeout=30)

    async def ordered_pod_running() -> bool:
        pods = [p for p in (await client.list("Pod", NS)).items if p["metadata"]["labels"].get("sts") == "ordered"]
        return any((p.get("status") or {}).get("phase") == "Running" for p in pods)

    await eventually(ordered_pod_running, timeout=30)
    await asyncio.sleep(1.5)  # a few passes of the controller: still only the first, not ready
    ordered = [name_of(p) for p in (await client.list("Pod", NS)).items
               if p["metadata"]["labels"].get("sts") == "ordered"]
    assert ordered == ["ordered-0"]
    sts = await client.get("StatefulSet", "parallel", NS)
    assert sts["status"]["replicas"] == 3 and sts["status"]["readyReplicas"] == 0


async def test_rolling_update_in_reverse_with_partition(client: ApiClient, cluster: HollowNodes,
                                                        pod_log: PodLog) -> None:
    await client.create(statefulset("db", 3))
    first = await eventually(lambda: settled(client, "db", 3), timeout=30)
    old_revision = first["db-0"]["metadata"]["labels"][HASH_LABEL]
    patch: Any = {"spec": {"updateStrategy": {"rollingUpdate": {"partition": 1}},
                           "template": {"spec": {"containers": [{"name": "db", "image": "db:2"}]}}}}
    await client.patch("StatefulSet", "db", patch, NS)

    async def partitioned() -> Obj | None:
        sts = await client.get("StatefulSet", "db", NS)
        pods = {name_of(p): p for p in (await client.list("Pod", NS)).items
                if p["metadata"]["labels"].get("sts") == "db" and not is_deleting(p)}
        images = {n: p["spec"]["containers"][0]["image"] for n, p in pods.items()}
        ok = (images == {"db-0": "db:1", "db-1": "db:2", "db-2": "db:2"} and all(map(pod_is_ready, pods.values()))
              and sts["status"].get("updatedReplicas") == 2 and sts["status"].get("currentReplicas") == 1
              and sts["status"].get("readyReplicas") == 3)
        return sts if ok else None

    sts = await eventually(partitioned, timeout=30)
    assert sts["status"]["currentRevision"] == old_revision != sts["status"]["updateRevision"]
    assert pod_log.deleting == ["db-2", "db-1"]

    await client.patch("StatefulSet", "db", {"spec": {"updateStrategy": {"rollingUpdate": {"partition": 0}}}}, NS)
    pods = await eventually(lambda: settled(client, "db", 3), timeout=30)
    assert {p["spec"]["containers"][0]["image"] for p in pods.values()} == {"db:2"}
    assert pod_log.deleting == ["db-2", "db-1", "db-0"]
    revisions = (await client.list("ControllerRevision", NS)).items
    assert sorted(r["revision"] for r in revisions if name_of(r).startswith("db-")) == [1, 2]


async def test_claims_per_pod_kept_when_the_pod_is_recreated(tmp_path: Path, runner: ActorRunner, client: ApiClient,
                                                             cluster: HollowNodes,
                                                             start_controllers: StartControllers) -> None:
    """Claims provisioned as node directories (the PV controller and the cloud controller manager's local
    provider): the re-created ``data-0`` mounts the directory its predecessor had, data included."""
    assert CLAIMS_SUPPORTED
    await start_controllers("persistentvolume")
    await runner.start(CloudControllerManager(LocalProvider(tmp_path, volume_dir=str(tmp_path / "lp")),
                                              leader_elect=False), ready=lambda: True)
    await eventually(lambda: _exists(client, "StorageClass", "local-path", None))
    sts = statefulset("data", 2, claims=True)
    sts["spec"]["template"]["spec"]["containers"][0]["volumeMounts"] = [{"name": "data", "mountPath": "/data"}]
    await client.create(sts)
    pods = await eventually(lambda: settled(client, "data", 2), timeout=30)
    claims = {name_of(c): c for c in (await client.list("PersistentVolumeClaim", NS)).items}
    assert set(claims) == {"data-data-0", "data-data-1"}
    assert all(c["status"]["phase"] == "Bound" for c in claims.values())
    assert pods["data-0"]["spec"]["volumes"] == [
        {"name": "data", "persistentVolumeClaim": {"claimName": "data-data-0"}}]
    volume = await client.get("PersistentVolume", claims["data-data-0"]["spec"]["volumeName"])
    path = Path(volume["spec"]["hostPath"]["path"])
    assert mounts_of(cluster, "data-0") == {path: "/data"}
    (path / "written-by-data-0").write_text("kept")  # what the first pod wrote (the fake runtime runs nothing)

    await client.delete("Pod", "data-0", NS)
    again = await eventually(lambda: settled(client, "data", 2), timeout=30)
    assert meta(again["data-0"])["uid"] != meta(pods["data-0"])["uid"]
    kept = await client.get("PersistentVolumeClaim", "data-data-0", NS)
    assert meta(kept)["uid"] == meta(claims["data-data-0"])["uid"]
    assert mounts_of(cluster, "data-0", uid=meta(again["data-0"])["uid"]) == {path: "/data"}
    assert (path / "written-by-data-0").read_text() == "kept"

    # scaled down with the default whenScaled Retain: data-1's claim stays for a later scale-up
    await client.patch("StatefulSet", "data", {"spec": {"replicas": 1}}, NS)
    await eventually(lambda: settled(client, "data", 1), timeout=30)
    assert await _exists(client, "PersistentVolumeClaim", "data-data-1", NS)


async def _exists(client: ApiClient, kind: str, name: str, namespace: str | None) -> bool:
    try:
        await client.get(kind, name, namespace)
    except NotFound:
        return False
    return True


def mounts_of(hollow: HollowNodes, pod: str, uid: str | None = None) -> dict[Path, str]:
    """Node path -> container path of the running containers of ``pod`` in the hollow nodes' fake runtime."""
    runtime: Any = hollow.runtime
    found: dict[Path, str] = {}
    for container in runtime._containers.values():
        sandbox = container.sandbox
        if sandbox.name != pod or (uid is not None and sandbox.pod_uid != uid) or container.finished_at is not None:
            continue
        found.update({Path(m.source): m.destination for m in container.mounts if m.destination == "/data"})
    return found


async def test_shoal_scale_rollout_status_history_and_undo(nats_server: NatsServer, client: ApiClient,
                                                           cluster: HollowNodes) -> None:
    cli = ShoalCli(nats_server.url)
    await client.create(statefulset("app", 1))
    scaled = await cli("scale", "sts/app", "--replicas", "3")
    assert scaled.rc == 0 and scaled.out.strip() == "statefulset.apps/app scaled", scaled
    status = await cli("rollout", "status", "sts/app", "--timeout", "60s")
    assert status.rc == 0, status
    assert status.out.strip().splitlines()[-1] == "partitioned roll out complete: 3 new pods have been updated..."
    await eventually(lambda: settled(client, "app", 3), timeout=30)
    table = await cli("get", "sts")
    assert table.out.split() == ["NAME", "READY", "AGE", "app", "3/3", table.out.split()[-1]], table

    await client.patch("StatefulSet", "app", {"spec": {"template": {"spec": {
        "containers": [{"name": "db", "image": "db:2"}]}}}}, NS)
    assert (await cli("rollout", "status", "statefulset", "app", "--timeout", "60s")).rc == 0
    history = await cli("rollout", "history", "sts/app")
    assert [line.split()[0] for line in history.out.splitlines()] == ["statefulset.apps/app", "REVISION", "1", "2"]
    undone = await cli("rollout", "undo", "sts/app")
    assert undone.rc == 0 and undone.out.strip() == "statefulset.apps/app rolled back", undone
    pods = await eventually(lambda: settled(client, "app", 3), timeout=30)
    assert {p["spec"]["containers"][0]["image"] for p in pods.values()} == {"db:1"}


async def test_claims_deleted_with_the_set_when_the_policy_says_so(
        tmp_path: Path, runner: ActorRunner, client: ApiClient, cluster: HollowNodes,
        start_controllers: StartControllers) -> None:
    """``whenDeleted: Delete``: the claims carry an owner reference to the set, so the garbage collector
    deletes them (after the pods, which the claims' protection waits for) when the set goes."""
    await start_controllers("persistentvolume", "gc")
    await runner.start(CloudControllerManager(LocalProvider(tmp_path, volume_dir=str(tmp_path / "lp")),
                                              leader_elect=False), ready=lambda: True)
    await eventually(lambda: _exists(client, "StorageClass", "local-path", None))
    sts = statefulset("tmp", 2, claims=True)
    sts["spec"]["persistentVolumeClaimRetentionPolicy"] = {"whenDeleted": "Delete"}
    await client.create(sts)
    await eventually(lambda: settled(client, "tmp", 2), timeout=30)
    claim = await client.get("PersistentVolumeClaim", "data-tmp-0", NS)
    assert [r["kind"] for r in claim["metadata"]["ownerReferences"]] == ["StatefulSet"]
    await client.delete("StatefulSet", "tmp", NS)

    async def all_gone() -> bool:
        names = [name_of(o) for kind in ("Pod", "PersistentVolumeClaim") for o in (await client.list(kind, NS)).items]
        return not any(n.startswith(("tmp-", "data-tmp-")) for n in names)

    await eventually(all_gone, timeout=30)
