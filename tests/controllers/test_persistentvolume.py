"""The PV controller and the cloud controller manager's volume controller against a real API actor: static
binding with Retain, dynamic WaitForFirstConsumer provisioning on the selected node, Delete reclaim."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from actors.cloud.local import LocalProvider
from actors.cloud.manager import CloudControllerManager
from protocol.errors import NotFound
from protocol.objects import Obj
from runtime.client import ApiClient
from tests.conftest import ActorRunner
from tests.controllers.conftest import StartControllers, eventually


def claim(name: str, **spec: object) -> Obj:
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": name},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}, **spec}}


async def phase(client: ApiClient, kind: str, name: str, namespace: str | None = None) -> str:
    try:
        return str(((await client.get(kind, name, namespace)).get("status") or {}).get("phase"))
    except NotFound:
        return "<gone>"


async def test_static_volume_binds_and_is_retained(client: ApiClient, start_controllers: StartControllers) -> None:
    await start_controllers("persistentvolume")
    for name, size in (("big", "10Gi"), ("small", "2Gi")):
        await client.create({"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": name},
                             "spec": {"capacity": {"storage": size}, "accessModes": ["ReadWriteOnce"],
                                      "hostPath": {"path": f"/srv/{name}"}}})
    await eventually(lambda: _all(client, [("PersistentVolume", "big", None, "Available")]))
    await client.create(claim("data", storageClassName=""))
    await eventually(lambda: _all(client, [("PersistentVolumeClaim", "data", "default", "Bound"),
                                           ("PersistentVolume", "small", None, "Bound")]))
    bound = await client.get("PersistentVolumeClaim", "data", "default")
    assert bound["spec"]["volumeName"] == "small"
    assert bound["status"]["capacity"] == {"storage": "2Gi"} and bound["status"]["accessModes"] == ["ReadWriteOnce"]
    assert (await client.get("PersistentVolume", "small"))["spec"]["claimRef"]["uid"] == bound["metadata"]["uid"]
    await client.delete("PersistentVolumeClaim", "data", "default")
    await eventually(lambda: _all(client, [("PersistentVolume", "small", None, "Released")]))
    # a new claim of that name does not get the released volume (its claimRef names the old claim's uid)
    await client.create(claim("data", storageClassName=""))
    await eventually(lambda: _all(client, [("PersistentVolumeClaim", "data", "default", "Bound")]))
    assert (await client.get("PersistentVolumeClaim", "data", "default"))["spec"]["volumeName"] == "big"
    assert await phase(client, "PersistentVolume", "small") == "Released"


async def _all(client: ApiClient, wanted: list[tuple[str, str, str | None, str]]) -> bool:
    for kind, name, namespace, expected in wanted:
        if await phase(client, kind, name, namespace) != expected:
            return False
    return True


async def test_wait_for_first_consumer_provisions_on_the_selected_node_and_deletes_on_release(
        tmp_path: Path, runner: ActorRunner, client: ApiClient, start_controllers: StartControllers) -> None:
    volume_dir = tmp_path / "lp"
    await start_controllers("persistentvolume")
    await runner.start(CloudControllerManager(LocalProvider(tmp_path, volume_dir=str(volume_dir)),
                                              leader_elect=False), ready=lambda: True)

    async def default_class() -> Obj | None:
        try:
            return await client.get("StorageClass", "local-path")
        except NotFound:
            return None

    sc = await eventually(default_class)
    assert sc["metadata"]["annotations"]["storageclass.kubernetes.io/is-default-class"] == "true"
    created = await client.create(claim("data"))
    assert created["spec"]["storageClassName"] == "local-path"

    async def waiting_event() -> bool:
        events = (await client.list("events", "default")).items
        return any(e.get("reason") == "WaitForFirstConsumer" for e in events)

    await eventually(waiting_event)
    assert await phase(client, "PersistentVolumeClaim", "data", "default") == "Pending"
    # what the scheduler does once it chose a node for a pod using the claim
    await client.patch("persistentvolumeclaims", "data",
                       {"metadata": {"annotations": {"volume.kubernetes.io/selected-node": "n1"}}}, "default")
    pv_name = f"pvc-{created['metadata']['uid']}"
    await eventually(lambda: _all(client, [("PersistentVolumeClaim", "data", "default", "Bound"),
                                           ("PersistentVolume", pv_name, None, "Bound")]))
    pv = await client.get("PersistentVolume", pv_name)
    assert pv["spec"]["hostPath"] == {"path": str(volume_dir / f"{pv_name}_default_data"), "type": "DirectoryOrCreate"}
    assert pv["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"][0]["matchExpressions"][0]["values"] == ["n1"]
    assert pv["spec"]["persistentVolumeReclaimPolicy"] == "Delete" and pv["spec"]["storageClassName"] == "local-path"
    assert pv["metadata"]["annotations"]["pv.kubernetes.io/provisioned-by"] == "shoal.io/local-path"
    os.makedirs(pv["spec"]["hostPath"]["path"])  # as the kubelet makes it on first mount
    await client.delete("PersistentVolumeClaim", "data", "default")
    await eventually(lambda: _all(client, [("PersistentVolume", pv_name, None, "<gone>")]))
    assert not await asyncio.to_thread(os.path.exists, pv["spec"]["hostPath"]["path"])


async def test_a_claim_in_use_is_deleted_only_after_its_pod(client: ApiClient,
                                                            start_controllers: StartControllers) -> None:
    await start_controllers("persistentvolume")
    await client.create({"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": "pv1"},
                         "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
                                  "hostPath": {"path": "/srv/pv1"}}})
    created = await client.create(claim("data", storageClassName=""))
    assert created["metadata"]["finalizers"] == ["kubernetes.io/pvc-protection"]
    await eventually(lambda: _all(client, [("PersistentVolumeClaim", "data", "default", "Bound")]))
    await client.create({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "user"}, "spec": {
        "volumes": [{"name": "d", "persistentVolumeClaim": {"claimName": "data"}}],
        "containers": [{"name": "c", "image": "i"}]}})
    await client.delete("PersistentVolumeClaim", "data", "default")
    await client.delete("PersistentVolume", "pv1")  # bound: kept by its protection finalizer too
    for _ in range(10):  # the claim stays (Terminating) while the pod is there; the volume stays Bound
        await asyncio.sleep(0.1)
        kept = await client.get("PersistentVolumeClaim", "data", "default")
        assert kept["metadata"].get("deletionTimestamp") and kept["metadata"]["finalizers"]
        assert await phase(client, "PersistentVolume", "pv1") == "Bound"
    await client.delete("Pod", "user", "default", grace_period=0)
    await eventually(lambda: _all(client, [("PersistentVolumeClaim", "data", "default", "<gone>"),
                                           ("PersistentVolume", "pv1", None, "<gone>")]))
