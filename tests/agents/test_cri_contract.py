"""One contract for the container runtime port (``agents/kubelet/cri.py``), run against every implementation:
the in-memory ``FakeRuntime`` and the real ``PodmanRuntime`` (the reference), so the fake cannot drift.

A container's behaviour is written twice in its config: as a shell command for Podman and as the fake's
scripting variables (``SHOAL_FAKE_EXIT_AFTER``/``SHOAL_FAKE_EXIT_CODE``), saying the same thing. The Podman
half is marked ``podman`` and skips with a reason when Podman is absent (see conftest.py).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime

import pytest
import pytest_asyncio

from agents.kubelet.cri import (
    ContainerConfig,
    ContainerCreateError,
    ContainerNotFound,
    ContainerRuntime,
    ContainerRuntimeError,
    ImagePullError,
    RuntimeContainer,
    SandboxConfig,
    SandboxNotFound,
)
from agents.kubelet.fake_runtime import CPU_ENV, EXIT_AFTER_ENV, EXIT_CODE_ENV, MEMORY_ENV, FakeRuntime
from agents.kubelet.images import BUSYBOX_IMAGE

pytestmark = pytest.mark.asyncio(loop_scope="session")

ABSENT_IMAGE = f"localhost/shoal/absent-{uuid.uuid4().hex[:8]}:latest"
"""Never present: a ``localhost/`` image is never pulled by Podman, and the fake is told it is missing."""

MakePod = Callable[..., Awaitable[tuple[str, SandboxConfig]]]


@pytest.fixture(params=["fake", pytest.param("podman", marks=pytest.mark.podman)])
def runtime(request: pytest.FixtureRequest) -> ContainerRuntime:
    """The runtime under test: a fresh fake, or the session's Podman runtime (skipped without Podman)."""
    if request.param == "podman":
        podman: ContainerRuntime = request.getfixturevalue("podman_runtime")
        return podman
    return FakeRuntime(missing_images=[ABSENT_IMAGE])


@pytest.fixture
def node() -> str:
    return f"contract-{uuid.uuid4().hex[:8]}"


@pytest_asyncio.fixture(loop_scope="session")
async def make_pod(runtime: ContainerRuntime, node: str) -> AsyncIterator[MakePod]:
    """Creates uniquely named sandboxes on ``node``; removes them and their containers afterwards."""

    async def make(*, pod_ip: str = "", on_node: str | None = None) -> tuple[str, SandboxConfig]:
        uid = uuid.uuid4().hex
        config = SandboxConfig(pod_uid=uid, namespace="contract", name=f"pod-{uid[:6]}",
                               node_name=on_node or node, pod_ip=pod_ip)
        return await runtime.create_sandbox(config), config

    yield make
    for n in {node, f"{node}-other"}:
        for sandbox in await runtime.list_sandboxes(n):
            await runtime.remove_sandbox(sandbox.id)
        for c in await runtime.list_containers(n):
            await runtime.remove_container(c.id)


def sleeper(name: str = "app") -> ContainerConfig:
    """Runs until stopped (the fake's default)."""
    return ContainerConfig(name=name, image=BUSYBOX_IMAGE, command=("sleep", "1000"))


def exiting(name: str, code: int) -> ContainerConfig:
    """Exits at once with ``code``."""
    return ContainerConfig(name=name, image=BUSYBOX_IMAGE, command=("sh", "-c", f"echo bye; exit {code}"),
                           env={EXIT_AFTER_ENV: "0", EXIT_CODE_ENV: str(code)})


async def find(runtime: ContainerRuntime, node: str, cid: str) -> RuntimeContainer | None:
    return next((c for c in await runtime.list_containers(node) if c.id == cid), None)


async def wait_state(runtime: ContainerRuntime, node: str, cid: str, state: str) -> RuntimeContainer:
    deadline = time.monotonic() + 20
    while True:
        seen = await find(runtime, node, cid)
        if seen is not None and seen.state == state:
            return seen
        if time.monotonic() > deadline:
            raise AssertionError(f"container {cid[:12]} never {state}: {seen}")
        await asyncio.sleep(0.05)


# -- sandboxes ------------------------------------------------------------------------------------


async def test_sandbox_is_listed_with_its_labels_and_only_on_its_node(
    runtime: ContainerRuntime, make_pod: MakePod, node: str
) -> None:
    sandbox_id, config = await make_pod(pod_ip="127.88.200.7")
    [seen] = [s for s in await runtime.list_sandboxes(node) if s.id == sandbox_id]
    assert (seen.pod_uid, seen.namespace, seen.name, seen.node_name) == (
        config.pod_uid, "contract", config.name, node)
    assert seen.state == "ready"
    assert seen.ip == "127.88.200.7"  # the kubelet's address is the one reported
    assert seen.created_at is not None and abs(seen.created_at - time.time()) < 60
    assert await runtime.list_sandboxes(f"{node}-other") == []


async def test_create_sandbox_is_idempotent_per_pod(runtime: ContainerRuntime, make_pod: MakePod, node: str) -> None:
    sandbox_id, config = await make_pod()
    assert await runtime.create_sandbox(config) == sandbox_id
    assert [s.id for s in await runtime.list_sandboxes(node)] == [sandbox_id]


async def test_remove_sandbox_removes_its_containers_and_is_idempotent(
    runtime: ContainerRuntime, make_pod: MakePod, node: str
) -> None:
    sandbox_id, config = await make_pod()
    cid = await runtime.create_container(sandbox_id, config, sleeper(), 0)
    await runtime.start_container(cid)
    await runtime.remove_sandbox(sandbox_id)
    assert await runtime.list_sandboxes(node) == []
    assert await runtime.list_containers(node) == []
    await runtime.remove_sandbox(sandbox_id)  # already gone: fine
    with pytest.raises(SandboxNotFound):
        await runtime.create_container(sandbox_id, config, sleeper("late"), 0)


# -- containers -----------------------------------------------------------------------------------


async def test_container_lifecycle_created_running_exited_removed(
    runtime: ContainerRuntime, make_pod: MakePod, node: str
) -> None:
    sandbox_id, config = await make_pod()
    cid = await runtime.create_container(sandbox_id, config, sleeper("app"), 3)
    created = await find(runtime, node, cid)
    assert created is not None
    assert (created.state, created.exit_code, created.started_at, created.finished_at) == ("created", None, None, None)
    assert (created.name, created.attempt, created.pod_uid, created.sandbox_id) == (
        "app", 3, config.pod_uid, sandbox_id)
    assert created.image.endswith(BUSYBOX_IMAGE.removeprefix("localhost/"))

    await runtime.start_container(cid)
    running = await wait_state(runtime, node, cid, "running")
    assert running.started_at is not None and running.exit_code is None and running.finished_at is None

    await runtime.stop_container(cid, 0)
    stopped = await wait_state(runtime, node, cid, "exited")
    assert stopped.exit_code == 137  # no grace: killed at once (128 + SIGKILL)
    assert stopped.finished_at is not None and stopped.started_at is not None
    assert stopped.finished_at >= stopped.started_at
    await runtime.stop_container(cid, 0)  # already stopped: fine
    assert (await find(runtime, node, cid)) == stopped

    await runtime.remove_container(cid)
    assert await find(runtime, node, cid) is None
    await runtime.remove_container(cid)  # already gone: fine


@pytest.mark.parametrize("code", [0, 3])
async def test_exit_code_and_times_of_a_finished_container(
    runtime: ContainerRuntime, make_pod: MakePod, node: str, code: int
) -> None:
    sandbox_id, config = await make_pod()
    cid = await runtime.create_container(sandbox_id, config, exiting("job", code), 0)
    await runtime.start_container(cid)
    done = await wait_state(runtime, node, cid, "exited")
    assert done.exit_code == code
    assert done.started_at is not None and done.finished_at is not None and done.finished_at >= done.started_at


async def test_attempts_are_separate_containers_of_one_name(
    runtime: ContainerRuntime, make_pod: MakePod, node: str
) -> None:
    sandbox_id, config = await make_pod()
    first = await runtime.create_container(sandbox_id, config, exiting("app", 1), 0)
    await runtime.start_container(first)
    await wait_state(runtime, node, first, "exited")
    second = await runtime.create_container(sandbox_id, config, exiting("app", 1), 1)
    assert second != first
    listed = sorted((c.attempt, c.name, c.state) for c in await runtime.list_containers(node))
    assert listed == [(0, "app", "exited"), (1, "app", "created")]
    with pytest.raises(ContainerCreateError):
        await runtime.create_container(sandbox_id, config, exiting("app", 1), 1)  # that attempt exists


async def test_start_of_a_running_container_is_idempotent(
    runtime: ContainerRuntime, make_pod: MakePod, node: str
) -> None:
    sandbox_id, config = await make_pod()
    cid = await runtime.create_container(sandbox_id, config, sleeper(), 0)
    await runtime.start_container(cid)
    first = await wait_state(runtime, node, cid, "running")
    await runtime.start_container(cid)
    again = await wait_state(runtime, node, cid, "running")
    assert again.started_at == first.started_at


async def test_start_of_an_exited_container_runs_it_again(
    runtime: ContainerRuntime, make_pod: MakePod, node: str
) -> None:
    sandbox_id, config = await make_pod()
    cid = await runtime.create_container(sandbox_id, config, exiting("job", 3), 0)
    await runtime.start_container(cid)
    first = await wait_state(runtime, node, cid, "exited")
    await asyncio.sleep(1.1)  # Podman's listing has whole seconds
    await runtime.start_container(cid)
    deadline = time.monotonic() + 20
    while (again := await find(runtime, node, cid)) is None or again.started_at == first.started_at:
        assert time.monotonic() < deadline, again
        await asyncio.sleep(0.05)
    assert again.attempt == first.attempt and again.id == cid
    assert (await wait_state(runtime, node, cid, "exited")).exit_code == 3


async def test_stop_of_a_created_container_leaves_it_created(
    runtime: ContainerRuntime, make_pod: MakePod, node: str
) -> None:
    sandbox_id, config = await make_pod()
    cid = await runtime.create_container(sandbox_id, config, sleeper(), 0)
    await runtime.stop_container(cid, 0)
    seen = await find(runtime, node, cid)
    assert seen is not None and (seen.state, seen.started_at, seen.exit_code) == ("created", None, None)


async def test_containers_are_listed_only_on_their_node(runtime: ContainerRuntime, make_pod: MakePod,
                                                        node: str) -> None:
    here_id, here = await make_pod()
    there_id, there = await make_pod(on_node=f"{node}-other")
    mine = await runtime.create_container(here_id, here, sleeper(), 0)
    theirs = await runtime.create_container(there_id, there, sleeper(), 0)
    assert [c.id for c in await runtime.list_containers(node)] == [mine]
    assert [c.id for c in await runtime.list_containers(f"{node}-other")] == [theirs]


async def test_an_unstarted_sandbox_is_ready_once_its_first_container_starts(
        runtime: ContainerRuntime, make_pod: MakePod, node: str) -> None:
    # (``make_pod`` removes what is left on ``node`` afterwards)
    uid = uuid.uuid4().hex
    one = SandboxConfig(pod_uid=uid, namespace="contract", name=f"pod-{uid[:6]}", node_name=node)
    one_id = await runtime.create_sandbox(one, start=False)
    assert await runtime.create_sandbox(one, start=False) == one_id  # idempotent, still
    states = {s.id: s.state for s in await runtime.list_sandboxes(node)}
    assert states[one_id] == "notready"
    cid = await runtime.create_container(one_id, one, sleeper(), 0)
    await runtime.start_container(cid)
    assert {s.id: s.state for s in await runtime.list_sandboxes(node)}[one_id] == "ready"
    assert (await wait_state(runtime, node, cid, "running")).sandbox_id == one_id

    uid = uuid.uuid4().hex
    two = SandboxConfig(pod_uid=uid, namespace="contract", name=f"pod-{uid[:6]}", node_name=node)
    two_id = await runtime.create_sandbox(two, start=False)
    await runtime.start_sandbox(two_id)
    await runtime.start_sandbox(two_id)  # running already: nothing to do
    assert {s.id: s.state for s in await runtime.list_sandboxes(node)}[two_id] == "ready"
    with pytest.raises(SandboxNotFound):
        await runtime.start_sandbox("0" * 64)


async def test_one_pods_listing_holds_that_pod_only(runtime: ContainerRuntime, make_pod: MakePod, node: str) -> None:
    one_id, one = await make_pod()
    two_id, two = await make_pod()
    mine = await runtime.create_container(one_id, one, sleeper(), 0)
    await runtime.create_container(two_id, two, sleeper(), 0)
    key = (one.namespace, one.name)
    assert [s.id for s in await runtime.list_sandboxes(node, pod=key)] == [one_id]
    assert [c.id for c in await runtime.list_containers(node, pod=key)] == [mine]
    assert await runtime.list_sandboxes(node, pod=("contract", "nobody")) == []
    assert await runtime.list_containers(f"{node}-other", pod=key) == []  # and on its node only
    assert {s.id for s in await runtime.list_sandboxes(node)} == {one_id, two_id}


# -- typed errors -----------------------------------------------------------------------------------


async def test_missing_objects_raise_not_found(runtime: ContainerRuntime) -> None:
    missing = f"no-such-container-{uuid.uuid4().hex}"
    with pytest.raises(ContainerNotFound):
        await runtime.start_container(missing)
    with pytest.raises(ContainerNotFound):
        await runtime.stop_container(missing, 0)
    with pytest.raises(ContainerNotFound):
        await runtime.exec_in_container(missing, ["true"], 5)
    with pytest.raises(ContainerNotFound):
        [line async for line in runtime.logs(missing)]
    await runtime.remove_container(missing)  # removing what is gone is fine
    await runtime.remove_sandbox(f"no-such-sandbox-{uuid.uuid4().hex}")
    assert not ContainerNotFound.retryable and not SandboxNotFound.retryable


async def test_a_missing_image_is_an_image_pull_error(runtime: ContainerRuntime, make_pod: MakePod,
                                                      node: str) -> None:
    sandbox_id, config = await make_pod()
    assert await runtime.image_present(BUSYBOX_IMAGE)
    assert not await runtime.image_present(ABSENT_IMAGE)
    with pytest.raises(ImagePullError):
        await runtime.create_container(sandbox_id, config, ContainerConfig(name="x", image=ABSENT_IMAGE), 0)
    assert await runtime.list_containers(node) == []


async def test_create_in_a_missing_sandbox_is_sandbox_not_found(runtime: ContainerRuntime, node: str) -> None:
    config = SandboxConfig(pod_uid=uuid.uuid4().hex, namespace="contract", name="ghost", node_name=node)
    with pytest.raises(SandboxNotFound):
        await runtime.create_container(f"no-such-sandbox-{uuid.uuid4().hex}", config, sleeper(), 0)


# -- exec and logs ------------------------------------------------------------------------------------


async def test_exec_in_running_and_in_exited_containers(runtime: ContainerRuntime, make_pod: MakePod,
                                                        node: str) -> None:
    sandbox_id, config = await make_pod()
    cid = await runtime.create_container(sandbox_id, config, sleeper(), 0)
    await runtime.start_container(cid)
    await wait_state(runtime, node, cid, "running")
    code, output = await runtime.exec_in_container(cid, ["true"], 10)
    assert code == 0 and isinstance(output, str)
    done = await runtime.create_container(sandbox_id, config, exiting("job", 0), 0)
    await runtime.start_container(done)
    await wait_state(runtime, node, done, "exited")
    with pytest.raises(ContainerRuntimeError):
        await runtime.exec_in_container(done, ["true"], 10)


async def test_logs_of_a_finished_container_and_their_tail(runtime: ContainerRuntime, make_pod: MakePod,
                                                           node: str) -> None:
    sandbox_id, config = await make_pod()
    cid = await runtime.create_container(sandbox_id, config, exiting("job", 0), 0)
    await runtime.start_container(cid)
    await wait_state(runtime, node, cid, "exited")
    lines = [line async for line in runtime.logs(cid)]
    assert lines and all(isinstance(line, str) and "\n" not in line for line in lines)
    assert [line async for line in runtime.logs(cid, tail=1)] == lines[-1:]
    followed = await asyncio.wait_for(_collect(runtime.logs(cid, follow=True)), 20)
    assert followed == lines  # following an exited container ends by itself


async def test_logs_with_timestamps_and_since(runtime: ContainerRuntime, make_pod: MakePod, node: str) -> None:
    sandbox_id, config = await make_pod()
    cid = await runtime.create_container(sandbox_id, config, exiting("job", 0), 0)
    before = time.time() - 2  # whole seconds at Podman
    await runtime.start_container(cid)
    await wait_state(runtime, node, cid, "exited")
    lines = [line async for line in runtime.logs(cid)]
    stamped = [line async for line in runtime.logs(cid, timestamps=True)]
    assert len(stamped) == len(lines)
    for plain, line in zip(lines, stamped, strict=True):
        stamp, _, rest = line.partition(" ")
        assert rest == plain and datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp() >= before - 1
    assert [line async for line in runtime.logs(cid, since=before)] == lines
    assert [line async for line in runtime.logs(cid, since=time.time() + 3600)] == []


async def _collect(stream: AsyncIterator[str]) -> list[str]:
    return [line async for line in stream]


async def test_usage_of_a_busy_container_grows_and_stopped_ones_are_left_out(
        runtime: ContainerRuntime, make_pod: MakePod, node: str) -> None:
    """A container burning one core: its CPU counter grows by about a second per second (the fake is told
    1000 millicores); memory is a non-negative count; a container not running reports nothing."""
    sandbox_id, config = await make_pod()
    busy = ContainerConfig(name="busy", image=BUSYBOX_IMAGE, command=("sh", "-c", "while :; do :; done"),
                           env={CPU_ENV: "1000", MEMORY_ENV: str(8 * 2**20)})
    cid = await runtime.create_container(sandbox_id, config, busy, 0)
    await runtime.start_container(cid)
    await wait_state(runtime, node, cid, "running")
    (first,) = await runtime.container_usage([cid])
    await asyncio.sleep(1.5)
    (second,) = await runtime.container_usage([cid])
    assert first.container_id == second.container_id == cid and second.memory_bytes >= 0
    rate = (second.cpu_nanoseconds - first.cpu_nanoseconds) / (second.at - first.at) / 1e6
    assert 300 <= rate <= 1100, rate  # millicores: most of a core (shared machine), never more than one
    await runtime.stop_container(cid, 0)
    await wait_state(runtime, node, cid, "exited")
    assert await runtime.container_usage([cid]) == []
