"""Stop a task that was asked to stop, even when its ``CancelledError`` was lost on the way.

Python 3.11's ``asyncio.wait_for`` (inside every NATS request) can return a result that meets a
cancellation and drop the ``CancelledError``: the task then runs on, though ``Task.cancelling()`` still
counts the request. A loop that acts (reconciles a key, applies a watch event) checks this before each
step, so a controller manager that lost its lease cannot keep acting (docs/RELIABILITY.md, finding 14)."""

from __future__ import annotations

import asyncio


def stop_if_cancelled() -> None:
    """Raise ``CancelledError`` when the current task has a cancellation pending."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError
