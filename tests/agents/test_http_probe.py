"""Kubernetes' HTTP probe against a real HTTP server: same-host redirects are followed, a redirect to
another host passes with a warning (the kubelet's ``ProbeWarning`` event), a redirect loop fails."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest_asyncio
from aiohttp import web

from agents.kubelet.probes import NetworkProber, ProbeResult, ProbeScheduler, ProbeSpec, ProbeTarget, RunningContainer
from runtime.nats_server import free_port
from tests.conftest import cancel_and_wait


@pytest_asyncio.fixture
async def server() -> AsyncIterator[int]:
    port = free_port()

    async def moved(request: web.Request) -> web.Response:
        raise web.HTTPFound(request.query.get("to", "/ok"))

    async def loop(request: web.Request) -> web.Response:
        raise web.HTTPFound("/loop")

    async def ok(request: web.Request) -> web.Response:
        return web.Response(text="fine")

    async def broken(request: web.Request) -> web.Response:
        return web.Response(status=500)

    app = web.Application()
    app.router.add_get("/ok", ok)
    app.router.add_get("/moved", moved)
    app.router.add_get("/loop", loop)
    app.router.add_get("/broken", broken)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield port
    finally:
        await runner.cleanup()


def probe(port: int, path: str) -> tuple[ProbeSpec, ProbeTarget]:
    container = {"name": "web", "ports": [{"containerPort": port}],
                 "readinessProbe": {"httpGet": {"path": path, "port": port}, "periodSeconds": 0.05,
                                    "failureThreshold": 1}}
    spec = ProbeSpec.from_container("readiness", container)
    assert spec is not None
    return spec, ProbeTarget("cid", container, "127.0.0.1", "127.0.0.1")


async def check(port: int, path: str) -> ProbeResult:
    return await NetworkProber(runtime=None).check(*probe(port, path))  # type: ignore[arg-type]


async def test_redirects_on_the_same_host_are_followed(server: int) -> None:
    assert await check(server, "/moved") == ProbeResult(True, "HTTP probe failed with statuscode: 200")
    assert (await check(server, f"/moved?to=http://127.0.0.1:{server}/broken")).ok is False  # followed to a 500


async def test_a_redirect_elsewhere_passes_with_a_warning(server: int) -> None:
    result = await check(server, "/moved?to=http://192.0.2.77/elsewhere")
    assert result.ok and result.warning and result.output.startswith("Probe terminated redirects")


async def test_a_redirect_loop_fails(server: int) -> None:
    assert await check(server, "/loop") == ProbeResult(False, "HTTP probe failed: stopped after 10 redirects")


async def test_the_scheduler_tells_a_warning_apart_from_a_failure(server: int) -> None:
    told: list[tuple[str, str, str, bool]] = []

    async def failed(kind: str, container: str, output: str, warning: bool) -> None:
        told.append((kind, container, output, warning))

    scheduler = ProbeScheduler(NetworkProber(runtime=None))  # type: ignore[arg-type]
    for pod, name, path in (("ns/a", "warned", "/moved?to=http://192.0.2.77/"), ("ns/b", "broken", "/broken")):
        _, target = probe(server, path)
        scheduler.sync(pod, [RunningContainer(name, target.container, None)], "127.0.0.1", "127.0.0.1",
                       failed=failed)
    task = asyncio.create_task(scheduler.run())
    try:
        for _ in range(200):
            if {w for *_, w in told} == {True, False}:
                break
            await asyncio.sleep(0.02)
    finally:
        await cancel_and_wait(task)
    warnings = [t for t in told if t[3]]
    failures = [t for t in told if not t[3]]
    assert warnings and warnings[0][:2] == ("readiness", "web") and "terminated redirects" in warnings[0][2]
    assert failures and failures[0][2] == "HTTP probe failed with statuscode: 500"
    assert scheduler.result("warned", "readiness") is True and scheduler.result("broken", "readiness") is False
