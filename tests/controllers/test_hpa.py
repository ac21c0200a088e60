"""The HorizontalPodAutoscaler end to end: a real nats-server, API, scheduler, controller manager (deployment,
replicaset and HPA controllers) and hollow kubelets whose fake runtime reports each container's scripted CPU
use (``SHOAL_FAKE_CPU_MILLICORES``) on ``shoal.node.<node>.metrics``."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from agents.hollow.nodes import HollowNodes
from protocol.objects import Obj, name_of
from runtime.client import ApiClient
from runtime.nats_server import NatsServer
from runtime.node_metrics import node_pod_usage
from tests.cli.conftest import ShoalCli
from tests.conftest import ActorRunner
from tests.controllers.conftest import StartControllers, eventually
from tests.controllers.test_daemonset import start_nodes
from tests.scheduler.test_scheduler_integration import start_scheduler

NS = "default"


def deployment(millicores: int) -> Obj:
    container = {"name": "app", "image": "app:1", "resources": {"requests": {"cpu": "200m"}},
                 "env": [{"name": "SHOAL_FAKE_CPU_MILLICORES", "value": str(millicores)}]}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": NS},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [container]}}}}


def autoscaler(down_window: int) -> Obj:
    return {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "web", "namespace": NS},
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                     "minReplicas": 1, "maxReplicas": 5,
                     "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {
                         "type": "Utilization", "averageUtilization": 50}}}],
                     "behavior": {"scaleDown": {"stabilizationWindowSeconds": down_window}}}}


@pytest.fixture
async def cluster(runner: ActorRunner, client: ApiClient, start_controllers: StartControllers
                  ) -> AsyncIterator[HollowNodes]:
    hollow, _ = await start_nodes(runner, client, 2)
    await start_scheduler(runner)
    await start_controllers("deployment", "replicaset", "horizontalpodautoscaling", hpa_sync_period=1.0)
    yield hollow


async def replicas(client: ApiClient) -> int:
    return int((await client.get("Deployment", "web", NS))["spec"]["replicas"])


async def test_kubelet_reports_the_fake_usage(nats_server: NatsServer, client: ApiClient, cluster: HollowNodes
                                              ) -> None:
    await client.create(deployment(300))

    async def sampled() -> int | None:
        pods = [p for p in (await client.list("Pod", NS)).items if (p.get("spec") or {}).get("nodeName")]
        for pod in pods:
            for sample in await node_pod_usage(client, pod["spec"]["nodeName"]):
                if sample.name == name_of(pod) and sample.window > 0:
                    return sample.cpu_millicores
        return None

    assert await eventually(sampled, timeout=30) == 300
    top = await ShoalCli(nats_server.url)("top", "pods")
    assert top.rc == 0, top
    header, row = top.out.splitlines()
    assert header.split() == ["POD", "CPU(cores)", "MEMORY(bytes)"]
    assert row.split()[0].startswith("web-") and row.split()[1:] == ["300m", "0Mi"], top


async def test_hpa_scales_a_deployment_up_under_load_and_down_after_the_window(
        nats_server: NatsServer, client: ApiClient, cluster: HollowNodes) -> None:
    await client.create(deployment(400))  # 200% of its 200m request, the target is 50%
    await client.create(autoscaler(down_window=3))

    async def at_max() -> bool:
        return await replicas(client) == 5

    await eventually(at_max, timeout=60, interval=0.2)
    events = [e for e in (await client.list("Event", NS)).items if e["involvedObject"]["name"] == "web"
              and e["involvedObject"]["kind"] == "HorizontalPodAutoscaler"]
    assert any(e["reason"] == "SuccessfulRescale" and e["message"].startswith("New size: ")
               and e["message"].endswith("reason: cpu resource utilization (percentage of request) above target")
               for e in events), events
    async def status_at_max() -> Obj | None:
        hpa = await client.get("HorizontalPodAutoscaler", "web", NS)
        status = hpa.get("status") or {}
        return hpa if status.get("desiredReplicas") == status.get("currentReplicas") == 5 else None

    hpa = await eventually(status_at_max, timeout=30)
    assert hpa["status"]["currentMetrics"][0]["resource"]["name"] == "cpu"
    table = await ShoalCli(nats_server.url)("get", "hpa")
    header, row = table.out.splitlines()[:2]
    assert header.split() == ["NAME", "REFERENCE", "TARGETS", "MINPODS", "MAXPODS", "REPLICAS", "AGE"]
    assert row.split()[:3] == ["web", "Deployment/web", "cpu:"] and row.split()[4:7] == ["1", "5", "5"], table

    # the load drops (a new template using 5 m): after the 3 s window the deployment goes back to 1
    low = deployment(10)["spec"]["template"]
    await client.patch("Deployment", "web", {"spec": {"template": low}}, NS)

    async def at_min() -> bool:
        return await replicas(client) == 1

    await eventually(at_min, timeout=90, interval=0.2)
    events = [e for e in (await client.list("Event", NS)).items if e["involvedObject"]["name"] == "web"
              and e["reason"] == "SuccessfulRescale"]
    assert any(e["message"] == "New size: 1; reason: All metrics below target" for e in events), events
