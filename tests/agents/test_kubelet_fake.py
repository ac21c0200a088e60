"""The kubelet agent against the real API actor with the in-memory runtime: fast, no Podman needed."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from actors.api.server import ApiActor
from agents.kubelet.agent import KubeletAgent
from agents.kubelet.config import KubeletConfig
from agents.kubelet.fake_runtime import EXIT_AFTER_ENV, EXIT_CODE_ENV, FakeRuntime
from agents.kubelet.node import StaticMetrics
from agents.kubelet.probes import AlwaysPassProber
from protocol.kinds.pod import pod_status
from protocol.objects import condition
from runtime.client import ApiClient
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


def fake_kubelet(node: str, runtime: FakeRuntime, tmp_path: Path, **overrides: object) -> KubeletAgent:
    settings: dict[str, object] = {"backoff_base": 0.5, "backoff_max": 2.0, "relist_interval": 0.1,
                                   "lease_renew_interval": 0.5, "node_status_interval": 0.5,
                                   "measure_host": False, "state_dir": tmp_path}
    settings.update(overrides)
    config = KubeletConfig(node_name=node, **settings)  # type: ignore[arg-type]
    return KubeletAgent(config, runtime=runtime, runtime_name="fake", runtime_version="fake://0.1",
                        prober=AlwaysPassProber(runtime), metrics=StaticMetrics(), close_runtime=False)


def container(name: str = "app", image: str = "busybox", **env: str) -> dict[str, object]:
    return {"name": name, "image": image, "env": [{"name": k, "value": v} for k, v in env.items()]}


async def test_registers_node_and_renews_lease(runner: ActorRunner, api: ApiActor, client: ApiClient,
                                               tmp_path: Path) -> None:
    agent = fake_kubelet("node-a", FakeRuntime(), tmp_path)
    await runner.start(agent, started(agent))
    node = await eventually(lambda: client.get("Node", "node-a"), what="node registered")
    assert node["metadata"]["labels"]["kubernetes.io/hostname"] == "node-a"
    assert node["status"]["capacity"]["pods"] == "110"
    assert condition(node, "Ready")["status"] == "True"  # type: ignore[index]
    assert {a["type"] for a in node["status"]["addresses"]} == {"InternalIP", "Hostname"}
    lease = await eventually(lambda: client.get("Lease", "node-a", "kube-node-lease"), what="lease")
    first = lease["spec"]["renewTime"]
    assert lease["spec"]["holderIdentity"] == "node-a"
    assert lease["spec"]["leaseDurationSeconds"] == 40

    async def renewed() -> bool:
        return bool((await client.get("Lease", "node-a", "kube-node-lease"))["spec"]["renewTime"] != first)

    await eventually(renewed, timeout=5, what="lease renewed")


async def test_runs_pod_and_deletes_it(runner: ActorRunner, api: ApiActor, client: ApiClient,
                                       tmp_path: Path) -> None:
    runtime = FakeRuntime()
    agent = fake_kubelet("node-b", runtime, tmp_path)
    await runner.start(agent, started(agent))
    await create_bound(client, pod_manifest("web", [container()]), "node-b")
    pod = await eventually(lambda: pod_where(client, "web", lambda p: phase(p) == "Running" and is_ready(p)),
                           what="pod running")
    assert pod["status"]["podIP"].startswith("127.88.")
    assert cstatus(pod)["state"]["running"]["startedAt"]
    assert cstatus(pod)["containerID"].startswith("fake://")
    await client.delete("Pod", "web", "default")

    async def gone() -> bool:
        try:
            await client.get("Pod", "web", "default")
        except Exception:
            return True
        return False

    await eventually(gone, what="pod object deleted")
    assert runtime.counts() == (0, 0)


async def test_crash_loop_and_restart_policies(runner: ActorRunner, api: ApiActor, client: ApiClient,
                                               tmp_path: Path) -> None:
    agent = fake_kubelet("node-c", FakeRuntime(), tmp_path)
    await runner.start(agent, started(agent))
    crash = container(**{EXIT_AFTER_ENV: "0", EXIT_CODE_ENV: "1"})
    ok = container(**{EXIT_AFTER_ENV: "0", EXIT_CODE_ENV: "0"})
    await create_bound(client, pod_manifest("crash", [crash]), "node-c")
    await create_bound(client, pod_manifest("job", [ok], restart_policy="OnFailure"), "node-c")
    await create_bound(client, pod_manifest("once", [crash], restart_policy="Never"), "node-c")
    pod = await eventually(lambda: pod_where(
        client, "crash", lambda p: waiting_reason(p) == "CrashLoopBackOff" and cstatus(p)["restartCount"] >= 2),
        what="crash loop")
    assert cstatus(pod)["lastState"]["terminated"]["exitCode"] == 1
    assert phase(pod) == "Running"
    job = await eventually(lambda: pod_where(client, "job", lambda p: phase(p) == "Succeeded"), what="succeeded")
    assert cstatus(job)["restartCount"] == 0
    once = await eventually(lambda: pod_where(client, "once", lambda p: phase(p) == "Failed"), what="failed")
    assert cstatus(once)["state"]["terminated"]["exitCode"] == 1


async def test_missing_image(runner: ActorRunner, api: ApiActor, client: ApiClient, tmp_path: Path) -> None:
    agent = fake_kubelet("node-d", FakeRuntime(), tmp_path)
    await runner.start(agent, started(agent))
    await create_bound(client, pod_manifest("noimg", [container(image="registry.invalid/app:1")]), "node-d")
    pod = await eventually(lambda: pod_where(client, "noimg", lambda p: waiting_reason(p) == "ImagePullBackOff"),
                           what="ImagePullBackOff")
    assert phase(pod) == "Pending"


async def test_containers_get_service_environment_variables(runner: ActorRunner, api: ApiActor, client: ApiClient,
                                                           tmp_path: Path) -> None:
    await client.create({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web-db"},
                         "spec": {"type": "NodePort", "ports": [{"name": "sql", "port": 5432}]}})
    await client.create({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "cache"},
                         "spec": {"ports": [{"port": 6379}]}})
    runtime = FakeRuntime()
    agent = fake_kubelet("node-env", runtime, tmp_path, service_gateway="10.88.0.1")
    await runner.start(agent, started(agent))
    await eventually(lambda: _services_seen(agent, 2), what="services informer synced")
    await create_bound(client, pod_manifest("app", [container(CACHE_SERVICE_PORT="override")]), "node-env")
    await eventually(lambda: pod_where(client, "app", lambda p: phase(p) == "Running"), what="pod running")
    db = await client.get("Service", "web-db")
    cache = await client.get("Service", "cache")
    [env] = [c.env for c in runtime._containers.values() if c.name == "app"]
    assert env["WEB_DB_SERVICE_HOST"] == "10.88.0.1"  # node ports are served at the bridge gateway
    assert env["WEB_DB_SERVICE_PORT"] == env["WEB_DB_SERVICE_PORT_SQL"] == str(db["spec"]["ports"][0]["nodePort"])
    assert env["CACHE_SERVICE_HOST"] == cache["spec"]["clusterIP"]
    assert env["CACHE_SERVICE_PORT"] == "override"  # the pod's own env wins


async def _services_seen(agent: KubeletAgent, n: int) -> bool:
    return agent.services is not None and len(agent.services.items()) >= n


async def test_init_containers_run_in_order_before_the_app(runner: ActorRunner, api: ApiActor, client: ApiClient,
                                                          tmp_path: Path) -> None:
    runtime = FakeRuntime()
    agent = fake_kubelet("node-init", runtime, tmp_path)
    await runner.start(agent, started(agent))
    quick = {EXIT_AFTER_ENV: "0.2", EXIT_CODE_ENV: "0"}
    manifest = pod_manifest("init", [container()])
    manifest["spec"]["initContainers"] = [container("first", **quick), container("second", **quick)]
    await create_bound(client, manifest, "node-init")
    pod = await eventually(lambda: pod_where(client, "init", lambda p: phase(p) == "Running"), what="pod running")
    assert [s["name"] for s in pod["status"]["initContainerStatuses"]] == ["first", "second"]
    assert all(s["ready"] and s["state"]["terminated"]["exitCode"] == 0
               for s in pod["status"]["initContainerStatuses"])
    assert condition(pod, "Initialized")["status"] == "True"  # type: ignore[index]
    seen = {c.name: c for c in await runtime.list_containers("node-init")}
    first, second, app = seen["first"], seen["second"], seen["app"]
    assert first.finished_at is not None and second.started_at is not None and second.finished_at is not None
    assert app.started_at is not None
    assert first.finished_at <= second.started_at and second.finished_at <= app.started_at


async def test_a_failed_init_container_fails_the_pod_or_is_retried(runner: ActorRunner, api: ApiActor,
                                                                   client: ApiClient, tmp_path: Path) -> None:
    runtime = FakeRuntime()
    agent = fake_kubelet("node-initfail", runtime, tmp_path)
    await runner.start(agent, started(agent))
    for name, policy in (("never", "Never"), ("retried", "OnFailure")):
        manifest = pod_manifest(name, [container()], restart_policy=policy)
        manifest["spec"]["initContainers"] = [container("setup", **{EXIT_AFTER_ENV: "0", EXIT_CODE_ENV: "3"})]
        await create_bound(client, manifest, "node-initfail")
    never = await eventually(lambda: pod_where(client, "never", lambda p: phase(p) == "Failed"), what="pod failed")
    assert pod_status(never) == "Init:Error"
    assert condition(never, "Initialized")["status"] == "False"  # type: ignore[index]
    retried = await eventually(lambda: pod_where(
        client, "retried", lambda p: pod_status(p) == "Init:CrashLoopBackOff"
        and p["status"]["initContainerStatuses"][0]["restartCount"] >= 2), what="init crash loop")
    assert phase(retried) == "Pending"
    assert [c.name for c in await runtime.list_containers("node-initfail")].count("app") == 0


async def test_fake_runtime_records_mounts_and_resolved_env(runner: ActorRunner, api: ApiActor, client: ApiClient,
                                                            tmp_path: Path) -> None:
    runtime = FakeRuntime()
    agent = fake_kubelet("node-vol", runtime, tmp_path)
    await runner.start(agent, started(agent))
    await client.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg"}, "data": {"k": "v"}})
    spec = {**container(GREETING="hi-$(K)"), "env": [
        {"name": "K", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "k"}}},
        {"name": "GREETING", "value": "hi-$(K)"}],
        "volumeMounts": [{"name": "cfg", "mountPath": "/etc/cfg"},
                         {"name": "tmp", "mountPath": "/tmp", "readOnly": True}]}
    pod = pod_manifest("mounts", [spec])
    pod["spec"]["volumes"] = [{"name": "cfg", "configMap": {"name": "cfg"}}, {"name": "tmp", "emptyDir": {}}]
    created = await create_bound(client, pod, "node-vol")
    await eventually(lambda: pod_where(client, "mounts", lambda p: phase(p) == "Running"), what="pod running")
    [c] = [c for c in runtime._containers.values() if c.name == "app"]
    base = tmp_path / "pods" / created["metadata"]["uid"] / "volumes"
    assert [(m.destination, m.source, m.read_only) for m in c.mounts if m.destination != "/dev/termination-log"] == [
        ("/etc/cfg", str(base / "kubernetes.io~configmap" / "cfg"), True),
        ("/tmp", str(base / "kubernetes.io~empty-dir" / "tmp"), True)]
    assert c.env["K"] == "v" and c.env["GREETING"] == "hi-v"
    assert (base / "kubernetes.io~configmap" / "cfg" / "k").read_text() == "v"


async def test_phase_delays_the_first_lease_renewal(runner: ActorRunner, api: ApiActor, client: ApiClient,
                                                    tmp_path: Path) -> None:
    """Half-way into a 4 s lease interval: the Lease is first written at least ~2 s after the Node."""
    agent = fake_kubelet("node-ph", FakeRuntime(), tmp_path, lease_renew_interval=4.0, phase=0.5)
    await runner.start(agent, started(agent))
    await eventually(lambda: client.get("Node", "node-ph"), interval=0.02, what="node registered")
    seen = time.monotonic()
    await eventually(lambda: client.get("Lease", "node-ph", "kube-node-lease"), interval=0.02, what="lease")
    assert time.monotonic() - seen >= 1.5


async def test_phase_brings_the_first_pod_resync_forward(runner: ActorRunner, api: ApiActor, client: ApiClient,
                                                         tmp_path: Path) -> None:
    """Every 60 s a kubelet resyncs its pods (and sweeps orphaned volumes); at phase 0.95 the first comes ~3 s
    after the start, at phase 0 a full interval after it, so kubelets with spread phases resync apart."""
    resynced: dict[str, float] = {}
    began = time.monotonic()
    agents = {name: fake_kubelet(name, FakeRuntime(), tmp_path / name, phase=p)
              for name, p in (("node-early", 0.95), ("node-plain", 0.0))}
    for name, agent in agents.items():
        await runner.start(agent, started(agent))
        parts = agent.parts
        assert parts is not None
        sweep = parts.volumes.cleanup_orphans

        async def spy(live: set[str], sweep: Any = sweep, name: str = name) -> None:
            resynced.setdefault(name, time.monotonic() - began)
            await sweep(live)

        parts.volumes.cleanup_orphans = spy  # type: ignore[method-assign]
    await eventually(lambda: asyncio.sleep(0, "node-early" in resynced), timeout=15, what="the early node resynced")
    assert resynced["node-early"] >= 2.0
    assert "node-plain" not in resynced


def test_phase_outside_a_period_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="0 <= phase < 1"):
        KubeletConfig(node_name="n", state_dir=tmp_path, phase=1.0)
