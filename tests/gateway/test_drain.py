"""``kubectl drain`` through the gateway respects a PodDisruptionBudget and leaves DaemonSet pods: two
kubelets on the fake runtime, the scheduler, and the replicaset, daemonset and disruption controllers."""

from __future__ import annotations

from pathlib import Path

from agents.kubelet.agent import KubeletAgent
from agents.kubelet.config import KubeletConfig
from agents.kubelet.fake_runtime import FakeRuntime
from agents.kubelet.node import StaticMetrics
from agents.kubelet.probes import AlwaysPassProber
from protocol.objects import Obj, controller_of, is_deleting, pod_is_ready
from runtime.client import ApiClient
from tests.conftest import ActorRunner
from tests.controllers.conftest import eventually, start_manager
from tests.gateway.conftest import Gateway
from tests.scheduler.test_scheduler_integration import start_scheduler

CONTAINERS = [{"name": "c", "image": "img:1"}]


async def start_kubelet(runner: ActorRunner, runtime: FakeRuntime, node: str, root: Path) -> None:
    config = KubeletConfig(node_name=node, state_dir=root / node, relist_interval=0.2, measure_host=False)
    agent = KubeletAgent(config, runtime=runtime, runtime_name="fake", runtime_version="fake://0.1",
                         prober=AlwaysPassProber(runtime), metrics=StaticMetrics(), close_runtime=False)
    await runner.start(agent, lambda: agent.started.is_set())


async def pods_of(client: ApiClient, kind: str) -> list[Obj]:
    pods = (await client.list("Pod", "default")).items
    return [p for p in pods if (controller_of(p) or {}).get("kind") == kind and not is_deleting(p)]


async def test_drain_waits_for_the_budget_and_leaves_daemon_pods(gateway: Gateway, api_client: ApiClient,
                                                                 runner: ActorRunner, tmp_path: Path) -> None:
    runtime = FakeRuntime()
    await start_kubelet(runner, runtime, "n1", tmp_path)
    await start_scheduler(runner)
    await start_manager(runner, ["replicaset", "daemonset", "disruption"])
    await api_client.create({"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "db"},
                             "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "db"}},
                                      "template": {"metadata": {"labels": {"app": "db"}},
                                                   "spec": {"containers": CONTAINERS}}}})

    async def db_ready(node: str) -> bool:
        pods = await pods_of(api_client, "ReplicaSet")
        return len(pods) == 2 and all(pod_is_ready(p) and p["spec"].get("nodeName") == node for p in pods)

    await eventually(lambda: db_ready("n1"), timeout=30)  # both on n1: the only node yet
    await start_kubelet(runner, runtime, "n2", tmp_path)
    await api_client.create({"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "agent"},
                             "spec": {"selector": {"matchLabels": {"app": "agent"}},
                                      "template": {"metadata": {"labels": {"app": "agent"}},
                                                   "spec": {"containers": CONTAINERS}}}})

    async def daemons_ready() -> bool:
        pods = await pods_of(api_client, "DaemonSet")
        return sorted(p["spec"].get("nodeName") for p in pods if pod_is_ready(p)) == ["n1", "n2"]

    await eventually(daemons_ready, timeout=30)
    await gateway.ok("apply", "-f", "-", stdin="""\
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {name: db}
spec:
  minAvailable: 2
  selector: {matchLabels: {app: db}}
""")

    async def allowed(count: int) -> bool:
        status = (await api_client.get("PodDisruptionBudget", "db", "default")).get("status") or {}
        return status.get("currentHealthy") == 2 and status.get("disruptionsAllowed") == count

    await eventually(lambda: allowed(0), timeout=20)
    refused = await gateway.kubectl("drain", "n1", "--ignore-daemonsets", "--timeout=7s")
    assert refused.rc != 0, refused
    assert "Cannot evict pod as it would violate the pod's disruption budget" in refused.err, refused
    assert await db_ready("n1")  # nothing was evicted

    await gateway.ok("patch", "pdb", "db", "--type=merge", "-p", '{"spec": {"minAvailable": 1}}')
    await eventually(lambda: allowed(1), timeout=20)
    drained = await gateway.kubectl("drain", "n1", "--ignore-daemonsets", "--timeout=90s", timeout=120)
    assert drained.rc == 0 and "node/n1 drained" in drained.out, drained
    await eventually(lambda: db_ready("n2"), timeout=30)  # one at a time, each replaced on n2 first
    daemons = sorted(p["spec"].get("nodeName") for p in await pods_of(api_client, "DaemonSet"))
    assert daemons == ["n1", "n2"]  # DaemonSet pods stay
