"""The kubelet end to end: real API actor on a real nats-server, real Podman containers (busybox image).

Pods are bound by the test (no scheduler). The kubelet runs with a short crash-loop back-off
(``backoff_base=1``, ``backoff_max=4`` seconds: ``KubeletConfig``/``--backoff-base``) so that crash loops
show within seconds. Every test uses its own node name; its Podman objects are removed afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from actors.api.server import ApiActor
from agents.kubelet.agent import KubeletAgent
from agents.kubelet.config import KubeletConfig
from agents.kubelet.images import BUSYBOX_IMAGE
from agents.kubelet.podman_runtime import PodmanRuntime
from agents.kubelet.podman_service import PodmanService
from protocol.errors import BadRequest, NotFound
from protocol.objects import Obj
from runtime.client import ApiClient
from runtime.node_logs import fetch_logs
from tests.agents.kubelet_helpers import (
    create_bound,
    cstatus,
    eventually,
    is_ready,
    phase,
    pod_manifest,
    pod_where,
    started,
    waiting_reason,
)
from tests.conftest import ActorRunner

pytestmark = [pytest.mark.podman, pytest.mark.slow]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def sh(name: str, script: str, **extra: object) -> Obj:
    return {"name": name, "image": BUSYBOX_IMAGE, "command": ["sh", "-c", script], **extra}


@pytest_asyncio.fixture
async def e2e_node(podman_service: PodmanService, runner: ActorRunner) -> AsyncIterator[str]:
    """A node name for one test; its sandboxes and containers are removed afterwards, pass or fail
    (after the test's kubelets stopped, so none of them re-creates what is being removed)."""
    node = f"e2e-{uuid.uuid4().hex[:8]}"
    yield node
    await runner.stop_all()
    runtime = PodmanRuntime(podman_service.socket_url)
    try:
        for sandbox in await runtime.list_sandboxes(node):
            await runtime.remove_sandbox(sandbox.id)
        for c in await runtime.list_containers(node):
            await runtime.remove_container(c.id)
    finally:
        await runtime.close()


def kubelet(service: PodmanService, node: str, tmp_path: Path) -> KubeletAgent:
    config = KubeletConfig(node_name=node, address="127.0.0.1", state_dir=tmp_path, backoff_base=1.0,
                           backoff_max=4.0, relist_interval=0.5, lease_renew_interval=2.0,
                           node_status_interval=2.0)
    return KubeletAgent(config, runtime=PodmanRuntime(service.socket_url), runtime_version="podman://test")


async def start_kubelet(runner: ActorRunner, service: PodmanService, node: str, tmp_path: Path) -> tuple[
        KubeletAgent, asyncio.Event]:
    agent = kubelet(service, node, tmp_path)
    stop = await runner.start(agent, started(agent))
    return agent, stop


async def stop_actor(runner: ActorRunner, stop: asyncio.Event) -> None:
    for event, task in runner.running:
        if event is stop:
            stop.set()
            await asyncio.wait_for(task, 30)


async def http_get(port: int, host: str = "127.0.0.1") -> str:
    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 2)
    writer.write(b"GET / HTTP/1.0\r\nHost: test\r\n\r\n")
    await writer.drain()
    body = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    return body.decode()


async def test_web_pod_runs_ready_and_serves(runner: ActorRunner, api: ApiActor, client: ApiClient,
                                             podman_service: PodmanService, e2e_node: str, tmp_path: Path) -> None:
    _agent, _ = await start_kubelet(runner, podman_service, e2e_node, tmp_path)
    port = free_port()
    web = sh("web", "mkdir -p /www && echo hello-shoal > /www/index.html && exec httpd -f -p 8080 -h /www",
             ports=[{"containerPort": 8080, "hostPort": port}],
             readinessProbe={"httpGet": {"path": "/", "port": 8080}, "periodSeconds": 1})
    await create_bound(client, pod_manifest("web", [web]), e2e_node)
    pod = await eventually(lambda: pod_where(client, "web", lambda p: phase(p) == "Running" and is_ready(p)),
                           timeout=60, what="web pod Running and Ready")
    assert pod["status"]["podIP"].startswith("127.88.")  # the node's loopback pod network
    assert pod["status"]["hostIP"] == "127.0.0.1"
    assert cstatus(pod)["ready"] is True
    assert "hello-shoal" in await http_get(port)
    assert "hello-shoal" in await http_get(8080, pod["status"]["podIP"])  # podIP:containerPort, as in Kubernetes
    node = await client.get("Node", e2e_node)
    assert any(c["type"] == "Ready" and c["status"] == "True" for c in node["status"]["conditions"])


async def test_restart_policies_crash_loop_and_readiness(runner: ActorRunner, api: ApiActor, client: ApiClient,
                                                         podman_service: PodmanService, e2e_node: str,
                                                         tmp_path: Path) -> None:
    await start_kubelet(runner, podman_service, e2e_node, tmp_path)
    await create_bound(client, pod_manifest("crash", [sh("c", "echo boom; exit 1")]), e2e_node)
    await create_bound(client, pod_manifest("job", [sh("c", "echo done")], restart_policy="OnFailure"), e2e_node)
    await create_bound(client, pod_manifest("once", [sh("c", "exit 1")], restart_policy="Never"), e2e_node)
    unready = sh("c", "exec sleep 1000", readinessProbe={"exec": {"command": ["false"]}, "periodSeconds": 1})
    await create_bound(client, pod_manifest("unready", [unready]), e2e_node)

    job = await eventually(lambda: pod_where(client, "job", lambda p: phase(p) == "Succeeded"), timeout=60,
                           what="OnFailure pod Succeeded")
    assert cstatus(job)["restartCount"] == 0
    assert cstatus(job)["state"]["terminated"]["reason"] == "Completed"
    once = await eventually(lambda: pod_where(client, "once", lambda p: phase(p) == "Failed"), timeout=60,
                            what="Never pod Failed")
    assert cstatus(once)["state"]["terminated"]["exitCode"] == 1
    assert cstatus(once)["restartCount"] == 0
    crash = await eventually(lambda: pod_where(
        client, "crash", lambda p: waiting_reason(p) == "CrashLoopBackOff" and cstatus(p)["restartCount"] >= 2),
        timeout=60, what="CrashLoopBackOff with restarts")
    assert cstatus(crash)["lastState"]["terminated"]["exitCode"] == 1
    assert phase(crash) == "Running"
    pod = await eventually(lambda: pod_where(client, "unready", lambda p: phase(p) == "Running"), timeout=60,
                           what="unready pod Running")
    await asyncio.sleep(2.5)  # several failing probes
    pod = await client.get("Pod", "unready", "default")
    assert phase(pod) == "Running" and not is_ready(pod)
    assert cstatus(pod)["ready"] is False


async def test_logs_tail_and_follow(runner: ActorRunner, api: ApiActor, client: ApiClient,
                                    podman_service: PodmanService, e2e_node: str, tmp_path: Path) -> None:
    await start_kubelet(runner, podman_service, e2e_node, tmp_path)
    script = "for i in 1 2 3 4 5; do echo line-$i; done; i=0; while true; do i=$((i+1)); echo tick-$i; sleep 0.2; done"
    await create_bound(client, pod_manifest("talker", [sh("c", script)]), e2e_node)
    await eventually(lambda: pod_where(client, "talker", lambda p: phase(p) == "Running"), timeout=60,
                     what="talker Running")
    await asyncio.sleep(0.5)
    lines = [line async for line in fetch_logs(client, "default", "talker")]
    assert lines[:5] == [f"line-{i}" for i in range(1, 6)]
    tail = [line async for line in fetch_logs(client, "default", "talker", tail=2)]
    assert len(tail) == 2 and tail[-1].startswith("tick-")
    followed: list[str] = []
    async with contextlib.aclosing(fetch_logs(client, "default", "talker", tail=0, follow=True)) as stream:
        async for line in stream:
            followed.append(line)
            if len(followed) == 3:
                break
    assert all(line.startswith("tick-") for line in followed)
    numbers = [int(line.split("-")[1]) for line in followed]
    assert numbers == sorted(numbers) and len(set(numbers)) == 3
    with pytest.raises(NotFound):
        _ = [line async for line in fetch_logs(client, "default", "talker", container="nope")]
    await create_bound(client, pod_manifest("two", [sh("a", "sleep 1000"), sh("b", "sleep 1000")]), e2e_node)
    with pytest.raises(BadRequest):
        _ = [line async for line in fetch_logs(client, "default", "two")]


async def test_delete_removes_podman_pod(runner: ActorRunner, api: ApiActor, client: ApiClient,
                                         podman_service: PodmanService, e2e_node: str, tmp_path: Path) -> None:
    await start_kubelet(runner, podman_service, e2e_node, tmp_path)
    await create_bound(client, pod_manifest("doomed", [sh("c", "exec sleep 1000")], grace=1), e2e_node)
    await eventually(lambda: pod_where(client, "doomed", lambda p: phase(p) == "Running"), timeout=60,
                     what="doomed Running")
    runtime = PodmanRuntime(podman_service.socket_url)
    try:
        assert len(await runtime.list_sandboxes(e2e_node)) == 1
        deleting = await client.delete("Pod", "doomed", "default")
        assert deleting["metadata"]["deletionTimestamp"]

        async def gone() -> bool:
            try:
                await client.get("Pod", "doomed", "default")
            except NotFound:
                return True
            return False

        await eventually(gone, timeout=30, what="pod object deleted by the kubelet")
        assert await runtime.list_sandboxes(e2e_node) == []
        assert await runtime.list_containers(e2e_node) == []
    finally:
        await runtime.close()


async def test_restart_adopts_running_pods(runner: ActorRunner, api: ApiActor, client: ApiClient,
                                           podman_service: PodmanService, e2e_node: str, tmp_path: Path) -> None:
    _, stop = await start_kubelet(runner, podman_service, e2e_node, tmp_path)
    await create_bound(client, pod_manifest("steady", [sh("c", "exec sleep 1000")]), e2e_node)
    before = await eventually(lambda: pod_where(client, "steady", lambda p: phase(p) == "Running"), timeout=60,
                              what="steady Running")
    await stop_actor(runner, stop)
    agent, _ = await start_kubelet(runner, podman_service, e2e_node, tmp_path)
    await eventually(lambda: asyncio.sleep(0, agent.reconciles > 0), timeout=30, what="new kubelet reconciled")
    await asyncio.sleep(2)
    after = await client.get("Pod", "steady", "default")
    assert phase(after) == "Running"
    assert cstatus(after)["containerID"] == cstatus(before)["containerID"]
    assert cstatus(after)["restartCount"] == cstatus(before)["restartCount"] == 0
    runtime = PodmanRuntime(podman_service.socket_url)
    try:
        assert len(await runtime.list_sandboxes(e2e_node)) == 1
        assert len(await runtime.list_containers(e2e_node)) == 1
    finally:
        await runtime.close()


async def test_missing_image(runner: ActorRunner, api: ApiActor, client: ApiClient,
                             podman_service: PodmanService, e2e_node: str, tmp_path: Path) -> None:
    await start_kubelet(runner, podman_service, e2e_node, tmp_path)
    missing = {"name": "c", "image": "localhost/shoal/does-not-exist:1"}
    await create_bound(client, pod_manifest("noimage", [missing]), e2e_node)
    seen: set[str] = set()

    async def backing_off() -> bool:
        reason = waiting_reason(await client.get("Pod", "noimage", "default"))
        if reason:
            seen.add(reason)
        return reason == "ImagePullBackOff"

    await eventually(backing_off, timeout=60, interval=0.05, what="ImagePullBackOff")
    assert seen <= {"ContainerCreating", "ErrImagePull", "ImagePullBackOff"}
    assert phase(await client.get("Pod", "noimage", "default")) == "Pending"
