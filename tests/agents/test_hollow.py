"""Hollow nodes through the real API: 50 fake-runtime kubelets register, renew leases and run pods."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path
from typing import Any

from actors.api.server import ApiActor
from agents.hollow.nodes import HollowNodes, HollowSettings
from protocol.objects import condition_true, parse_time
from runtime.client import ApiClient
from runtime.nats_server import NatsServer
from tests.agents.kubelet_helpers import eventually, phase, pod_manifest
from tests.conftest import ActorRunner

NODES = 50
REPO = Path(__file__).resolve().parents[2]


async def test_fifty_hollow_nodes(runner: ActorRunner, api: ApiActor, client: ApiClient) -> None:
    hollow = HollowNodes(HollowSettings(nodes=NODES, lease_interval=1.0, status_interval=2.0, relist_interval=0.5))
    await runner.start(hollow, lambda: len(hollow.agents) == NODES)

    async def all_registered() -> bool:
        nodes = (await client.list("Node", label_selector="shoal.io/hollow=true")).items
        return len(nodes) == NODES and all(condition_true(n, "Ready") for n in nodes)

    await eventually(all_registered, timeout=60, interval=0.3, what="50 hollow nodes registered and Ready")
    async def all_leases() -> list[dict[str, object]] | None:
        items = (await client.list("Lease", "kube-node-lease")).items
        return items if len(items) == NODES else None

    leases = await eventually(all_leases, timeout=10, interval=0.3, what="50 leases")
    first = {lease["metadata"]["name"]: parse_time(lease["spec"]["renewTime"]) for lease in leases}

    async def renewed() -> bool:
        now = (await client.list("Lease", "kube-node-lease")).items
        return all((parse_time(x["spec"]["renewTime"]) or 0) > (first[x["metadata"]["name"]] or 0) for x in now)

    await eventually(renewed, timeout=10, interval=0.3, what="every lease renewed")

    names = []
    for i in range(100):
        pod = await client.create(pod_manifest(f"hp-{i}", [{"name": "c", "image": "busybox"}]))
        names.append(pod["metadata"]["name"])
    await asyncio.gather(*(client.bind(name, "default", f"hollow-{i % NODES}") for i, name in enumerate(names)))

    async def all_running() -> bool:
        pods = (await client.list("Pod", "default")).items
        return sum(1 for p in pods if phase(p) == "Running") == len(names)

    await eventually(all_running, timeout=60, interval=0.3, what="100 pods Running on hollow nodes")
    pods = (await client.list("Pod", "default")).items
    assert {p["status"]["hostIP"] for p in pods} and all(p["spec"]["nodeName"].startswith("hollow-") for p in pods)
    await eventually(lambda: asyncio.sleep(0, hollow.health()["pods_running"] == len(names)), timeout=10,
                     what="health counts pods")
    health = hollow.health()
    assert health["nodes"] == NODES and health["registered"] == NODES
    # each node only holds its own pods (server-side filtered watches)
    assert all(len(a.informer.store) == 2 for a in hollow.agents)


async def _bound_running(client: ApiClient, nodes: list[str], per_node: int) -> list[dict[str, Any]]:
    """Create ``per_node`` pods bound to each node; wait until all are Running; return them."""
    names = [f"st-{n}-{i}" for n in nodes for i in range(per_node)]
    for name in names:  # with a volume, as every pod has (admission adds the service account token's)
        manifest = pod_manifest(name, [{"name": "c", "image": "busybox",
                                        "volumeMounts": [{"name": "scratch", "mountPath": "/scratch"}]}])
        manifest["spec"]["volumes"] = [{"name": "scratch", "emptyDir": {}}]
        await client.create(manifest)
    await asyncio.gather(*(client.bind(name, "default", nodes[i // per_node]) for i, name in enumerate(names)))

    async def running() -> list[dict[str, Any]] | None:
        pods = [p for p in (await client.list("Pod", "default")).items if p["metadata"]["name"] in names]
        return pods if sum(1 for p in pods if phase(p) == "Running") == len(names) else None

    found: list[dict[str, Any]] = await eventually(running, timeout=60, interval=0.3, what="pods Running")
    return found


async def test_hollow_nodes_keep_their_state_apart_and_remove_it(runner: ActorRunner, api: ApiActor,
                                                                 client: ApiClient, tmp_path: Path) -> None:
    """Regression: every hollow node of every process shared /nonexistent/hollow and nothing removed it, so
    each node's 60 s resync read every pod directory ever made there (N nodes x all pods on the thread pool
    that container starts wait on): at 1,000 nodes sandboxes were made and containers never started."""
    hollow = HollowNodes(HollowSettings(nodes=3, prefix="st-", lease_interval=1.0, status_interval=2.0,
                                        relist_interval=0.5, state_parent=tmp_path))
    stop = await runner.start(hollow, lambda: len(hollow.agents) == 3)
    root = hollow.state_root
    assert root is not None and root.parent == tmp_path
    dirs = [a.config.state_dir for a in hollow.agents]
    assert dirs == [root / f"st-{i}" for i in range(3)]
    pods = await _bound_running(client, [f"st-{i}" for i in range(3)], 2)
    for agent in hollow.agents:  # each pod's volumes sit under its own node
        mine = {p["metadata"]["uid"] for p in pods if p["spec"]["nodeName"] == agent.config.node_name}
        assert agent.parts is not None and set(agent.parts.volumes.owned()) == mine
        assert {d.name for d in (agent.config.state_dir / "pods").iterdir()} == mine
    stop.set()
    await eventually(lambda: asyncio.sleep(0, not root.exists()), timeout=30, what="state root removed at close")


def _state_dirs(parent: Path) -> tuple[list[Path], list[Path]]:
    """The hollow state roots under ``parent`` and the pod directories in them."""
    roots = list(parent.glob("shoal-hollow-*"))
    return roots, [d for root in roots for d in root.glob("*/pods/*")]


async def test_hollow_process_stops_on_sigterm_and_leaves_nothing(api: ApiActor, client: ApiClient,
                                                                  nats_server: NatsServer, tmp_path: Path) -> None:
    """``python -m agents.hollow``: SIGTERM stops it (exit 0) and its state directory goes with it."""
    env = {**os.environ, "TMPDIR": str(tmp_path), "PYTHONPATH": str(REPO)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "agents.hollow", "--nodes", "4", "--prefix", "sig-", "--lease-interval", "1",
        "--relist-interval", "0.5", "--server", nats_server.url, env=env,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
    try:
        async def registered() -> bool:
            nodes = (await client.list("Node", label_selector="shoal.io/hollow=true")).items
            return len(nodes) == 4 and all(condition_true(n, "Ready") for n in nodes)

        await eventually(registered, timeout=90, interval=0.3, what="4 hollow nodes Ready")
        await _bound_running(client, [f"sig-{i}" for i in range(4)], 3)
        roots, pod_dirs = _state_dirs(tmp_path)
        assert len(roots) == 1 and len(pod_dirs) == 12
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 90) == 0
        await eventually(lambda: asyncio.sleep(0, _state_dirs(tmp_path) == ([], [])), timeout=30,
                         what="state root removed after the stop")
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_hollow_nodes_share_one_event_correlator(runner: ActorRunner, api: ApiActor, client: ApiClient) -> None:
    """The nodes of a hollow process record their pods' Events through one correlator (bounded once, not once
    per node), and each Event still names its own node as its source."""
    hollow = HollowNodes(HollowSettings(nodes=3, lease_interval=1.0, status_interval=2.0, relist_interval=0.5,
                                        record_events=True))
    await runner.start(hollow, lambda: len(hollow.agents) == 3)
    recorders = [a.parts.worker.executor.events for a in hollow.agents if a.parts is not None]
    assert len(recorders) == 3
    assert all(r is not None and r.correlator is hollow.events for r in recorders)
    for i in range(3):
        await client.create(pod_manifest(f"ev-{i}", [{"name": "c", "image": "busybox"}]))
        await client.bind(f"ev-{i}", "default", f"hollow-{i}")

    async def started() -> dict[str, str] | None:
        events = (await client.list("Event", "default")).items
        hosts = {e["involvedObject"]["name"]: e["source"]["host"] for e in events if e["reason"] == "Started"}
        return hosts if len(hosts) == 3 else None

    hosts = await eventually(started, timeout=30, interval=0.3, what="a Started event for each pod")
    assert hosts == {f"ev-{i}": f"hollow-{i}" for i in range(3)}
