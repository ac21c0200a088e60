"""Shared fixtures: a real nats-server on a free port with a temporary store, API actors, clients."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import nats
import pytest

from actors.api.server import ApiActor, ApiSettings
from runtime.actor import Actor, run_actor
from runtime.bus import BusConfig
from runtime.client import ApiClient
from runtime.logs import configure_logging
from runtime.nats_server import NatsServer, NatsServerConfig, free_port

configure_logging("console", "warning")

_RERUNS: list[Any] = []


def pytest_runtest_logreport(report: Any) -> None:
    if report.outcome == "rerun":  # pytest-rerunfailures: a failed attempt that ``--reruns`` runs again
        _RERUNS.append(report)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Each failure that a rerun followed, in full: a test that passed only the second time is a bug to find,
    and CI keeps nothing but this output."""
    for report in _RERUNS:
        terminalreporter.write_sep("-", f"failed before its rerun: {report.nodeid} ({report.when})")
        terminalreporter.write_line(report.longreprtext[-6000:])


async def cancel_and_wait(*tasks: asyncio.Task[Any], timeout: float = 5.0) -> None:
    """Cancel background tasks and wait for them, boundedly: on Python 3.11 ``asyncio.wait_for`` can
    swallow a cancellation that races with its inner result, leaving a polling loop running."""
    for task in tasks:
        task.cancel()
    if tasks:
        await asyncio.wait(tasks, timeout=timeout)


@pytest.fixture
async def nats_server(tmp_path: Path) -> AsyncIterator[NatsServer]:
    server = NatsServer(NatsServerConfig(state_dir=tmp_path / "nats", port=free_port()))
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


class ActorRunner:
    """Runs actors in this event loop, each stoppable on its own (as a SIGTERM would)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.running: list[tuple[asyncio.Event, asyncio.Task[None]]] = []

    async def start(self, actor: Actor, ready: Callable[[], bool] | None = None) -> asyncio.Event:
        stop = asyncio.Event()
        task = asyncio.create_task(run_actor(actor, BusConfig(servers=(self.url,)), stop=stop,
                                             install_signals=False))
        self.running.append((stop, task))
        deadline = asyncio.get_running_loop().time() + 30
        check = ready or (lambda: getattr(actor, "cache", None) is None or actor.cache.ready.is_set())  # type: ignore[attr-defined]
        while not check():
            if task.done():
                task.result()
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"{actor.name} did not become ready")
            await asyncio.sleep(0.02)
        return stop

    async def stop_all(self) -> None:
        for stop, _ in self.running:
            stop.set()
        for _, task in self.running:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(task, 15)


@pytest.fixture
async def runner(nats_server: NatsServer) -> AsyncIterator[ActorRunner]:
    r = ActorRunner(nats_server.url)
    try:
        yield r
    finally:
        await r.stop_all()


async def start_api(runner: ActorRunner, **settings: Any) -> ApiActor:
    actor = ApiActor(ApiSettings(**settings))
    await runner.start(actor)
    # ready once it serves requests
    for _ in range(500):
        if actor.serving:
            break
        await asyncio.sleep(0.01)
    return actor


@pytest.fixture
async def api(runner: ActorRunner) -> ApiActor:
    return await start_api(runner)


@pytest.fixture
async def client(nats_server: NatsServer, api: ApiActor) -> AsyncIterator[ApiClient]:
    nc = await nats.connect(nats_server.url)
    try:
        yield ApiClient(nc)
    finally:
        await nc.close()
