"""What each verb does: validation, defaulting, admission, compare-and-swap writes, finalizers.

``ApiService`` knows nothing of NATS subjects or encoding of replies (``server.py`` does); it takes
and returns objects. Every write is a compare-and-swap on the key's revision; a verb without a
client-given resourceVersion retries internally on Conflict, one with it never does.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

from actors.api import tokens
from actors.api.allocator import ServiceAllocator
from actors.api.cache import WatchCache
from actors.api.defaults import admit_new, apply_defaults, copy_object, create_status, random_suffix
from actors.api.kindhooks import KindHooks, hooks_for
from actors.api.store import Record, Store
from protocol import codec, keys
from protocol.bindings import Binding
from protocol.errors import (
    AlreadyExists,
    BadRequest,
    Conflict,
    Forbidden,
    InternalError,
    NotFound,
    ShoalError,
    Unavailable,
)
from protocol.kinds import KindInfo, by_kind, strategy_for
from protocol.kinds.namespace import SYSTEM_NAMESPACES
from protocol.merge_patch import apply_merge_patch
from protocol.objects import Obj, format_time, meta
from protocol.resource_version import write_precondition
from protocol.validation import validate, validate_status

CONFLICT_RETRIES = 8
NAMESPACES = by_kind("Namespace")
PODS = by_kind("Pod")


def new_uid() -> str:
    """``str(uuid.uuid4())`` (RFC 4122 version 4, random) from the same 16 random bytes, without building a
    ``UUID`` and formatting it through an integer (a third of the cost)."""
    raw = bytearray(os.urandom(16))
    raw[6] = (raw[6] & 0x0F) | 0x40
    raw[8] = (raw[8] & 0x3F) | 0x80
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def with_rv(obj: Obj, rev: int) -> Obj:
    meta(obj)["resourceVersion"] = str(rev)
    return obj


def _store_form(obj: Obj) -> bytes:
    m = meta(obj)
    rv = m.pop("resourceVersion", None)
    try:
        return codec.encode_object(obj)
    finally:
        if rv is not None:
            m["resourceVersion"] = rv


class ObjectStore(Protocol):
    """Where objects of a kind are written: the datastore (``Store``), or for Events the event stream."""

    async def get(self, key: str) -> Record | None: ...

    async def create(self, key: str, value: bytes) -> int: ...

    async def update(self, key: str, value: bytes, revision: int) -> int: ...

    async def delete(self, key: str, final_value: bytes, revision: int) -> int: ...


class ApiService:
    def __init__(self, store: Store, cache: WatchCache, *, clock: Callable[[], float] = time.time,
                 stream_store: ObjectStore | None = None,
                 allocator: ServiceAllocator | None = None, token_keys: tokens.TokenKeys | None = None,
                 token_settings: tokens.TokenSettings | None = None,
                 consistent: Callable[[], Awaitable[None]]) -> None:
        """``consistent``: waits until the cache holds every write acknowledged before the call (the API
        actor's consistent read, shared with its lists)."""
        self.store = store
        self._consistent = consistent
        self.token_keys = token_keys
        self.token_settings = token_settings or tokens.TokenSettings()
        self.allocator = allocator or ServiceAllocator(store)
        self.cache = cache
        self.clock = clock
        self.stream_store = stream_store
        """Where the kinds whose hooks say ``stream_stored`` (Events) are kept, when not in the datastore."""

    def _store_for(self, info: KindInfo) -> ObjectStore:
        if self.stream_store is not None and hooks_for(info).stream_stored:
            return self.stream_store
        return self.store

    # -- reads ------------------------------------------------------------------------------
    async def _read_raw(self, info: KindInfo, namespace: str | None, name: str) -> tuple[bytes, int]:
        key = keys.object_key(info, namespace, name)
        record = await self._store_for(info).get(key)
        if record is None or record.deleted:
            where = f" in namespace {namespace!r}" if info.namespaced else ""
            raise NotFound(f'{info.plural} "{name}" not found{where}',
                           {"kind": info.kind, "name": name, "namespace": namespace})
        return record.value, record.revision

    async def _read(self, info: KindInfo, namespace: str | None, name: str) -> tuple[Obj, int]:
        raw, rev = await self._read_raw(info, namespace, name)
        return codec.unpackb(raw), rev

    async def get(self, info: KindInfo, namespace: str | None, name: str) -> Obj:
        obj, rev = await self._read(info, namespace, name)
        return with_rv(obj, rev)

    # -- create -----------------------------------------------------------------------------
    async def _admit_namespace(self, namespace: str) -> None:
        key = keys.object_key(NAMESPACES, None, namespace)
        entry = self.cache.get(key)
        phase = entry.phase if entry else None
        if entry is None:
            record = await self.store.get(key)
            if record is None or record.deleted:
                raise NotFound(f'namespace "{namespace}" not found: create it first with '
                               f"`shoal create namespace {namespace}`", {"kind": "Namespace", "name": namespace})
            phase = ((codec.unpackb(record.value).get("status")) or {}).get("phase")
        if phase == "Terminating":
            raise Forbidden(f'namespace "{namespace}" is being terminated: no new objects may be created '
                            "in it", {"namespace": namespace})

    def _resolve_namespace(self, info: KindInfo, obj: Obj, namespace: str | None) -> str | None:
        m = meta(obj)
        if not info.namespaced:
            m.pop("namespace", None)
            return None
        given = m.get("namespace")
        if given and namespace and given != namespace:
            raise BadRequest(f"the namespace of the object ({given}) does not match the namespace of the "
                             f"request ({namespace})")
        ns = str(given or namespace or "default")
        m["namespace"] = ns
        return ns

    async def create(self, info: KindInfo, namespace: str | None, obj: Any, *, dry_run: bool = False,
                     admit: Callable[[Obj], None] | None = None) -> Obj:
        """Create ``obj``; ``dry_run``: everything (defaults, validation, admission) but the write. ``admit``
        (an admission check that depends on who asks, e.g. RBAC escalation) sees the object about to be
        written, as for ``update`` and ``patch``."""
        if isinstance(obj, dict):
            obj.setdefault("kind", info.kind)
            obj.setdefault("apiVersion", info.api_version)
        validate(obj, expect_kind=info.kind)
        ns = self._resolve_namespace(info, obj, namespace)
        if ns is not None:
            await self._admit_namespace(ns)
        apply_defaults(obj, info)
        admit_new(obj, info)
        create_status(obj, info)
        m = meta(obj)
        for field in ("resourceVersion", "deletionTimestamp", "deletionGracePeriodSeconds", "uid"):
            m.pop(field, None)
        m["uid"] = new_uid()
        m["creationTimestamp"] = format_time(self.clock())
        m["generation"] = 1
        validate(obj, expect_kind=info.kind)  # defaults must not make an object invalid
        if admit is not None:
            admit(obj)
        generate = m.get("name") is None
        hooks = hooks_for(info)
        # a generated name that is taken is tried again with another: on the object as it was before the
        # hooks changed it (a pod's account would otherwise count as named, its token volume be added twice)
        before_hooks = codec.packb(obj) if generate and hooks.prepare_create is not None else None
        for attempt in range(3 if generate else 1):
            if attempt and before_hooks is not None:
                obj = codec.unpackb(before_hooks)
            m = meta(obj)  # a hook may have replaced the metadata
            if generate:
                m["name"] = f"{str(m['generateName'])[:58]}{random_suffix()}"  # as Kubernetes: 58 + 5
            name = str(m["name"])
            try:
                if dry_run:  # everything but the write (Kubernetes' dryRun=All)
                    existing = await self._store_for(info).get(keys.object_key(info, ns, name))
                    if existing is not None and not existing.deleted:
                        raise AlreadyExists(f'{info.plural} "{name}" already exists')
                    if hooks.prepare_create is not None:  # addresses shown as they would be, then given back
                        await hooks.prepare_create(self, obj)
                        if hooks.release is not None:
                            await hooks.release(self, obj)
                    return dict(obj)
                rev = await self._create_once(hooks, self._store_for(info), keys.object_key(info, ns, name), obj)
                return with_rv(obj, rev)
            except AlreadyExists:
                if not generate:
                    raise AlreadyExists(f'{info.plural} "{name}" already exists',
                                        {"kind": info.kind, "name": name, "namespace": ns}) from None
        raise AlreadyExists(f"could not generate a unique name from {meta(obj).get('generateName')!r}; retry")

    async def _create_once(self, hooks: KindHooks, store: ObjectStore, key: str, obj: Obj) -> int:
        """Run the kind's I/O hooks and write; what they reserved is given back if the write fails."""
        if hooks.prepare_create is not None:
            await hooks.prepare_create(self, obj)
        if hooks.reserve is not None:
            await hooks.reserve(self, obj)
        try:
            return await store.create(key, _store_form(obj))
        except BaseException:
            if hooks.release is not None:
                await hooks.release(self, obj)
            raise

    async def caught_up(self) -> None:
        """Wait until the watch cache holds every write acknowledged before now: what an admission step that
        selects from the cache must see (a default StorageClass created just before)."""
        await self._consistent()

    async def lookup(self, info: KindInfo, namespace: str | None, name: str) -> Obj | None:
        """An object from the watch cache, else the datastore (a cache that lags must not say "absent")."""
        entry = self.cache.get(keys.object_key(info, namespace, name))
        if entry is not None and entry.raw:
            return with_rv(codec.unpackb(entry.raw), entry.rev)
        try:
            return await self.get(info, namespace, name)
        except NotFound:
            return None

    async def issue_token(self, info: KindInfo, namespace: str | None, name: str, body: Any,
                          *, guard: Callable[[Obj], None] | None = None) -> Obj:
        """Kubernetes' TokenRequest on ServiceAccount ``namespace/name`` (``tokens.issue``)."""
        if "token" not in info.subresources:
            raise BadRequest(f"{info.plural} have no token subresource (ask serviceaccounts/<name>/token)")
        if self.token_keys is None:
            raise Unavailable("this API actor has no signing key yet; retry")
        return await tokens.issue(self, self.token_keys, self.token_settings, str(namespace), name, body,
                                  guard=guard, now=self.clock())

    async def review_token(self, token: Any, audiences: Any = None) -> dict[str, Any]:
        """Who a token stands for, or Forbidden (``tokens.review``)."""
        if self.token_keys is None:
            raise Unavailable("this API actor has no signing key yet; retry")
        return await tokens.review(self, self.token_keys, self.token_settings, token, audiences, now=self.clock())

    # -- update, status, patch ----------------------------------------------------------------
    def _check_identity(self, info: KindInfo, namespace: str | None, name: str, obj: Obj) -> None:
        m = meta(obj)
        if m.get("name") not in (None, name):
            raise BadRequest(f"the name of the object ({m.get('name')}) does not match the name of the "
                             f"request ({name})")
        m["name"] = name
        self._resolve_namespace(info, obj, namespace)

    def _merge(self, info: KindInfo, current: Obj, new: Obj, *, status_only: bool) -> Obj:
        cur_meta = meta(current)
        if status_only:  # a new top level and metadata over the (private) current object: no deep copy
            merged = {**current, "metadata": dict(cur_meta), "status": new.get("status") or {}}
            return merged
        merged = copy_object(new)
        m = meta(merged)
        for field in ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds",
                      "generation"):
            if field in cur_meta:
                m[field] = cur_meta[field]
            else:
                m.pop(field, None)
        if info.has_status:
            merged["status"] = current.get("status") or {}
        elif "status" in current and "status" not in merged:
            merged["status"] = current["status"]
        strategy = strategy_for(info)
        strategy.prepare_update(current, merged)
        apply_defaults(merged, info)  # as on create: a client that omits a defaulted field keeps its default
        if strategy.generation_part(merged) != strategy.generation_part(current):
            m["generation"] = int(cur_meta.get("generation") or 0) + 1
        return merged

    async def _commit(self, info: KindInfo, key: str, obj: Obj, rev: int, dry_run: bool = False) -> Obj:
        """Write ``obj`` over revision ``rev``; finish a deletion whose finalizers are all gone; ``dry_run``:
        the object as it would be written, nothing written."""
        if dry_run:
            return with_rv(obj, rev)
        data = _store_form(obj)
        strategy = strategy_for(info)
        if (meta(obj).get("deletionTimestamp") and not strategy.finalizers(obj)
                and not strategy.awaits_confirmation(obj)):
            deleted = with_rv(obj, await self._store_for(info).delete(key, data, rev))
            release = hooks_for(info).release
            if release is not None:
                await release(self, obj)
            return deleted
        return with_rv(obj, await self._store_for(info).update(key, data, rev))

    async def _read_modify_write(self, info: KindInfo, namespace: str | None, name: str,
                                 precondition: int | None, change: Callable[[Obj], Obj | None],
                                 guard: Callable[[Obj], None] | None = None, dry_run: bool = False) -> Obj:
        """Read, apply ``change`` (None: nothing to write), CAS-write; retry on Conflict unless pinned.

        ``guard`` (an admission check on the stored object, e.g. node restriction) sees each version read,
        the one the compare-and-swap then replaces: it cannot be fooled by a change in between."""
        key = keys.object_key(info, namespace, name)
        from_cache = True
        for _attempt in range(CONFLICT_RETRIES):
            cached = self.cache.get(key) if from_cache else None
            if cached is not None and cached.raw and (precondition is None or precondition <= cached.rev):
                # the watch cache saves a datastore read; compare-and-swap still guards correctness
                raw, rev = cached.raw, cached.rev
            else:
                raw, rev = await self._read_raw(info, namespace, name)
                cached = None
            current = codec.unpackb(raw)
            if guard is not None:
                guard(current)
            if precondition is not None and precondition != rev:
                raise Conflict(
                    f'Operation cannot be fulfilled on {info.plural} "{name}": the object has been modified; '
                    "please apply your changes to the latest version and try again",
                    {"kind": info.kind, "name": name, "resourceVersion": rev})
            updated = change(codec.unpackb(raw))  # a private copy: decoding is cheaper than a deep copy
            if updated is None:
                if cached is not None:  # "nothing to do" must be judged on the datastore's copy
                    from_cache = False
                    continue
                return with_rv(current, rev)
            try:
                return await self._commit(info, key, updated, rev, dry_run)
            except Conflict:
                if precondition is not None:
                    raise
                from_cache = False
        raise Conflict(f'{info.plural} "{name}" is being modified too often; retry')

    async def update(self, info: KindInfo, namespace: str | None, name: str, obj: Any, *,
                     status_only: bool = False, guard: Callable[[Obj], None] | None = None,
                     warnings: list[str] | None = None, dry_run: bool = False,
                     admit: Callable[[Obj], None] | None = None) -> Obj:
        """Replace the object (``status_only``: its status). ``warnings``, when given, receives the kind's
        warnings about the written object."""
        if isinstance(obj, dict):
            obj.setdefault("kind", info.kind)
            obj.setdefault("apiVersion", info.api_version)
        if status_only:
            # only the status is taken, over the stored (valid) object: check just that part
            validate_status(obj, expect_kind=info.kind)
        else:
            validate(obj, expect_kind=info.kind)
        self._check_identity(info, namespace, name, obj)
        precondition = write_precondition(meta(obj).get("resourceVersion"))

        def change(current: Obj) -> Obj | None:
            _note_warnings(warnings, info, None, current)  # this attempt's, not a conflicted one's
            merged = self._merge(info, current, obj, status_only=status_only)
            meta(merged).pop("resourceVersion", None)
            meta(current).pop("resourceVersion", None)
            if merged == current:
                return None
            if not status_only:
                validate(merged, expect_kind=info.kind, old=current)
                _note_warnings(warnings, info, merged, current)
            if admit is not None:
                admit(merged)
            return merged

        return await self._read_modify_write(info, namespace, name, precondition, change, guard, dry_run)

    async def patch(self, info: KindInfo, namespace: str | None, name: str, patch: Any, *,
                    status_only: bool = False, guard: Callable[[Obj], None] | None = None,
                    warnings: list[str] | None = None, dry_run: bool = False,
                    admit: Callable[[Obj], None] | None = None) -> Obj:
        """Apply a JSON merge patch; ``warnings`` as for ``update``."""
        if not isinstance(patch, dict):
            raise BadRequest("a merge patch must be a map")
        precondition = write_precondition((patch.get("metadata") or {}).get("resourceVersion"))

        def change(current: Obj) -> Obj | None:
            _note_warnings(warnings, info, None, current)  # this attempt's, not a conflicted one's
            patched = apply_merge_patch(current, patch)
            if not isinstance(patched, dict):
                raise BadRequest("the patch did not produce an object")
            pm = meta(patched)
            if pm.get("name") != name or pm.get("namespace") != meta(current).get("namespace"):
                raise BadRequest("a patch cannot change the name or namespace")
            pm.pop("resourceVersion", None)
            validate(patched, expect_kind=info.kind, old=current)
            merged = self._merge(info, current, patched, status_only=status_only)
            if merged == current:
                return None
            if not status_only:
                _note_warnings(warnings, info, merged, current)
            if admit is not None:
                admit(merged)
            return merged

        return await self._read_modify_write(info, namespace, name, precondition, change, guard, dry_run)

    # -- delete -----------------------------------------------------------------------------
    async def delete(self, info: KindInfo, namespace: str | None, name: str, options: dict[str, Any], *,
                     guard: Callable[[Obj], None] | None = None, dry_run: bool = False) -> Obj:
        strategy = strategy_for(info)
        if name in strategy.protected_names:
            raise Forbidden(f'{info.singular} "{name}" is a system {info.singular} and cannot be deleted')
        precondition = write_precondition(options.get("resourceVersion"))
        grace = options.get("gracePeriodSeconds")
        if grace is not None and (not isinstance(grace, int) or isinstance(grace, bool) or grace < 0):
            raise BadRequest("gracePeriodSeconds must be a non-negative integer")
        policy = options.get("propagationPolicy") or "Background"
        if policy not in ("Background", "Foreground", "Orphan"):
            raise BadRequest(f"propagationPolicy must be Background, Foreground or Orphan, not {policy!r}")
        now = format_time(self.clock())

        def change(current: Obj) -> Obj | None:
            m = meta(current)
            deleting = bool(m.get("deletionTimestamp"))
            finalizers = list(m.get("finalizers") or [])
            if not deleting:
                extra = {"Foreground": "foregroundDeletion", "Orphan": "orphan"}.get(policy)
                if extra and extra not in finalizers:
                    finalizers.append(extra)
                    m["finalizers"] = finalizers
                m["deletionTimestamp"] = now
                strategy.mark_deleting(current)
            if strategy.grace_period is not None:
                chosen = strategy.grace_period(current) if grace is None else grace
                previous = m.get("deletionGracePeriodSeconds")
                if previous is not None and chosen >= previous and deleting:
                    return None
                m["deletionGracePeriodSeconds"] = chosen
            elif deleting:
                return None  # already deleting; finalizers decide when it goes
            return current

        return await self._read_modify_write(info, namespace, name, precondition, change, guard, dry_run)

    # -- bind ---------------------------------------------------------------------------------
    async def bind(self, info: KindInfo, namespace: str | None, name: str, node: Any,
                   resource_version: Any = None, uid: Any = None) -> Obj:
        if "binding" not in info.subresources:
            raise BadRequest(f"{info.plural} cannot be bound to nodes")
        if not isinstance(node, str) or not node:
            raise BadRequest("bind needs the target node's name in 'node'")
        precondition = write_precondition(resource_version)
        now = format_time(self.clock())

        def change(current: Obj) -> Obj | None:
            if uid and meta(current).get("uid") != uid:
                raise Conflict(f'pod "{name}" was re-created (uid {meta(current).get("uid")}, not {uid})')
            spec = current.setdefault("spec", {})
            bound = spec.get("nodeName")
            if bound == node:
                return None
            if bound:
                raise Conflict(f'pod "{name}" is already bound to node "{bound}"', {"node": bound})
            if meta(current).get("deletionTimestamp"):
                raise Conflict(f'pod "{name}" is being deleted')
            spec["nodeName"] = node
            status = current.setdefault("status", {})
            conditions = [c for c in status.get("conditions") or [] if c.get("type") != "PodScheduled"]
            conditions.append({"type": "PodScheduled", "status": "True", "lastTransitionTime": now})
            status["conditions"] = conditions
            return current

        return await self._read_modify_write(info, namespace, name, precondition, change)

    async def bind_many(self, items: Sequence[Binding | ShoalError]) -> list[int | ShoalError]:
        """Bind every pod of a batch with all the compare-and-swap writes in flight at once.

        Each item gets its own result (the pod's new resourceVersion, or the typed error that refused
        it); an item that arrives as an error (malformed) stays one. No item's failure touches another.
        """

        async def one(item: Binding | ShoalError) -> int | ShoalError:
            if isinstance(item, ShoalError):
                return item
            try:
                bound = await self.bind(PODS, item.namespace, item.name, item.node, item.resource_version,
                                        item.uid)
            except ShoalError as exc:
                return exc
            except Exception as exc:
                return InternalError(f"internal error binding {item.namespace}/{item.name}: {exc!r}")
            return int(meta(bound)["resourceVersion"])

        return list(await asyncio.gather(*(one(item) for item in items)))

    async def ensure_system_namespaces(self) -> None:
        for ns in SYSTEM_NAMESPACES:
            try:
                await self.create(NAMESPACES, None, {"apiVersion": "v1", "kind": "Namespace",
                                                     "metadata": {"name": ns}})
            except AlreadyExists:
                pass


def _note_warnings(into: list[str] | None, info: KindInfo, new: Obj | None, old: Obj) -> None:
    """Set ``into`` to the warnings about writing ``new`` over ``old`` (none while ``new`` is None)."""
    if into is not None:
        into[:] = strategy_for(info).update_warnings(new, old) if new is not None else []
