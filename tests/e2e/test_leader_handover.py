"""Two controller managers as real processes, leader election on: the leader is killed with SIGKILL while
a Deployment scales from 1 to 6; the standby takes the lease over within seconds and finishes the job,
and no pod is created twice.

Pods run on two fake-runtime kubelets (real kubelet processes, ``--runtime fake``), so this needs no
Podman. A watch on the Deployment's pods (label selector) counts every pod ever created and deleted.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from agents.kubelet.volumes import mounts_under
from runtime.client import ApiClient
from tests.conftest import cancel_and_wait
from tests.e2e.cluster import REPO, ProcessCluster

pytestmark = [pytest.mark.slow]

LEASE = "shoal-controller-manager"
MANAGERS = ("controllers-a", "controllers-b")

DEPLOYMENT = """apiVersion: apps/v1
kind: Deployment
metadata:
  name: ha
spec:
  replicas: 1
  selector:
    matchLabels:
      app: ha
  template:
    metadata:
      labels:
        app: ha
    spec:
      containers:
      - name: c
        image: localhost/shoal/busybox:latest
        command: ["sleep", "3600"]
"""


@dataclass
class HaStack:
    cluster: ProcessCluster
    nodes: tuple[str, str]
    root: Path


@pytest.fixture
def ha_stack(tmp_path: Path) -> Iterator[HaStack]:
    suffix = uuid.uuid4().hex[:6]
    nodes = (f"ha-a-{suffix}", f"ha-b-{suffix}")
    cluster = ProcessCluster(tmp_path)
    try:
        cluster.start_nats()
        cluster.start("api", "actors.api")
        cluster.start("scheduler", "actors.scheduler", "--no-leader-elect")
        for node in nodes:
            cluster.start(f"kubelet-{node}", "agents.kubelet", "--runtime", "fake", "--node-name", node,
                          "--state-dir", str(tmp_path / node), "--lease-interval", "2", "--status-interval", "2")
        for name in MANAGERS:
            cluster.start(name, "actors.controllers")
        yield HaStack(cluster, nodes, tmp_path)
    finally:
        cluster.stop()
    assert not mounts_under(tmp_path), "the stopped cluster left its pods' volumes mounted"


@pytest_asyncio.fixture
async def ha_client(ha_stack: HaStack) -> AsyncIterator[ApiClient]:
    nc, client = await ha_stack.cluster.client()
    try:
        await ha_stack.cluster.wait_api(client)
        yield client
    finally:
        await nc.close()


async def holder(client: ApiClient) -> str | None:
    try:
        lease = await client.get("Lease", LEASE, "kube-system")
    except Exception:
        return None
    return str((lease.get("spec") or {}).get("holderIdentity") or "") or None


def owned_by(pod: dict[str, Any], uid: str) -> bool:
    return any(ref.get("uid") == uid and ref.get("controller") for ref in pod["metadata"].get("ownerReferences") or [])


async def test_standby_takes_over_mid_scale_without_double_creation(ha_stack: HaStack, ha_client: ApiClient) -> None:
    cluster, client = ha_stack.cluster, ha_client

    async def nodes_ready() -> bool:
        items = (await client.list("Node")).items
        return sum(any(c["type"] == "Ready" and c["status"] == "True" for c in n["status"].get("conditions", []))
                   for n in items if n["metadata"]["name"] in ha_stack.nodes) == 2

    await cluster.eventually(nodes_ready, timeout=60, what="both fake nodes Ready")
    leader = str(await cluster.eventually(lambda: holder(client), timeout=60, what="a controller-manager leader"))

    manifest = ha_stack.root / "ha.yaml"
    manifest.write_text(DEPLOYMENT)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHOAL_")}
    proc = await asyncio.create_subprocess_exec(*cluster.cli_argv("apply", "-f", str(manifest)), env=env, cwd=REPO)
    assert await asyncio.wait_for(proc.wait(), 60) == 0

    async def running(n: int) -> list[dict[str, Any]]:
        pods = [p for p in (await client.list("Pod", "default", label_selector="app=ha")).items
                if not p["metadata"].get("deletionTimestamp") and (p.get("status") or {}).get("phase") == "Running"]
        return pods if len(pods) == n else []

    await cluster.eventually(lambda: running(1), timeout=60, what="the first pod Running")

    start = await client.list("Pod", "default", label_selector="app=ha")
    created: list[str] = [p["metadata"]["name"] for p in start.items]
    deleted: list[str] = []
    first_new = asyncio.Event()
    watch = client.watch("Pod", "default", label_selector="app=ha", resource_version=start.resource_version)

    async def follow() -> None:
        async for event in watch:
            if event.type == "ADDED":
                created.append(event.object["metadata"]["name"])
                first_new.set()
            elif event.type == "DELETED":
                deleted.append(event.object["metadata"]["name"])

    follower = asyncio.create_task(follow())
    try:
        leader_pid = int(leader.split("-")[-2])
        victim = next(name for name in MANAGERS if cluster.procs[name].pid == leader_pid)
        await client.patch("Deployment", "ha", {"spec": {"replicas": 6}}, "default")
        await asyncio.wait_for(first_new.wait(), 30)
        cluster.signal(victim, signal.SIGKILL)  # mid-scale, no chance to release the lease
        killed = time.monotonic()
        at_kill = len(created)

        async def new_leader() -> str | None:
            now = await holder(client)
            return now if now and now != leader else None

        successor = str(await cluster.eventually(new_leader, timeout=30, interval=0.1, what="the standby's takeover"))
        takeover = time.monotonic() - killed
        assert int(successor.split("-")[-2]) == next(cluster.procs[n].pid for n in MANAGERS if n != victim)

        await cluster.eventually(lambda: running(6), timeout=60, what="6 pods Running")
        rs_list = [r for r in (await client.list("ReplicaSet", "default")).items
                   if any(ref.get("name") == "ha" for ref in r["metadata"].get("ownerReferences") or [])]
        assert len(rs_list) == 1, [r["metadata"]["name"] for r in rs_list]  # no second ReplicaSet either
        [rs] = rs_list

        async def available() -> bool:
            d = await client.get("Deployment", "ha", "default")
            status = d.get("status") or {}
            return status.get("availableReplicas") == 6 and status.get("replicas") == 6

        await cluster.eventually(available, timeout=30, what="Deployment ha status 6 available")
        await asyncio.sleep(3)  # a late double creation would show now
        pods = [p for p in (await client.list("Pod", "default", label_selector="app=ha")).items
                if not p["metadata"].get("deletionTimestamp")]
        assert len([p for p in pods if owned_by(p, rs["metadata"]["uid"])]) == 6 == len(pods)
        assert len(set(created)) == len(created), created
        assert len(created) <= 6 + len(deleted), (created, deleted)
        assert cluster.exited() == {victim: -signal.SIGKILL}
        print(f"\nleader {victim} killed with {at_kill} of 6 pods created; standby took over after {takeover:.1f}s; "
              f"pods ever created {len(created)}, deleted {len(deleted)}")
        assert takeover < 20, f"takeover took {takeover:.1f}s"
    finally:
        await cancel_and_wait(follower)
        await watch.close()
