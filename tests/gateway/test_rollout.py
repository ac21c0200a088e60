"""A Deployment rollout driven with the real kubectl through the gateway, with the controller manager
running and a stand-in kubelet marking pods Ready (``pod_status_simulator``): ``rollout status``, ``get -w``
seeing the rollout, ``set image``, ``rollout history``, ``rollout undo``, ``rollout restart`` and
``wait --for=condition=Available``, events (``get events``, ``describe``) and a cascading delete."""

from __future__ import annotations

from runtime.client import ApiClient
from runtime.informer import Informer
from tests.controllers.conftest import StartControllers, pod_status_simulator, start_controllers
from tests.gateway.conftest import Gateway, read_until
from tests.gateway.test_kubectl import MANIFEST

__all__ = ["pod_status_simulator", "start_controllers"]  # fixtures used here


async def test_rollout_through_kubectl(gateway: Gateway, api_client: ApiClient, start_controllers: StartControllers,
                                       pod_status_simulator: Informer) -> None:
    await start_controllers("deployment", "replicaset", "gc")
    deployment = MANIFEST.split("---")[0]
    await gateway.ok("apply", "-f", "-", stdin=deployment)
    out = await gateway.ok("rollout", "status", "deployment/web", "--timeout=60s")
    assert 'deployment "web" successfully rolled out' in out
    await gateway.ok("wait", "--for=condition=Available", "deployment/web", "--timeout=60s")
    pods = await gateway.ok("get", "pods", "-l", "app=web")
    assert pods.count("Running") == 2, pods

    watcher = await gateway.start("get", "deployments", "--watch")
    try:
        await read_until(watcher.stdout, "2/2")
        await gateway.ok("set", "image", "deployment/web", "web=localhost/shoal/busybox:v2")
        assert "successfully rolled out" in await gateway.ok("rollout", "status", "deployment/web", "--timeout=60s")
        seen = await read_until(watcher.stdout, "2/2")
        assert "web" in seen
    finally:
        watcher.kill()
        await watcher.wait()
    history = await gateway.ok("rollout", "history", "deployment/web")
    assert "REVISION" in history and history.split()[-2:] == ["2", "<none>"], history
    await gateway.ok("rollout", "undo", "deployment/web")
    await gateway.ok("rollout", "status", "deployment/web", "--timeout=60s")
    image = await gateway.ok("get", "deploy", "web", "-o", "jsonpath={.spec.template.spec.containers[0].image}")
    assert image == "localhost/shoal/busybox:latest"
    await gateway.ok("rollout", "restart", "deployment/web")
    dep = await api_client.get("Deployment", "web", "default")
    assert "kubectl.kubernetes.io/restartedAt" in dep["spec"]["template"]["metadata"]["annotations"]
    await gateway.ok("rollout", "status", "deployment/web", "--timeout=60s")
    events = await gateway.ok("get", "events")
    assert "ScalingReplicaSet" in events and "deployment/web" in events, events
    assert "ScalingReplicaSet" in await gateway.ok("describe", "deployment", "web")
    assert len((await gateway.ok("get", "rs", "-l", "app=web", "-o", "name")).split()) >= 2
    await gateway.ok("delete", "deployment", "web")  # the garbage collector takes its ReplicaSets and pods
    await gateway.ok("wait", "--for=delete", "pod", "-l", "app=web", "--timeout=60s")
    assert (await gateway.ok("get", "rs,pods", "-o", "name")).strip() == ""
