"""``kubectl top pods`` through the gateway: ``metrics.k8s.io/v1beta1`` PodMetrics read from a kubelet on the
fake runtime, which reports each container's scripted use (``SHOAL_FAKE_CPU_MILLICORES``/``_MEMORY_BYTES``)."""

from __future__ import annotations

from pathlib import Path

from agents.kubelet.fake_runtime import FakeRuntime
from protocol.objects import pod_is_ready
from runtime.client import ApiClient
from tests.conftest import ActorRunner
from tests.controllers.conftest import eventually
from tests.gateway.conftest import Gateway
from tests.gateway.test_drain import start_kubelet
from tests.scheduler.test_scheduler_integration import start_scheduler


async def test_kubectl_top_pods(gateway: Gateway, api_client: ApiClient, runner: ActorRunner, tmp_path: Path) -> None:
    await start_kubelet(runner, FakeRuntime(), "n1", tmp_path)
    await start_scheduler(runner)
    env = [{"name": "SHOAL_FAKE_CPU_MILLICORES", "value": "250"},
           {"name": "SHOAL_FAKE_MEMORY_BYTES", "value": str(64 * 2**20)}]
    await api_client.create({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "busy", "labels": {"app": "b"}},
                             "spec": {"containers": [{"name": "c", "image": "img:1", "env": env}]}})

    async def ready() -> bool:
        return pod_is_ready(await api_client.get("Pod", "busy", "default"))

    await eventually(ready, timeout=30)

    async def top() -> str | None:
        result = await gateway.kubectl("top", "pods")
        return result.out if result.rc == 0 and "busy" in result.out and "250m" in result.out else None

    out = await eventually(top, timeout=30, interval=0.5)
    header, row = out.splitlines()
    assert header.split() == ["NAME", "CPU(cores)", "MEMORY(bytes)"]
    assert row.split() == ["busy", "250m", "64Mi"]
    one = await gateway.ok("top", "pod", "busy", "--containers")
    assert one.splitlines()[1].split() == ["busy", "c", "250m", "64Mi"]
    missing = await gateway.kubectl("top", "pod", "nope")
    assert missing.rc == 1 and "NotFound" in missing.err + missing.out
    nodes = await gateway.kubectl("top", "nodes")  # NodeMetrics: the node's pods summed
    assert nodes.rc == 0, nodes
    header, *rows = nodes.out.splitlines()
    assert header.split() == ["NAME", "CPU(cores)", "CPU(%)", "MEMORY(bytes)", "MEMORY(%)"]
    assert [r.split()[:2] for r in rows] == [["n1", "250m"]] and rows[0].split()[3] == "64Mi", nodes
    node = await gateway.kubectl("top", "node", "n1", "--no-headers")
    assert node.rc == 0 and node.out.split()[:2] == ["n1", "250m"], node
    gone = await gateway.kubectl("top", "node", "nope")
    assert gone.rc == 1 and "not found" in (gone.err + gone.out).lower(), gone
