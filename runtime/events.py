"""Recording Kubernetes-style Events through the API, correlated as client-go's recorder does.

``EventRecorder.record(obj, type, reason, message)`` passes the event through an ``EventCorrelator``
(``runtime/event_correlator.py``: spam filter per source and object, aggregation of similar events,
deduplication), then writes it: a new Event (``create``), or the next occurrence of one already written
(``update`` with ``count`` + 1, ``lastTimestamp`` and ``series``). The recorder's memory is bounded by the
correlator's LRU caches (4,096 entries each). Writes are best effort: a failure is logged, never raised.

Events have the ``v1`` shape Kubernetes writes: ``involvedObject``, ``reason``, ``message``, ``type``,
``count``, ``firstTimestamp``/``lastTimestamp``, ``eventTime``, ``series``, ``source`` (``component``
and ``host``), ``reportingComponent``/``reportingInstance``; names are ``<object>.<nanoseconds in hex>``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from protocol.errors import AlreadyExists, NotFound, ShoalError
from protocol.objects import Obj, format_micro_time, format_time, meta, name_of, namespace_of, uid_of
from runtime.client import ApiClient
from runtime.event_correlator import Correlation, EventCorrelator, EventFacts, Observed


class EventRecorder:
    def __init__(self, client: ApiClient, component: str, *, host: str | None = None, log: Any = None,
                 correlator: EventCorrelator | None = None, clock: Callable[[], float] = time.time) -> None:
        self.client = client
        self.component = component
        self.host = host
        self.log = log
        self.correlator = correlator or EventCorrelator()
        self.clock = clock
        self.writes = 0
        self.failures = 0

    def facts(self, obj: Obj, type_: str, reason: str, message: str) -> EventFacts:
        return EventFacts(component=self.component, host=self.host or "", kind=str(obj.get("kind") or ""),
                          namespace=namespace_of(obj) or "", name=name_of(obj), uid=uid_of(obj),
                          api_version=str(obj.get("apiVersion") or ""), type=type_, reason=reason,
                          message=message)

    async def record(self, obj: Obj, type_: str, reason: str, message: str) -> None:
        """Record an Event about ``obj``; failures are logged, never raised (events are best effort)."""
        now = self.clock()
        correlation = self.correlator.correlate(self.facts(obj, type_, reason, message), now)
        if correlation.skip:
            return
        try:
            await self._write(obj, type_, reason, correlation, now)
        except ShoalError as exc:
            self.failures += 1
            if self.log is not None:
                self.log.warning("could not record event", reason=reason, error=str(exc))

    async def _write(self, obj: Obj, type_: str, reason: str, correlation: Correlation, now: float) -> None:
        observed = correlation.observed
        event = self.event(obj, type_, reason, correlation.message, now, observed)
        if observed is not None:
            try:
                written = await self.client.update(event)
            except NotFound:  # expired or deleted meanwhile: start again
                self.correlator.forget(correlation.key)
                event = self.event(obj, type_, reason, correlation.message, now, None)
                written = await self._create(event)
        else:
            written = await self._create(event)
        self.writes += 1
        first = observed.first if observed is not None else now
        self.correlator.written(correlation.key, Observed(name_of(written), namespace_of(written) or "default",
                                                          int(written.get("count") or 1), first))

    async def _create(self, event: Obj) -> Obj:
        try:
            return await self.client.create(event)
        except AlreadyExists:  # the same nanosecond name: take the next one
            meta(event)["name"] = f"{event['involvedObject']['name']}.{time.time_ns() + 1:x}"
            return await self.client.create(event)

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
