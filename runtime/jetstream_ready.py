"""Wait for JetStream at start: retry an idempotent setup step until the cluster's JetStream answers.

A clustered JetStream has no meta leader until a majority of its servers is up (2 of 3): until then its
API times out or answers 503. A stream just created on a cluster may also not answer a publish for a
moment (its leader is still being elected, or the server's interest in its subjects has not reached ours
yet): the client reports that as "no response from stream". An actor started at the same time as the
servers (every VM booting at once) waits here, saying so, instead of exiting with a traceback and relying
on its supervisor.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeout
from nats.js.errors import NoStreamResponseError, ServiceUnavailableError

T = TypeVar("T")
NOT_YET = (NatsTimeout, NoRespondersError, NoStreamResponseError, ServiceUnavailableError, asyncio.TimeoutError)


async def when_jetstream_answers(step: Callable[[], Awaitable[T]], log: Any, what: str,
                                 max_delay: float = 10.0, also: tuple[type[Exception], ...] = ()) -> T:
    """Run ``step`` (idempotent) until it does not fail for want of JetStream; other errors propagate.

    ``also``: the caller's own "not answering" errors (the API actor's store turns those above into its
    typed ``Unavailable``)."""
    delay, attempt = 0.5, 1
    while True:
        try:
            return await step()
        except NOT_YET + also as exc:
            log.warning("JetStream is not answering yet: waiting for a majority of the NATS servers",
                        step=what, attempt=attempt, retry_in_s=delay, error=type(exc).__name__,
                        hint="start the other NATS servers (or check routes 6222 between them)")
            await asyncio.sleep(delay)
            delay, attempt = min(delay * 2, max_delay), attempt + 1
