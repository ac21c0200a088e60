"""Named, owned tasks: each runs under the supervisor, is restarted with back-off when it crashes,
and is cancelled and awaited on shutdown. Nothing runs as an orphan ``create_task``."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from runtime.logs import get_logger


@dataclass
class TaskState:
    name: str
    restarts: int = 0
    last_error: str | None = None
    started: float = field(default_factory=time.monotonic)


class Supervisor:
    def __init__(self, log: Any = None, *, max_backoff: float = 10.0) -> None:
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self.states: dict[str, TaskState] = {}
        self._log = log or get_logger(component="supervisor")
        self._max_backoff = max_backoff
        self._closing = False

    def spawn(self, name: str, factory: Callable[[], Awaitable[None]], *, restart: bool = True) -> None:
        """Run ``factory()`` as task ``name``; restart it on a crash unless ``restart`` is False."""
        if name in self._tasks and not self._tasks[name].done():
            raise RuntimeError(f"task {name!r} is already running")
        self.states[name] = TaskState(name)
        self._tasks[name] = asyncio.create_task(self._run(name, factory, restart), name=name)

    async def _run(self, name: str, factory: Callable[[], Awaitable[None]], restart: bool) -> None:
        state = self.states[name]
        backoff = 0.2
        while True:
            started = time.monotonic()
            try:
                await factory()
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                state.restarts += 1
                state.last_error = repr(exc)
                self._log.error("task crashed", task=name, error=repr(exc), restarts=state.restarts,
                                exc_info=True)
                if not restart or self._closing:
                    return
                if time.monotonic() - started > 60:
                    backoff = 0.2
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self._max_backoff)

    def running(self) -> dict[str, bool]:
        return {name: not task.done() for name, task in self._tasks.items()}

    async def wait_any(self) -> None:
        """Return when any task ends (a crash of a non-restarting task, or a task that finished)."""
        if self._tasks:
            await asyncio.wait(list(self._tasks.values()), return_when=asyncio.FIRST_COMPLETED)

    async def close(self, timeout: float = 10.0) -> None:
        self._closing = True
        tasks = [t for t in self._tasks.values() if not t.done()]
        for task in tasks:
            task.cancel()
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=timeout)
            for task in pending:
                self._log.warning("task did not stop in time", task=task.get_name())
