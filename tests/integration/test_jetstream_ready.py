"""runtime/jetstream_ready.py: an actor's setup waits for JetStream to answer, and only for that."""

from __future__ import annotations

from typing import Any

import pytest
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeout
from nats.js.errors import NoStreamResponseError, ServiceUnavailableError

from runtime import jetstream_ready
from runtime.jetstream_ready import when_jetstream_answers


class Log:
    def __init__(self) -> None:
        self.warnings: list[dict[str, Any]] = []

    def warning(self, event: str, **fields: Any) -> None:
        self.warnings.append({"event": event, **fields})


@pytest.fixture(autouse=True)
def no_sleeping(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    slept: list[float] = []

    async def sleep(delay: float) -> None:
        slept.append(delay)

    monkeypatch.setattr(jetstream_ready.asyncio, "sleep", sleep)
    return slept


async def test_a_step_is_retried_while_jetstream_has_no_quorum(no_sleeping: list[float]) -> None:
    failures: list[Exception] = [NatsTimeout(), ServiceUnavailableError(), NoRespondersError(),
                                 NoStreamResponseError()] + [NatsTimeout()] * 2
    calls = 0

    async def step() -> str:
        nonlocal calls
        calls += 1
        if failures:
            raise failures.pop(0)
        return "bucket"

    log = Log()
    assert await when_jetstream_answers(step, log, "datastore bucket") == "bucket"
    assert calls == 7
    assert no_sleeping == [0.5, 1.0, 2.0, 4.0, 8.0, 10.0]  # backs off, capped
    assert [w["step"] for w in log.warnings] == ["datastore bucket"] * 6
    assert "majority of the NATS servers" in log.warnings[0]["event"] and log.warnings[0]["hint"]


async def test_other_errors_are_not_waited_for() -> None:
    async def step() -> None:
        raise PermissionError("denied")

    log = Log()
    with pytest.raises(PermissionError):
        await when_jetstream_answers(step, log, "event streams")
    assert log.warnings == []


async def test_the_callers_own_unavailable_error_is_waited_for_when_named(no_sleeping: list[float]) -> None:
    class StoreUnavailable(Exception):
        pass

    failures = [StoreUnavailable()]

    async def step() -> str:
        if failures:
            raise failures.pop()
        return "namespaces"

    log = Log()
    assert await when_jetstream_answers(step, log, "system namespaces", also=(StoreUnavailable,)) == "namespaces"
    assert no_sleeping == [0.5] and log.warnings[0]["error"] == "StoreUnavailable"
    failures.append(StoreUnavailable())
    with pytest.raises(StoreUnavailable):
        await when_jetstream_answers(step, Log(), "system namespaces")
