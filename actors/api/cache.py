"""The watch cache: every object's latest encoded form, a window of recent events, and the watchers.

Fed by one ordered consumer on the KV stream, so every API actor holds the same view. Lists are
served from it (consistent at one revision, no datastore round trip per object); watches replay the
event window from the resourceVersion they resume at and then follow live changes. A watch older
than the window gets ``Expired``: the client lists again, as with Kubernetes' 410 Gone.
Each event is encoded once and the same bytes go to every watcher it matches.

Memory per watcher is bounded: a new watch's initial state is a list of references to cached entries,
encoded one message at a time as it is sent (not copied per watcher up front), and a watcher whose unsent
events exceed ``max_pending_bytes`` is marked ``overflowed``: the API actor ends it with ``Expired`` (the
client lists again), as kube-apiserver closes a watcher whose buffer is full.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from protocol import PROTOCOL_VERSION, codec, keys
from protocol.errors import Expired
from protocol.interning import Interner
from protocol.selectors import FieldSelector, Selector, field_value

ADDED, MODIFIED, DELETED = "ADDED", "MODIFIED", "DELETED"
MAX_WATCH_MESSAGE_BYTES = 256 * 1024
MAX_PENDING_BYTES = 16 * 1024 * 1024
"""Unsent event bytes a watcher may have before it is cut off (Expired: list again)."""
WINDOW_BYTES = 128 * 1024 * 1024
"""Object bytes the event window may hold (besides its count): what it keeps is sized by memory, not only
by changes (at 150,000 pods, 100,000 changes of ~2 KiB pods were ~200 MiB of old versions)."""
SHARED_MAX = 16_384
_shared: Interner[Any, Any] = Interner(SHARED_MAX)
_labels: Interner[tuple[tuple[str, Any], ...], dict[str, Any]] = Interner(SHARED_MAX)


def shared(value: Any) -> Any:
    """One object for equal values (node names, phases, namespaces) across the cache's entries, instead of a
    copy decoded per object."""
    return _shared.get(value, value)


def shared_labels(labels: dict[str, Any]) -> dict[str, Any]:
    """One (never mutated) label map for the pods that carry the same labels, in the same order."""
    if not labels:
        return _NO_LABELS
    try:
        return _labels.get(tuple(labels.items()), labels)
    except TypeError:  # an unhashable value: a malformed object, kept as it is
        return labels


_NO_LABELS: dict[str, Any] = {}


@dataclass(slots=True)
class Entry:
    rev: int
    raw: bytes
    namespace: str | None
    name: str
    labels: dict[str, str]
    node: str
    phase: str

    def field(self, path: str) -> str:
        if path == "metadata.name":
            return self.name
        if path == "metadata.namespace":
            return self.namespace or ""
        if path == "spec.nodeName":
            return self.node
        if path == "status.phase":
            return self.phase
        return field_value(codec.unpackb(self.raw), path)

    @classmethod
    def decode(cls, rev: int, raw: bytes, namespace: str | None, name: str) -> Entry:
        try:
            obj = codec.unpackb(raw) if raw else {}
        except Exception:
            obj = {}
        obj = obj if isinstance(obj, dict) else {}
        meta: dict[str, Any] = _map(obj.get("metadata"))
        spec, status, labels = _map(obj.get("spec")), _map(obj.get("status")), _map(meta.get("labels"))
        return cls(rev, raw, shared(namespace), name, shared_labels(labels), shared(str(spec.get("nodeName") or "")),
                   shared(str(status.get("phase") or "")))


def _map(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


@dataclass(slots=True)
class Event:
    rev: int
    plural: str
    old: Entry | None
    new: Entry
    deleted: bool
    encoded: dict[str, bytes] = field(default_factory=dict)

    def encode(self, kind: str) -> bytes:
        data = self.encoded.get(kind)
        if data is None:
            data = codec.packed_map_with_raw({"type": kind, "rv": self.rev}, {"object": self.new.raw})
            self.encoded[kind] = data
        return data


@dataclass(eq=False)
class Watcher:
    id: str
    plural: str
    namespace: str | None
    labels: Selector
    fields: FieldSelector
    inbox: str
    min_rev: int
    seq: int = 0
    pending: list[tuple[int, bytes]] = field(default_factory=list)
    """Unsent events: (revision, encoded event)."""
    pending_bytes: int = 0
    flushing: bool = False
    """Its events are being sent: until the last message is out, it is not current at the cache's revision."""
    last_keepalive: float = field(default_factory=time.monotonic)
    last_sent: float = field(default_factory=time.monotonic)
    bookmarks: str | None = None
    """The client's per-connection bookmark inbox: idle, this watch gets a line in one shared message there."""
    node: str | None = field(init=False, default=None)
    """The node a ``spec.nodeName=<node>`` selector pins this watch to (its index key), else None."""
    connection: str = ""
    """The client connection that opened the watch (its reply-inbox prefix): watches are counted per connection."""
    initial: list[Entry] = field(default_factory=list)
    """The objects a watch without resourceVersion starts with, sent as ADDED before any change."""
    overflowed: bool = False
    """Its unsent events exceeded the cache's ``max_pending_bytes``: to be ended with Expired."""

    def __post_init__(self) -> None:
        self.node = self.fields.value_of("spec.nodeName")

    def matches(self, entry: Entry | None) -> bool:
        if entry is None:
            return False
        if self.namespace is not None and entry.namespace != self.namespace:
            return False
        if not self.labels.matches(entry.labels):
            return False
        return all((entry.field(path) == value) == equal for path, equal, value in self.fields.requirements)


class WatchCache:
    def __init__(self, *, window: int = 100_000, max_pending_bytes: int = MAX_PENDING_BYTES,
                 window_bytes: int = WINDOW_BYTES) -> None:
        self.max_pending_bytes = max_pending_bytes
        self.window_bytes = window_bytes
        self.window_size = 0
        """Bytes of the objects the window's events carry."""
        self.objects: dict[str, dict[str, Entry]] = {}
        self.rev = 0
        self.window: deque[Event] = deque(maxlen=window)
        self._window_by_plural: dict[str, deque[Event]] = {}
        """The same events per plural: a watch resuming replays its kind's changes, not every kind's."""
        self.window_start = 0
        """Every change after this revision is in ``window``; older resumes get Expired."""
        self.ready = asyncio.Event()
        self._watchers: dict[str, dict[str, Watcher]] = {}
        self._by_node: dict[tuple[str, str], dict[str, Watcher]] = {}
        self._unindexed: dict[str, dict[str, Watcher]] = {}
        """Per plural, the watchers not pinned to one node: the only ones every change is offered to."""
        self._objects_by_node: dict[tuple[str, str], dict[str, Entry]] = {}
        """Objects by (plural, spec.nodeName): a kubelet's list is a lookup, not a scan of every pod."""
        """Per plural, the watchers not pinned to one node: the only ones every change is offered to."""
        self.dirty: dict[str, Watcher] = {}
        self.by_connection: dict[str, int] = {}
        """Open watches per connection not pinned to a node (what each change is offered to)."""
        self.pinned_by_connection: dict[str, int] = {}
        self.wakeup = asyncio.Event()
        self._rev_waiters: list[tuple[int, asyncio.Future[None]]] = []
        self._deleted: dict[str, int] = {}
        self.changed: dict[str, int] = {}
        """The revision of each plural's latest change (what a view derived from one kind compares)."""
        """The revision of each deleted key's deletion marker: a re-create names it as the one it replaces."""

    # -- feeding ---------------------------------------------------------------------------
    def apply(self, key: str, rev: int, raw: bytes, deleted: bool) -> None:
        try:
            plural, namespace, name = keys.parse_key(key)
        except ValueError:
            return
        objects = self.objects.setdefault(plural, {})
        self.changed[plural] = rev
        new = Entry.decode(rev, raw, namespace, name)
        old = objects.pop(key, None) if deleted else objects.get(key)
        if not deleted:
            objects[key] = new
            self._deleted.pop(key, None)
        else:
            self._deleted[key] = rev
        if old is not None and (deleted or old.node != new.node):
            on_node = self._objects_by_node.get((plural, old.node))
            if on_node is not None:
                on_node.pop(key, None)
                if not on_node:
                    del self._objects_by_node[(plural, old.node)]
        if not deleted:
            self._objects_by_node.setdefault((plural, new.node), {})[key] = new
        self.rev = max(self.rev, rev)
        if self.ready.is_set():
            while self.window and (len(self.window) == self.window.maxlen
                                   or self.window_size + len(raw) > self.window_bytes):
                evicted = self.window.popleft()
                self.window_size -= len(evicted.new.raw)
                self.window_start = max(self.window_start, evicted.rev)  # never below an expiry (a hole)
                self._window_by_plural[evicted.plural].popleft()  # always the oldest of its kind
            event = Event(rev, plural, old, new, deleted)
            self.window.append(event)
            self.window_size += len(raw)
            self._window_by_plural.setdefault(plural, deque()).append(event)
            self._dispatch(event)
            event.encoded.clear()  # delivered: the watchers hold their bytes; a replay encodes again
        self._release_waiters()

    def skipped(self, key: str, replaced: int) -> bool:
        """Whether a write of ``key`` that replaced revision ``replaced`` shows the feed skipped a revision:
        the cache holds the key at another revision (or not at all while ``replaced`` is not 0)."""
        entry = self.get(key)
        known = entry.rev if entry is not None else self._deleted.get(key, 0)
        return replaced != known

    def expire_through(self, rev: int) -> None:
        """Changes up to ``rev`` may be missing from the window: a resume from before it gets Expired."""
        self.window_start = max(self.window_start, rev)

    def mark_ready(self, rev: int) -> None:
        self.rev = max(self.rev, rev)
        self.window_start = self.rev
        self.ready.set()
        self._release_waiters()

    async def wait_for(self, rev: int, timeout: float = 5.0) -> None:
        """Wait until the cache has applied revision ``rev`` (read-your-writes across actors)."""
        if self.rev >= rev:
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._rev_waiters.append((rev, fut))
        await asyncio.wait_for(fut, timeout)

    def _release_waiters(self) -> None:
        if not self._rev_waiters:
            return
        keep = []
        for rev, fut in self._rev_waiters:
            if rev <= self.rev:
                if not fut.done():
                    fut.set_result(None)
            elif not fut.done():
                keep.append((rev, fut))
        self._rev_waiters = keep

    # -- reading ---------------------------------------------------------------------------
    def get(self, key: str) -> Entry | None:
        plural = key.split(".", 1)[0]
        return self.objects.get(plural, {}).get(key)

    def select(self, plural: str, namespace: str | None, labels: Selector,
             fields: FieldSelector) -> list[Entry]:
        probe = Watcher("", plural, namespace, labels, fields, "", 0)
        node = probe.node
        if node is not None:
            candidates = self._objects_by_node.get((plural, node), {}).values()
            if len(fields.requirements) == 1 and namespace is None and not labels.requirements:
                return list(candidates)
            return [e for e in candidates if probe.matches(e)]
        return [e for e in self.objects.get(plural, {}).values() if probe.matches(e)]

    def count(self, plural: str) -> int:
        return len(self.objects.get(plural, {}))

    # -- watching --------------------------------------------------------------------------
    def add_watcher(self, watcher: Watcher, *, resume: bool, initial: Iterable[Entry] = ()) -> None:
        """Register ``watcher``; when ``resume``, replay the window after ``watcher.min_rev`` first."""
        if resume and watcher.min_rev < self.window_start:
            raise Expired(
                f"resourceVersion {watcher.min_rev} is too old: the oldest change still kept is after "
                f"{self.window_start}; list again and watch from the list's resourceVersion",
                {"resourceVersion": watcher.min_rev, "oldest": self.window_start},
            )
        watcher.initial = list(initial)
        if resume:
            replay = []
            for event in reversed(self._window_by_plural.get(watcher.plural, ())):
                if event.rev <= watcher.min_rev:
                    break
                replay.append(event)
            for event in reversed(replay):
                self._deliver(watcher, event)
                event.encoded.clear()
        self._watchers.setdefault(watcher.plural, {})[watcher.id] = watcher
        node = watcher.node
        counts = self.by_connection if node is None else self.pinned_by_connection
        counts[watcher.connection] = counts.get(watcher.connection, 0) + 1
        if node is not None:
            self._by_node.setdefault((watcher.plural, node), {})[watcher.id] = watcher
        else:
            self._unindexed.setdefault(watcher.plural, {})[watcher.id] = watcher
        self.dirty[watcher.id] = watcher
        self.wakeup.set()

    def remove_watcher(self, watcher_id: str) -> Watcher | None:
        for plural, watchers in self._watchers.items():
            watcher = watchers.pop(watcher_id, None)
            if watcher is not None:
                node = watcher.node
                counts = self.by_connection if node is None else self.pinned_by_connection
                left = counts.get(watcher.connection, 1) - 1
                if left > 0:
                    counts[watcher.connection] = left
                else:
                    counts.pop(watcher.connection, None)
                watcher.initial = []
                watcher.pending, watcher.pending_bytes = [], 0
                if node is not None:
                    index = self._by_node.get((plural, node))
                    if index is not None:
                        index.pop(watcher_id, None)
                        if not index:
                            del self._by_node[(plural, node)]
                else:
                    self._unindexed.get(plural, {}).pop(watcher_id, None)
                self.dirty.pop(watcher_id, None)
                return watcher
        return None

    def watchers(self) -> list[Watcher]:
        return [w for ws in self._watchers.values() for w in ws.values()]

    def find_watcher(self, watcher_id: str) -> Watcher | None:
        for ws in self._watchers.values():
            if watcher_id in ws:
                return ws[watcher_id]
        return None

    def _dispatch(self, event: Event) -> None:
        watchers = self._watchers.get(event.plural)
        if not watchers:
            return
        if not self._by_node:
            for watcher in list(watchers.values()):
                self._deliver(watcher, event)
            return
        # Watchers pinned to a node see only changes of objects on that node (before or after the change):
        # one dictionary lookup each, however many nodes watch.
        for watcher in list(self._unindexed.get(event.plural, {}).values()):
            self._deliver(watcher, event)
        new_node = event.new.node
        old_node = event.old.node if event.old is not None else new_node
        for node in {new_node, old_node}:
            pinned = self._by_node.get((event.plural, node))
            if pinned:
                for watcher in list(pinned.values()):
                    self._deliver(watcher, event)

    def _deliver(self, watcher: Watcher, event: Event) -> None:
        if event.rev <= watcher.min_rev:
            return
        was = watcher.matches(event.old)
        now = watcher.matches(event.new)
        if event.deleted:
            kind = DELETED if (was or (event.old is None and now)) else None
        elif now:
            kind = MODIFIED if was else ADDED
        else:
            kind = DELETED if was else None
        if kind is not None:
            self._queue(watcher, event.rev, event.encode(kind))

    def watches_of(self, connection: str, *, pinned: bool) -> int:
        return (self.pinned_by_connection if pinned else self.by_connection).get(connection, 0)

    def _queue(self, watcher: Watcher, rev: int, item: bytes) -> None:
        if watcher.overflowed:
            return
        watcher.pending.append((rev, item))
        watcher.pending_bytes += len(item)
        if watcher.pending_bytes > self.max_pending_bytes:
            watcher.overflowed = True  # the flusher ends it; nothing more is queued meanwhile
            watcher.pending, watcher.pending_bytes = [], 0
        if watcher.id not in self.dirty:
            self.dirty[watcher.id] = watcher
            self.wakeup.set()

    def settled(self, watcher: Watcher) -> bool:
        """Whether every change up to the cache's revision was sent to ``watcher`` (a bookmark may say so)."""
        return not watcher.flushing and watcher.id not in self.dirty

    def take_messages(self, watcher: Watcher) -> list[bytes]:
        """Drain ``watcher``'s initial objects and pending events into wire messages (several when large)."""
        return list(self.messages(watcher))

    def messages(self, watcher: Watcher) -> Iterator[bytes]:
        """The same, one message at a time: the initial objects are encoded as each message is built, so a
        watcher holds at most one message's worth of copies at once.

        Each message's ``resourceVersion`` is one the watch is current at once it has read it: the last event
        of a message that more follow, the cache's revision when the events were taken for the last one
        (changes applied while the messages go out wait for the next flush, and are not covered)."""
        initial, watcher.initial = watcher.initial, []
        pending, watcher.pending, watcher.pending_bytes = watcher.pending, [], 0
        upto = max(self.rev, watcher.min_rev)  # every change up to here is in ``pending`` or did not match
        items: list[bytes] = []
        size = 0
        last = 0
        sent = False
        added = ((0, codec.packed_map_with_raw({"type": ADDED, "rv": e.rev}, {"object": e.raw})) for e in initial)
        watcher.flushing = True
        try:
            for rev, item in _chain(added, pending):
                if items and size + len(item) > MAX_WATCH_MESSAGE_BYTES:
                    yield self._message(watcher, items, last)
                    sent = True
                    items, size = [], 0
                items.append(item)
                size += len(item)
                last = max(last, rev)
            if items or not sent:
                yield self._message(watcher, items, upto)
        finally:
            watcher.flushing = False

    def _message(self, watcher: Watcher, items: list[bytes], rev: int) -> bytes:
        watcher.seq += 1
        return codec.packed_map_with_raw(
            {"v": PROTOCOL_VERSION, "ok": True, "watch": watcher.id, "seq": watcher.seq,
             "resourceVersion": rev},
            {"events": codec.packed_array_of_raw(items)},
        )


def _chain(first: Iterator[tuple[int, bytes]], then: list[tuple[int, bytes]]) -> Iterator[tuple[int, bytes]]:
    yield from first
    yield from then


def bookmark_entry(watcher: Watcher, rev: int) -> dict[str, Any]:
    """A line of a per-connection bookmark: the watch is alive, sent up to ``seq``, current at ``rev``."""
    return {"watch": watcher.id, "seq": watcher.seq, "resourceVersion": max(rev, watcher.min_rev)}


def entry_to_wire(entry: Entry) -> bytes:
    return codec.packed_map_with_raw({"rv": entry.rev}, {"object": entry.raw})


