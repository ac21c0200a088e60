"""The API actor on NATS: routes ``shoal.api.<verb>.<resource>.<namespace>[.<name>]`` requests to the
service, streams list replies in chunks, holds watches and pushes their events, answers errors typed.

Several API actors serve one cluster as the queue group ``shoal-api``: requests are spread among them
and none coordinates with another (every write is compare-and-swap in the datastore).
"""

from __future__ import annotations

import asyncio
import copy
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeGuard

from nats.aio.msg import Msg

from actors.api import audit, encryption, lanes, noderestriction
from actors.api.allocator import AllocatorSettings, ServiceAllocator
from actors.api.authorize import authorize, escalation_check, scoped_user
from actors.api.cache import MAX_PENDING_BYTES, WINDOW_BYTES, WatchCache, Watcher, bookmark_entry
from actors.api.events_store import EventStreamStore, EventWatches
from actors.api.eviction import evict
from actors.api.feedgaps import FeedGaps
from actors.api.kindhooks import hooks_for
from actors.api.lanes import Admission, Lane, LaneSettings, lane_of
from actors.api.listing import LIST_WINDOW_CHUNKS, ChunkSender
from actors.api.noderefs import CacheClaims, CachePods, NodeReferences
from actors.api.rbaccache import CachePolicy, ensure_bootstrap
from actors.api.revision import SharedRevision
from actors.api.service import ApiService
from actors.api.signing import SigningKeys
from actors.api.store import Record, Store, StoreSettings
from actors.api.streams import EVENTS_MAX_BYTES, ensure_streams
from actors.api.tokens import TokenSettings
from protocol import bindings, codec, rbac, subjects, unknown_fields
from protocol.errors import (
    BadRequest,
    Expired,
    Forbidden,
    InternalError,
    ShoalError,
    TooLarge,
    TooManyRequests,
    Unavailable,
)
from protocol.kinds import KindInfo, strategy_for, warnings_for
from protocol.network import DEFAULT_CLUSTER_CIDR, DEFAULT_SERVICE_CIDR, check_ranges
from protocol.objects import Obj
from protocol.requests import AdminRequest, ApiRequest, parse_subject
from protocol.resource_version import ReadFrom, read_version
from protocol.selectors import parse_field_selector, parse_label_selector
from protocol.subjects import Verb, split_api_subject
from protocol.unknown_fields import field_validation
from runtime.actor import ActorContext
from runtime.jetstream_ready import when_jetstream_answers
from runtime.logs import Throttle

WATCH_TTL = 30.0
"""A watch whose client sent no keep-alive for this long is dropped."""
BOOKMARK_EVERY = 5.0
FLUSH_EVERY_BYTES = 4 * 1024 * 1024
"""Watch bytes published between two round trips to the NATS server: when the server slows down (it stalls a
publisher whose messages go to a slow consumer), the flusher waits instead of growing the socket buffer."""
BOOKMARKS_PER_MESSAGE = 2000
"""Lines of one per-connection bookmark message (~60 bytes each)."""

Handler = Callable[[ApiRequest, dict[str, Any], Msg, noderestriction.Guard | None], Awaitable[bytes | None]]
"""Serves one verb: the typed request, its decoded body, the message (for replies in chunks), the guard."""


@dataclass(frozen=True)
class ApiSettings:
    replicas: int = 1
    window: int = 100_000
    window_bytes: int = WINDOW_BYTES
    """Object bytes the watch window's events may carry (the older are dropped: a resume before them is
    Expired and lists again)."""
    max_inflight: int = 256
    """Requests of the ``system`` lane (kubelets' and components' own subjects) served at once; more wait in
    its queue (see ``lanes.py``)."""
    user_inflight: int = 128
    """Requests of the ``user`` lane (``shoal.api.>``: people, the gateway, and the agents' gets, lists and
    watches, which shared the old single lane's 256) served at once."""
    heartbeat_inflight: int = 64
    """Lease and node heartbeat writes served at once, apart from the other lanes' budgets."""
    bulk_writes: int = 0
    """Datastore writes of the ``system`` lane in flight at once (a bind batch is up to 128 writes, and the
    lane serves 256 requests): the others wait in the API actor, not in the stream's write queue in front of a
    person's write (issue #20 item 4). 0: no bound, the default. At 1,000 nodes / 20,000 pods a share of 32
    halved a person's write p99 at a 5-8 % slower run; at 5,000 nodes / 150,000 pods it bettered neither the
    p99 nor the run's time and doubled the scheduler's memory (binds held back, pods kept pending)
    (docs/BENCHMARKS.md, "The bulk share at 150,000 pods")."""
    group_commit: int = StoreSettings.group_commit
    """Sends of grouped datastore writes in flight at once (``groupcommit.py``); 0: every write alone."""
    max_queued: int = 50_000
    """Requests waiting per lane beyond which new ones are refused ``Unavailable`` at once."""
    max_wait: float = 5.0
    """A request that waited this long in its lane's queue is refused ``Unavailable`` instead of served."""
    list_window: int = LIST_WINDOW_CHUNKS
    """List chunks a client that acknowledges may have on their way (see ``listing.py``)."""
    service_cidr: str = DEFAULT_SERVICE_CIDR
    """Where Service cluster IPs are allocated (checked against ``cluster_cidr`` for overlap at start)."""
    cluster_cidr: str = DEFAULT_CLUSTER_CIDR
    max_inflight_per_flow: int = 2048
    """Requests (heartbeats apart) one connection (or one node's kubelet) may have queued or running; more get
    TooManyRequests. (Hollow nodes share one connection: 2,500 kubelets' gets at once under overload.)"""
    max_watches_per_connection: int = 500
    """Open watches per connection that every change of their kind is offered to; more get TooManyRequests."""
    max_pinned_watches_per_connection: int = 20_000
    """Open watches per connection pinned to one node (``spec.nodeName=N``: a lookup per change, cheap)."""
    max_pending_bytes: int = MAX_PENDING_BYTES
    """Unsent event bytes one watcher may have before it is ended with Expired (relist)."""
    encryption_config: str | None = None
    """The EncryptionConfiguration file (``encryption.py``); None: Secrets are stored in plaintext."""
    audit: bool = True
    """Publish an audit record of every mutating request and every refusal (``audit.py``)."""
    tokens: TokenSettings = field(default_factory=TokenSettings)
    """ServiceAccount tokens: issuer, API audiences, expiration bounds, JWKS URI (``tokens.py``)."""
    event_ttl: float = 3600.0
    """Seconds an Event is kept after its last occurrence (the Events stream's ``max_age``)."""
    events_max_bytes: int = EVENTS_MAX_BYTES
    """Bytes of Events the stream keeps in memory (the oldest are dropped first)."""


class ApiActor:
    name = "api"

    def __init__(self, settings: ApiSettings | None = None) -> None:
        self.settings = settings or ApiSettings()
        check_ranges(self.settings.cluster_cidr, self.settings.service_cidr)
        self.cache = WatchCache(window=self.settings.window, max_pending_bytes=self.settings.max_pending_bytes,
                                window_bytes=self.settings.window_bytes)
        self._node_refs = NodeReferences(CachePods(self.cache), CacheClaims(self.cache))
        self.rbac = CachePolicy(self.cache)
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
             Lane.USER: LaneSettings(s.user_inflight, s.max_queued),
             Lane.SYSTEM: LaneSettings(s.max_inflight, s.max_queued)}, max_wait=s.max_wait,
            max_per_flow=s.max_inflight_per_flow)
        self._gaps = FeedGaps()
        self._feed_whole = asyncio.Event()
        """Set while every revision the feed passed over is accounted for (the watch flusher waits on it)."""
        self._feed_whole.set()
        self._feed_pending = 0
        self._subs: list[Any] = []
        self.serving = False
        """True once every request subject (shared, node-scoped, identity-scoped) and watch control is subscribed."""
        self._handlers: dict[Verb, Handler] = {
            Verb.CREATE: self._create, Verb.GET: self._get, Verb.LIST: self._list, Verb.WATCH: self._watch,
            Verb.UPDATE: self._update, Verb.STATUS: self._update, Verb.PATCH: self._patch,
            Verb.DELETE: self._delete, Verb.BIND: self._bind, Verb.EVICT: self._evict, Verb.TOKEN: self._token,
        }
        self.requests = 0
        self._slow_log = Throttle(1.0)
        self._auditor: audit.Auditor | None = None
        self._keys: SigningKeys | None = None

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
                "lanes": self._admission.stats(), "throttled": self._admission.throttled,
                "audit": self._auditor.stats() if self._auditor else {},
                "feedGaps": {"revisions": self._gaps.found, "named": self._gaps.attributed,
                             "open": len(self._gaps.holes)},
                "groupCommit": self._store.group.stats() if self._store is not None and self._store.group else {},
                "objects": {p: len(o) for p, o in self.cache.objects.items()}}

    async def start(self, ctx: ActorContext) -> None:
        self._ctx = ctx
        keyring = encryption.load(Path(self.settings.encryption_config) if self.settings.encryption_config else None)
        if not keyring.encrypts:
            ctx.log.warning("Secrets are stored unencrypted: no encryption configuration (--encryption-config)")
        store = Store(ctx.nc, StoreSettings(replicas=self.settings.replicas, bulk_writes=self.settings.bulk_writes,
                                    group_commit=self.settings.group_commit),
                      keyring, is_bulk=lambda: lanes.SERVING.get() is Lane.SYSTEM,
                      person=lambda: lanes.FLOW.get() if lanes.SERVING.get() is Lane.USER else None)
        await when_jetstream_answers(store.open, ctx.log, "datastore bucket")
        self._store = store
        await when_jetstream_answers(lambda: ensure_streams(
            ctx.nc, replicas=self.settings.replicas, events_max_age=self.settings.event_ttl,
            events_max_bytes=self.settings.events_max_bytes), ctx.log, "event streams")
        self._keys = await when_jetstream_answers(
            lambda: SigningKeys.load(ctx.nc, replicas=self.settings.replicas, clock=time.time), ctx.log,
            "token signing keys")
        ctx.supervisor.spawn("signing-keys", self._keys.follow)
        self._events = EventStreamStore(ctx.nc)
        self._event_watches = EventWatches(ctx.nc, self._events, ttl=WATCH_TTL, bookmark_every=BOOKMARK_EVERY,
                                           log=ctx.log)
        self._auditor = audit.Auditor(ctx.nc, self.id, enabled=self.settings.audit)
        ctx.supervisor.spawn("audit", self._auditor.run)
        allocator = ServiceAllocator(store, AllocatorSettings(service_cidr=self.settings.service_cidr))
        self._service = ApiService(store, self.cache, stream_store=self._events, token_keys=self._keys,
                                   token_settings=self.settings.tokens, allocator=allocator,
                                   consistent=lambda: self._consistent(None))
        if await store.last_revision() == 0:
            self._mark_ready(0)
        self._subs.append(await store.follow(self._on_record))
        await asyncio.wait_for(self.cache.ready.wait(), timeout=300)
        ctx.log.info("watch cache loaded", resource_version=self.cache.rev,
                     objects=sum(len(o) for o in self.cache.objects.values()))
        await when_jetstream_answers(self.service.ensure_system_namespaces, ctx.log, "system namespaces",
                                     also=(Unavailable,))
        await when_jetstream_answers(lambda: ensure_bootstrap(self.service), ctx.log, "bootstrap RBAC policy",
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
        self._subs.append(await ctx.nc.subscribe(subjects.USER_API_WILDCARD, queue=subjects.API_QUEUE,
                                                 cb=self._on_request, pending_msgs_limit=1_000_000,
                                                 pending_bytes_limit=1024 * 1024 * 1024))
        self._subs.append(await ctx.nc.subscribe(subjects.watch_control(self.id), cb=self._on_watch_control))
        self.serving = True

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
        if self.cache.ready.is_set():
            self._gaps.see(record.revision, record.expected)
            if record.expected is not None and self.cache.skipped(record.key, record.expected):
                await self._on_skip(record)
        self.cache.apply(record.key, record.revision, record.value, record.deleted)
        if pending == 0 and not self.cache.ready.is_set():
            self._mark_ready(record.revision)
        self._feed_pending = pending
        await self._settle_gaps()

    def _mark_ready(self, rev: int) -> None:
        self.cache.mark_ready(rev)
        self._gaps.start(rev)

    async def _settle_gaps(self) -> None:
        """Release held watches once every hole in the feed is named; expire them for the unnamed ones."""
        through = self._gaps.unattributed(self._feed_pending)
        if through is not None:
            watchers = [w for w in self.cache.watchers() if w.min_rev < through]
            self.ctx.log.warning("watch cache feed skipped revisions no later write named: every watch "
                                 "that may have missed them expires", through=through, watches=len(watchers))
            await self._expire_through(through, watchers)
        if self._gaps.held:
            self._feed_whole.clear()
        else:
            self._feed_whole.set()

    async def _on_skip(self, record: Record) -> None:
        """The feed skipped a revision of ``record.key`` (the KV stream keeps one per key: a revision
        superseded before the feed read it is gone). No watch may pretend it saw every change: every watch
        of that kind that may have missed it ends with ``Expired`` (clients list again), and no resume from
        before it is possible."""
        plural = record.key.split(".", 1)[0]
        watchers = [w for w in self.cache.watchers() if w.plural == plural and w.min_rev < record.revision - 1]
        self.ctx.log.warning("watch cache feed skipped a revision: the kind's watches expire", key=record.key,
                             replaced=record.expected, revision=record.revision, watches=len(watchers))
        await self._expire_through(record.revision - 1, watchers)

    async def _expire_through(self, through: int, watchers: list[Watcher]) -> None:
        """Changes up to ``through`` may not have reached the cache: ``watchers`` end with ``Expired`` and no
        resume from before it is accepted."""
        self.cache.expire_through(through)
        for watcher in watchers:
            await self._end_watch(watcher, Expired(
                f"a change up to resourceVersion {through} did not reach this API actor; list again and watch "
                "from the list's resourceVersion", {"resourceVersion": watcher.min_rev, "oldest": through}))

    # -- requests -----------------------------------------------------------------------------
    async def _on_request(self, msg: Msg) -> None:
        """Never blocks: the request starts at once or waits in its lane and flow (``lanes.py``)."""
        self.requests += 1
        lane = lane_of(msg.subject)
        # heartbeats have their own lane and budget: never refused because their connection is busy
        self._admission.submit(lane, msg, None if lane == Lane.HEARTBEAT else flow_of(msg.subject, msg.reply))

    def _audit(self, msg: Msg, error: ShoalError | None, body: dict[str, Any] | None = None) -> None:
        if self._auditor is None or not self._auditor.enabled:
            return
        node, verb, resource, namespace, name = audit.describe(msg.subject)
        who = body.get("as") if body is not None else None
        user = who.get("user") if isinstance(who, dict) else audit.scoped_user(msg.subject)
        self._auditor.record(verb=verb, resource=resource, namespace=namespace, name=name, node=node,
                             connection=connection_of(msg.reply), error=error,
                             user=user if isinstance(user, str) else None)

    async def _refuse(self, msg: Msg, error: ShoalError) -> None:
        self._audit(msg, error)
        if msg.reply:
            try:
                await msg.respond(codec.error(error))
            except Exception:
                pass

    async def _serve(self, msg: Msg) -> None:
        started = time.perf_counter()
        verb, target = "?", msg.subject
        body: dict[str, Any] | None = None
        try:
            if len(msg.data) > codec.MAX_MESSAGE_BYTES:
                raise TooLarge(f"request of {len(msg.data)} bytes is too large")
            body = codec.decode(msg.data)
            request = parse_subject(msg.subject)
            reply: bytes | None
            if isinstance(request, AdminRequest):
                verb = "admin"
                if request.user is not None or body.get("as") is not None:  # a non-resource URL of RBAC
                    await self._authorize_admin(request, body)
                reply = await self._admin(request.op, body)
            else:
                verb = request.verb
                guard = await self._authorize(request, body)
                reply = await self._handlers[request.verb](request, body, msg, guard)
            if reply is not None and msg.reply:
                await msg.respond(reply)
            self._audit(msg, None, body)
        except ShoalError as exc:
            self._audit(msg, exc, body)
            if msg.reply:
                await msg.respond(codec.error(exc))
            self.ctx.log.info("request refused", verb=verb, subject=target, code=str(exc.code),
                              error=exc.message)
        except Exception as exc:
            self.ctx.log.error("request failed", verb=verb, subject=target, exc_info=True)
            error = InternalError(f"internal error: {exc!r}; retry, and report it if it persists")
            self._audit(msg, error)
            if msg.reply:
                await msg.respond(codec.error(error))
        finally:
            elapsed = time.perf_counter() - started
            if elapsed > 1.0:
                self._slow_request(verb, target, elapsed)

    async def _authorize_admin(self, request: AdminRequest, body: dict[str, Any]) -> None:
        """An admin operation of a component (identity-scoped) or impersonated: ``create`` of the non-resource
        URL ``/shoal/admin/<op>``."""
        if request.user is not None and body.get("as") is not None:
            raise Forbidden("identity-scoped subjects (shoal.user.<U>.api) do not serve 'as'")
        user = scoped_user(request.user) if request.user is not None else rbac.user_from_wire(body["as"])
        attributes = rbac.Attributes("create", path=f"/shoal/admin/{request.op}")
        if not self.rbac.current().allowed(user, attributes):
            await self._consistent(None)
        self.rbac.current().authorize(user, attributes)

    async def _authorize(self, request: ApiRequest, body: dict[str, Any]) -> noderestriction.Guard | None:
        """``authorize``; a request RBAC refuses (impersonated or identity-scoped) is decided again once the
        cache holds every acknowledged write (one datastore round trip, refusals only): a binding created just
        before is seen."""
        try:
            return authorize(request, body, self._node_refs.allowed, self.rbac.current)
        except Forbidden:
            if (body.get("as") is None and request.user is None) or request.node is not None:
                raise
            await self._consistent(None)
            return authorize(request, body, self._node_refs.allowed, self.rbac.current)

    async def _access_review(self, request: dict[str, Any]) -> dict[str, Any]:
        """A SubjectAccessReview; a denial is decided again on a consistent cache (as ``_authorize``)."""
        await self._cache_ready()
        status = rbac.access_review(self.rbac.current(), request.get("subject"), request.get("spec"))
        if not status["allowed"]:
            await self._consistent(None)
            status = rbac.access_review(self.rbac.current(), request.get("subject"), request.get("spec"))
        return status

    def _slow_request(self, verb: str, subject: str, seconds: float) -> None:
        """Logged at most once a second (with how many were slow meanwhile): an overloaded actor must not
        spend its time writing one warning per request."""
        self._slow_log.warning(self.ctx.log, "slow request", verb=verb, subject=subject, seconds=round(seconds, 3))

    # -- one handler per verb (``self._handlers``) ----------------------------------------------------
    @staticmethod
    def _written(obj: Obj, warnings: list[str]) -> bytes:
        """The reply to a create, update or patch: the object, and its kind's warnings when there are any."""
        return codec.ok(object=obj, warnings=warnings) if warnings else codec.ok(object=obj)

    async def _admitted(self, req: ApiRequest, body: dict[str, Any],
                        write: Callable[[Callable[[Obj], None] | None], Awaitable[Obj]]) -> Obj:
        """``write`` with the admission check that depends on who asks (RBAC escalation, for RBAC writes only);
        a refusal is decided again once the cache holds every acknowledged write (the user's own grants made
        just before count), as ``_authorize`` does."""
        check = escalation_check(req, body, self.rbac.current)
        if check is None:
            return await write(None)
        try:
            return await write(check)
        except Forbidden:
            await self._consistent(None)
            return await write(check)

    async def _create(self, req: ApiRequest, body: dict[str, Any], msg: Msg,
                      guard: noderestriction.Guard | None) -> bytes:
        obj = body.get("object")
        unknown = unknown_fields.apply(obj, strategy_for(req.info.kind), field_validation(body.get("fieldValidation")))
        created = await self._admitted(req, body, lambda admit: self.service.create(
            req.info, req.namespace, copy.deepcopy(obj) if admit is not None else obj, dry_run=_dry_run(body),
            admit=admit))  # a checked create may be tried twice: each try gets the object as sent
        return self._written(created, unknown + warnings_for(created))

    async def _get(self, req: ApiRequest, body: dict[str, Any], msg: Msg,
                   guard: noderestriction.Guard | None) -> bytes:
        obj = await self.service.get(req.info, req.namespace, _name(req))
        if guard is not None:
            guard(obj)
        return codec.ok(object=obj)

    async def _update(self, req: ApiRequest, body: dict[str, Any], msg: Msg,
                      guard: noderestriction.Guard | None) -> bytes:
        warnings: list[str] = []
        unknown: list[str] = []
        obj = body.get("object")
        if req.verb == Verb.UPDATE:
            unknown = unknown_fields.apply(obj, strategy_for(req.info.kind),
                                           field_validation(body.get("fieldValidation")))
        obj = await self._admitted(req, body, lambda admit: self.service.update(
            req.info, req.namespace, _name(req), obj, status_only=req.verb == Verb.STATUS, guard=guard,
            warnings=warnings, dry_run=_dry_run(body), admit=admit))
        return self._written(obj, unknown + warnings)

    async def _patch(self, req: ApiRequest, body: dict[str, Any], msg: Msg,
                     guard: noderestriction.Guard | None) -> bytes:
        warnings: list[str] = []
        unknown: list[str] = []
        patch = body.get("patch")
        if body.get("subresource") != "status":
            unknown = unknown_fields.apply(patch, strategy_for(req.info.kind),
                                           field_validation(body.get("fieldValidation")))
        obj = await self._admitted(req, body, lambda admit: self.service.patch(
            req.info, req.namespace, _name(req), patch, status_only=body.get("subresource") == "status",
            guard=guard, warnings=warnings, dry_run=_dry_run(body), admit=admit))
        return self._written(obj, unknown + warnings)

    async def _delete(self, req: ApiRequest, body: dict[str, Any], msg: Msg,
                      guard: noderestriction.Guard | None) -> bytes:
        options = body.get("options") or {}
        if not isinstance(options, dict):
            raise BadRequest("delete options must be a map")
        return codec.ok(object=await self.service.delete(req.info, req.namespace, _name(req), options,
                                                          guard=guard, dry_run=_dry_run(body)))

    async def _evict(self, req: ApiRequest, body: dict[str, Any], msg: Msg,
                     guard: noderestriction.Guard | None) -> bytes:
        """``shoal.api.evict.pods.<ns>.<name>``: delete the pod unless a PodDisruptionBudget forbids it now."""
        options = body.get("options") or {}
        if not isinstance(options, dict):
            raise BadRequest("eviction delete options must be a map")
        return codec.ok(object=await evict(self.service, req.info, req.namespace, _name(req), options))

    async def _bind(self, req: ApiRequest, body: dict[str, Any], msg: Msg,
                    guard: noderestriction.Guard | None) -> bytes:
        if req.name is None:
            return await self._bind_many(req.info, req.namespace, body)
        return codec.ok(object=await self.service.bind(req.info, req.namespace, req.name, body.get("node"),
                                                        body.get("resourceVersion"), body.get("uid")))

    async def _token(self, req: ApiRequest, body: dict[str, Any], msg: Msg,
                     guard: noderestriction.Guard | None) -> bytes:
        """TokenRequest: a token for ServiceAccount ``<ns>/<name>`` (``tokens.py``, ``docs/POD_IDENTITY.md``)."""
        return codec.ok(object=await self.service.issue_token(req.info, req.namespace, _name(req), body,
                                                               guard=guard))

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
        connection = connection_of(msg.reply)
        if connection is None:
            raise BadRequest("a watch must be asked with a reply subject _INBOX.<connection>.<token> (a request)")
        inbox = request.get("inbox")
        if not own_inbox(inbox, connection):
            raise BadRequest(f"watch needs 'inbox': a subject under the caller's own reply prefix {connection}. "
                             "to push events to", {"inbox": str(inbox)[:200], "prefix": connection + "."})
        bookmarks = request.get("bookmarks")
        if bookmarks is not None and not own_inbox(bookmarks, connection):
            raise BadRequest(f"watch 'bookmarks' must be a subject under the caller's own reply prefix {connection}.")
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
                          rv if rv is not None else self.cache.rev, bookmarks=bookmarks, connection=connection)
        pinned = watcher.node is not None
        limit = (self.settings.max_pinned_watches_per_connection if pinned
                 else self.settings.max_watches_per_connection)
        if self.cache.watches_of(connection, pinned=pinned) >= limit:
            raise TooManyRequests(f"this connection has {limit} watches open already; cancel some first",
                                  {"limit": limit})
        initial = self.cache.select(info.plural, namespace, labels, fields) if rv is None else ()
        self.cache.add_watcher(watcher, resume=rv is not None, initial=initial)
        self.ctx.log.debug("watch started", resource=info.plural, namespace=namespace, watch=watcher.id,
                           resource_version=watcher.min_rev)
        return codec.ok(watch=watcher.id, control=subjects.watch_control(self.id),
                        resourceVersion=watcher.min_rev)

    async def _on_watch_control(self, msg: Msg) -> None:
        """``{"op": "keepalive"|"cancel", "watches": [id, ...]}``; every malformed one is answered BadRequest."""
        try:
            request = codec.decode(msg.data)
            op, ids = request.get("op"), request.get("watches")
            if op not in ("keepalive", "cancel"):
                raise BadRequest("watch control 'op' must be 'keepalive' or 'cancel'", {"op": str(op)[:100]})
            if not isinstance(ids, list) or not all(isinstance(w, str) for w in ids):
                raise BadRequest("watch control 'watches' must be a list of watch ids (strings)")
            unknown = []
            for wid in ids:
                watcher = self.cache.find_watcher(wid)
                if watcher is None:
                    if self._event_watches is None or not self._event_watches.control(str(wid), op):
                        unknown.append(wid)
                elif op == "cancel":
                    self.cache.remove_watcher(watcher.id)
                else:
                    watcher.last_keepalive = time.monotonic()
            reply = codec.ok(unknown=unknown)
        except ShoalError as exc:
            reply = codec.error(exc)
        except Exception as exc:  # never reached by design; a control message must never go unanswered
            reply = codec.error(InternalError(f"internal error: {exc!r}"))
        if msg.reply:
            try:
                await msg.respond(reply)
            except Exception:
                pass

    async def _flush_watches(self) -> None:
        nc = self.ctx.nc
        unflushed = 0
        while True:
            await self.cache.wakeup.wait()
            await self._feed_whole.wait()  # no watch is told it is current past a hole in the feed
            self.cache.wakeup.clear()
            dirty, self.cache.dirty = self.cache.dirty, {}
            for watcher in dirty.values():
                if watcher.overflowed:
                    self.ctx.log.info("watch cut off: its client is too slow", watch=watcher.id,
                                      connection=watcher.connection)
                    await self._end_watch(watcher, Expired(
                        f"the watch fell more than {self.cache.max_pending_bytes} bytes behind; list again and "
                        "watch from the list's resourceVersion", {"reason": "TooSlow"}))
                    continue
                try:
                    for message in self.cache.messages(watcher):
                        if self.cache.find_watcher(watcher.id) is None:
                            break  # cancelled or expired meanwhile
                        await nc.publish(watcher.inbox, message)
                        unflushed += len(message)
                        if unflushed > FLUSH_EVERY_BYTES:
                            unflushed = 0
                            await self._backpressure(nc)
                    watcher.last_sent = time.monotonic()
                except Exception as exc:
                    self.ctx.log.warning("watch dropped: could not push events", watch=watcher.id,
                                         error=repr(exc))
                    self.cache.remove_watcher(watcher.id)
            await asyncio.sleep(0)

    async def _backpressure(self, nc: Any) -> None:
        """One PING/PONG with the server: returns once it has read what was published before."""
        try:
            await nc.flush(timeout=10)
        except Exception as exc:
            self.ctx.log.warning("NATS server slow to take watch events", error=repr(exc))

    async def _heartbeats(self) -> None:
        """Expire watches without keep-alive; bookmark idle ones every ``BOOKMARK_EVERY`` seconds: one message
        per watch for clients that gave no ``bookmarks`` inbox, else one per inbox naming all its idle watches."""
        while True:
            await asyncio.sleep(1.0)
            await self._settle_gaps()  # a feed that stalls with holes open still gives up on them in time
            now = time.monotonic()
            shared: dict[str, list[dict[str, Any]]] = {}
            for watcher in self.cache.watchers():
                if now - watcher.last_keepalive > WATCH_TTL:
                    self.cache.remove_watcher(watcher.id)
                    self.ctx.log.info("watch expired: no keep-alive", watch=watcher.id)
                elif (now - watcher.last_sent > BOOKMARK_EVERY and self.cache.settled(watcher)
                      and self._feed_whole.is_set()):
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
        if op == "rewrite-secrets":
            assert self._store is not None
            secrets = [key for key in self.cache.objects.get("secrets", {})]
            return codec.ok(result=await self._store.rewrite(secrets))
        if op == "tokenreview":
            return codec.ok(status=await self.service.review_token(request.get("token"), request.get("audiences")))
        if op in SIGNING_KEY_OPS:
            return await self._signing_keys(op, request)
        if op == "accessreview":  # SubjectAccessReview: {"subject": {user, groups, uid?}, "spec": {...}}
            return codec.ok(status=await self._access_review(request))
        if op == "rulesreview":  # SelfSubjectRulesReview: {"subject": {...}, "namespace": ns}
            await self._consistent(None)
            return codec.ok(status=rbac.rules_review(self.rbac.current(), request.get("subject"),
                                                     request.get("namespace")))
        raise BadRequest(f"unknown admin operation {op!r}")

    async def _signing_keys(self, op: str, request: dict[str, Any]) -> bytes:
        """``oidc``: the issuer and the public keys (what the gateway publishes); ``signing-keys``: the keys'
        ids; ``rotate-signing-key``: a new key signs, the old ones still verify; ``remove-signing-key``
        ``{"kid"}``: an old key's tokens are refused from now on."""
        if self._keys is None:
            raise Unavailable("this API actor has no signing keys yet; retry")
        if op == "oidc":
            keys, t = self._keys.current, self.settings.tokens
            return codec.ok(issuer=t.issuer, jwksUri=t.jwks_uri or f"{t.issuer.rstrip('/')}/openid/v1/jwks",
                            jwks=keys.jwks())
        if op == "rotate-signing-key":
            keys = await self._keys.rotate()
        elif op == "remove-signing-key":
            keys = await self._keys.remove(request.get("kid"))
        else:
            keys = await self._keys.refresh()
        self.ctx.log.info("signing keys", op=op, active=keys.active, keys=len(keys.keys))
        return codec.ok(active=keys.active, keys=keys.describe())


SIGNING_KEY_OPS = frozenset({"oidc", "signing-keys", "rotate-signing-key", "remove-signing-key"})


def connection_of(reply: str | None) -> str | None:
    """The connection a request came from: its reply subject without the last token (nats clients answer
    requests on ``<inbox prefix>.<connection nuid>.<token>``), or None when the reply is no ``_INBOX.`` subject
    of at least three tokens."""
    if not reply or not reply.startswith("_INBOX.") or "*" in reply or ">" in reply:
        return None
    prefix, _, last = reply.rpartition(".")
    return prefix if last and prefix.count(".") >= 1 else None


def own_inbox(subject: Any, connection: str) -> TypeGuard[str]:
    """A watch's inbox must lie under the reply prefix of the connection that asks: a client can point its
    events only at itself, not at another client's inbox."""
    return (isinstance(subject, str) and subject.startswith(connection + ".") and len(subject) <= 256
            and "*" not in subject and ">" not in subject and " " not in subject and ".." not in subject
            and not subject.endswith("."))


def flow_of(subject: str, reply: str | None) -> str:
    """The admission flow of a request: the node of a node-scoped subject, else its connection."""
    node, _ = split_api_subject(subject)
    if node is not None:
        return f"node:{node}"
    return connection_of(reply) or reply or ""


def _dry_run(body: dict[str, Any]) -> bool:
    """The ``dryRun`` request option of create, update, patch and delete: do everything but the write."""
    value = body.get("dryRun", False)
    if not isinstance(value, bool):
        raise BadRequest("dryRun must be a boolean")
    return value


def _name(request: ApiRequest) -> str:
    if request.name is None:  # the parser gives every object verb a name: not reached
        raise BadRequest(f"{request.verb} needs a subject ending in .<namespace>.<name>")
    return request.name


def _opt_str(request: dict[str, Any], field: str) -> str | None:
    value = request.get(field)
    if value is not None and not isinstance(value, str):
        raise BadRequest(f"{field} must be a string")
    return value
