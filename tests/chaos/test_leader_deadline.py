"""A leader whose renewals hang (its API requests unanswered, as behind a partition) steps down before
the lease can pass to anyone else: 0.8 of the lease after its last successful renewal *began*, not
after a request timeout on top (the chaos suite's two-leader checker caught a controller manager still
leading 1.2 s after another took over: its lease read hung for the client's 10 s)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Any

import nats
import pytest

from actors.api.server import ApiActor, ApiSettings
from runtime.client import ApiClient
from runtime.leader import LeaderElector
from runtime.nats_server import NatsServer
from tests.conftest import ActorRunner

LEASE = 5.0
pytestmark = pytest.mark.timeout(120)


async def test_a_leader_whose_renewals_hang_steps_down_before_the_lease_runs_out(
        nats_server: NatsServer, runner: ActorRunner) -> None:
    api = ApiActor(ApiSettings())
    api_stop = await runner.start(api, ready=lambda: api.serving)
    nc = await nats.connect(nats_server.url)
    silent = await nats.connect(nats_server.url)
    leading, cancelled_at = asyncio.Event(), []

    async def lead() -> None:
        leading.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled_at.append(time.monotonic())
            raise

    elector = LeaderElector(ApiClient(nc, timeout=60), "deadline-test", "me", lease_duration=LEASE, renew_every=0.5)
    campaign = asyncio.create_task(elector.run(lead))
    try:
        await asyncio.wait_for(leading.wait(), 20)
        # the API goes silent: something takes its requests and never answers, then the actor stops
        async def never_answer(msg: Any) -> None:
            pass

        await silent.subscribe("shoal.api.>", cb=never_answer)
        await silent.flush()
        api_stop.set()
        for _ in range(200):
            if not any(not task.done() for stop, task in runner.running if stop is api_stop):
                break
            await asyncio.sleep(0.05)
        silent_since = time.monotonic()
        await asyncio.wait_for(_wait(lambda: bool(cancelled_at)), 3 * LEASE)
        last_renewal_began = elector._last_renew
        # a candidate may take over LEASE after it first saw the last renewal, which was sent after it began
        assert cancelled_at[0] < last_renewal_began + LEASE, (cancelled_at[0] - last_renewal_began)
        assert last_renewal_began < silent_since + 1.0  # it did try to renew into the silence
    finally:
        campaign.cancel()
        with contextlib.suppress(BaseException):
            await campaign
        await nc.close()
        await silent.close()


async def _wait(condition: Callable[[], bool]) -> None:
    while not condition():
        await asyncio.sleep(0.05)

