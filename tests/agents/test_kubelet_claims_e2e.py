"""persistentVolumeClaim volumes end to end on real Podman: the scheduler, the PV controller and the cloud
controller manager (local provider) provision a WaitForFirstConsumer claim on the kubelet's node; the data a
pod writes to the claim survives the pod's deletion and is read by the next pod mounting the claim."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from actors.api.server import ApiActor
from actors.cloud.local import LocalProvider
from actors.cloud.manager import CloudControllerManager
from agents.kubelet.agent import KubeletAgent
from agents.kubelet.config import KubeletConfig
from agents.kubelet.images import BUSYBOX_IMAGE
from agents.kubelet.podman_runtime import PodmanRuntime
from agents.kubelet.podman_service import PodmanService
from protocol.errors import NotFound
from protocol.objects import Obj, condition_true
from runtime.client import ApiClient
from tests.agents.kubelet_helpers import eventually, phase, pod_where, started
from tests.agents.test_kubelet_volumes_e2e import logs_with, node, start_kubelet, value  # noqa: F401  (fixture)
from tests.conftest import ActorRunner
from tests.controllers.conftest import start_manager
from tests.scheduler.test_scheduler_integration import start_scheduler

pytestmark = [pytest.mark.podman, pytest.mark.slow]


def claim_pod(name: str, script: str, *, read_only: bool = False) -> Obj:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": {
        "terminationGracePeriodSeconds": 1,
        "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "data", "readOnly": read_only}}],
        "containers": [{"name": "c", "image": BUSYBOX_IMAGE, "command": ["sh", "-c", script],
                        "volumeMounts": [{"name": "data", "mountPath": "/data"}]}]}}


async def gone(client: ApiClient, name: str) -> bool:
    try:
        await client.get("Pod", name, "default")
        return False
    except NotFound:
        return True


async def test_claim_data_outlives_the_pod(runner: ActorRunner, api: ApiActor, client: ApiClient,
                                          podman_service: PodmanService, node: str,  # noqa: F811
                                          tmp_path: Path) -> None:
    volume_dir = tmp_path / "lp"
    await start_kubelet(runner, podman_service, node, tmp_path / "kubelet")
    await start_manager(runner, ["persistentvolume"])
    await runner.start(CloudControllerManager(LocalProvider(tmp_path, volume_dir=str(volume_dir)),
                                              leader_elect=False), ready=lambda: True)
    await start_scheduler(runner)

    async def default_class() -> bool:
        try:
            return bool(await client.get("StorageClass", "local-path"))
        except NotFound:
            return False

    await eventually(default_class, what="the default StorageClass")
    await client.create({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "data"},
                         "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "64Mi"}}}})
    await client.create(claim_pod("writer", "echo kept-across-pods > /data/f && echo wrote=$(cat /data/f) && "
                                            "sleep 1000"))
    lines = await logs_with(client, "writer", "c", "wrote=")
    assert value(lines, "wrote") == "kept-across-pods"
    writer = await client.get("Pod", "writer", "default")
    assert writer["spec"]["nodeName"] == node
    bound = await client.get("PersistentVolumeClaim", "data", "default")
    assert bound["status"]["phase"] == "Bound"
    assert bound["metadata"]["annotations"]["volume.kubernetes.io/selected-node"] == node
    pv = await client.get("PersistentVolume", bound["spec"]["volumeName"])
    path = pv["spec"]["hostPath"]["path"]
    assert path.startswith(str(volume_dir))
    assert await asyncio.to_thread(Path(path, "f").read_text) == "kept-across-pods\n", "on the node's disk"

    await client.delete("pods", "writer", "default")
    await eventually(lambda: gone(client, "writer"), timeout=60, what="the writer pod gone")
    assert await asyncio.to_thread(os.path.exists, os.path.join(path, "f")), "the claim's data outlives its pod"

    await client.create(claim_pod("reader", "echo read=$(cat /data/f); touch /data/g 2>/dev/null && "
                                            "echo write=allowed || echo write=refused; sleep 1000", read_only=True))
    lines = await logs_with(client, "reader", "c", "write=")
    assert value(lines, "read") == "kept-across-pods"
    assert value(lines, "write") == "refused", "readOnly: true mounts the claim read-only"
    running = await eventually(lambda: pod_where(client, "reader", lambda p: phase(p) == "Running"),
                               what="the reader Running")
    assert running["spec"]["nodeName"] == node
    await client.delete("pods", "reader", "default")
    await eventually(lambda: gone(client, "reader"), timeout=60, what="the reader pod gone")

    # the claim goes: its volume (reclaim policy Delete) and the data go with it
    await client.delete("persistentvolumeclaims", "data", "default")

    async def volume_deleted() -> bool:
        try:
            await client.get("PersistentVolume", pv["metadata"]["name"])
            return False
        except NotFound:
            return not await asyncio.to_thread(os.path.exists, path)

    await eventually(volume_deleted, timeout=30, what="the volume deleted")


@pytest.fixture
async def two_nodes(podman_service: PodmanService, runner: ActorRunner) -> AsyncIterator[list[str]]:
    """Two node names; their Podman objects are removed afterwards (after the kubelets stopped)."""
    names = [f"pin-{uuid.uuid4().hex[:6]}-{k}" for k in "ab"]
    yield names
    await runner.stop_all()
    runtime = PodmanRuntime(podman_service.socket_url)
    try:
        for name in names:
            for sandbox in await runtime.list_sandboxes(name):
                await runtime.remove_sandbox(sandbox.id)
            for c in await runtime.list_containers(name):
                await runtime.remove_container(c.id)
    finally:
        await runtime.close()


async def test_a_pod_follows_its_claim_to_the_node_that_holds_the_data(
        runner: ActorRunner, api: ApiActor, client: ApiClient, podman_service: PodmanService,
        two_nodes: list[str], tmp_path: Path) -> None:
    for k, name in enumerate(two_nodes):
        config = KubeletConfig(node_name=name, address="127.0.0.1", state_dir=tmp_path / f"kubelet-{k}",
                               pod_cidr=f"127.97.{k + 1}.0/24", backoff_base=1.0, backoff_max=2.0,
                               relist_interval=0.5, lease_renew_interval=2.0, node_status_interval=2.0)
        agent = KubeletAgent(config, runtime=PodmanRuntime(podman_service.socket_url), runtime_version="podman://test")
        await runner.start(agent, started(agent))
    await start_manager(runner, ["persistentvolume"])
    await runner.start(CloudControllerManager(LocalProvider(tmp_path, volume_dir=str(tmp_path / "lp")),
                                              leader_elect=False), ready=lambda: True)
    await start_scheduler(runner)

    async def nodes_ready() -> bool:
        return all(condition_true(n, "Ready") for n in (await client.list("Node")).items) and \
            len((await client.list("Node")).items) == 2

    await eventually(nodes_ready, timeout=60, what="both nodes Ready")
    await eventually(lambda: client.get("StorageClass", "local-path"), what="the default StorageClass")
    await client.create({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "data"},
                         "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "64Mi"}}}})
    await client.create(claim_pod("writer", "echo held-here > /data/f && echo wrote=$(cat /data/f) && sleep 1000"))
    await logs_with(client, "writer", "c", "wrote=")
    holder = (await client.get("Pod", "writer", "default"))["spec"]["nodeName"]
    other = next(n for n in two_nodes if n != holder)
    await client.delete("pods", "writer", "default")
    await eventually(lambda: gone(client, "writer"), timeout=60, what="the writer pod gone")

    # the node holding the data is cordoned: the reader may not go to the other node, it waits
    await client.patch("nodes", holder, {"spec": {"unschedulable": True}})
    await client.create(claim_pod("reader", "echo read=$(cat /data/f); sleep 1000"))

    async def waiting() -> list[Obj]:
        events = (await client.list("events", "default")).items
        return [e for e in events if e.get("reason") == "FailedScheduling"
                and (e.get("involvedObject") or {}).get("name") == "reader"]

    (event, *_) = await eventually(waiting, what="FailedScheduling for the reader")
    assert "1 node(s) had volume node affinity conflict" in event["message"], event["message"]
    assert "1 node(s) were unschedulable" in event["message"], event["message"]
    assert (await client.get("Pod", "reader", "default"))["spec"].get("nodeName") is None
    await client.patch("nodes", holder, {"spec": {"unschedulable": False}})
    lines = await logs_with(client, "reader", "c", "read=")
    assert (await client.get("Pod", "reader", "default"))["spec"]["nodeName"] == holder != other
    assert value(lines, "read") == "held-here", "the data written by the first pod, on the node that holds it"
