"""Volumes and configuration end to end: real API actor, real kubelet, real Podman containers (busybox).

Each container prints what it sees (``cat``, ``env``, ``/proc/mounts``); the test reads the logs as
``shoal logs`` does (``runtime.node_logs.fetch_logs``).
"""

from __future__ import annotations

import asyncio
import base64
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio

from actors.api.server import ApiActor
from agents.kubelet.agent import KubeletAgent
from agents.kubelet.config import KubeletConfig
from agents.kubelet.images import BUSYBOX_IMAGE
from agents.kubelet.podman_runtime import PodmanRuntime
from agents.kubelet.podman_service import PodmanService
from agents.kubelet.volumes import unmount_all
from protocol.errors import BadRequest
from protocol.objects import Obj
from runtime.client import ApiClient
from runtime.node_logs import fetch_logs
from tests.agents.kubelet_helpers import (
    create_bound,
    cstatus,
    eventually,
    phase,
    pod_manifest,
    pod_where,
    started,
    waiting_reason,
)
from tests.agents.test_kubelet_e2e import sh
from tests.conftest import ActorRunner

pytestmark = [pytest.mark.podman, pytest.mark.slow]


@pytest_asyncio.fixture
async def node(podman_service: PodmanService, runner: ActorRunner) -> AsyncIterator[str]:
    """A node name for one test; its Podman objects are removed afterwards (after its kubelet stopped)."""
    name = f"vol-{uuid.uuid4().hex[:8]}"
    yield name
    await runner.stop_all()
    runtime = PodmanRuntime(podman_service.socket_url)
    try:
        for sandbox in await runtime.list_sandboxes(name):
            await runtime.remove_sandbox(sandbox.id)
        for c in await runtime.list_containers(name):
            await runtime.remove_container(c.id)
    finally:
        await runtime.close()


async def start_kubelet(runner: ActorRunner, service: PodmanService, node: str, state: Path) -> asyncio.Event:
    """Start a kubelet; the event stops it."""
    config = KubeletConfig(node_name=node, address="127.0.0.1", state_dir=state, backoff_base=1.0, backoff_max=2.0,
                           relist_interval=0.5, lease_renew_interval=2.0, node_status_interval=2.0,
                           volume_refresh=1.0)
    agent = KubeletAgent(config, runtime=PodmanRuntime(service.socket_url), runtime_version="podman://test")
    return await runner.start(agent, started(agent))


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


async def logs(client: ApiClient, pod: str, container: str) -> list[str]:
    try:
        return [line async for line in fetch_logs(client, "default", pod, container=container)]
    except BadRequest:  # not started yet
        return []


@pytest.fixture(autouse=True)
def unmount_volumes(tmp_path: Path) -> Iterator[None]:
    """The kubelet's tmpfs volumes under this test's directory are unmounted afterwards, pass or fail."""
    yield
    unmount_all(tmp_path)


async def logs_with(client: ApiClient, pod: str, container: str, marker: str) -> list[str]:
    async def check() -> list[str] | None:
        lines = await logs(client, pod, container)
        return lines if any(marker in line for line in lines) else None
    return await eventually(check, timeout=60, what=f"{marker!r} in the logs of {pod}/{container}")  # type: ignore[no-any-return]


def value(lines: list[str], key: str) -> str:
    found = [line.split("=", 1)[1] for line in lines if line.startswith(key + "=")]
    assert found, f"{key}= not printed; logs: {lines}"
    return found[-1]


SEE = """
echo cmd=$1
echo color=$(cat /etc/config/color)
echo props=$(cat /etc/config/game.properties)
echo subpath=$(cat /sub/color.txt)
echo password=$(cat /etc/secret/password)
echo secret_mode=$(stat -L -c %a /etc/secret/password)
echo secret_fs=$(grep ' /etc/secret ' /proc/mounts | cut -d' ' -f3)
echo mem_fs=$(grep ' /mem ' /proc/mounts | cut -d' ' -f3)
echo data_link=$(readlink /etc/config/color)
echo labels=$(cat /info/labels | tr '\\n' ',')
echo info_name=$(cat /info/name)
echo proj=$(cat /proj/cfg/color),$(cat /proj/password),$(cat /proj/ns)
echo hostfile=$(cat /hostfile)
echo host-was-here > /hostdir/out.txt
touch /etc/config/new 2>/dev/null && echo cfg_write=allowed || echo cfg_write=refused
touch /ro-scratch/new 2>/dev/null && echo ro_write=allowed || echo ro_write=refused
echo sub-scratch > /sub-scratch/f && echo sub_scratch=$(cat /scratch/part/f)
echo per-pod > /per-pod/f && echo sub_expr=$(cat /scratch/logs/see/f)
echo from-writer > /scratch/shared.txt
tr '\\0' '\\n' < /proc/1/environ | sed 's/^/env:/'
echo done-see
sleep 1000
"""

READ = """
while [ ! -f /shared/shared.txt ]; do sleep 0.2; done
echo reader=$(cat /shared/shared.txt)
sleep 1000
"""


async def test_every_volume_type_and_env_source(runner: ActorRunner, api: ApiActor, client: ApiClient,
                                                podman_service: PodmanService, node: str, tmp_path: Path) -> None:
    state, host = tmp_path / "kubelet", tmp_path / "host"
    host.mkdir()
    (host / "file.txt").write_text("on-the-node")
    await start_kubelet(runner, podman_service, node, state)
    # the pod names its ServiceAccount, which admission requires to exist (no serviceaccount controller here);
    # the account opts out of the token volume, whose CA ConfigMap only the rootca controller makes
    await client.create({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default"},
                         "automountServiceAccountToken": False})
    await client.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "app-config"},
                         "data": {"color": "blue", "game.properties": "lives=3"}})
    await client.create({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "creds"},
                         "data": {"password": b64("s3cret"), "user": b64("admin")}})
    volumes = [
        {"name": "cfg", "configMap": {"name": "app-config"}},
        {"name": "sec", "secret": {"secretName": "creds", "defaultMode": 0o400}},
        {"name": "scratch", "emptyDir": {}},
        {"name": "mem", "emptyDir": {"medium": "Memory", "sizeLimit": "1Mi"}},
        {"name": "hostdir", "hostPath": {"path": str(host / "made"), "type": "DirectoryOrCreate"}},
        {"name": "hostfile", "hostPath": {"path": str(host / "file.txt"), "type": "File"}},
        {"name": "info", "downwardAPI": {"items": [{"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
                                                   {"path": "name", "fieldRef": {"fieldPath": "metadata.name"}}]}},
        {"name": "proj", "projected": {"sources": [
            {"configMap": {"name": "app-config", "items": [{"key": "color", "path": "cfg/color"}]}},
            {"secret": {"name": "creds", "items": [{"key": "password", "path": "password"}]}},
            {"downwardAPI": {"items": [{"path": "ns", "fieldRef": {"fieldPath": "metadata.namespace"}}]}}]}},
    ]
    env = [
        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "POD_NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
        {"name": "POD_UID", "valueFrom": {"fieldRef": {"fieldPath": "metadata.uid"}}},
        {"name": "APP_LABEL", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
        {"name": "NOTE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.annotations['note']"}}},
        {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
        {"name": "SA", "valueFrom": {"fieldRef": {"fieldPath": "spec.serviceAccountName"}}},
        {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
        {"name": "HOST_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.hostIP"}}},
        {"name": "MEM_MI", "valueFrom": {"resourceFieldRef": {"resource": "requests.memory", "divisor": "1Mi"}}},
        {"name": "COLOR", "valueFrom": {"configMapKeyRef": {"name": "app-config", "key": "color"}}},
        {"name": "PASSWORD", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "password"}}},
        {"name": "GREETING", "value": "hi-$(POD_NAME)-$(COLOR)-$$(POD_NAME)-$(UNDEFINED)"},
    ]
    see = sh("see", SEE, args=["sh", "$(POD_NAME)"], env=env,
             envFrom=[{"configMapRef": {"name": "app-config"}, "prefix": "CFG_"}, {"secretRef": {"name": "creds"}}],
             resources={"requests": {"memory": "32Mi"}},
             volumeMounts=[{"name": "cfg", "mountPath": "/etc/config"},
                           {"name": "cfg", "mountPath": "/sub/color.txt", "subPath": "color"},
                           {"name": "sec", "mountPath": "/etc/secret"},
                           {"name": "scratch", "mountPath": "/scratch"},
                           {"name": "scratch", "mountPath": "/ro-scratch", "readOnly": True},
                           {"name": "scratch", "mountPath": "/sub-scratch", "subPath": "part"},
                           {"name": "mem", "mountPath": "/mem"},
                           {"name": "scratch", "mountPath": "/per-pod", "subPathExpr": "logs/$(POD_NAME)"},
                           {"name": "hostdir", "mountPath": "/hostdir", "mountPropagation": "HostToContainer"},
                           {"name": "hostfile", "mountPath": "/hostfile"},
                           {"name": "info", "mountPath": "/info"},
                           {"name": "proj", "mountPath": "/proj"}])
    reader = sh("reader", READ, volumeMounts=[{"name": "scratch", "mountPath": "/shared"}])
    manifest = pod_manifest("see", [see, reader])
    manifest["metadata"].update(labels={"app": "web", "tier": "front"}, annotations={"note": "n-1"})
    manifest["spec"].update(volumes=volumes, serviceAccountName="default")
    created = await create_bound(client, manifest, node)
    pod: Obj = await eventually(lambda: pod_where(client, "see", lambda p: phase(p) == "Running"), timeout=60,
                                what="see Running")
    lines = await logs_with(client, "see", "see", "done-see")
    envs = dict(line[4:].split("=", 1) for line in lines if line.startswith("env:") and "=" in line)
    uid = created["metadata"]["uid"]
    assert value(lines, "cmd") == "see"
    assert value(lines, "color") == "blue" and value(lines, "props") == "lives=3"
    assert value(lines, "subpath") == "blue"
    assert value(lines, "password") == "s3cret" and value(lines, "secret_mode") == "400"
    assert value(lines, "secret_fs") == "tmpfs" and value(lines, "mem_fs") == "tmpfs"
    assert value(lines, "data_link") == "..data/color"
    assert value(lines, "labels") == 'app="web",tier="front"'  # no final newline, as Kubernetes
    assert value(lines, "info_name") == "see"
    assert value(lines, "proj") == "blue,s3cret,default"
    assert value(lines, "hostfile") == "on-the-node"
    assert value(lines, "cfg_write") == "refused" and value(lines, "ro_write") == "refused"
    assert value(lines, "sub_scratch") == "sub-scratch"
    assert value(lines, "sub_expr") == "per-pod"
    assert (host / "made" / "out.txt").read_text().strip() == "host-was-here"
    pod_ip = pod["status"]["podIP"]
    assert {k: envs.get(k) for k in ("POD_NAME", "POD_NS", "POD_UID", "APP_LABEL", "NOTE", "NODE", "SA", "POD_IP",
                                     "HOST_IP", "MEM_MI", "COLOR", "PASSWORD", "GREETING", "CFG_color",
                                     "CFG_game.properties", "user")} == {
        "POD_NAME": "see", "POD_NS": "default", "POD_UID": uid, "APP_LABEL": "web", "NOTE": "n-1",
        "NODE": node, "SA": "default", "POD_IP": pod_ip, "HOST_IP": "127.0.0.1", "MEM_MI": "32",
        "COLOR": "blue", "PASSWORD": "s3cret", "GREETING": "hi-see-blue-$(POD_NAME)-$(UNDEFINED)",
        "CFG_color": "blue", "CFG_game.properties": "lives=3", "user": "admin"}
    assert value(await logs_with(client, "see", "reader", "reader="), "reader") == "from-writer"  # shared emptyDir

    pod_dir = state / "pods" / uid
    assert pod_dir.is_dir()
    await client.delete("pods", "see")
    await eventually(lambda: _gone(pod_dir), timeout=60, what="the pod's volumes removed")
    assert (host / "made" / "out.txt").exists()  # a hostPath is the node's: kept


async def _gone(path: Path) -> bool:
    return not await asyncio.to_thread(os.path.exists, path)


async def test_configmap_update_reaches_the_mounted_file(runner: ActorRunner, api: ApiActor, client: ApiClient,
                                                         podman_service: PodmanService, node: str,
                                                         tmp_path: Path) -> None:
    stop = await start_kubelet(runner, podman_service, node, tmp_path)
    cm = await client.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "live"},
                              "data": {"color": "blue"}})
    loop = sh("c", "while true; do echo color=$(cat /cfg/color); sleep 0.3; done",
              volumeMounts=[{"name": "cfg", "mountPath": "/cfg"}])
    manifest = pod_manifest("watcher", [loop])
    manifest["spec"]["volumes"] = [{"name": "cfg", "configMap": {"name": "live"}}]
    await create_bound(client, manifest, node)
    await logs_with(client, "watcher", "c", "color=blue")
    cm["data"] = {"color": "green"}
    await client.update(cm)
    await logs_with(client, "watcher", "c", "color=green")  # in place, same container
    # a restarted kubelet adopts the running pod and keeps its volume up to date
    stop.set()
    for event, task in runner.running:
        if event is stop:
            await asyncio.wait_for(task, 30)
    await start_kubelet(runner, podman_service, node, tmp_path)
    cm = await client.get("ConfigMap", "live")
    cm["data"] = {"color": "red"}
    await client.update(cm)
    await logs_with(client, "watcher", "c", "color=red")
    pod = await client.get("Pod", "watcher")
    assert cstatus(pod)["restartCount"] == 0


async def test_missing_objects_block_start_until_created(runner: ActorRunner, api: ApiActor, client: ApiClient,
                                                         podman_service: PodmanService, node: str,
                                                         tmp_path: Path) -> None:
    await start_kubelet(runner, podman_service, node, tmp_path)
    needs = sh("c", "echo late=$LATE; sleep 1000",
               env=[{"name": "LATE", "valueFrom": {"configMapKeyRef": {"name": "late", "key": "k"}}}])
    await create_bound(client, pod_manifest("needs", [needs]), node)
    optional = sh("c", "echo opt=[$OPT] files=[$(ls /opt-cfg)]; sleep 1000",
                  env=[{"name": "OPT", "valueFrom": {"configMapKeyRef": {"name": "never", "key": "k",
                                                                          "optional": True}}}],
                  volumeMounts=[{"name": "o", "mountPath": "/opt-cfg"}])
    manifest = pod_manifest("optional", [optional])
    manifest["spec"]["volumes"] = [{"name": "o", "configMap": {"name": "never", "optional": True}}]
    await create_bound(client, manifest, node)
    wrong = sh("c", "sleep 1000", volumeMounts=[{"name": "h", "mountPath": "/h"}])
    manifest = pod_manifest("wrongtype", [wrong])
    manifest["spec"]["volumes"] = [{"name": "h", "hostPath": {"path": str(tmp_path), "type": "File"}}]
    await create_bound(client, manifest, node)

    pod = await eventually(lambda: pod_where(client, "needs",
                                             lambda p: waiting_reason(p) == "CreateContainerConfigError"),
                           timeout=60, what="needs waiting in CreateContainerConfigError")
    assert cstatus(pod)["state"]["waiting"]["message"] == 'configmap "late" not found'
    assert phase(pod) == "Pending"
    wrongtype = await eventually(lambda: pod_where(client, "wrongtype",
                                                   lambda p: waiting_reason(p) == "ContainerCreating"
                                                   and "message" in cstatus(p)["state"]["waiting"]),
                                 timeout=60, what="wrongtype waiting on its hostPath")
    assert f"hostPath type check failed: {tmp_path} is not a file" in cstatus(wrongtype)["state"]["waiting"]["message"]
    events = (await client.list("Event", "default")).items
    reasons = {(e["involvedObject"]["name"], e["reason"]): e["message"] for e in events}
    assert reasons[("needs", "Failed")] == 'Error: configmap "late" not found'
    assert "hostPath type check failed" in reasons[("wrongtype", "FailedMount")]
    lines = await logs_with(client, "optional", "c", "opt=")
    assert value(lines, "opt") == "[] files=[]"

    await client.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "late"}, "data": {"k": "v"}})
    await eventually(lambda: pod_where(client, "needs", lambda p: phase(p) == "Running"), timeout=60,
                     what="needs Running once its ConfigMap exists")
    assert value(await logs_with(client, "needs", "c", "late="), "late") == "v"
    assert BUSYBOX_IMAGE


async def test_host_path_types(runner: ActorRunner, api: ApiActor, client: ApiClient, podman_service: PodmanService,
                               node: str, tmp_path: Path) -> None:
    import socket as socketlib
    host = tmp_path / "host"
    host.mkdir()
    server = socketlib.socket(socketlib.AF_UNIX, socketlib.SOCK_STREAM)
    server.bind(str(host / "app.sock"))
    try:
        await start_kubelet(runner, podman_service, node, tmp_path / "kubelet")
        script = ("echo sock=$(stat -c %F /run/app.sock); echo null=$(stat -c %F /dev-null); "
                  "echo made=$(cat /made.txt | wc -c); echo created > /made.txt; sleep 1000")
        c = sh("c", script, volumeMounts=[{"name": "sock", "mountPath": "/run/app.sock"},
                                          {"name": "null", "mountPath": "/dev-null"},
                                          {"name": "made", "mountPath": "/made.txt"}])
        manifest = pod_manifest("types", [c])
        manifest["spec"]["volumes"] = [
            {"name": "sock", "hostPath": {"path": str(host / "app.sock"), "type": "Socket"}},
            {"name": "null", "hostPath": {"path": "/dev/null", "type": "CharDevice"}},
            {"name": "made", "hostPath": {"path": str(host / "sub" / "made.txt"), "type": "FileOrCreate"}}]
        await create_bound(client, manifest, node)
        lines = await logs_with(client, "types", "c", "made=")
        assert value(lines, "sock") == "socket"
        assert value(lines, "null") == "character special file"
        assert value(lines, "made") == "0"  # created empty on the node
        await eventually(lambda: _has(host / "sub" / "made.txt", "created"), timeout=30, what="written through")
    finally:
        server.close()


async def _has(path: Path, text: str) -> bool:
    content = await asyncio.to_thread(path.read_text)
    return text in content
