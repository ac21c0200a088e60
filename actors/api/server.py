"""The API actor on NATS: routes ``shoal.api.<verb>.<resource>.<namespace>[.<name>]`` requests to the
service, streams list replies in chunks, holds watches and pushes their events, answers errors typed.

Several API actors serve one cluster as the queue group ``shoal-api``: requests are spread among them
and none coordinates with another (every write is compare-and-swap in the datastore).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeGuard

from nats.aio.msg import Msg

from actors.api import noderestriction
from actors.api.allocator import AllocatorSettings, ServiceAllocator
from actors.api.authorize import authorize
from actors.api.cache import WatchCache, Watcher, bookmark_entry
from actors.api.events_store import EventStreamStore, EventWatches
from actors.api.kindhooks import hooks_for
from actors.api.lanes import Admission, Lane, LaneSettings, lane_of
from actors.api.listing import LIST_WINDOW_CHUNKS, ChunkSender
from actors.api.noderefs import CachePods, NodeReferences
from actors.api.revision import SharedRevision
from actors.api.service import ApiService
from actors.api.signing import load_signing_key
from actors.api.store import Record, Store, StoreSettings
from actors.api.streams import ensure_streams
from protocol import bindings, codec, subjects
from protocol.errors import BadRequest, Expired, InternalError, ShoalError, TooLarge, Unavailable
from protocol.kinds import KindInfo, warnings_for
from protocol.network import DEFAULT_CLUSTER_CIDR, DEFAULT_SERVICE_CIDR, check_ranges
from protocol.objects import Obj
from protocol.requests import AdminRequest, ApiRequest, parse_subject
from protocol.resource_version import ReadFrom, read_version
from protocol.selectors import parse_field_selector, parse_label_selector
from protocol.subjects import Verb
from runtime.actor import ActorContext
from runtime.jetstream_ready import when_jetstream_answers
from runtime.logs import Throttle

WATCH_TTL = 30.0
"""A watch whose client sent no keep-alive for this long is dropped."""
BOOKMARK_EVERY = 5.0
BOOKMARKS_PER_MESSAGE = 2000
"""Lines of one per-connection bookmark message (~60 bytes each)."""

Handler = Callable[[ApiRequest, dict[str, Any], Msg, noderestriction.Guard | None], Awaitable[bytes | None]]
"""Serves one verb: the typed request, its decoded body, the message (for replies in chunks), the guard."""


@dataclass(frozen=True)
class ApiSettings:
    replicas: int = 1
    window: int = 100_000
    max_inflight: int = 256
    """Requests of the normal lane served at once; more wait in its queue (see ``lanes.py``)."""
    heartbeat_inflight: int = 64
    """Lease and node heartbeat writes served at once, apart from the normal lane's budget."""
    max_queued: int = 50_000
    """Requests waiting per lane beyond which new ones are refused ``Unavailable`` at once."""
    max_wait: float = 5.0
    """A request that waited this long in its lane's queue is refused ``Unavailable`` instead of served."""
    list_window: int = LIST_WINDOW_CHUNKS
    """List chunks a client that acknowledges may have on their way (see ``listing.py``)."""
    service_cidr: str = DEFAULT_SERVICE_CIDR
    """Where Service cluster IPs are allocated (checked against ``cluster_cidr`` for overlap at start)."""
    cluster_cidr: str = DEFAULT_CLUSTER_CIDR


class ApiActor:
    name = "api"

    def __init__(self, settings: ApiSettings | None = None) -> None:
        self.settings = settings or ApiSettings()
        check_ranges(self.settings.cluster_cidr, self.settings.service_cidr)
        self.cache = WatchCache(window=self.settings.window)
        self._node_refs = NodeReferences(CachePods(self.cache))
        self.id = uuid.uuid4().hex[:12]
        self._ctx: ActorContext | None = None
        self._service: ApiService | None = None
        self._store: Store | None = None
        self._events: EventStreamStore | None = None
        self._event_watches: EventWatches | None = None
        self._latest = SharedRevision(self._last_revision)
        s = self.settings
        self._admission: Admission[Msg] = Admission(
            self._serve, self._refuse,
            {Lane.HEARTBEAT: LaneSettings(s.heartbeat_inflight, s.max_queued),
             Lane.NORMAL: LaneSettings(s.max_inflight, s.max_queued)}, max_wait=s.max_wait)
        self._subs: list[Any] = []
        self._handlers: dict[Verb, Handler] = {
            Verb.CREATE: self._create, Verb.GET: self._get, Verb.LIST: self._list, Verb.WATCH: self._watch,
            Verb.UPDATE: self._update, Verb.STATUS: self._update, Verb.PATCH: self._patch,
            Verb.DELETE: self._delete, Verb.BIND: self._bind,
        }
        self.requests = 0
        self._slow_log = Throttle(1.0)

    @property
    def ctx(self) -> ActorContext:
        assert self._ctx is not None
        return self._ctx

    @property
    def service(self) -> ApiService:
        assert self._service is not None
        return self._service

    def health(self) -> dict[str, Any]:
        return {"apiId": self.id, "resourceVersion": self.cache.rev, "ready": self.cache.ready.is_set(),
                "watches": len(self.cache.watchers()), "requests": self.requests,
                "lanes": self._admission.stats(),
                "objects": {p: len(o) for p, o in self.cache.objects.items()}}

    async def start(self, ctx: ActorContext) -> None:
        self._ctx = ctx
        store = Store(ctx.nc, StoreSettings(replicas=self.settings.replicas))
        await when_jetstream_answers(store.open, ctx.log, "datastore bucket")
        self._store = store
        await when_jetstream_answers(lambda: ensure_streams(ctx.nc, replicas=self.settings.replicas), ctx.log,
                                     "event streams")
        key = await when_jetstream_answers(lambda: load_signing_key(ctx.nc, replicas=self.settings.replicas),
                                           ctx.log, "token signing key")
        self._events = EventStreamStore(ctx.nc)
        self._event_watches = EventWatches(ctx.nc, self._events, ttl=WATCH_TTL, bookmark_every=BOOKMARK_EVERY,
                                           log=ctx.log)
        allocator = ServiceAllocator(store, AllocatorSettings(service_cidr=self.settings.service_cidr))
        self._service = ApiService(store, self.cache, stream_store=self._events, signing_key=key,
                                   allocator=allocator)
        if await store.last_revision() == 0:
            self.cache.mark_ready(0)
        self._subs.append(await store.follow(self._on_record))
        await asyncio.wait_for(self.cache.ready.wait(), timeout=300)
        ctx.log.info("watch cache loaded", resource_version=self.cache.rev,
                     objects=sum(len(o) for o in self.cache.objects.values()))
        await when_jetstream_answers(self.service.ensure_system_namespaces, ctx.log, "system namespaces",
                                     also=(Unavailable,))
        ctx.supervisor.spawn("watch-flusher", self._flush_watches)
        ctx.supervisor.spawn("watch-heartbeats", self._heartbeats)
        ctx.supervisor.spawn("event-watches", self._event_watches.run)
        self._subs.append(await ctx.nc.subscribe(subjects.API_WILDCARD, queue=subjects.API_QUEUE,
                                                 cb=self._on_request, pending_msgs_limit=1_000_000,
                                                 pending_bytes_limit=1024 * 1024 * 1024))
        self._subs.append(await ctx.nc.subscribe(subjects.NODE_API_WILDCARD, queue=subjects.API_QUEUE,
                                                 cb=self._on_request, pending_msgs_limit=1_000_000,
                                                 pending_bytes_limit=256 * 1024 * 1024))
        self._subs.append(await ctx.nc.subscribe(subjects.watch_control(self.id), cb=self._on_watch_control))

    async def close(self) -> None:
        """Stop taking requests, finish those in flight, then end watches (clients resume elsewhere)."""
        for sub in reversed(self._subs):  # request and control subscriptions first, the follower last
            try:
                await asyncio.wait_for(sub.drain(), 5)  # requests already routed to us are still served
            except Exception:
                pass
        await self._admission.drain(5)
        if self._event_watches is not None:
            await self._event_watches.close()
        for watcher in self.cache.watchers():
            await self._end_watch(watcher, Unavailable("the API actor is shutting down; watch again"))

    async def _on_record(self, record: Record, pending: int) -> None:
        if (record.expected is not None and self.cache.ready.is_set()
                and self.cache.skipped(record.key, record.expected)):
            await self._on_skip(record)
        self.cache.apply(record.key, record.revision, record.value, record.deleted)
        if pending == 0 and not self.cache.ready.is_set():
            self.cache.mark_ready(record.revision)

    async def _on_skip(self, record: Record) -> None:
        """The feed skipped a revision of ``record.key`` (the KV stream keeps one per key: a revision
        superseded before the feed read it is gone). No watch may pretend it saw every change: every watch
        of that kind that may have missed it ends with ``Expired`` (clients list again), and no resume from
        before it is possible."""
        plural = record.key.split(".", 1)[0]
        watchers = [w for w in self.cache.watchers() if w.plural == plural and w.min_rev < record.revision - 1]
        self.ctx.log.warning("watch cache feed skipped a revision: the kind's watches expire", key=record.key,
                             replaced=record.expected, revision=record.revision, watches=len(watchers))
        self.cache.expire_through(record.revision - 1)
        for watcher in watchers:
            await self._end_watch(watcher, Expired(
                f"a change before resourceVersion {record.revision} did not reach this API actor; list again "
                "and watch from the list's resourceVersion", {"resourceVersion": watcher.min_rev,
                                                              "oldest": record.revision - 1}))

    # -- requests -----------------------------------------------------------------------------
    async def _on_request(self, msg: Msg) -> None:
        """Never blocks: the request starts at once or waits in its lane (heartbeats have their own)."""
        self.requests += 1
        self._admission.submit(lane_of(msg.subject), msg)

    async def _refuse(self, msg: Msg, error: ShoalError) -> None:
        if msg.reply:
            try:
                await msg.respond(codec.error(error))
            except Exception:
                pass

    async def _serve(self, msg: Msg) -> None:
        started = time.perf_counter()
        verb, target = "?", msg.subject
        try:
            if len(msg.data) > codec.MAX_MESSAGE_BYTES:
                raise TooLarge(f"request of {len(msg.data)} bytes is too large")
            body = codec.decode(msg.data)
            request = parse_subject(msg.subject)
            reply: bytes | None
            if isinstance(request, AdminRequest):
                verb = "admin"
                reply = await self._admin(request.op, body)
            else:
                verb = request.verb
                guard = authorize(request, body, self._node_refs.allowed)
                reply = await self._handlers[request.verb](request, body, msg, guard)
            if reply is not None and msg.reply:
                await msg.respond(reply)
        except ShoalError as exc:
            if msg.reply:
                await msg.respond(codec.error(exc))
            self.ctx.log.info("request refused", verb=verb, subject=target, code=str(exc.code),
                              error=exc.message)
        except Exception as exc:
            self.ctx.log.error("request failed", verb=verb, subject=target, exc_info=True)
            if msg.reply:
                await msg.respond(codec.error(InternalError(f"internal error: {exc!r}; retry, and report it if "
                                                            "it persists")))
        finally:
            elapsed = time.perf_counter() - started
            if elapsed > 1.0:
                self._slow_request(verb, target, elapsed)

    def _slow_request(self, verb: str, subject: str, seconds: float) -> None:
        """Logged at most once a second (with how many were slow meanwhile): an overloaded actor must not
        spend its time writing one warning per request."""
        self._slow_log.warning(self.ctx.log, "slow request", verb=verb, subject=subject, seconds=round(seconds, 3))

    # -- one handler per verb (``self._handlers``) ----------------------------------------------------
    @staticmethod
    def _written(obj: Obj, warnings: list[str]) -> bytes:
        """The reply to a create, update or patch: the object, and its kind's warnings when there are any."""
        return codec.ok(object=obj, warnings=warnings) if warnings else codec.ok(object=obj)

    async def _create(self, req: ApiRequest, body: dict[str, Any], msg: Msg,
                      guard: noderestriction.Guard | None) -> bytes:
        created = await self.service.create(req.info, req.namespace, body.get("object"))
        return self._written(created, warnings_for(created))

    async def _get(self, req: ApiRequest, body: dict[str, Any], msg: Msg,
                   guard: noderestriction.Guard | None) -> bytes:
        obj = await self.service.get(req.info, req.namespace, _name(req))
        if guard is not None:
            guard(obj)
        return codec.ok(object=obj)

    async def _update(self, req: ApiRequest, body: dict[str, Any], msg: Msg,
                      guard: noderestriction.Guard | None) -> bytes:
        warnings: list[str] = []
        obj = await self.service.update(req.info, req.namespace, _name(req), body.get("object"),
                                        status_only=req.verb == Verb.STATUS, guard=guard, warnings=warnings)
        return self._written(obj, warnings)

    async def _patch(self, req: ApiRequest, body: dict[str, Any], msg: Msg,
                     guard: noderestriction.Guard | None) -> bytes:
        warnings: list[str] = []
        obj = await self.service.patch(req.info, req.namespace, _name(req), body.get("patch"),
                                       status_only=body.get("subresource") == "status", guard=guard,
                                       warnings=warnings)
        return self._written(obj, warnings)

    async def _delete(self, req: ApiRequest, body: dict[str, Any], msg: Msg,
                      guard: noderestriction.Guard | None) -> bytes:
        options = body.get("options") or {}
        if not isinstance(options, dict):
            raise BadRequest("delete options must be a map")
        return codec.ok(object=await self.service.delete(req.info, req.namespace, _name(req), options,
                                                          guard=guard))

    async def _bind(self, req: ApiRequest, body: dict[str, Any], msg: Msg,
                    guard: noderestriction.Guard | None) -> bytes:
        if req.name is None:
            return await self._bind_many(req.info, req.namespace, body)
        return codec.ok(object=await self.service.bind(req.info, req.namespace, req.name, body.get("node"),
                                                        body.get("resourceVersion"), body.get("uid")))

    async def _bind_many(self, info: KindInfo, namespace: str | None, request: dict[str, Any]) -> bytes:
        """``shoal.api.bind.pods.<ns|_all>``: a batch of bindings, one result per item (``protocol.bindings``)."""
        if "binding" not in info.subresources:
            raise BadRequest(f"{info.plural} cannot be bound to nodes")
        items: list[bindings.Binding | ShoalError] = []
        for raw in bindings.parse_items(request):
            try:
                items.append(bindings.parse_binding(raw, namespace))
            except ShoalError as exc:
                items.append(exc)
        results = await self.service.bind_many(items)
        return codec.ok(results=[bindings.error_result(r) if isinstance(r, ShoalError) else bindings.ok_result(r)
                                 for r in results])

    async def _last_revision(self) -> int:
        assert self._store is not None
        return await self._store.last_revision()

    async def _cache_ready(self) -> None:
        await asyncio.wait_for(self.cache.ready.wait(), 30)

    async def _consistent(self, at_least: int | None) -> None:
        """Wait until the cache holds every write acknowledged before now (``at_least`` None), or at least
        revision ``at_least`` (the list named a version: no datastore round trip)."""
        await self._cache_ready()
        try:
            target = at_least if at_least is not None else await self._latest.latest()
            await self.cache.wait_for(target, timeout=10)
        except TimeoutError:
            raise Unavailable("the API actor's cache is behind the datastore; retry") from None

    async def _list(self, req: ApiRequest, request: dict[str, Any], msg: Msg,
                    guard: noderestriction.Guard | None) -> None:
        info, namespace = req.info, req.namespace
        labels = parse_label_selector(_opt_str(request, "labelSelector"))
        fields = parse_field_selector(_opt_str(request, "fieldSelector"))
        version = read_version(request.get("resourceVersion"))
        if self._events is not None and hooks_for(info).stream_stored:  # Events: read from their stream
            rev, entries = await self._events.select(namespace, labels, fields)
        else:
            if version.read_from == ReadFrom.ANY:
                await self._cache_ready()
            else:
                await self._consistent(version.version if version.read_from == ReadFrom.EXACT else None)
            rev = self.cache.rev
            entries = self.cache.select(info.plural, namespace, labels, fields)
        if not msg.reply:
            return
        sender = ChunkSender(self.ctx.nc, msg.reply, rev, acks=request.get("acks") is True,
                             window=self.settings.list_window)
        try:
            await sender.send_all(entries)
        finally:
            await sender.close()

    # -- watches ------------------------------------------------------------------------------
    async def _watch(self, req: ApiRequest, request: dict[str, Any], msg: Msg,
                     guard: noderestriction.Guard | None) -> bytes:
        info, namespace = req.info, req.namespace
        inbox = request.get("inbox")
        if not _is_inbox(inbox):
            raise BadRequest("watch needs 'inbox': an _INBOX.… subject of the caller's to push events to")
        bookmarks = request.get("bookmarks")
        if bookmarks is not None and not _is_inbox(bookmarks):
            raise BadRequest("watch 'bookmarks' must be an _INBOX.… subject of the caller's")
        labels = parse_label_selector(_opt_str(request, "labelSelector"))
        fields = parse_field_selector(_opt_str(request, "fieldSelector"))
        version = read_version(request.get("resourceVersion"))
        rv = version.version if version.read_from == ReadFrom.EXACT else None
        if self._event_watches is not None and hooks_for(info).stream_stored:  # Events: from their stream
            event_watch = await self._event_watches.start(namespace, labels, fields, inbox, rv)
            return codec.ok(watch=event_watch.id, control=subjects.watch_control(self.id),
                            resourceVersion=event_watch.rev)
        await self._cache_ready()
        if rv is not None and rv > self.cache.rev:
            try:
                await self.cache.wait_for(rv, timeout=5)
            except TimeoutError:
                raise Unavailable(f"resourceVersion {rv} is ahead of this API actor; retry") from None
        watcher = Watcher(uuid.uuid4().hex[:16], info.plural, namespace, labels, fields, inbox,
                          rv if rv is not None else self.cache.rev, bookmarks=bookmarks)
        initial = self.cache.select(info.plural, namespace, labels, fields) if rv is None else ()
        self.cache.add_watcher(watcher, resume=rv is not None, initial=initial)
        self.ctx.log.debug("watch started", resource=info.plural, namespace=namespace, watch=watcher.id,
                           resource_version=watcher.min_rev)
        return codec.ok(watch=watcher.id, control=subjects.watch_control(self.id),
                        resourceVersion=watcher.min_rev)

    async def _on_watch_control(self, msg: Msg) -> None:
        try:
            request = codec.decode(msg.data)
            ids = request.get("watches") or []
            unknown = []
            for wid in ids:
                watcher = self.cache.find_watcher(str(wid))
                if watcher is None:
                    if self._event_watches is None or not self._event_watches.control(str(wid), request.get("op")):
                        unknown.append(wid)
                elif request.get("op") == "cancel":
                    self.cache.remove_watcher(watcher.id)
                else:
                    watcher.last_keepalive = time.monotonic()
            if msg.reply:
                await msg.respond(codec.ok(unknown=unknown))
        except ShoalError as exc:
            if msg.reply:
                await msg.respond(codec.error(exc))

    async def _flush_watches(self) -> None:
        nc = self.ctx.nc
        while True:
            await self.cache.wakeup.wait()
            self.cache.wakeup.clear()
            dirty, self.cache.dirty = self.cache.dirty, {}
            for watcher in dirty.values():
                try:
                    for message in self.cache.take_messages(watcher):
                        await nc.publish(watcher.inbox, message)
                    watcher.last_sent = time.monotonic()
                except Exception as exc:
                    self.ctx.log.warning("watch dropped: could not push events", watch=watcher.id,
                                         error=repr(exc))
                    self.cache.remove_watcher(watcher.id)
            await asyncio.sleep(0)

    async def _heartbeats(self) -> None:
        """Expire watches without keep-alive; bookmark idle ones every ``BOOKMARK_EVERY`` seconds: one message
        per watch for clients that gave no ``bookmarks`` inbox, else one per inbox naming all its idle watches."""
        while True:
            await asyncio.sleep(1.0)
            now = time.monotonic()
            shared: dict[str, list[dict[str, Any]]] = {}
            for watcher in self.cache.watchers():
                if now - watcher.last_keepalive > WATCH_TTL:
                    self.cache.remove_watcher(watcher.id)
                    self.ctx.log.info("watch expired: no keep-alive", watch=watcher.id)
                elif now - watcher.last_sent > BOOKMARK_EVERY and watcher.id not in self.cache.dirty:
                    watcher.last_sent = now
                    if watcher.bookmarks is None or watcher.seq == 0:
                        self.cache.dirty[watcher.id] = watcher
                        self.cache.wakeup.set()
                    else:
                        shared.setdefault(watcher.bookmarks, []).append(bookmark_entry(watcher, self.cache.rev))
            for inbox, entries in shared.items():
                for start in range(0, len(entries), BOOKMARKS_PER_MESSAGE):
                    try:
                        await self.ctx.nc.publish(inbox, codec.ok(
                            bookmarks=entries[start:start + BOOKMARKS_PER_MESSAGE]))
                    except Exception as exc:
                        self.ctx.log.warning("could not send bookmarks", inbox=inbox, error=repr(exc))

    async def _end_watch(self, watcher: Watcher, error: ShoalError) -> None:
        self.cache.remove_watcher(watcher.id)
        try:
            await self.ctx.nc.publish(watcher.inbox, codec.encode(
                {"ok": False, "watch": watcher.id, "seq": watcher.seq + 1, "error": error.to_wire()}))
        except Exception:
            pass

    # -- admin ----------------------------------------------------------------------------------
    async def _admin(self, op: str, request: dict[str, Any]) -> bytes:
        if op == "info":
            return codec.ok(info=self.health())
        if op == "tokenreview":
            return codec.ok(status=await self.service.review_token(request.get("token")))
        raise BadRequest(f"unknown admin operation {op!r}")


def _is_inbox(subject: Any) -> TypeGuard[str]:
    return isinstance(subject, str) and subject.startswith("_INBOX.") and "*" not in subject and ">" not in subject


def _name(request: ApiRequest) -> str:
    if request.name is None:  # the parser gives every object verb a name: not reached
        raise BadRequest(f"{request.verb} needs a subject ending in .<namespace>.<name>")
    return request.name


def _opt_str(request: dict[str, Any], field: str) -> str | None:
    value = request.get(field)
    if value is not None and not isinstance(value, str):
        raise BadRequest(f"{field} must be a string")
    return value
