"""``kubectl logs`` through the gateway: lines from a kubelet on the fake runtime (container, ``--tail``,
``-f``), a following stream that ends when kubectl goes away (the kubelet is told to stop), and errors as
Status; the same kubelet's node through ``kubectl get nodes``, ``cordon``, ``drain`` and ``uncordon``."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from agents.kubelet.agent import KubeletAgent
from agents.kubelet.config import KubeletConfig
from agents.kubelet.fake_runtime import FakeRuntime
from agents.kubelet.node import StaticMetrics
from agents.kubelet.probes import AlwaysPassProber
from protocol import codec, subjects
from protocol.objects import Obj
from runtime.client import ApiClient
from tests.conftest import ActorRunner
from tests.controllers.conftest import eventually
from tests.gateway.conftest import Gateway, read_until


def pod(name: str, containers: list[str], node: str) -> Obj:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"nodeName": node, "containers": [{"name": c, "image": "img:1"} for c in containers]}}


async def test_logs_from_a_fake_kubelet(gateway: Gateway, api_client: ApiClient, runner: ActorRunner,
                                        tmp_path: Path) -> None:
    runtime = FakeRuntime()
    config = KubeletConfig(node_name="n1", state_dir=tmp_path / "kubelet", relist_interval=0.2, measure_host=False)
    agent = KubeletAgent(config, runtime=runtime, runtime_name="fake", runtime_version="fake://0.1",
                         prober=AlwaysPassProber(runtime), metrics=StaticMetrics(), close_runtime=False)
    await runner.start(agent, lambda: agent.started.is_set())
    await api_client.create(pod("two", ["a", "b"], "n1"))

    async def running() -> bool:
        return bool((await api_client.get("Pod", "two")).get("status", {}).get("phase") == "Running")

    await eventually(running)
    out = await gateway.ok("logs", "two", "-c", "b")
    assert out.splitlines()[0] == "fake container b attempt 0 started", out
    assert (await gateway.ok("logs", "pod/two", "-c", "a", "--tail", "1")).splitlines() == [
        "fake container a attempt 0 started"]
    assert "fake container a" in await gateway.ok("logs", "-f", "two", "-c", "a")  # the fake's output ends
    stamp, _, rest = (await gateway.ok("logs", "two", "-c", "a", "--timestamps")).splitlines()[0].partition(" ")
    assert rest == "fake container a attempt 0 started" and abs(
        datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp() - time.time()) < 600, stamp
    assert "fake container a" in await gateway.ok("logs", "two", "-c", "a", "--since=1h")
    future = datetime.fromtimestamp(time.time() + 3600, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert (await gateway.ok("logs", "two", "-c", "a", f"--since-time={future}")).strip() == ""
    assert (await gateway.ok("logs", "two", "-c", "a", "--limit-bytes=12")).strip() == "fake contain"
    wrong = await gateway.kubectl("logs", "two", "-c", "zzz")
    assert wrong.rc == 1 and "container zzz is not valid for pod two" in wrong.err, wrong
    missing = await gateway.kubectl("logs", "nope")
    assert missing.rc == 1 and "NotFound" in missing.err and "nope" in missing.err, missing
    # the node's commands: get, cordon, drain (through the eviction API), uncordon
    nodes = await gateway.ok("get", "nodes", "-o", "wide")
    assert nodes.splitlines()[1].split()[:2] == ["n1", "Ready"], nodes
    await gateway.ok("cordon", "n1")
    assert "SchedulingDisabled" in await gateway.ok("get", "node", "n1")
    drained = await gateway.kubectl("drain", "n1", "--force", "--timeout=60s")
    assert drained.rc == 0 and "node/n1 drained" in drained.out, drained
    assert (await gateway.ok("get", "pods", "-o", "name")).strip() == ""
    await gateway.ok("uncordon", "n1")
    assert "SchedulingDisabled" not in await gateway.ok("get", "node", "n1")


async def test_logs_follow_stops_the_kubelet_stream_when_kubectl_leaves(gateway: Gateway,
                                                                         api_client: ApiClient) -> None:
    nc = api_client.nc
    requests: list[dict[str, Any]] = []

    async def serve(msg: Any) -> None:  # a stub kubelet: one line, then a quiet open stream
        request = codec.decode(msg.data)
        requests.append(request)
        if "inbox" in request:
            await nc.publish(request["inbox"], codec.ok(lines=["hello from the stub"], seq=1, more=True))

    await nc.subscribe(subjects.node_agent("stub", "logs"), cb=serve)
    await api_client.create(pod("chatty", ["c"], "stub"))
    follower = await gateway.start("logs", "-f", "chatty")
    try:
        await read_until(follower.stdout, "hello from the stub")
        assert requests[0]["follow"] is True and requests[0]["container"] == "c"
    finally:
        follower.kill()
        await follower.wait()

    async def cancelled() -> bool:
        return any(r.get("cancel") == requests[0]["inbox"] for r in requests)

    await eventually(cancelled)
