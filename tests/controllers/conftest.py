"""Fixtures for controller tests: a controller manager on a real API, and a stand-in for kubelets.

``pod_status_simulator`` marks every pod Running and Ready (with container statuses) as soon as it
appears. It stands in for a kubelet until hollow kubelets exist; tests that need pods to become
available use it, nothing else should.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from actors.controllers.manager import ControllerManager
from protocol.errors import ShoalError
from protocol.objects import Obj, format_time, is_deleting, pod_is_ready, pod_is_terminal
from runtime.client import ApiClient
from runtime.informer import Informer
from tests.conftest import ActorRunner, cancel_and_wait


def running_status(pod: Obj, now: float) -> Obj:
    stamp = format_time(now)
    containers = (pod.get("spec") or {}).get("containers") or []
    return {"phase": "Running", "startTime": stamp, "conditions": [
        {"type": t, "status": "True", "lastTransitionTime": stamp}
        for t in ("PodScheduled", "Initialized", "ContainersReady", "Ready")],
        "containerStatuses": [{"name": c.get("name"), "image": c.get("image"), "ready": True, "started": True,
                               "restartCount": 0, "state": {"running": {"startedAt": stamp}}}
                              for c in containers]}


@pytest.fixture
async def pod_status_simulator(client: ApiClient) -> AsyncIterator[Informer]:
    """Stand-in for a kubelet: every live pod that is not Ready becomes Running + Ready."""
    informer = Informer(client, "Pod")
    pending: asyncio.Queue[Obj] = asyncio.Queue()
    informer.add_handler(lambda _e, _old, new: pending.put_nowait(new) if new is not None else None)

    async def mark() -> None:
        while True:
            pod = await pending.get()
            if pod_is_ready(pod) or is_deleting(pod) or pod_is_terminal(pod):
                continue
            with contextlib.suppress(ShoalError):  # gone or changed: a later event retries
                await client.update_status({**pod, "status": running_status(pod, time.time())})

    tasks = [asyncio.create_task(informer.run()), asyncio.create_task(mark())]
    await informer.synced.wait()
    try:
        yield informer
    finally:
        await cancel_and_wait(*tasks)


StartControllers = Callable[..., Awaitable[ControllerManager]]


async def start_manager(runner: ActorRunner, names: list[str], **options: Any) -> ControllerManager:
    """A leaderless controller manager running ``names``, returned once every controller reconciles."""
    manager = ControllerManager(names, leader_elect=False, options=options)
    await runner.start(manager, ready=lambda: bool(manager.controllers) and all(
        getattr(c, "running", False) for c in manager.controllers))
    return manager


@pytest.fixture
def start_controllers(runner: ActorRunner, api: Any) -> StartControllers:
    """``await start_controllers("replicaset", ...)``: a leaderless manager, returned once it reconciles."""

    async def start(*names: str, **options: Any) -> ControllerManager:
        return await start_manager(runner, list(names), **options)

    return start


async def eventually(check: Callable[[], Awaitable[Any]], timeout: float = 15.0, interval: float = 0.05) -> Any:
    """Poll ``check`` until it returns something truthy; its last result on timeout is an assertion."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = await check()
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {timeout}s (last result: {result!r})")
        await asyncio.sleep(interval)
