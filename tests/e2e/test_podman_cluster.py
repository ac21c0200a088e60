"""The whole stack with real Podman, every component its own process, driven with the ``shoal`` tool.

One cluster for the module (nats-server, API, scheduler, controller manager, a Podman kubelet with its own
node name and pod network, a proxy). The kubernetes.io ``nginx-deployment.yaml`` (image replaced by the
local busybox serving its hostname) is applied with ``shoal apply`` and reaches 3/3; a Service spreads
requests round-robin over its pods and follows readiness, scaling and deletion; an outside client written
only with nats-py and msgpack receives the rollout's events in order.

Each test first makes sure the Deployment is rolled out (``ensure_nginx``), so any one runs alone
(``-k``). Traffic goes only to loopback: pods live on the kubelet's loopback pod network and the
Service's cluster IP is a loopback address served by the proxy agent.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgpack
import nats
import nats.js.api
import pytest
import pytest_asyncio

from protocol.errors import NotFound
from runtime.client import ApiClient
from tests.e2e.cluster import (
    PODMAN_MARKS,
    REPO,
    ProcessCluster,
    podman_env,
    remove_podman_objects,
    start_podman_node,
)
from tests.subprocesses import Result, run_tool

pytestmark = PODMAN_MARKS

IMAGE = "localhost/shoal/busybox:latest"
SERVE = "mkdir -p /www /tmp && {index} > /www/index.html && touch /tmp/ready && exec httpd -f -p 80 -h /www"
V1 = SERVE.format(index="hostname")
V2 = SERVE.format(index="echo v2 $(hostname)")


def nginx_deployment(args: str = V1, replicas: int = 3) -> str:
    """kubernetes.io's nginx-deployment.yaml, the image replaced by the local busybox serving its hostname
    (and a readiness probe on a file, a short grace period)."""
    return f"""apiVersion: apps/v1
kind: Deployment
metadata:
  name: nginx-deployment
  labels:
    app: nginx
spec:
  replicas: {replicas}
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


@dataclass
class Stack:
    cluster: ProcessCluster
    node: str
    pod_cidr: str
    kubelet_state: Path
    manifests: Path
    kubelet_args: tuple[str, ...]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    root = tmp_path_factory.mktemp("e2e-podman")
    node = f"e2e-{uuid.uuid4().hex[:6]}"
    octet = int(uuid.uuid4().hex[:2], 16)
    pod_cidr = f"127.94.{octet}.0/24"
    kubelet_state = root / "kubelet"
    cluster = ProcessCluster(root)
    try:
        kubelet_args = start_podman_node(cluster, node, pod_cidr, kubelet_state)
        cluster.start("proxy", "agents.proxy", "--node-name", node, "--nodeport-addresses", "127.0.0.1",
                      "--drain-seconds", "1", "--datapath", "userspace")
        manifests = root / "manifests"
        manifests.mkdir()
        yield Stack(cluster, node, pod_cidr, kubelet_state, manifests, kubelet_args)
    finally:
        cluster.stop()  # first, so that the kubelet does not re-create what is removed next
        remove_podman_objects(node, podman_env(kubelet_state))


@pytest_asyncio.fixture
async def client(stack: Stack) -> AsyncIterator[ApiClient]:
    async with stack.cluster.ready_client(stack.node) as api:
        yield api


async def shoal(stack: Stack, *args: str, timeout: float = 60) -> Result:
    """``shoal --server URL args...`` as a user runs it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHOAL_")}
    return await run_tool(stack.cluster.cli_argv(*args), what=f"shoal {' '.join(args)}", env=env, cwd=REPO,
                          timeout=timeout)


async def must(stack: Stack, *args: str, timeout: float = 60) -> Result:
    result = await shoal(stack, *args, timeout=timeout)
    assert result.rc == 0, f"shoal {' '.join(args)}: {result}\n{stack.cluster.tails()}"
    return result


async def apply(stack: Stack, name: str, text: str) -> Result:
    path = stack.manifests / name
    path.write_text(text)
    return await must(stack, "apply", "-f", str(path))


async def rollout(stack: Stack) -> None:
    await must(stack, "rollout", "status", "deploy/nginx-deployment", "--timeout", "120", timeout=150)


async def ensure_nginx(stack: Stack, client: ApiClient, args: str | None = None,
                       replicas: int = 3) -> list[dict[str, Any]]:
    """The Deployment applied and rolled out with ``replicas`` ready pods (serving ``args``, by default
    what it serves now, else ``V1``); returns them."""
    if args is None:
        try:
            current = await client.get("Deployment", "nginx-deployment", "default")
            args = str(current["spec"]["template"]["spec"]["containers"][0]["command"][2])
        except NotFound:
            args = V1
    await apply(stack, "nginx-deployment.yaml", nginx_deployment(args, replicas))
    await rollout(stack)

    async def settled() -> list[dict[str, Any]]:
        pods = await nginx_pods(client)
        return pods if len(pods) == replicas and all(ready(p) for p in pods) else []

    return await stack.cluster.eventually(settled, timeout=60, what=f"{replicas} ready nginx pods, no others")


def ready(pod: dict[str, Any]) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


async def nginx_pods(client: ApiClient) -> list[dict[str, Any]]:
    """Every nginx pod still there (terminating ones too)."""
    return list((await client.list("Pod", "default", label_selector="app=nginx")).items)


async def ready_pods(client: ApiClient) -> list[dict[str, Any]]:
    return [p for p in await nginx_pods(client) if ready(p) and not p["metadata"].get("deletionTimestamp")]


async def endpoint_ips(client: ApiClient) -> set[str]:
    try:
        ep = await client.get("Endpoints", "nginx", "default")
    except Exception:
        return set()
    return {a["ip"] for s in ep.get("subsets") or [] for a in s.get("addresses") or []}


async def get(host: str, port: int) -> str:
    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 3)
    try:
        writer.write(b"GET / HTTP/1.0\r\nHost: e2e\r\n\r\n")
        await writer.drain()
        response = (await asyncio.wait_for(reader.read(), 5)).decode(errors="replace")
    finally:
        writer.close()
    head, _, body = response.partition("\r\n\r\n")
    if " 200 " not in head.split("\r\n", 1)[0]:
        raise OSError(f"no 200 from {host}:{port}: {response[:200]!r}")
    return body.strip()


async def hostnames(host: str, port: int, n: int = 30) -> Counter[str]:
    """Who answered ``n`` sequential requests (the last word of the body: "[v2] <hostname>")."""
    return Counter([(await get(host, port)).split()[-1] for _ in range(n)])


async def try_hostnames(host: str, port: int, n: int) -> Counter[str] | None:
    try:
        return await hostnames(host, port, n)
    except (OSError, TimeoutError, IndexError):
        return None


async def service_address(stack: Stack, client: ApiClient) -> tuple[str, int]:
    await apply(stack, "service.yaml", SERVICE)
    service = await client.get("Service", "nginx", "default")
    return service["spec"]["clusterIP"], 80


async def routed_only_to(stack: Stack, client: ApiClient, ip: str, port: int, pods: list[dict[str, Any]]) -> None:
    """Until the Endpoints list exactly ``pods`` and the proxy sends requests to them alone."""
    ips = {p["status"]["podIP"] for p in pods}
    names = {p["metadata"]["name"] for p in pods}

    async def endpoints_match() -> bool:
        return await endpoint_ips(client) == ips

    await stack.cluster.eventually(endpoints_match, timeout=60, what=f"Endpoints nginx = {sorted(ips)}")

    async def proxy_caught_up() -> bool:
        seen = await try_hostnames(ip, port, 2 * len(names))
        return seen is not None and set(seen) == names

    await stack.cluster.eventually(proxy_caught_up, timeout=15, what=f"the proxy routes to {sorted(names)} only")


class Load:
    """Requests one after another until stopped; counts answers and failures."""

    def __init__(self, ip: str, port: int) -> None:
        self.ip, self.port = ip, port
        self.ok = 0
        self.failures: list[str] = []
        self._task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while not self._stop.is_set():
            try:
                await get(self.ip, self.port)
                self.ok += 1
            except (OSError, TimeoutError) as exc:
                self.failures.append(repr(exc))
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            await self._task


def podman_exec(stack: Stack, pod: dict[str, Any], *command: str) -> None:
    container = pod["status"]["containerStatuses"][0]["containerID"].split("://", 1)[1]
    done = subprocess.run(["podman", "exec", container, *command], capture_output=True, text=True,
                          env=podman_env(stack.kubelet_state), check=False)
    assert done.returncode == 0, f"podman exec {container} {command}: {done.stderr}"


# -- 1. nginx-deployment ----------------------------------------------------------------------------
async def test_nginx_deployment_applied_with_shoal_reaches_3_of_3(stack: Stack, client: ApiClient) -> None:
    path = stack.manifests / "nginx-deployment.yaml"
    path.write_text(nginx_deployment())
    applied = await must(stack, "apply", "-f", str(path))
    assert "deployment.apps/nginx-deployment" in applied.out, applied
    await rollout(stack)
    table = await must(stack, "get", "deploy")
    row = next(line for line in table.out.splitlines() if line.startswith("nginx-deployment"))
    assert row.split()[1] == "3/3", table

    pods = await ready_pods(client)
    assert len(pods) == 3
    prefix = stack.pod_cidr.rsplit(".", 1)[0] + "."
    assert all(p["spec"]["nodeName"] == stack.node for p in pods)
    assert all(p["status"]["podIP"].startswith(prefix) for p in pods), [p["status"]["podIP"] for p in pods]
    for pod in pods:  # each pod serves its hostname at podIP:containerPort
        assert await get(pod["status"]["podIP"], 80) == pod["metadata"]["name"]
    wide = await must(stack, "get", "pods", "-l", "app=nginx", "-o", "wide")
    assert sum("Running" in line for line in wide.out.splitlines()) == 3, wide


# -- 2. Service: round-robin, readiness ---------------------------------------------------------------
async def test_service_round_robins_and_follows_readiness(stack: Stack, client: ApiClient) -> None:
    pods = await ensure_nginx(stack, client)
    ip, port = await service_address(stack, client)
    assert ip.startswith("198.19."), ip
    await routed_only_to(stack, client, ip, port, pods)
    seen = await hostnames(ip, port, 30)
    assert set(seen) == {p["metadata"]["name"] for p in pods}, seen
    assert max(seen.values()) - min(seen.values()) <= 1, f"not round-robin: {seen}"

    # a failing readiness probe takes one pod out of rotation ...
    victim, *others = pods
    podman_exec(stack, victim, "rm", "/tmp/ready")
    await routed_only_to(stack, client, ip, port, others)
    answers = await hostnames(ip, port, 30)
    assert sum(answers.values()) == 30 and set(answers) == {p["metadata"]["name"] for p in others}, answers
    victim_now = await client.get("Pod", victim["metadata"]["name"], "default")
    assert not ready(victim_now) and victim_now["status"]["phase"] == "Running"
    assert victim_now["status"]["containerStatuses"][0]["restartCount"] == 0  # readiness never restarts

    # ... and passing again brings it back
    podman_exec(stack, victim, "touch", "/tmp/ready")
    await routed_only_to(stack, client, ip, port, pods)


# -- 3. events of a rollout, to a plain NATS subscriber ----------------------------------------------
async def test_outside_subscriber_receives_rollout_events_in_order(stack: Stack, client: ApiClient) -> None:
    await ensure_nginx(stack, client)
    old_rs = {r["metadata"]["name"] for r in (await client.list("ReplicaSet", "default")).items
              if (r.get("spec") or {}).get("replicas")}
    assert len(old_rs) == 1, old_rs

    outside = await nats.connect(stack.cluster.url)  # nats-py and msgpack only, as any client could
    js = outside.jetstream()
    received: list[dict[str, Any]] = []

    async def collect(msg: Any) -> None:
        envelope = msgpack.unpackb(msg.data)
        received.append({**envelope["object"], "_change": envelope["type"], "_subject": msg.subject})

    sub = await js.subscribe("shoal.events.default.>", ordered_consumer=True,
                             deliver_policy=nats.js.api.DeliverPolicy.NEW, cb=collect)
    try:
        await ensure_nginx(stack, client, V2)

        def scaling() -> list[dict[str, Any]]:
            return [e for e in received if e.get("reason") == "ScalingReplicaSet"
                    and e["involvedObject"]["name"] == "nginx-deployment"]

        async def old_at_zero() -> bool:
            return any(e["message"].endswith(" to 0") for e in scaling())

        await stack.cluster.eventually(old_at_zero, timeout=30, what="the old ReplicaSet's scale-down to 0")
    finally:
        await sub.unsubscribe()
        await outside.close()

    events = scaling()
    assert all(e["_subject"].startswith("shoal.events.default.Deployment.nginx-deployment.") for e in events)
    messages = [e["message"] for e in events]
    [old] = old_rs
    new_rs = messages[0].split("replica set ")[1].split(" ")[0]
    assert new_rs != old, messages
    assert messages[0].startswith(f"Scaled up replica set {new_rs} from 0 to "), messages
    assert messages[-1] == f"Scaled down replica set {old} from 1 to 0", messages

    def steps(direction: str, rs: str) -> list[tuple[int, int]]:
        prefix = f"Scaled {direction} replica set {rs} from "
        return [(int(m.split()[-3]), int(m.split()[-1])) for m in messages if m.startswith(prefix)]

    ups, downs = steps("up", new_rs), steps("down", old)
    assert len(ups) + len(downs) == len(messages), messages  # nothing but the new RS up, the old one down
    assert [b for _, b in ups] == sorted(b for _, b in ups) and ups[-1][1] == 3, messages
    assert [b for _, b in downs] == sorted((b for _, b in downs), reverse=True) and downs[-1][1] == 0, messages
    assert all(ups[i][1] == ups[i + 1][0] for i in range(len(ups) - 1)), f"scale-ups do not chain: {messages}"
    assert all(downs[i][1] == downs[i + 1][0] for i in range(len(downs) - 1)), f"scale-downs do not chain: {messages}"
    assert downs[0][0] == 3
    # in the order they happened: each a new Event (count 1), times never going back
    assert all(e["_change"] == "ADDED" and e["count"] == 1 for e in events), events
    times = [(e["lastTimestamp"], e["eventTime"]) for e in events]
    assert times == sorted(times), times


# -- 4. scale down and delete: nothing routed to a dead endpoint ------------------------------------
async def test_scale_and_delete_never_route_to_a_dead_endpoint(stack: Stack, client: ApiClient) -> None:
    await ensure_nginx(stack, client)
    ip, port = await service_address(stack, client)
    await routed_only_to(stack, client, ip, port, await ready_pods(client))
    load = Load(ip, port)
    load.start()
    await must(stack, "scale", "deploy/nginx-deployment", "--replicas", "1")

    async def one_left() -> list[dict[str, Any]]:
        pods = await nginx_pods(client)  # the scaled-down ones gone, not only terminating
        return pods if len(pods) == 1 and ready(pods[0]) else []

    [survivor] = await stack.cluster.eventually(one_left, timeout=60, what="one nginx pod left")
    await routed_only_to(stack, client, ip, port, [survivor])
    await load.stop()
    assert load.ok > 0 and not load.failures, f"{load.ok} answered; failed during the scale-down: {load.failures}"
    answers = await hostnames(ip, port, 30)
    assert answers == Counter({survivor["metadata"]["name"]: 30})

    await must(stack, "delete", "pod", survivor["metadata"]["name"], "--wait=false")

    async def replaced() -> list[dict[str, Any]]:
        pods = await nginx_pods(client)
        return pods if len(pods) == 1 and pods[0]["metadata"]["uid"] != survivor["metadata"]["uid"] \
            and ready(pods[0]) else []

    [fresh] = await stack.cluster.eventually(replaced, timeout=60, what="the deleted pod replaced")
    await routed_only_to(stack, client, ip, port, [fresh])
    answers = await hostnames(ip, port, 30)
    assert answers == Counter({fresh["metadata"]["name"]: 30})


# -- 5. a restarted kubelet adopts its pods ---------------------------------------------------------
async def test_restarted_kubelet_process_adopts_running_containers(stack: Stack, client: ApiClient) -> None:
    before = {p["metadata"]["name"]: p for p in await ensure_nginx(stack, client, replicas=1)}
    ip, port = await service_address(stack, client)
    await routed_only_to(stack, client, ip, port, list(before.values()))
    assert stack.cluster.terminate("kubelet") == 0  # SIGTERM: it stops, its containers keep running
    restarted_at = time.time()
    stack.cluster.start("kubelet", "agents.kubelet", *stack.kubelet_args)

    async def heartbeat_after_restart() -> bool:
        lease = await client.get("Lease", stack.node, "kube-node-lease")
        renewed = str(lease["spec"].get("renewTime") or "")
        return renewed > time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(restarted_at))

    await stack.cluster.eventually(heartbeat_after_restart, timeout=60, what="the new kubelet's heartbeat")
    await asyncio.sleep(3)  # several relists and probe rounds of the new kubelet
    for name, old in before.items():
        now = await client.get("Pod", name, "default")
        assert now["metadata"]["uid"] == old["metadata"]["uid"] and ready(now)
        [was], [cur] = old["status"]["containerStatuses"], now["status"]["containerStatuses"]
        assert cur["containerID"] == was["containerID"] and cur["restartCount"] == was["restartCount"] == 0, cur
    running = subprocess.run(["podman", "ps", "-q", "--no-trunc", "--filter", f"label=io.shoal.node={stack.node}"],
                             capture_output=True, text=True, env=podman_env(stack.kubelet_state), check=True)
    ids = {p["status"]["containerStatuses"][0]["containerID"].split("://", 1)[1] for p in before.values()}
    assert ids <= set(running.stdout.split()), running.stdout
    answers = await hostnames(ip, port, 10)
    assert set(answers) == set(before), answers
