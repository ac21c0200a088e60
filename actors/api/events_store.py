"""Events stored in the ``SHOAL_EVENTS`` JetStream stream instead of the datastore (issue 21).

An Event is a fact, not a desired state: Kubernetes keeps them an hour (``--event-ttl``) and large clusters
give them their own etcd. Here the event stream *is* their store, so recording an Event costs one publish
(before: a compare-and-swap write to the KV bucket, and a publish to the stream), Events never enter the
datastore, its change stream or the API actors' watch cache, and they expire with the stream's retention.

Layout: one subject per Event, ``shoal.events.<ns>.<Kind>.<name>.<event>`` (the Event's namespace, its
involved object's kind and name, the Event's own name; tokens escaped as every subject), and the stream keeps
one message per subject (``max_msgs_per_subject: 1``): the Event's latest version. A message is the
envelope ``{"v":1,"type":"ADDED"|"MODIFIED"|"DELETED","object":<Event>}``; its stream sequence is the
Event's ``resourceVersion``. So:

- writes are compare-and-swap on the Event's subject (``runtime/event_stream.py``), as the datastore's.
  Event recorders publish there themselves; ``EventStreamStore``, what the API serves, has the datastore's
  interface (``get``/``create``/``update``/``delete`` by key ``events.<ns>.<name>``), and ``ApiService``
  validates, defaults and merges Events as any kind;
- a get is one last-message-by-subject read (``shoal.events.<ns>.*.*.<event>``);
- a list reads the stream filtered by the server (``shoal.events.<ns>.<Kind|*>.<name|*>.*`` from the
  namespace and the ``involvedObject.kind``/``involvedObject.name`` field selectors);
- an API watch of Events is served from the stream too (``EventWatches``: an ordered consumer per watch);
- any NATS client follows Events live with a plain subscription on a wildcard (every version), or replays
  the retained ones (each Event's latest version) with a JetStream consumer.

A deletion writes a ``DELETED`` envelope (the final state) that stays until the retention drops it.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import nats.js.errors
from nats.aio.client import Client
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeout
from nats.js import api

from actors.api.cache import Entry
from actors.api.store import Record
from protocol import PROTOCOL_VERSION, codec, keys, subjects
from protocol.errors import AlreadyExists, Conflict, Invalid, ShoalError, Unavailable
from protocol.selectors import FieldSelector, Selector
from runtime.event_stream import ADDED, DELETED, MODIFIED, EventStream, subject_of

FETCH_BATCH = 1000


def list_filter(namespace: str | None, fields: FieldSelector) -> str:
    """The subject filter of a list: the namespace and the involved object's kind and name when selected."""
    kind = fields.value_of("involvedObject.kind")
    name = fields.value_of("involvedObject.name")
    ns = keys.encode_token(namespace) if namespace else "*"
    return (f"{subjects.EVENTS_PREFIX}.{ns}.{keys.encode_token(kind) if kind else '*'}."
            f"{keys.encode_token(name) if name else '*'}.*")


def _split(key: str) -> tuple[str, str]:
    """``events.<ns>.<name>`` (datastore key form) -> (namespace, name) as subject tokens."""
    _, ns, name = key.split(".", 2)
    return ns, name


class EventStreamStore:
    """The datastore interface over ``SHOAL_EVENTS``, for the kind Event."""

    def __init__(self, nc: Client, *, timeout: float = 5.0) -> None:
        self.js = nc.jetstream(timeout=timeout)
        self.stream = EventStream(nc, timeout=timeout)
        self.timeout = timeout

    # -- reads --------------------------------------------------------------------------------
    async def get(self, key: str) -> Record | None:
        ns, name = _split(key)
        found = await self.stream.last(f"{subjects.EVENTS_PREFIX}.{ns}.*.*.{name}")
        if found is None:
            return None
        _, seq, envelope = found
        obj = envelope.get("object")
        return Record(key, seq, codec.encode_object(obj if isinstance(obj, dict) else {}),
                      envelope.get("type") == DELETED)

    # -- writes -------------------------------------------------------------------------------
    async def create(self, key: str, value: bytes) -> int:
        obj = codec.unpackb(value)
        current = await self.get(key)
        if current is not None and not current.deleted:
            raise AlreadyExists(f"{key} already exists")
        expected = 0
        if current is not None:  # a deletion marker: replaced when it is the same subject
            found = await self.stream.last(subject_of(obj))
            expected = found[1] if found is not None else 0
        try:
            return await self.stream.publish(obj, ADDED, expected)
        except Conflict:
            raise AlreadyExists(f"{key} already exists") from None

    async def update(self, key: str, value: bytes, revision: int) -> int:
        obj = codec.unpackb(value)
        try:
            return await self.stream.publish(obj, MODIFIED, revision)
        except Conflict:
            current = await self.get(key)
            if current is not None and current.revision == revision:  # not modified: the subject moved
                raise Invalid("an Event's involvedObject (kind and name) cannot change",
                              {"causes": [{"field": "involvedObject", "message": "field is immutable"}]}) from None
            raise

    async def delete(self, key: str, final_value: bytes, revision: int) -> int:
        return await self.stream.publish(codec.unpackb(final_value), DELETED, revision)

    async def last_revision(self) -> int:
        info = await self.js.stream_info(subjects.EVENTS_STREAM)
        return int(info.state.last_seq)

    # -- lists --------------------------------------------------------------------------------
    async def select(self, namespace: str | None, labels: Selector, fields: FieldSelector) -> tuple[int, list[Entry]]:
        """Every retained Event matching, read from the stream (filtered by the server), and the stream's
        last sequence before the read (the list's resourceVersion)."""
        try:
            last = await self.last_revision()
            sub = await self.js.pull_subscribe(
                list_filter(namespace, fields), stream=subjects.EVENTS_STREAM,
                config=api.ConsumerConfig(ack_policy=api.AckPolicy.NONE, deliver_policy=api.DeliverPolicy.ALL,
                                          inactive_threshold=30.0, mem_storage=True))
        except (NatsTimeout, NoRespondersError, nats.js.errors.Error) as exc:
            raise Unavailable(f"cannot read the event stream: {exc!r}") from None
        entries: list[Entry] = []
        try:
            pending = int((await sub.consumer_info()).num_pending or 0)
            while pending > 0:
                try:
                    batch = await sub.fetch(batch=FETCH_BATCH, timeout=self.timeout)
                except NatsTimeout:
                    break  # nothing more (messages may expire while read)
                for msg in batch:
                    pending = int(msg.metadata.num_pending)
                    entry = self._entry(msg.data, int(msg.metadata.sequence.stream))
                    if entry is not None and labels.matches(entry.labels) and fields.matches(
                            codec.unpackb(entry.raw)):
                        entries.append(entry)
        except ShoalError:
            raise
        except (NoRespondersError, nats.js.errors.Error) as exc:
            raise Unavailable(f"reading the event stream failed: {exc!r}") from None
        finally:
            try:
                await sub.unsubscribe()
            except Exception:
                pass
        return max([last, *(e.rev for e in entries)]), entries

    @staticmethod
    def _entry(data: bytes, seq: int) -> Entry | None:
        try:
            envelope = codec.decode(data)
        except ShoalError:
            return None
        obj = envelope.get("object")
        if envelope.get("type") == DELETED or not isinstance(obj, dict):
            return None
        m = obj.get("metadata") or {}
        return Entry.decode(seq, codec.encode_object(obj), m.get("namespace"), str(m.get("name") or ""))



@dataclass(eq=False)
class EventWatch:
    """One API watch of Events, fed by its own ordered consumer on the stream."""

    id: str
    inbox: str
    labels: Selector
    fields: FieldSelector
    rev: int
    seq: int = 0
    sub: Any = None
    last_keepalive: float = field(default_factory=time.monotonic)
    last_sent: float = field(default_factory=time.monotonic)


class EventWatches:
    """API watches of Events, served from the stream with the watch protocol of every kind (``seq``,
    keep-alives on the actor's control subject, a bookmark to an idle watch every ``bookmark_every`` s).

    A watch without a version first gets every retained Event (``ADDED``), then each new version; a watch
    from version N gets the latest version of every Event written after N (the stream keeps no older one),
    then each new version. Versions are the stream's sequences (an Event's ``resourceVersion``)."""

    def __init__(self, nc: Client, store: EventStreamStore, *, ttl: float = 30.0, bookmark_every: float = 5.0,
                 log: Any = None) -> None:
        self.nc = nc
        self.store = store
        self.ttl = ttl
        self.bookmark_every = bookmark_every
        self.log = log
        self.watches: dict[str, EventWatch] = {}

    async def start(self, namespace: str | None, labels: Selector, fields: FieldSelector, inbox: str,
                    rv: int | None) -> EventWatch:
        watch = EventWatch(uuid.uuid4().hex[:16], inbox, labels, fields, rv or 0)
        if rv is None:
            watch.rev, entries = await self.store.select(namespace, labels, fields)
            if entries:
                await self._send(watch, [_item(ADDED, e.rev, e.raw) for e in entries], watch.rev)
        self.watches[watch.id] = watch

        async def on_msg(msg: Any) -> None:
            await self._on_msg(watch, msg)

        try:
            watch.sub = await self.store.js.subscribe(
                list_filter(namespace, fields), stream=subjects.EVENTS_STREAM, cb=on_msg, ordered_consumer=True,
                config=api.ConsumerConfig(deliver_policy=api.DeliverPolicy.BY_START_SEQUENCE,
                                          opt_start_seq=watch.rev + 1))
        except (NatsTimeout, NoRespondersError, nats.js.errors.Error) as exc:
            self.watches.pop(watch.id, None)
            raise Unavailable(f"cannot follow the event stream: {exc!r}") from None
        return watch

    async def _on_msg(self, watch: EventWatch, msg: Any) -> None:
        if self.watches.get(watch.id) is not watch:
            return
        seq = int(msg.metadata.sequence.stream)
        try:
            envelope = codec.decode(msg.data)
        except ShoalError:
            return
        obj = envelope.get("object")
        if not isinstance(obj, dict) or seq <= watch.rev:
            return
        m = obj.get("metadata") or {}
        raw = codec.encode_object(obj)
        entry = Entry.decode(seq, raw, m.get("namespace"), str(m.get("name") or ""))
        if watch.labels.matches(entry.labels) and watch.fields.matches(obj):
            change = str(envelope.get("type") or MODIFIED)
            await self._send(watch, [_item(change if change in (ADDED, MODIFIED, DELETED) else MODIFIED, seq, raw)],
                             seq)
        watch.rev = seq

    async def _send(self, watch: EventWatch, items: list[bytes], rev: int) -> None:
        watch.seq += 1
        watch.last_sent = time.monotonic()
        try:
            await self.nc.publish(watch.inbox, codec.packed_map_with_raw(
                {"v": PROTOCOL_VERSION, "ok": True, "watch": watch.id, "seq": watch.seq, "resourceVersion": rev},
                {"events": codec.packed_array_of_raw(items)}))
        except Exception as exc:
            if self.log is not None:
                self.log.warning("event watch dropped: could not push events", watch=watch.id, error=repr(exc))
            await self.stop(watch.id)

    def control(self, watch_id: str, op: str | None) -> bool:
        """A keep-alive (or ``cancel``) for one of these watches; False when it is not one of them."""
        watch = self.watches.get(watch_id)
        if watch is None:
            return False
        if op == "cancel":
            self.watches.pop(watch_id, None)
            if watch.sub is not None:
                asyncio.get_running_loop().create_task(_unsubscribe(watch.sub), name=f"event-watch-{watch_id}-end")
        else:
            watch.last_keepalive = time.monotonic()
        return True

    async def stop(self, watch_id: str) -> None:
        watch = self.watches.pop(watch_id, None)
        if watch is not None and watch.sub is not None:
            await _unsubscribe(watch.sub)

    async def close(self) -> None:
        for watch_id in list(self.watches):
            await self.stop(watch_id)

    async def run(self) -> None:
        """Expire watches without keep-alive; bookmark idle ones (an empty message at their version)."""
        while True:
            await asyncio.sleep(1.0)
            now = time.monotonic()
            for watch in list(self.watches.values()):
                if now - watch.last_keepalive > self.ttl:
                    await self.stop(watch.id)
                elif now - watch.last_sent > self.bookmark_every:
                    await self._send(watch, [], watch.rev)


def _item(change: str, rev: int, raw: bytes) -> bytes:
    return codec.packed_map_with_raw({"type": change, "rv": rev}, {"object": raw})


async def _unsubscribe(sub: Any) -> None:
    try:
        await sub.unsubscribe()
    except Exception:
        pass
