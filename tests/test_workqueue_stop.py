"""A worker asked to stop never acts on another key, even when the cancellation was lost on the way.

Python 3.11's ``asyncio.wait_for`` (inside every NATS request) can return a result that meets a cancellation
and drop the CancelledError. A controller manager that lost its lease then kept reconciling: its node
lifecycle controller evicted 70 pods minutes after another manager took over (docs/RELIABILITY.md, finding
14). The task still counts the cancellation (``Task.cancelling``); the worker checks it before each key."""

from __future__ import annotations

import asyncio

import structlog

from runtime.workqueue import WorkQueue, run_workers


async def test_a_lost_cancellation_still_stops_the_worker_before_the_next_key() -> None:
    queue = WorkQueue()
    started = asyncio.Event()
    done: list[str] = []

    async def reconcile(key: str) -> float | None:
        if key == "a":
            started.set()
            try:
                await asyncio.sleep(30)
            except asyncio.CancelledError:
                pass  # what 3.11's wait_for may do: the request's answer wins, the cancel is dropped
        done.append(key)
        return None

    queue.add("a")
    task = asyncio.create_task(run_workers(queue, reconcile, workers=1, log=structlog.get_logger()))
    await started.wait()
    queue.add("b")
    task.cancel()
    finished, _ = await asyncio.wait([task], timeout=2)
    assert finished, "the worker kept running after it was cancelled"
    assert task.cancelled()
    assert done == ["a"]  # "b" was never reconciled


async def test_workers_go_on_reconciling_while_not_asked_to_stop() -> None:
    queue = WorkQueue()
    done: list[str] = []

    async def reconcile(key: str) -> float | None:
        done.append(key)
        return None

    for key in ("a", "b", "c"):
        queue.add(key)
    task = asyncio.create_task(run_workers(queue, reconcile, workers=2, log=structlog.get_logger()))
    for _ in range(100):
        if len(done) == 3:
            break
        await asyncio.sleep(0.01)
    task.cancel()
    await asyncio.wait([task], timeout=2)
    assert sorted(done) == ["a", "b", "c"]
