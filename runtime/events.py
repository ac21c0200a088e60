"""Recording Kubernetes-style Events, correlated as client-go's recorder does, published once.

``EventRecorder.record(obj, type, reason, message)`` passes the event through an ``EventCorrelator``
(``runtime/event_correlator.py``: spam filter per source and object, aggregation of similar events,
deduplication), then writes it: a new Event, or the next occurrence of one already written (``count`` + 1,
``lastTimestamp``, ``series``). The recorder's memory is bounded by the correlator's LRU caches (4,096
entries each). Writes are best effort: a failure is logged and counted, never raised.

Where it writes: straight to the ``SHOAL_EVENTS`` stream, the store of Events (``runtime/event_stream.py``):
one publish per occurrence on the Event's own subject, no request to an API actor. ``record`` waits for the
stream's acknowledgement (the Event is stored when it returns); ``emit`` does not even wait for that (one
plain NATS publish; client-go's recorder does not wait either, and a lost one is lost, as when its queue is
full). ``direct=False`` sends ``create``/``update`` requests through the API instead, for a client whose
NATS user may not publish on ``shoal.events.>``.

``record`` waits for the write; ``emit`` does not (client-go's recorder is asynchronous too): the event is
queued, in order, and written by the recorder's own writer task, which exists while the queue is not empty;
beyond ``QUEUE_LIMIT`` waiting events new ones are dropped and counted. Hot paths (the kubelet's pod
worker, the scheduler's binds) emit, so that recording what happened never slows down what happens.

Events have the ``v1`` shape Kubernetes writes: ``involvedObject``, ``reason``, ``message``, ``type``,
``count``, ``firstTimestamp``/``lastTimestamp``, ``eventTime``, ``series``, ``source`` (``component``
and ``host``), ``reportingComponent``/``reportingInstance``; names are ``<object>.<nanoseconds in hex>``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections import deque
from collections.abc import Callable
from typing import Any

from protocol.errors import AlreadyExists, Conflict, NotFound, ShoalError
from protocol.objects import (
    Obj,
    format_micro_time,
    format_time,
    meta,
    name_of,
    namespace_of,
    resource_version,
    uid_of,
)
from runtime.client import ApiClient
from runtime.event_correlator import Correlation, EventCorrelator, EventFacts, Observed
from runtime.event_stream import ADDED, MODIFIED, EventStream

QUEUE_LIMIT = 1000
"""Events emitted and not yet written, at most (client-go's broadcaster queue holds 1,000 too)."""


class EventRecorder:
    def __init__(self, client: ApiClient, component: str, *, host: str | None = None, log: Any = None,
                 correlator: EventCorrelator | None = None, clock: Callable[[], float] = time.time,
                 direct: bool = True) -> None:
        self.client = client
        self.component = component
        self.host = host
        self.log = log
        self.correlator = correlator or EventCorrelator()
        self.clock = clock
        self.stream = EventStream(client.nc) if direct else None
        self.writes = 0
        self.failures = 0
        self.dropped = 0
        self._queue: deque[tuple[Obj, str, str, str, float]] = deque()
        self._writer: asyncio.Task[None] | None = None

    def facts(self, obj: Obj, type_: str, reason: str, message: str) -> EventFacts:
        return EventFacts(component=self.component, host=self.host or "", kind=str(obj.get("kind") or ""),
                          namespace=namespace_of(obj) or "", name=name_of(obj), uid=uid_of(obj),
                          api_version=str(obj.get("apiVersion") or ""), type=type_, reason=reason,
                          message=message)

    def emit(self, obj: Obj, type_: str, reason: str, message: str) -> None:
        """Record an Event about ``obj`` without waiting for it to be written (in order, best effort)."""
        if len(self._queue) >= QUEUE_LIMIT:
            self.dropped += 1
            return
        self._queue.append((obj, type_, reason, message, self.clock()))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.get_running_loop().create_task(self._drain(), name=f"events-{self.component}")

    async def _drain(self) -> None:
        while self._queue:
            obj, type_, reason, message, at = self._queue.popleft()
            await self.record(obj, type_, reason, message, at=at, acknowledged=False)

    async def flush(self) -> None:
        """Wait until every emitted event is written (or failed)."""
        while self._writer is not None and not self._writer.done():
            await asyncio.shield(self._writer)

    async def close(self) -> None:
        """Stop writing; events still queued are dropped."""
        self._queue.clear()
        if self._writer is not None:
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer

    async def record(self, obj: Obj, type_: str, reason: str, message: str, *, at: float | None = None,
                     acknowledged: bool = True) -> None:
        """Record an Event about ``obj``; failures are logged, never raised (events are best effort).
        ``acknowledged``: return once the stream has it (else once it is sent)."""
        now = self.clock() if at is None else at
        correlation = self.correlator.correlate(self.facts(obj, type_, reason, message), now)
        if correlation.skip:
            return
        try:
            written = await self._write(obj, type_, reason, correlation, now, acknowledged)
        except ShoalError as exc:
            self.failures += 1
            if self.log is not None:
                self.log.warning("could not record event", reason=reason, error=str(exc))
            return
        self.writes += 1
        m = meta(written)
        first = correlation.observed.first if correlation.observed is not None else now
        self.correlator.written(correlation.key, Observed(
            name_of(written), namespace_of(written) or "default", int(written.get("count") or 1), first,
            str(m.get("uid") or ""), str(m.get("creationTimestamp") or ""), resource_version(written)))

    async def _write(self, obj: Obj, type_: str, reason: str, correlation: Correlation, now: float,
                     acknowledged: bool) -> Obj:
        observed = correlation.observed
        if observed is not None:
            try:
                return await self._update(self.event(obj, type_, reason, correlation.message, now, observed),
                                          observed, acknowledged)
            except (NotFound, Conflict):  # expired, deleted or changed meanwhile: a new Event
                self.correlator.forget(correlation.key)
        return await self._create(self.event(obj, type_, reason, correlation.message, now, None), now,
                                  acknowledged)

    async def _publish(self, event: Obj, change: str, acknowledged: bool) -> None:
        assert self.stream is not None
        if acknowledged:
            meta(event)["resourceVersion"] = str(await self.stream.publish(event, change, None))
        else:
            await self.stream.publish_unacknowledged(event, change)

    async def _create(self, event: Obj, now: float, acknowledged: bool) -> Obj:
        for _ in range(3):
            try:
                if self.stream is None:
                    return await self.client.create(event)
                m = meta(event)
                m.setdefault("uid", str(uuid.uuid4()))
                m.setdefault("creationTimestamp", format_time(now))
                await self._publish(event, ADDED, acknowledged)
                return event
            except (AlreadyExists, Conflict):  # the same nanosecond name: take the next one
                meta(event)["name"] = f"{event['involvedObject']['name']}.{time.time_ns() + 1:x}"
        raise AlreadyExists(f"no free name for an event about {event['involvedObject']['name']}")

    async def _update(self, event: Obj, observed: Observed, acknowledged: bool) -> Obj:
        if self.stream is None:
            return await self.client.update(event)
        m = meta(event)
        m["uid"], m["creationTimestamp"] = observed.uid, observed.created
        await self._publish(event, MODIFIED, acknowledged)
        return event

    def event(self, obj: Obj, type_: str, reason: str, message: str, now: float,
              observed: Observed | None) -> Obj:
        """The Event object to write: a new one, or the next occurrence of ``observed``."""
        namespace = namespace_of(obj) or "default"
        count = observed.count + 1 if observed is not None else 1
        first = observed.first if observed is not None else now
        name = observed.name if observed is not None else f"{name_of(obj)}.{time.time_ns():x}"
        event: Obj = {
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": name, "namespace": observed.namespace if observed is not None else namespace},
            "involvedObject": {"kind": obj.get("kind"), "name": name_of(obj), "namespace": namespace_of(obj),
                               "uid": uid_of(obj), "apiVersion": obj.get("apiVersion"),
                               "resourceVersion": meta(obj).get("resourceVersion")},
            "reason": reason, "message": message, "type": type_, "count": count,
            "firstTimestamp": format_time(first), "lastTimestamp": format_time(now),
            "eventTime": format_micro_time(first),
            "source": {"component": self.component, **({"host": self.host} if self.host else {})},
            "reportingComponent": self.component, "reportingInstance": self.host or "",
        }
        if count > 1:
            event["series"] = {"count": count, "lastObservedTime": format_micro_time(now)}
        return event

