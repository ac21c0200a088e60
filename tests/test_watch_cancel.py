"""A ``Watch`` being iterated stops when its task is cancelled, even when the cancellation meets a message
arriving in the same instant (``asyncio.wait_for`` of Python 3.11 returns the message and loses the
cancellation: the gateway's watch pump then never ended, its handler hung and ``shoal up``'s Ctrl-C killed the
gateway after 10 s)."""

from __future__ import annotations

import asyncio
import contextlib
from typing import cast

from protocol.kinds import by_kind
from runtime.client import ApiClient
from runtime.watch import Watch, _Bookmark


async def test_a_cancellation_that_meets_a_message_stops_the_watch() -> None:
    watch = Watch(cast(ApiClient, None), by_kind("Pod"), "default", label_selector=None, field_selector=None,
                  resource_version=1)  # never asked: messages come only through the queue
    watch._sub = object()  # as if started

    async def consume() -> None:
        async for _ in watch:
            pass

    task = asyncio.create_task(consume())
    for _ in range(3):
        await asyncio.sleep(0)  # waiting for a message
    watch._queue.put_nowait(_Bookmark(seq=99, resource_version=5))  # a message arrives ...
    task.cancel()  # ... as the task is cancelled
    done, _ = await asyncio.wait({task}, timeout=2)
    if not done:
        task.cancel()
        with contextlib.suppress(BaseException):
            await asyncio.wait_for(task, 2)
    assert done and task.cancelled(), "the watch went on after its task was cancelled"
