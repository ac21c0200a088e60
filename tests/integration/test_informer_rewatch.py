"""An informer whose watch fails watches again from the last version it saw; only Expired makes it relist."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from protocol.errors import Expired, ShoalError, Timeout
from runtime.client import ObjectList
from runtime.informer import Informer
from runtime.watch import WatchEvent


def pod(name: str, rv: int) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default",
                                                            "resourceVersion": str(rv)}}


class FakeWatch:
    def __init__(self, outcome: ShoalError | list[WatchEvent], rv: int) -> None:
        self.outcome = outcome
        self.resource_version = rv

    def __aiter__(self) -> AsyncIterator[WatchEvent]:
        return self._events()

    async def _events(self) -> AsyncIterator[WatchEvent]:
        if isinstance(self.outcome, ShoalError):
            raise self.outcome
        for event in self.outcome:
            yield event
        await asyncio.Event().wait()

    async def close(self) -> None:
        pass


class FakeClient:
    def __init__(self, outcomes: list[ShoalError | list[WatchEvent]]) -> None:
        self.outcomes = outcomes
        self.lists = 0
        self.watched_from: list[int | None] = []

    async def list(self, *args: Any, **kwargs: Any) -> ObjectList:
        self.lists += 1
        return ObjectList([pod("a", 5)], 10)

    def watch(self, *args: Any, resource_version: int | None = None, **kwargs: Any) -> FakeWatch:
        self.watched_from.append(resource_version)
        outcome = self.outcomes.pop(0) if self.outcomes else []
        return FakeWatch(outcome, resource_version or 0)


async def test_a_failed_watch_resumes_without_relisting_and_expired_relists() -> None:
    client = FakeClient([Timeout("no answer"), [WatchEvent("ADDED", pod("b", 12), 12)]])
    informer = Informer(client, "Pod")  # type: ignore[arg-type]
    task = asyncio.create_task(informer.run())
    for _ in range(200):
        if "default/b" in informer.store:
            break
        await asyncio.sleep(0.01)
    assert "default/b" in informer.store
    assert client.lists == 1 and client.watched_from == [10, 10]
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)

    client = FakeClient([Expired("too old")])
    informer = Informer(client, "Pod")  # type: ignore[arg-type]
    task = asyncio.create_task(informer.run())
    for _ in range(200):
        if client.lists == 2:
            break
        await asyncio.sleep(0.01)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert client.lists == 2
