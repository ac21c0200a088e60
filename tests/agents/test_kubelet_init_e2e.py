"""Init containers end to end on real Podman: they run in order, each to completion, before the app
container; a failing one fails the pod under restartPolicy Never and is retried under OnFailure. What
``shoal get pods`` shows (its STATUS column, ``pod_status``) is checked along the way."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from actors.api.server import ApiActor
from agents.kubelet.podman_runtime import PodmanRuntime
from agents.kubelet.podman_service import PodmanService
from protocol.kinds.pod import pod_status
from protocol.objects import Obj, condition
from runtime.client import ApiClient
from runtime.node_logs import fetch_logs
from tests.agents.kubelet_helpers import create_bound, cstatus, eventually, phase, pod_manifest, pod_where
from tests.agents.test_kubelet_e2e import e2e_node, sh, start_kubelet
from tests.conftest import ActorRunner

pytestmark = [pytest.mark.podman, pytest.mark.slow]
__all__ = ["e2e_node"]  # the fixture, used by name


def at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


async def test_init_containers_run_in_order_to_completion_before_the_app(
        runner: ActorRunner, api: ApiActor, client: ApiClient, podman_service: PodmanService, e2e_node: str,
        tmp_path: Path) -> None:
    await start_kubelet(runner, podman_service, e2e_node, tmp_path)
    manifest = pod_manifest("ordered", [sh("app", "echo app-started; exec sleep 1000")])
    manifest["spec"]["initContainers"] = [sh("first", "echo first-ran; sleep 2"),
                                          sh("second", "echo second-ran; sleep 2")]
    await create_bound(client, manifest, e2e_node)
    shown: list[str] = []

    async def running() -> Obj | None:
        pod = await client.get("Pod", "ordered", "default")
        if not shown or shown[-1] != pod_status(pod):
            shown.append(pod_status(pod))
        return pod if phase(pod) == "Running" else None

    pod = await eventually(running, timeout=90, interval=0.05, what="pod Running after its init containers")
    assert "Init:1/2" in shown  # the second ran while the first had finished
    assert set(shown) <= {"Pending", "Init:0/2", "Init:1/2", "PodInitializing", "Running"}
    first, second = pod["status"]["initContainerStatuses"]
    assert (first["name"], second["name"]) == ("first", "second")
    for s in (first, second):
        assert s["ready"] is True and s["restartCount"] == 0
        assert s["state"]["terminated"]["exitCode"] == 0 and s["state"]["terminated"]["reason"] == "Completed"
    app_started = at(cstatus(pod)["state"]["running"]["startedAt"])
    assert at(first["state"]["terminated"]["finishedAt"]) <= at(second["state"]["terminated"]["startedAt"])
    assert at(second["state"]["terminated"]["finishedAt"]) <= app_started
    assert at(first["state"]["terminated"]["startedAt"]) < app_started  # not started side by side
    assert condition(pod, "Initialized")["status"] == "True"  # type: ignore[index]
    assert [line async for line in fetch_logs(client, "default", "ordered", container="first")] == ["first-ran"]
    assert [line async for line in fetch_logs(client, "default", "ordered", container="second")] == ["second-ran"]


async def test_a_failing_init_container_fails_the_pod_under_never_and_is_retried_under_on_failure(
        runner: ActorRunner, api: ApiActor, client: ApiClient, podman_service: PodmanService, e2e_node: str,
        tmp_path: Path) -> None:
    await start_kubelet(runner, podman_service, e2e_node, tmp_path)
    for name, policy in (("never", "Never"), ("retried", "OnFailure")):
        manifest = pod_manifest(name, [sh("app", "exec sleep 1000")], restart_policy=policy)
        manifest["spec"]["initContainers"] = [sh("setup", "echo setting-up; exit 3")]
        await create_bound(client, manifest, e2e_node)

    never = await eventually(lambda: pod_where(client, "never", lambda p: phase(p) == "Failed"), timeout=60,
                             what="pod Failed by its init container")
    [setup] = never["status"]["initContainerStatuses"]
    assert setup["state"]["terminated"]["exitCode"] == 3 and setup["restartCount"] == 0
    assert pod_status(never) == "Init:Error"
    assert condition(never, "Initialized")["status"] == "False"  # type: ignore[index]
    assert cstatus(never)["state"] == {"waiting": {"reason": "PodInitializing"}}

    shown: set[str] = set()

    async def crash_looping() -> Obj | None:
        pod = await client.get("Pod", "retried", "default")
        shown.add(pod_status(pod))
        restarts = pod["status"].get("initContainerStatuses", [{}])[0].get("restartCount", 0)
        return pod if pod_status(pod) == "Init:CrashLoopBackOff" and restarts >= 2 else None

    retried = await eventually(crash_looping, timeout=90, interval=0.05, what="init container retried")
    assert phase(retried) == "Pending"
    assert retried["status"]["initContainerStatuses"][0]["lastState"]["terminated"]["exitCode"] == 3
    assert shown <= {"Pending", "Init:0/1", "Init:Error", "Init:CrashLoopBackOff"}
    runtime = PodmanRuntime(podman_service.socket_url)
    try:
        names = [c.name for c in await runtime.list_containers(e2e_node)]
    finally:
        await runtime.close()
    assert "app" not in names and "setup" in names  # the app container never ran

