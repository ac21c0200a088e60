"""The paced probe stops when asked, even when its cancellation meets a request's answer and is lost.

Session 11's 150,000-pod comparison of one and two API actors ran 29 minutes, then failed at the end: the
probe process got SIGTERM, cancelled its write loop, and never exited (``communicate(timeout=30)`` expired).
Its ``update`` was answered as the cancel arrived, and Python 3.11's ``wait_for`` dropped the
``CancelledError`` (docs/RELIABILITY.md, finding 14); the loop went on writing."""

from __future__ import annotations

import asyncio
from typing import Any, cast

from bench.probe import probe_writes
from runtime.client import ApiClient


class SwallowingClient:
    """Answers every write, and drops a cancellation that arrives while one is in flight."""

    def __init__(self) -> None:
        self.updates = 0
        self.in_flight = asyncio.Event()

    async def create(self, obj: dict[str, Any]) -> dict[str, Any]:
        return obj

    async def update(self, obj: dict[str, Any]) -> dict[str, Any]:
        self.updates += 1
        self.in_flight.set()
        try:
            await asyncio.sleep(0.05)
        except asyncio.CancelledError:
            pass  # the answer wins, as in 3.11's wait_for
        return obj


async def test_the_probe_stops_though_its_cancellation_was_swallowed() -> None:
    client = SwallowingClient()
    latencies: list[tuple[float, float]] = []
    task = asyncio.create_task(probe_writes(cast(ApiClient, client), latencies, every=0.001))
    await client.in_flight.wait()
    task.cancel()
    finished, _ = await asyncio.wait([task], timeout=2)
    assert finished, f"the probe kept writing after it was cancelled ({client.updates} updates)"
    assert task.cancelled()


async def test_the_probe_says_once_when_its_first_write_is_answered() -> None:
    """``bench_scale`` starts its load only after this (before, on a slow machine the probe's first write came
    after the load had started, and "before the load" had no sample: p99 nan)."""
    client = SwallowingClient()
    latencies: list[tuple[float, float]] = []
    said: list[int] = []
    task = asyncio.create_task(probe_writes(cast(ApiClient, client), latencies, every=0.001,
                                            on_first=lambda: said.append(len(latencies))))
    while client.updates < 3:
        await asyncio.sleep(0.01)
    task.cancel()
    await asyncio.wait([task], timeout=2)
    assert said == [1]
