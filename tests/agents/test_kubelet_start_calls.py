"""What a pod's start asks of the runtime: no image presence check of the kubelet's own (the runtime says when
it pulls, for the ``Pulling`` event), and the runtime's two listings side by side. In-memory runtime."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
import structlog

from agents.kubelet.config import KubeletConfig
from agents.kubelet.cri import ContainerConfig, PodKey, RuntimeContainer, RuntimeSandbox, SandboxConfig
from agents.kubelet.executor import Executor
from agents.kubelet.fake_runtime import FakeRuntime
from agents.kubelet.plan import PodNotes, PodRuntimeView, plan
from agents.kubelet.runtime_cache import RuntimeCache, relist_pause
from agents.kubelet.worker import StatusWriter
from protocol.objects import Obj
from tests.agents.kubelet_helpers import pod_manifest

NODE = "calls-node"


class CountingRuntime(FakeRuntime):
    """The in-memory runtime, counting what is asked of it."""

    def __init__(self) -> None:
        super().__init__()
        self.asked: list[str] = []

    async def image_present(self, image: str) -> bool:
        self.asked.append("image_present")
        return await super().image_present(image)

    async def create_sandbox(self, config: SandboxConfig, *, start: bool = True) -> str:
        self.asked.append(f"create_sandbox start={start}")
        return await super().create_sandbox(config, start=start)

    async def start_sandbox(self, sandbox_id: str) -> None:
        self.asked.append("start_sandbox")
        await super().start_sandbox(sandbox_id)


class Events:
    def __init__(self) -> None:
        self.told: list[tuple[str, str]] = []

    def emit(self, pod: Obj, type_: str, reason: str, message: str) -> None:
        self.told.append((reason, message))


def _pod(image: str, policy: str | None = None) -> Obj:
    container: Obj = {"name": "app", "image": image, **({"imagePullPolicy": policy} if policy else {})}
    pod = pod_manifest("p", [container])
    pod["metadata"]["uid"] = "u1"
    pod["spec"]["nodeName"] = NODE
    return pod


async def _start(runtime: FakeRuntime, pod: Obj, tmp_path: Path) -> tuple[Events, PodNotes]:
    config = KubeletConfig(node_name=NODE, state_dir=tmp_path, measure_host=False)
    events = Events()
    executor = Executor(runtime, None, config, events=events, log=structlog.get_logger("test"))  # type: ignore[arg-type]
    notes = PodNotes()
    decided = plan(pod, PodRuntimeView(), notes, 0.0, node_name=NODE, address="127.0.0.1", pod_ip="127.88.0.5")
    await executor.execute(pod, decided.actions, notes, key="default/p")
    return events, notes


async def test_a_present_image_is_not_looked_up_by_the_kubelet(tmp_path: Path) -> None:
    runtime = CountingRuntime()
    events, notes = await _start(runtime, _pod("busybox"), tmp_path)
    # no presence check (the runtime's create said it all); the sandbox started with its first container
    assert runtime.asked == ["create_sandbox start=False"]
    assert [s.state for s in await runtime.list_sandboxes(NODE)] == ["ready"]
    assert events.told == [("Pulled", 'Container image "busybox" already present on machine'),
                           ("Created", "Created container app"), ("Started", "Started container app")]
    assert not notes.failures
    assert [c.state for c in await runtime.list_containers(NODE)] == ["running"]


async def test_pulling_is_told_when_the_runtime_pulls(tmp_path: Path) -> None:
    runtime = CountingRuntime()
    events, _ = await _start(runtime, _pod("busybox", "Always"), tmp_path)
    reasons = [reason for reason, _ in events.told]
    assert reasons == ["Pulling", "Pulled", "Created", "Started"]
    assert events.told[1][1].startswith('Successfully pulled image "busybox" in ')

    missing = CountingRuntime()
    events, notes = await _start(missing, _pod("registry.invalid/app:1"), tmp_path)
    assert events.told[0] == ("Pulling", 'Pulling image "registry.invalid/app:1"')
    assert events.told[-1] == ("Failed", "Error: ErrImagePull") and notes.failures["app"].reason == "ErrImagePull"
    # no container started in the new sandbox: it is started alone, ready for the retry after back-off
    assert missing.asked == ["create_sandbox start=False", "start_sandbox"]
    assert [s.state for s in await missing.list_sandboxes(NODE)] == ["ready"]


async def test_never_pulls_and_says_nothing_of_pulling(tmp_path: Path) -> None:
    events, notes = await _start(CountingRuntime(), _pod("registry.invalid/app:1", "Never"), tmp_path)
    assert [reason for reason, _ in events.told] == ["ErrImageNeverPull"]
    assert notes.failures["app"].reason == "ErrImageNeverPull"


class SideBySide(FakeRuntime):
    """Answers the sandbox listing only once the container listing was asked for: listing one after the
    other never finishes."""

    def __init__(self) -> None:
        super().__init__()
        self.containers_asked = asyncio.Event()

    async def list_sandboxes(self, node_name: str, *, pod: PodKey | None = None) -> list[RuntimeSandbox]:
        await self.containers_asked.wait()
        return await super().list_sandboxes(node_name, pod=pod)

    async def list_containers(self, node_name: str, *, pod: PodKey | None = None) -> list[RuntimeContainer]:
        self.containers_asked.set()
        return await super().list_containers(node_name, pod=pod)


async def test_the_runtime_cache_lists_sandboxes_and_containers_side_by_side() -> None:
    cache = RuntimeCache(SideBySide(), NODE)
    views: Any = await asyncio.wait_for(cache.fresh(), 5)
    assert views == {} and cache.listings == 1


def test_only_the_kubelets_own_status_write_coming_back_is_an_echo() -> None:
    writer = StatusWriter(None, structlog.get_logger("test"))  # type: ignore[arg-type]
    old = {**_pod("busybox"), "status": {"phase": "Pending"}}
    old["metadata"]["resourceVersion"] = "7"
    running = {"phase": "Running", "podIP": "127.88.0.5"}
    new = {**old, "metadata": {**old["metadata"], "resourceVersion": "8"}, "status": running}
    assert not writer.is_echo(old, new)  # nothing written by us yet
    writer.written["u1"] = (8, running)
    assert writer.is_echo(old, new)
    assert not writer.is_echo(None, new) and not writer.is_echo(old, None)
    assert not writer.is_echo(old, {**new, "status": {**running, "phase": "Failed"}})  # not what we wrote
    assert not writer.is_echo(old, {**new, "metadata": {**new["metadata"], "resourceVersion": "9"}})
    deleting = {**new, "metadata": {**new["metadata"], "deletionTimestamp": "2026-12-02T01:00:00Z"}}
    assert not writer.is_echo(old, deleting)  # more than the status changed
    assert not writer.is_echo(old, {**new, "spec": {**new["spec"], "activeDeadlineSeconds": 5}})


class Asked(FakeRuntime):
    """Records each listing: whole (None) or of one pod."""

    def __init__(self) -> None:
        super().__init__()
        self.listed: list[PodKey | None] = []

    async def list_containers(self, node_name: str, *, pod: PodKey | None = None) -> list[RuntimeContainer]:
        self.listed.append(pod)
        return await super().list_containers(node_name, pod=pod)


async def test_a_reconciles_view_lists_its_pod_only_after_one_whole_listing() -> None:
    runtime = Asked()
    for name in ("a", "b"):
        sandbox = SandboxConfig(pod_uid=f"uid-{name}", namespace="default", name=name, node_name=NODE)
        sid = await runtime.create_sandbox(sandbox)
        await runtime.create_container(sid, sandbox, ContainerConfig(name="app", image="busybox"), 0)
    cache = RuntimeCache(runtime, NODE)
    view = await cache.view("default/a")
    assert [s.name for s in view.sandboxes] == ["a"] and [c.pod_uid for c in view.containers] == ["uid-a"]
    assert runtime.listed == [None, ("default", "a")]  # the first: every pod's (the addresses in use)
    assert set(cache.views) == {"default/a", "default/b"}
    assert not (await cache.view("default/gone")).sandboxes
    assert runtime.listed[2:] == [("default", "gone")] and cache.listings == 1 and cache.pod_listings == 2


class SlowSandbox(FakeRuntime):
    """Makes a sandbox only once the first container's config was prepared: preparing after the sandbox
    never finishes."""

    def __init__(self) -> None:
        super().__init__()
        self.prepared = asyncio.Event()

    async def create_sandbox(self, config: SandboxConfig, *, start: bool = True) -> str:
        await self.prepared.wait()
        return await super().create_sandbox(config, start=start)


async def test_the_first_containers_volumes_are_made_while_the_sandbox_is(tmp_path: Path) -> None:
    runtime = SlowSandbox()
    seen: list[str] = []

    async def prepare(pod: Obj, sandbox: SandboxConfig, config: ContainerConfig) -> ContainerConfig:
        seen.append(config.name)
        runtime.prepared.set()
        return config

    config = KubeletConfig(node_name=NODE, state_dir=tmp_path, measure_host=False)
    executor = Executor(runtime, None, config, events=None, log=structlog.get_logger("test"),  # type: ignore[arg-type]
                        prepare=prepare)
    pod, notes = _pod("busybox"), PodNotes()
    decided = plan(pod, PodRuntimeView(), notes, 0.0, node_name=NODE, address="127.0.0.1", pod_ip="127.88.0.5")
    await asyncio.wait_for(executor.execute(pod, decided.actions, notes, key="default/p"), 5)
    assert seen == ["app"]  # prepared once, not again for the create
    assert [c.state for c in await runtime.list_containers(NODE)] == ["running"]


def test_a_slow_relist_waits_longer_so_listing_keeps_a_share_of_the_runtime() -> None:
    assert relist_pause(1.0, 0.02, 0.2) == 1.0  # a quick listing: the PLEG period
    assert relist_pause(1.0, 0.6, 0.2) == pytest.approx(2.4)  # 0.6 s listing, then 2.4 s: 20 % of the time
    assert relist_pause(1.0, 0.6, 0.0) == 1.0 and relist_pause(1.0, 0.6, 1.0) == 1.0  # no share: the period


async def test_what_a_reconcile_saw_is_no_change_for_the_relist() -> None:
    runtime = FakeRuntime()
    cache = RuntimeCache(runtime, NODE)
    assert await cache.relist_changes() == []
    sandbox = SandboxConfig(pod_uid="uid-a", namespace="default", name="a", node_name=NODE)
    sid = await runtime.create_sandbox(sandbox)
    cid = await runtime.create_container(sid, sandbox, ContainerConfig(name="app", image="busybox"), 0)
    await runtime.start_container(cid)
    seen = await cache.view("default/a")  # the reconcile that made them looks
    assert [c.state for c in seen.containers] == ["running"]
    assert await cache.relist_changes() == []  # its own create and start: nothing new
    await runtime.stop_container(cid, 0)
    assert await cache.relist_changes() == ["default/a"]  # an exit it did not see is
    await runtime.remove_sandbox(sid)
    assert not (await cache.view("default/a")).sandboxes
    assert await cache.relist_changes() == []  # gone, and seen gone
