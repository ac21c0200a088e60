"""The whole stack with real Podman: a Deployment applied with `shoal apply` reaches 3/3 Ready, a Service
spreads requests over its pods and follows readiness and scaling, and an outside NATS client receives the
rollout's events in order.

Everything runs in this process except the admin tool (a subprocess, as a user runs it) and the
containers. Traffic goes only to loopback: pods live on the kubelet's loopback pod network and the
Service's cluster IP is a loopback address served by the proxy agent.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import msgpack
import nats
import pytest
import pytest_asyncio

from actors.controllers.manager import ControllerManager
from actors.scheduler.actor import SchedulerActor, SchedulerSettings
from agents.kubelet.agent import KubeletAgent
from agents.kubelet.config import KubeletConfig
from agents.kubelet.images import ensure_local_images
from agents.kubelet.podman_runtime import PodmanRuntime
from agents.kubelet.podman_service import PodmanService, start_podman_service
from agents.proxy.agent import ProxyAgent
from protocol.objects import pod_is_ready
from runtime.client import ApiClient
from tests.cli.conftest import ShoalCli
from tests.conftest import ActorRunner
from tests.controllers.conftest import eventually

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(shutil.which("podman") is None, reason="podman is not installed")]

IMAGE = "localhost/shoal/busybox:latest"
SERVE = "mkdir -p /www /tmp && hostname > /www/index.html && touch /tmp/ready && exec httpd -f -p 80 -h /www"


def nginx_deployment(args: str = SERVE) -> str:
    """The kubernetes.io nginx-deployment.yaml, with the local busybox image serving its hostname."""
    return f"""apiVersion: apps/v1
kind: Deployment
metadata:
  name: nginx-deployment
  labels:
    app: nginx
spec:
  replicas: 3
  selector:
    matchLabels:
      app: nginx
  template:
    metadata:
      labels:
        app: nginx
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: nginx
        image: {IMAGE}
        command: ["sh", "-c", "{args}"]
        ports:
        - containerPort: 80
        readinessProbe:
          exec:
            command: ["test", "-f", "/tmp/ready"]
          periodSeconds: 1
"""


SERVICE = """apiVersion: v1
kind: Service
metadata:
  name: nginx
spec:
  selector:
    app: nginx
  ports:
  - port: 80
    targetPort: 80
"""


@pytest_asyncio.fixture
async def podman(tmp_path: Path) -> AsyncIterator[PodmanService]:
    service = await start_podman_service(state_dir=tmp_path / "podman")
    try:
        await asyncio.to_thread(ensure_local_images, service.env)
        yield service
    finally:
        await service.close()


@pytest_asyncio.fixture
async def cluster(runner: ActorRunner, podman: PodmanService, client: ApiClient, nats_server: Any,
                  tmp_path: Path) -> AsyncIterator[str]:
    """Scheduler, controllers, one real kubelet and a proxy; yields the node name. Cleans up its pods."""
    node = f"e2e-{uuid.uuid4().hex[:6]}"
    scheduler = SchedulerActor(SchedulerSettings(leader_elect=False))
    await runner.start(scheduler, ready=scheduler.cache.ready.is_set)
    manager = ControllerManager(["deployment", "replicaset", "endpoints"], leader_elect=False)
    await runner.start(manager, ready=lambda: bool(manager.controllers) and all(
        getattr(c, "running", False) for c in manager.controllers))
    octet = int(uuid.uuid4().hex[:2], 16)
    config = KubeletConfig(node_name=node, state_dir=tmp_path / "kubelet", pod_cidr=f"127.95.{octet}.0/24",
                           relist_interval=0.5, lease_renew_interval=2.0, node_status_interval=2.0,
                           backoff_base=1.0, backoff_max=4.0)
    kubelet = KubeletAgent(config, runtime=PodmanRuntime(podman.socket_url), runtime_version="podman://e2e")
    await runner.start(kubelet, lambda: kubelet.started.is_set())
    proxy = ProxyAgent(node, node_addresses=["127.0.0.1"], drain_seconds=1)
    await runner.start(proxy, ready=lambda: proxy.synced.is_set())
    try:
        yield node
    finally:
        await runner.stop_all()
        runtime = PodmanRuntime(podman.socket_url)
        try:
            for sandbox in await runtime.list_sandboxes(node):
                await runtime.remove_sandbox(sandbox.id)
        finally:
            await runtime.close()


async def get(host: str, port: int) -> str:
    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 3)
    writer.write(b"GET / HTTP/1.0\r\nHost: e2e\r\n\r\n")
    await writer.drain()
    body = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    return body.decode(errors="replace").rsplit("\r\n\r\n", 1)[-1].strip()


async def hostnames(host: str, port: int, n: int = 30) -> Counter[str]:
    return Counter([(await get(host, port)).split()[-1] for _ in range(n)])  # "[v2] <hostname>"


async def ready_pods(client: ApiClient) -> list[dict[str, Any]]:
    pods = (await client.list("Pod", "default", label_selector="app=nginx")).items
    return [p for p in pods if pod_is_ready(p) and not p["metadata"].get("deletionTimestamp")]


async def endpoint_ips(client: ApiClient) -> set[str]:
    try:
        ep = await client.get("Endpoints", "nginx")
    except Exception:
        return set()
    return {a["ip"] for s in ep.get("subsets") or [] for a in s.get("addresses") or []}


async def test_deployment_service_readiness_scaling_and_events(cluster: str, client: ApiClient, nats_server: Any,
                                                               tmp_path: Path) -> None:
    cli = ShoalCli(nats_server.url)
    manifest = tmp_path / "nginx-deployment.yaml"
    manifest.write_text(nginx_deployment())
    applied = await cli("apply", "-f", str(manifest))
    assert applied.rc == 0 and "deployment.apps/nginx-deployment created" in applied.out, applied
    status = await cli("rollout", "status", "deploy/nginx-deployment", "--timeout", "120", timeout=150)
    assert status.rc == 0, (status, [p.get("status") for p in (await client.list("Pod", "default")).items])
    table = await cli("get", "deploy")
    assert "nginx-deployment" in table.out and "3/3" in table.out, table

    svc_file = tmp_path / "svc.yaml"
    svc_file.write_text(SERVICE)
    assert (await cli("apply", "-f", str(svc_file))).rc == 0
    service = await client.get("Service", "nginx")
    ip, port = service["spec"]["clusterIP"], 80
    pods = await ready_pods(client)
    pod_ips = {p["status"]["podIP"] for p in pods}
    await eventually(lambda: _equal(endpoint_ips(client), pod_ips), timeout=30)
    seen = await eventually(lambda: _all_three(ip, port), timeout=30)
    assert set(seen) == {p["metadata"]["name"] for p in pods}, seen  # round-robin reaches every pod

    # readiness: one pod stops being ready and leaves the rotation
    victim = pods[0]
    container = victim["status"]["containerStatuses"][0]["containerID"].split("://", 1)[1]
    subprocess.run(["podman", "exec", container, "rm", "/tmp/ready"], check=True, capture_output=True,
                   env={**dict(__import__("os").environ), **podman_env()})
    await eventually(lambda: _equal(endpoint_ips(client), pod_ips - {victim["status"]["podIP"]}), timeout=30)
    await eventually(lambda: _avoids(ip, port, victim["metadata"]["name"]), timeout=10)  # the proxy caught up
    after = await hostnames(ip, port)
    assert victim["metadata"]["name"] not in after and sum(after.values()) == 30

    # an outside subscriber (nats-py + msgpack only) follows the rollout's events
    outside = await nats.connect(nats_server.url)
    js = outside.jetstream()
    received: list[dict[str, Any]] = []
    sub = await js.subscribe("shoal.events.default.Deployment.nginx-deployment", ordered_consumer=True,
                             deliver_policy=nats.js.api.DeliverPolicy.NEW,
                             cb=_collector(received))
    try:
        manifest.write_text(nginx_deployment(SERVE.replace("hostname >", "echo v2 $(hostname) >")))
        assert (await cli("apply", "-f", str(manifest))).rc == 0
        assert (await cli("rollout", "status", "deploy/nginx-deployment", "--timeout", "120", timeout=150)).rc == 0
        await eventually(lambda: _scaled_down_to_zero(received), timeout=20)
    finally:
        await sub.unsubscribe()
        await outside.close()
    reasons = [e["reason"] for e in received]
    assert set(reasons) == {"ScalingReplicaSet"}, reasons
    messages = [e["message"] for e in received]
    new_rs = messages[0].split("replica set ")[1].split(" ")[0]
    assert messages[0].startswith("Scaled up replica set") and new_rs in messages[0]
    assert "to 0" in messages[-1] and new_rs not in messages[-1], messages  # the old one goes last

    # scale to 1 and delete a pod: no request reaches a dead endpoint
    assert (await cli("scale", "deploy/nginx-deployment", "--replicas", "1")).rc == 0
    await eventually(lambda: _count(endpoint_ips(client), 1), timeout=60)
    survivors = await ready_pods(client)
    await eventually(lambda: _only(ip, port, {p["metadata"]["name"] for p in survivors}), timeout=10)
    answers = await hostnames(ip, port)
    assert sum(answers.values()) == 30 and set(answers) == {p["metadata"]["name"] for p in survivors}

    # delete the last pod: its replacement takes over and no request goes to the dead one
    [old] = survivors
    assert (await cli("delete", "pod", old["metadata"]["name"], "--wait=false")).rc == 0

    async def replaced() -> list[dict[str, Any]]:
        fresh = [p for p in await ready_pods(client) if p["metadata"]["name"] != old["metadata"]["name"]]
        ips = await endpoint_ips(client)
        return fresh if fresh and ips == {fresh[0]["status"]["podIP"]} else []

    [new] = await eventually(replaced, timeout=60)
    await eventually(lambda: _only(ip, port, {new["metadata"]["name"]}), timeout=10)
    answers = await hostnames(ip, port)
    assert answers == Counter({new["metadata"]["name"]: 30})


def podman_env() -> dict[str, str]:
    conf = Path("/tmp")  # the e2e podman service detected its config; CLI podman needs the same ulimits
    found = sorted(conf.glob("pytest-of-*/pytest-*/*/podman/containers.conf"), key=lambda p: p.stat().st_mtime)
    return {"CONTAINERS_CONF": str(found[-1])} if found else {}


def _collector(received: list[dict[str, Any]]) -> Any:
    async def collect(msg: Any) -> None:
        received.append(msgpack.unpackb(msg.data)["object"])

    return collect


async def _scaled_down_to_zero(received: list[dict[str, Any]]) -> bool:
    return any("to 0" in e.get("message", "") for e in received)


async def _equal(current: Any, expected: set[str]) -> bool:
    return bool(await current == expected)


async def _count(current: Any, n: int) -> bool:
    return len(await current) == n


async def _avoids(ip: str, port: int, name: str) -> bool:
    return name not in await hostnames(ip, port, 6)


async def _only(ip: str, port: int, names: set[str]) -> bool:
    return set(await hostnames(ip, port, 6)) == names


async def _all_three(ip: str, port: int) -> Counter[str] | None:
    try:
        seen = await hostnames(ip, port, 9)
    except OSError:
        return None
    return seen if len(seen) == 3 else None
