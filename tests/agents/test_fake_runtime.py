"""FakeRuntime: the in-memory runtime of hollow nodes (pure unit tests, controllable clock)."""

from __future__ import annotations

import time

import pytest

from agents.kubelet.cri import (
    ContainerConfig,
    ContainerNotFound,
    ContainerRuntime,
    ImagePullError,
    SandboxConfig,
    SandboxNotFound,
)
from agents.kubelet.fake_runtime import EXIT_AFTER_ENV, EXIT_CODE_ENV, STOP_EXIT_CODE, FakeRuntime


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _sandbox(uid: str, node: str = "n1") -> SandboxConfig:
    return SandboxConfig(pod_uid=uid, namespace="default", name=f"pod-{uid}", node_name=node)


async def test_is_a_container_runtime() -> None:
    assert isinstance(FakeRuntime(), ContainerRuntime)


async def test_lifecycle_runs_until_stopped() -> None:
    clock = Clock()
    rt = FakeRuntime(clock=clock)
    sb = _sandbox("u1")
    sid = await rt.create_sandbox(sb)
    assert await rt.create_sandbox(sb) == sid  # idempotent per pod uid
    cid = await rt.create_container(sid, sb, ContainerConfig(name="app", image="img"), attempt=0)
    assert [c.state for c in await rt.list_containers("n1")] == ["created"]
    await rt.start_container(cid)
    clock.now += 3600
    [c] = await rt.list_containers("n1")
    assert (c.state, c.exit_code, c.started_at, c.pod_uid, c.sandbox_id) == (
        "running",
        None,
        1000.0,
        "u1",
        sid,
    )
    assert await rt.exec_in_container(cid, ["true"], timeout_seconds=1) == (0, "")
    await rt.stop_container(cid, grace_seconds=30)
    [c] = await rt.list_containers("n1")
    assert (c.state, c.exit_code, c.finished_at) == ("exited", STOP_EXIT_CODE, clock.now)
    [s] = await rt.list_sandboxes("n1")
    assert s.state == "ready" and s.ip is not None and s.ip.startswith("10.")
    await rt.remove_container(cid)
    await rt.remove_container(cid)  # idempotent
    assert await rt.list_containers("n1") == []
    await rt.remove_sandbox(sid)
    assert await rt.list_sandboxes("n1") == []


async def test_scripted_exit_is_computed_lazily() -> None:
    clock = Clock()
    rt = FakeRuntime(clock=clock)
    sb = _sandbox("u1")
    sid = await rt.create_sandbox(sb)
    env = {EXIT_AFTER_ENV: "5", EXIT_CODE_ENV: "3"}
    cid = await rt.create_container(sid, sb, ContainerConfig(name="job", image="img", env=env), attempt=1)
    await rt.start_container(cid)
    clock.now += 4.9
    assert (await rt.list_containers("n1"))[0].state == "running"
    clock.now += 0.2
    [c] = await rt.list_containers("n1")
    assert (c.state, c.exit_code, c.finished_at, c.attempt) == ("exited", 3, 1005.0, 1)
    assert [line async for line in rt.logs(cid)][-1] == "fake container job exited with code 3"
    assert len([line async for line in rt.logs(cid, tail=1)]) == 1


async def test_errors_are_typed() -> None:
    rt = FakeRuntime(missing_images=["gone:1"])
    sb = _sandbox("u1")
    with pytest.raises(SandboxNotFound):
        await rt.create_container("nope", sb, ContainerConfig(name="a", image="img"), 0)
    sid = await rt.create_sandbox(sb)
    for image in ("gone:1", "registry.invalid/app:1"):
        assert not await rt.image_present(image)
        with pytest.raises(ImagePullError):
            await rt.create_container(sid, sb, ContainerConfig(name="a", image=image), 0)
    with pytest.raises(ContainerNotFound):
        await rt.start_container("nope")


async def test_nodes_are_isolated() -> None:
    rt = FakeRuntime()
    for node in ("n1", "n2"):
        sb = _sandbox(f"uid-{node}", node)
        sid = await rt.create_sandbox(sb)
        await rt.create_container(sid, sb, ContainerConfig(name="a", image="img"), 0)
    assert [s.pod_uid for s in await rt.list_sandboxes("n1")] == ["uid-n1"]
    assert [c.pod_uid for c in await rt.list_containers("n2")] == ["uid-n2"]
    assert await rt.list_containers("n3") == []


async def test_holds_150k_pods_cheaply() -> None:
    rt = FakeRuntime()
    started = time.monotonic()
    config = ContainerConfig(name="app", image="img")
    for i in range(150_000):
        sb = _sandbox(f"u{i}", node=f"node-{i % 5000}")
        sid = await rt.create_sandbox(sb)
        await rt.start_container(await rt.create_container(sid, sb, config, 0))
    created = time.monotonic() - started
    assert rt.counts() == (150_000, 150_000)
    started = time.monotonic()
    listed = await rt.list_containers("node-42")
    assert len(listed) == 30 and all(c.state == "running" for c in listed)
    assert time.monotonic() - started < 0.05
    assert created < 30
