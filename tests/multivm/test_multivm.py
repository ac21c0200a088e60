"""Shoal across three "VMs" (network namespaces on a bridge): a 3-server NATS cluster with JetStream R3,
TLS and per-component users; two API actors with ``--replicas 3``; two controller managers electing a
leader; fake-runtime kubelets. A NATS server crash loses no acknowledged write, a dead leader is
replaced, a cut-off node goes NotReady and comes back, and NATS refuses a kubelet's write for another node.

The tests share one cluster (module scope) and run in file order; each leaves the cluster whole.
"""

from __future__ import annotations

import asyncio
import itertools
import signal
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest

from protocol.errors import AlreadyExists, Conflict, Forbidden, ShoalError, Timeout, Unavailable
from protocol.objects import condition
from runtime.client import ApiClient
from tests.multivm.cluster import NODES, PODMAN_NODE, Cluster, module_available, podman_available

pytestmark = pytest.mark.slow

T = TypeVar("T")
LEASE = ("Lease", "shoal-controller-manager", "kube-system")


async def eventually(probe: Callable[[], Awaitable[T | None]], timeout: float, what: str,
                     every: float = 0.2) -> T:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = await probe()
            if value is not None and value is not False:
                return value
        except ShoalError as exc:
            last = exc
        await asyncio.sleep(every)
    raise AssertionError(f"{what} did not happen within {timeout}s (last error: {last!r})")


async def admin(cluster: Cluster, timeout: float = 5, **options: Any) -> tuple[Any, ApiClient]:
    nc = await cluster.connect("admin", **options)
    return nc, ApiClient(nc, timeout=timeout)


async def test_datastore_is_replicated_three_times(multivm: Cluster) -> None:
    nc, client = await admin(multivm)
    try:
        js = nc.jetstream()
        for stream in ("KV_shoal", "SHOAL_EVENTS", "SHOAL_CHANGES"):
            info = await js.stream_info(stream)
            assert info.config.num_replicas == 3, stream
            assert info.cluster is not None and info.cluster.leader
            assert len(info.cluster.replicas or []) == 2, f"{stream}: {info.cluster}"
        assert (await client.get("Namespace", "default"))["metadata"]["name"] == "default"
    finally:
        await nc.close()


# -- (d) permissions ----------------------------------------------------------------------------
async def test_kubelet_may_write_its_own_node_only(multivm: Cluster) -> None:
    errors: list[str] = []

    async def on_error(exc: Exception) -> None:
        errors.append(str(exc))

    nc, client = await admin(multivm)
    kubelet_nc = await multivm.connect("kubelet-perm-a", error_cb=on_error)
    proxy_nc = await multivm.connect("proxy-perm-a", error_cb=on_error)
    try:
        node_b = await client.create({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "perm-b"}})
        kubelet = ApiClient(kubelet_nc, timeout=2, node_scope="perm-a")
        node_a = await kubelet.create({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "perm-a"}})
        status = {"conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}]}
        for _ in range(10):  # its own node: served (after the controllers' own writes, e.g. node IPAM's podCIDR)
            try:
                written = await kubelet.update_status({**node_a, "status": status})
                break
            except Conflict:
                node_a = await kubelet.get("Node", "perm-a")
        else:
            raise AssertionError("node perm-a's status kept conflicting")
        assert condition(written, "Ready") is not None

        forged = {**node_b, "status": {"conditions": [{"type": "Ready", "status": "False", "reason": "Forged"}]}}
        with pytest.raises(Forbidden):  # through its own node-scoped subject: the API refuses another node's
            await kubelet.update_status(forged)
        with pytest.raises((Timeout, Unavailable)):  # on the plain API subject: dropped by NATS
            await ApiClient(kubelet_nc, timeout=2).update_status(forged)
        await eventually(lambda: _async(any('shoal.api.status.nodes._.perm-b' in e for e in errors)), 5,
                         "a permissions violation for node perm-b's status subject")
        with pytest.raises((Timeout, Unavailable)):  # posing as node perm-b: dropped by NATS
            await ApiClient(kubelet_nc, timeout=2, node_scope="perm-b").update_status(forged)
        assert condition(await client.get("Node", "perm-b"), "Ready") is None

        with pytest.raises(Forbidden):  # a kubelet cannot create pods
            await kubelet.create({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "sneaky"},
                                  "spec": {"containers": [{"name": "c", "image": "x"}]}})
        proxy = ApiClient(proxy_nc, timeout=2)
        assert {n["metadata"]["name"] for n in (await proxy.list("Node")).items} >= {"perm-a", "perm-b"}
        with pytest.raises((Timeout, Unavailable)):  # the proxy only reads
            await proxy.delete("Node", "perm-b")
        assert any("shoal.api.delete.nodes._.perm-b" in e for e in errors), errors
    finally:
        for name in ("perm-a", "perm-b"):
            try:
                await client.delete("Node", name)
            except ShoalError:
                pass
        for conn in (kubelet_nc, proxy_nc, nc):
            await conn.close()


async def _async(value: T) -> T:
    return value


# -- (b) leader election --------------------------------------------------------------------------
async def test_standby_controller_manager_takes_over(multivm: Cluster) -> None:
    nc, client = await admin(multivm)
    try:
        async def holder() -> str | None:
            lease = await client.get(*LEASE)
            return (lease.get("spec") or {}).get("holderIdentity") or None

        leader_id = await eventually(holder, 30, "a controller-manager leader")
        managers = [p for p in multivm.procs if p.name.startswith("controller-manager") and p.alive()]
        leader = next(p for p in managers if f"-{p.pid}-" in leader_id)
        leader.kill(signal.SIGKILL)  # a crash: the lease is not released, the standby must wait it out
        killed_at = time.monotonic()

        async def new_holder() -> str | None:
            current = await holder()
            return current if current and current != leader_id else None

        successor = await eventually(new_holder, 25, "a new controller-manager leader")
        takeover = time.monotonic() - killed_at
        multivm.timings["controller_manager_takeover_s"] = round(takeover, 2)
        assert any(f"-{p.pid}-" in successor for p in managers if p is not leader)
        assert takeover < 20
        # restore a standby in the VM that lost its manager
        replacement = multivm.start_actor(f"{leader.name}-b", leader.vm, "controller-manager", "actors.controllers",
                                          *leader.argv[3:])
        multivm.wait_logged(replacement, "actor started")
    finally:
        await nc.close()


# -- (c) a node cut off ---------------------------------------------------------------------------
@pytest.mark.skipif(not module_available("agents.kubelet"), reason="agents.kubelet (fake runtime) is not there yet")
async def test_cut_off_node_goes_not_ready_and_heals(multivm: Cluster) -> None:
    nc, client = await admin(multivm)
    node = NODES[2]  # node-3 runs in vm3, which also hosts nats-3
    try:
        async def ready(name: str, want: bool) -> bool:
            cond = condition(await client.get("Node", name), "Ready") or {}
            return (cond.get("status") == "True") == want

        for name in NODES:
            await eventually(lambda name=name: ready(name, True), 40, f"{name} Ready")  # type: ignore[misc]
        multivm.net.cut(3)
        cut_at = time.monotonic()
        try:
            # clients of the cut-off server (any actor may use it) notice only by pings: up to 30 s today
            await eventually(lambda: ready(node, False), 75, f"{node} NotReady/Unknown after the cut")
            multivm.timings["node_not_ready_after_cut_s"] = round(time.monotonic() - cut_at, 2)
            cond = condition(await client.get("Node", node), "Ready") or {}
            assert cond.get("status") in ("Unknown", "False"), cond
            others = {name: await ready(name, True) for name in NODES[:2]}
            multivm.timings["other_nodes_ready_during_cut"] = all(others.values())
        finally:
            multivm.net.heal(3)
        healed_at = time.monotonic()
        await eventually(lambda: ready(node, True), 60, f"{node} Ready again after the link came back")
        multivm.timings["node_ready_after_heal_s"] = round(time.monotonic() - healed_at, 2)
        multivm.wait_nats((1, 2, 3))
    finally:
        await nc.close()


# -- (a) a NATS server crash ----------------------------------------------------------------------
async def test_nats_server_crash_loses_no_acknowledged_write(multivm: Cluster) -> None:
    # a request whose answer died with the server is asked again after 3 s (as a user's retry would)
    nc, client = await admin(multivm, timeout=3, reconnect_time_wait=0.1)
    js = nc.jetstream()
    acked: dict[str, float] = {}
    failures: list[str] = []
    stop = asyncio.Event()
    run = f"r{int(time.time()) % 100000}"

    async def writer(worker: int) -> None:
        i = 0
        while not stop.is_set():
            name = f"{run}-{worker}-{i}"
            cm = {"apiVersion": "v1", "kind": "ConfigMap",
                  "metadata": {"name": name, "namespace": "default", "labels": {"run": run}},
                  "data": {"i": str(i)}}
            try:
                await client.create(cm)
            except AlreadyExists:
                pass  # an earlier attempt was stored but its answer was lost: stored all the same
            except ShoalError as exc:
                failures.append(f"{type(exc).__name__}: {exc}")
                await asyncio.sleep(0.05)
                continue  # not acknowledged: try the same name again
            acked[name] = time.monotonic()
            i += 1

    writers = [asyncio.create_task(writer(w)) for w in range(4)]
    victim = 0
    try:
        await asyncio.sleep(3)
        async def stream_leader() -> str | None:
            info = await js.stream_info("KV_shoal")
            return info.cluster.leader if info.cluster and info.cluster.leader else None

        leader = await eventually(stream_leader, 20, "a leader for the KV stream")  # it may be re-electing
        victim = int(str(leader).rsplit("-", 1)[1])
        before = len(acked)
        multivm.nats[victim].kill(signal.SIGKILL)
        killed_at = time.monotonic()
        await asyncio.sleep(12)  # stream leader re-election takes a few seconds, more on a loaded machine
        stop.set()
        await asyncio.gather(*writers)
        after = sorted(t for t in acked.values() if t >= killed_at)
        assert len(after) > 20, (f"writes did not continue after nats-{victim} died ({len(after)} acked, "
                                 f"{len(failures)} refused, the last: {failures[-3:]})")
        times = sorted(acked.values())
        gap = max(b - a for a, b in itertools.pairwise(times) if b >= killed_at)
        multivm.timings["write_gap_after_nats_kill_s"] = round(max(gap, after[0] - killed_at), 2)
        multivm.timings["writes_acked_before_kill"] = before
        multivm.timings["writes_acked_total"] = len(acked)

        listed = {c["metadata"]["name"] for c in (await client.list("ConfigMap", "default",
                                                                    label_selector=f"run={run}")).items}
        missing = sorted(set(acked) - listed)
        assert not missing, f"{len(missing)} acknowledged creates lost, e.g. {missing[:5]}"
        for name in list(acked)[:: max(1, len(acked) // 50)]:
            assert (await client.get("ConfigMap", name, "default"))["data"]
    finally:
        stop.set()
        await asyncio.gather(*writers, return_exceptions=True)
        if victim and not multivm.nats[victim].alive():
            multivm.start_nats(victim)  # the same store: it catches up from the others
            multivm.wait_nats((1, 2, 3))
        await nc.close()
    if victim:
        nc2, _ = await admin(multivm)
        try:
            async def caught_up() -> bool:
                info = await nc2.jetstream().stream_info("KV_shoal")
                peers = info.cluster.replicas if info.cluster else []
                return len(peers or []) == 2 and all(p.current for p in peers or [])

            await eventually(caught_up, 30, f"nats-{victim} back as a current KV replica", every=0.5)
        finally:
            await nc2.close()


# -- a node of the multi-VM cluster runs real Podman containers ----------------------------------------
@pytest.mark.skipif(not podman_available(), reason="podman and busybox-static are needed for a real node")
async def test_a_vm_node_runs_real_podman_containers(multivm: Cluster) -> None:
    nc, client = await admin(multivm)
    try:
        async def node_ready() -> bool:
            try:
                node = await client.get("Node", PODMAN_NODE)
            except ShoalError:
                return False
            return (condition(node, "Ready") or {}).get("status") == "True"

        await eventually(node_ready, 90, f"node {PODMAN_NODE} (real Podman, on VM 1) Ready")
        await client.create({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "real", "namespace": "default"},
                             "spec": {"nodeName": PODMAN_NODE, "terminationGracePeriodSeconds": 1,
                                      "containers": [{"name": "c", "image": "localhost/shoal/busybox:latest",
                                                      "command": ["sh", "-c", "echo hello from a VM; sleep 3600"]}]}})

        async def running() -> dict[str, Any] | None:
            pod = await client.get("Pod", "real", "default")
            return pod if (pod.get("status") or {}).get("phase") == "Running" else None

        pod = await eventually(running, 90, "the pod Running in a Podman container on VM 1")
        assert pod["status"]["containerStatuses"][0]["containerID"].startswith("podman://")
        assert pod["status"]["hostIP"] == multivm.net.address(1)
        await client.delete("Pod", "real", "default", grace_period=1)

        async def gone() -> bool:
            try:
                await client.get("Pod", "real", "default")
                return False
            except ShoalError:
                return True

        await eventually(gone, 60, "the pod deleted by its kubelet")
    finally:
        await nc.close()
