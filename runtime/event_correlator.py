"""Deciding what an Event recorder writes, as client-go's ``EventCorrelator`` does. Pure: no I/O, clock passed in.

Three steps per event, each with a bounded LRU cache (4,096 entries, client-go's size), so a recorder's memory
does not grow with the number of objects it has spoken about:

1. **Spam filter** (``SpamFilter``): a token bucket per source and involved object (and event type), burst 25,
   refilled one token every 5 minutes. An event finding the bucket empty is dropped. A crash-looping pod or a
   failing probe thus costs at most 25 writes, then one every 5 minutes, however often it happens.
2. **Aggregation** (``Aggregator``): events with the same source, involved object, type and reason but
   *different* messages are counted for 10 minutes; from the 10th distinct message on they are written as one
   event whose message is ``(combined from similar events): <latest message>``.
3. **Deduplication** (``Observations``): an event identical to one already written (same source, object, type,
   reason, message; or the same aggregate) does not create a new Event: the existing one is written again with
   ``count`` + 1 and a new ``lastTimestamp`` (and ``series``).

``EventCorrelator.correlate(facts, now)`` returns a ``Correlation``: drop it, or write it as a new Event, or as
the next occurrence of an Event already written (``observed``).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Generic, TypeVar

CACHE_SIZE = 4096
SPAM_BURST = 25
SPAM_REFILL_SECONDS = 300.0
AGGREGATE_MAX_EVENTS = 10
AGGREGATE_WINDOW_SECONDS = 600.0
COMBINED_PREFIX = "(combined from similar events): "

K = TypeVar("K")
V = TypeVar("V")


class LRU(Generic[K, V]):
    """A mapping that keeps its ``size`` most recently used keys."""

    def __init__(self, size: int = CACHE_SIZE) -> None:
        if size < 1:
            raise ValueError(f"an LRU cache holds at least one entry, not {size}")
        self.size = size
        self._items: OrderedDict[K, V] = OrderedDict()

    def get(self, key: K) -> V | None:
        value = self._items.get(key)
        if value is not None:
            self._items.move_to_end(key)
        return value

    def put(self, key: K, value: V) -> None:
        self._items[key] = value
        self._items.move_to_end(key)
        while len(self._items) > self.size:
            self._items.popitem(last=False)

    def pop(self, key: K) -> V | None:
        return self._items.pop(key, None)

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: object) -> bool:
        return key in self._items


@dataclass(frozen=True, slots=True)
class EventFacts:
    """What an event says, before it becomes an Event object."""

    component: str
    host: str
    kind: str
    namespace: str
    name: str
    uid: str
    api_version: str
    type: str
    reason: str
    message: str

    def source_object(self) -> tuple[str, ...]:
        return (self.component, self.host, self.kind, self.namespace, self.name, self.uid, self.api_version)


@dataclass(slots=True)
class _Bucket:
    tokens: float
    at: float


class SpamFilter:
    """A token bucket per (source, involved object, type): ``allow`` takes one token or says no."""

    def __init__(self, *, burst: int = SPAM_BURST, refill_every: float = SPAM_REFILL_SECONDS,
                 size: int = CACHE_SIZE) -> None:
        if burst < 1 or refill_every <= 0:
            raise ValueError("a spam filter needs a burst of at least 1 and a positive refill period")
        self.burst = burst
        self.refill_every = refill_every
        self._buckets: LRU[tuple[str, ...], _Bucket] = LRU(size)

    def allow(self, facts: EventFacts, now: float) -> bool:
        key = (*facts.source_object(), facts.type)
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = _Bucket(float(self.burst), now)
            self._buckets.put(key, bucket)
        else:
            bucket.tokens = min(float(self.burst), bucket.tokens + max(0.0, now - bucket.at) / self.refill_every)
            bucket.at = now
        if bucket.tokens < 1.0:
            return False
        bucket.tokens -= 1.0
        return True

    def __len__(self) -> int:
        return len(self._buckets)


@dataclass(slots=True)
class _Similar:
    messages: set[str] = field(default_factory=set)
    last: float = 0.0


class Aggregator:
    """Counts the distinct messages of similar events (same source, object, type, reason) in a window."""

    def __init__(self, *, max_events: int = AGGREGATE_MAX_EVENTS, window: float = AGGREGATE_WINDOW_SECONDS,
                 size: int = CACHE_SIZE) -> None:
        self.max_events = max_events
        self.window = window
        self._records: LRU[tuple[str, ...], _Similar] = LRU(size)

    def aggregate(self, facts: EventFacts, now: float) -> tuple[str, tuple[str, ...]]:
        """The message to write and the key identifying the Event it belongs to."""
        similar = (*facts.source_object(), facts.type, facts.reason)
        record = self._records.get(similar)
        if record is None or now - record.last > self.window:
            record = _Similar()
            self._records.put(similar, record)
        record.last = now
        record.messages.add(facts.message)
        if len(record.messages) < self.max_events:
            return facts.message, (*similar, facts.message)
        record.messages.pop()  # keep the set bounded at max_events - 1 distinct messages
        return COMBINED_PREFIX + facts.message, similar

    def __len__(self) -> int:
        return len(self._records)


@dataclass(frozen=True, slots=True)
class Observed:
    """An Event already written: its name and namespace, how often, since when (and, to write it again
    straight to the event stream, its uid, creation time and the version written)."""

    name: str
    namespace: str
    count: int
    first: float
    uid: str = ""
    created: str = ""
    version: int = 0


@dataclass(frozen=True, slots=True)
class Correlation:
    skip: bool
    key: tuple[str, ...] = ()
    message: str = ""
    observed: Observed | None = None  # None: write a new Event


class EventCorrelator:
    """Spam filter, aggregation and deduplication, in that order (client-go's ``EventCorrelate``)."""

    def __init__(self, *, size: int = CACHE_SIZE, burst: int = SPAM_BURST,
                 refill_every: float = SPAM_REFILL_SECONDS, max_events: int = AGGREGATE_MAX_EVENTS,
                 window: float = AGGREGATE_WINDOW_SECONDS) -> None:
        self.spam = SpamFilter(burst=burst, refill_every=refill_every, size=size)
        self.aggregator = Aggregator(max_events=max_events, window=window, size=size)
        self.observations: LRU[tuple[str, ...], Observed] = LRU(size)
        self.skipped = 0

    def correlate(self, facts: EventFacts, now: float) -> Correlation:
        if not self.spam.allow(facts, now):
            self.skipped += 1
            return Correlation(skip=True)
        message, key = self.aggregator.aggregate(facts, now)
        return Correlation(skip=False, key=key, message=message, observed=self.observations.get(key))

    def written(self, key: tuple[str, ...], observed: Observed) -> None:
        """Remember the Event written for ``key`` (its next occurrence bumps its count)."""
        self.observations.put(key, observed)

    def forget(self, key: tuple[str, ...]) -> None:
        """The Event written for ``key`` is gone (expired or deleted): the next occurrence creates a new one."""
        self.observations.pop(key)
