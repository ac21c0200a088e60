"""scale, rollout, logs and events against a real API actor, controllers, and a fake-runtime kubelet."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from typing import Any

import pytest

from actors.controllers.manager import ControllerManager
from agents.kubelet.agent import KubeletAgent
from agents.kubelet.config import KubeletConfig
from agents.kubelet.fake_runtime import FakeRuntime
from agents.kubelet.node import StaticMetrics
from agents.kubelet.probes import AlwaysPassProber
from runtime.client import ApiClient
from runtime.events import EventRecorder
from tests.cli.conftest import ShoalCli, read_until
from tests.conftest import ActorRunner
from tests.controllers import conftest as controller_fixtures
from tests.controllers.conftest import eventually

pod_status_simulator = controller_fixtures.pod_status_simulator  # a fixture shared with the controller tests


def deployment(image: str, replicas: int = 2) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web"}},
                                  "spec": {"containers": [{"name": "c", "image": image}]}}}}


async def start_controllers(runner: ActorRunner) -> None:
    manager = ControllerManager(["deployment", "replicaset"], leader_elect=False)
    await runner.start(manager, ready=lambda: bool(manager.controllers) and all(
        getattr(c, "running", False) for c in manager.controllers))


@pytest.mark.usefixtures("pod_status_simulator")
async def test_scale_and_rollout_status_history_undo(cli: ShoalCli, client: ApiClient, runner: ActorRunner) -> None:
    await start_controllers(runner)
    await client.create(deployment("img:1"))
    status = await cli("rollout", "status", "deploy/web", "--timeout", "30")
    assert status.rc == 0 and 'deployment "web" successfully rolled out' in status.out, status
    scaled = await cli("scale", "deploy/web", "--replicas", "3")
    assert scaled.rc == 0 and "deployment.apps/web scaled" in scaled.out, scaled
    assert (await client.get("Deployment", "web"))["spec"]["replicas"] == 3
    refused = await cli("scale", "deploy/web", "--replicas", "1", "--current-replicas", "7")
    assert refused.rc == 1 and "expected 7 replicas" in refused.err
    assert (await cli("rollout", "status", "deploy/web", "--timeout", "30")).rc == 0

    current = await client.get("Deployment", "web")
    current["spec"]["template"]["spec"]["containers"][0]["image"] = "img:2"
    await client.update(current)
    assert (await cli("rollout", "status", "deploy/web", "--timeout", "30")).rc == 0
    history = await cli("rollout", "history", "deploy/web")
    assert history.rc == 0 and [line.split()[0] for line in history.out.splitlines()[2:]] == ["1", "2"], history
    undo = await cli("rollout", "undo", "deploy/web")
    assert undo.rc == 0 and "rolled back" in undo.out, undo
    rolled = await client.get("Deployment", "web")
    assert rolled["spec"]["template"]["spec"]["containers"][0]["image"] == "img:1"
    assert (await cli("scale", "pod/x", "--replicas", "1")).rc == 2


async def test_rollout_status_times_out_when_pods_never_become_ready(cli: ShoalCli, client: ApiClient,
                                                                     runner: ActorRunner) -> None:
    await start_controllers(runner)  # no kubelet: pods never run
    await client.create(deployment("img:1"))
    result = await cli("rollout", "status", "deploy/web", "--timeout", "3")
    assert result.rc == 1 and "timed out waiting for the rollout" in result.err, result
    assert "Waiting for deployment" in result.out


async def test_events_list_filter_and_watch(cli: ShoalCli, client: ApiClient) -> None:
    pod = await client.create({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
                               "spec": {"containers": [{"name": "c", "image": "i"}]}})
    recorder = EventRecorder(client, "test")
    await recorder.record(pod, "Warning", "BackOff", "Back-off restarting failed container")
    await recorder.record({"kind": "Node", "apiVersion": "v1", "metadata": {"name": "n1", "uid": "u"}},
                          "Normal", "NodeReady", "node n1 is ready")
    listed = await cli("events")
    assert listed.rc == 0 and "BackOff" in listed.out and "pod/p" in listed.out, listed
    only = await cli("events", "--for", "pod/p", "--types", "Warning")
    assert "BackOff" in only.out and "NodeReady" not in only.out
    watch = await cli.start("events", "-w", "--for", "pod/p")
    try:
        await read_until(watch.stdout, "BackOff")
        await asyncio.sleep(0.5)
        await recorder.record(pod, "Normal", "Pulled", "Container image already present")
        seen = await read_until(watch.stdout, "Pulled")
        assert "pod/p" in seen
    finally:
        watch.send_signal(signal.SIGINT)
        assert await asyncio.wait_for(watch.wait(), 10) == 0


async def test_logs_errors_say_what_to_do(cli: ShoalCli, client: ApiClient, runner: ActorRunner,
                                          tmp_path: Path) -> None:
    await client.create({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "waiting"},
                         "spec": {"containers": [{"name": "c", "image": "i"}]}})
    unscheduled = await cli("logs", "waiting")
    assert unscheduled.rc == 1 and "not scheduled" in unscheduled.err, unscheduled
    runtime = FakeRuntime()
    config = KubeletConfig(node_name="logs-node", state_dir=tmp_path, relist_interval=0.2, measure_host=False)
    agent = KubeletAgent(config, runtime=runtime, runtime_name="fake", runtime_version="fake://0.1",
                         prober=AlwaysPassProber(runtime), metrics=StaticMetrics(), close_runtime=False)
    await runner.start(agent, lambda: agent.started.is_set())
    await client.create({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "two"},
                         "spec": {"containers": [{"name": "a", "image": "i"}, {"name": "b", "image": "i"}]}})
    await client.bind("two", "default", "logs-node")

    async def running() -> bool:
        return (await client.get("Pod", "two")).get("status", {}).get("phase") == "Running"

    await eventually(running)
    ambiguous = await cli("logs", "two")
    assert ambiguous.rc == 1 and "a" in ambiguous.err and "b" in ambiguous.err, ambiguous
    missing = await cli("logs", "two", "-c", "zzz")
    assert missing.rc == 1 and "zzz" in missing.err, missing
    ok = await cli("logs", "two", "-c", "a")
    assert ok.rc == 0, ok
    gone = await cli("logs", "nope")
    assert gone.rc == 1 and "not found" in gone.err
