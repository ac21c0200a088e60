"""The REST verbs of the Kubernetes API, each one or a few NATS API requests (``runtime.client``).

get, list (selectors, ``limit``/``continue``, ``resourceVersion`` as a floor), watch, create, update (PUT),
patch (JSON, merge, strategic merge), delete (``DeleteOptions`` in the body or the query), deletecollection,
server-side apply (``apply``), and the subresources ``status``, ``scale``, ``binding`` and ``log``
(``subresources``). Answers are JSON; errors are ``metav1.Status`` with the status code of the typed error; ``Warning``
headers carry the warnings a NATS reply has.
"""

from __future__ import annotations

import contextlib
import copy
import time
from typing import Any

import yaml
from aiohttp import web

from actors.gateway import apply as server_apply
from actors.gateway import fieldvalidation, listing, paths, streaming, table, watching
from actors.gateway import patch as patches
from actors.gateway import status as statuses
from actors.gateway.access import STREAM_VERBS, AccessReviews
from actors.gateway.auth import ACTING_AS, ON_BEHALF_OF, USER
from actors.gateway.http import DRY_RUN, JSON, dry_run, flag, int_param, json_response, read_body
from actors.gateway.subresources import scale_of, stream_logs
from actors.gateway.watchslots import WatchSlots
from protocol import subjects
from protocol.errors import AlreadyExists, BadRequest, Conflict, NotFound
from protocol.kinds import KindInfo
from protocol.objects import Obj, format_time, meta
from protocol.rbac import Attributes
from protocol.subjects import Verb
from runtime.client import ApiClient

PATCH_ATTEMPTS = 8
"""A read-modify-write patch retried this often when the object changed between read and write."""


class Handlers:
    """The verbs, over one NATS API client; ``snapshots`` keeps lists for their ``continue`` pages."""

    def __init__(self, client: ApiClient, watch_slots: WatchSlots | None = None,
                 access: AccessReviews | None = None) -> None:
        """``access``: authorizes the streams the gateway opens to kubelets itself (logs, exec, attach,
        port-forward) before they open; None: not checked (the caller is trusted)."""
        self.client = client
        self.access = access
        self.snapshots = listing.Snapshots()
        self.watch_slots = watch_slots or WatchSlots()

    # -- NATS calls that keep the reply's warnings ---------------------------------------------------
    async def call(self, subject: str, payload: dict[str, Any]) -> tuple[Obj, list[str]]:
        if DRY_RUN.get():
            payload = {**payload, "dryRun": True}
        behalf = ON_BEHALF_OF.get()
        if behalf is not None:
            payload = {**payload, "onBehalfOf": behalf}
        reply = await self.client.request(subject, payload)
        warnings = reply.get("warnings")
        return reply["object"], [str(w) for w in warnings] if isinstance(warnings, list) else []

    async def get(self, t: paths.Target) -> Obj:
        return await self.client.get(t.info, str(t.name), t.namespace)

    def _object_subject(self, verb: Verb, t: paths.Target) -> str:
        return subjects.object_subject(verb, t.info, t.namespace if t.info.namespaced else None, str(t.name))

    # -- collection ----------------------------------------------------------------------------------
    async def list(self, request: web.Request, t: paths.Target) -> web.StreamResponse:
        if flag(request, "watch"):
            return await self.watch(request, t)
        limit = int_param(request, "limit")
        token = request.query.get("continue")
        cursor = listing.decode(token) if token else None
        kept = self.snapshots.get(cursor.snapshot) if cursor and cursor.snapshot else None
        if kept is not None and cursor is not None:
            items, next_token, remaining = listing.page(kept, cursor.resource_version, limit, cursor,
                                                        self.snapshots, ordered=True)
            resource_version = cursor.resource_version
        else:
            rv = request.query.get("resourceVersion", "")
            floor = cursor.resource_version if cursor else (int(rv) if rv.isdigit() and rv != "0" else None)
            result = await self.client.list(t.info, t.namespace, label_selector=request.query.get("labelSelector"),
                                            field_selector=request.query.get("fieldSelector"),
                                            min_resource_version=floor)
            resource_version = result.resource_version
            items, next_token, remaining = listing.page(result.items, resource_version, limit, cursor,
                                                        self.snapshots)
        version = str(resource_version)
        if table.wants_table(request.headers.get("Accept", "")):
            body = table.table(t.info.kind, items, resource_version=version, continue_token=next_token,
                               include_object=request.query.get("includeObject", "Metadata"))
            return json_response(body)
        metadata: dict[str, Any] = {"resourceVersion": version}
        if next_token:
            metadata["continue"] = next_token
            metadata["remainingItemCount"] = remaining
        return json_response({"kind": f"{t.info.kind}List", "apiVersion": t.info.api_version,
                              "metadata": metadata, "items": items})

    async def watch(self, request: web.Request, t: paths.Target) -> web.StreamResponse:
        rv = request.query.get("resourceVersion", "")
        if rv and not rv.isdigit():
            raise BadRequest(f"resourceVersion {rv!r} is not a Shoal resource version")
        watch = self.client.watch(t.info, t.namespace, label_selector=request.query.get("labelSelector"),
                                  field_selector=request.query.get("fieldSelector"),
                                  resource_version=int(rv) if rv and rv != "0" else None)
        timeout = int_param(request, "timeoutSeconds")
        user = request[USER].name if USER in request else ""
        with self.watch_slots.hold(user):  # before any byte is sent: a user over the limit gets a 429
            ws = web.WebSocketResponse(protocols=(watching.WEBSOCKET_PROTOCOL,), max_msg_size=4096, heartbeat=30)
            if ws.can_prepare(request).ok:  # the same watch over a websocket (browsers: see ``watching``)
                await ws.prepare(request)
                await watching.websocket(ws, watch, t.info, bookmarks=flag(request, "allowWatchBookmarks"),
                                         timeout=float(timeout) if timeout else None,
                                         as_table=table.wants_table(request.headers.get("Accept", "")),
                                         include_object=request.query.get("includeObject", "Metadata"))
                return ws
            response = web.StreamResponse(status=200, headers={"Content-Type": JSON, "Cache-Control": "no-cache"})
            response.enable_chunked_encoding()
            await response.prepare(request)
            with contextlib.suppress(ConnectionResetError, ConnectionError):
                await watching.stream(watch, t.info, response.write,
                                      bookmarks=flag(request, "allowWatchBookmarks"),
                                      timeout=float(timeout) if timeout else None,
                                      as_table=table.wants_table(request.headers.get("Accept", "")),
                                      include_object=request.query.get("includeObject", "Metadata"))
                await response.write_eof()
            return response

    async def bind(self, request: web.Request, t: paths.Target) -> web.Response:
        """``POST pods/<name>/binding`` with a ``Binding`` (``target: {kind: Node, name}``)."""
        if DRY_RUN.get():
            raise BadRequest("dryRun is not supported for bindings")
        body = await read_body(request)
        target = body.get("target") if isinstance(body, dict) else None
        if not isinstance(target, dict) or not target.get("name") or target.get("kind", "Node") != "Node":
            raise BadRequest("a Binding needs target.name (a Node)")
        uid = (body.get("metadata") or {}).get("uid")
        await self.client.bind(str(t.name), str(t.namespace), str(target["name"]), uid=str(uid) if uid else None)
        return json_response(statuses.success(), 201)

    async def evict(self, request: web.Request, t: paths.Target) -> web.Response:
        """``POST pods/<name>/eviction`` with a policy/v1 ``Eviction`` (``deleteOptions`` optional): 201, or
        429 TooManyRequests when a PodDisruptionBudget allows no disruption now (kubectl drain retries)."""
        body = await read_body(request)
        options = (body.get("deleteOptions") if isinstance(body, dict) else None) or {}
        grace = options.get("gracePeriodSeconds") if isinstance(options, dict) else None
        await self.client.evict(str(t.name), str(t.namespace),
                                grace_period=grace if isinstance(grace, int) and not isinstance(grace, bool) else None)
        return json_response(statuses.success(), 201)

    async def token(self, request: web.Request, t: paths.Target) -> web.Response:
        """``POST serviceaccounts/<name>/token`` with an authentication.k8s.io/v1 ``TokenRequest``
        (``kubectl create token``): 201 and the TokenRequest with ``status.token``."""
        if DRY_RUN.get():
            raise BadRequest("dryRun is not supported for token requests")
        body = await read_body(request)
        subject = subjects.object_subject(Verb.TOKEN, t.info, t.namespace or "default", str(t.name))
        reply = await self.client.request(subject, {"object": body})
        return json_response(reply["object"], 201)

    async def create(self, request: web.Request, t: paths.Target) -> web.Response:
        obj = await read_body(request)
        if not isinstance(obj, dict):
            raise BadRequest("the body must be a JSON object")
        self._check_type(obj, t.info)
        if t.info.namespaced:
            ns = t.namespace or "default"
            given = meta(obj).get("namespace")
            if given and given != ns:
                raise BadRequest(f"the namespace of the provided object ({given}) does not match the namespace "
                                 f"sent on the request ({ns})")
            meta(obj)["namespace"] = ns
        checked = fieldvalidation.check(t.info, obj, request.query.get("fieldValidation"))
        server_apply.record_update(None, obj, _manager(request), _now())
        subject = subjects.collection_subject(Verb.CREATE, t.info, t.namespace or "default")
        created, warnings = await self.call(subject, {"object": obj})
        return json_response(created, 201, checked + warnings)

    async def delete_collection(self, request: web.Request, t: paths.Target) -> web.Response:
        options = await self._delete_options(request)
        result = await self.client.list(t.info, t.namespace, label_selector=request.query.get("labelSelector"),
                                        field_selector=request.query.get("fieldSelector"))
        deleted = []
        for obj in result.items:
            target = paths.Target(t.info, meta(obj).get("namespace"), str(meta(obj).get("name")))
            with contextlib.suppress(NotFound):
                deleted.append((await self.call(self._object_subject(Verb.DELETE, target), {"options": options}))[0])
        return json_response({"kind": f"{t.info.kind}List", "apiVersion": t.info.api_version,
                              "metadata": {"resourceVersion": str(result.resource_version)}, "items": deleted})

    # -- one object ----------------------------------------------------------------------------------
    def _check_type(self, obj: Obj, info: KindInfo) -> None:
        kind, api_version = obj.get("kind"), obj.get("apiVersion")
        if (kind and kind != info.kind) or (api_version and api_version != info.api_version):
            raise BadRequest(f"the body is a {api_version}/{kind}, the URL is for {info.api_version}/{info.kind}")
        obj.setdefault("kind", info.kind)
        obj.setdefault("apiVersion", info.api_version)

    def _check_name(self, obj: Obj, t: paths.Target) -> None:
        name = meta(obj).get("name")
        if name and name != t.name:
            raise BadRequest(f"the name of the object ({name}) does not match the name on the URL ({t.name})")
        meta(obj)["name"] = t.name
        if t.info.namespaced:
            ns = meta(obj).get("namespace")
            if ns and ns != t.namespace:
                raise BadRequest(f"the namespace of the object ({ns}) does not match the URL's ({t.namespace})")
            meta(obj)["namespace"] = t.namespace

    async def update(self, request: web.Request, t: paths.Target) -> web.Response:
        obj = await read_body(request)
        if not isinstance(obj, dict):
            raise BadRequest("the body must be a JSON object")
        if t.subresource == "scale":
            return await self._write_scale(t, obj, _manager(request))
        self._check_type(obj, t.info)
        self._check_name(obj, t)
        checked = fieldvalidation.check(t.info, obj, request.query.get("fieldValidation"))
        verb = Verb.STATUS if t.subresource == "status" else Verb.UPDATE
        if verb is Verb.UPDATE:  # the fields it changes become its manager's (the managers are the stored ones)
            server_apply.record_update(await self.get(t), obj, _manager(request), _now())
        updated, warnings = await self.call(self._object_subject(verb, t), {"object": obj})
        return json_response(updated, 200, checked + warnings)

    async def patch(self, request: web.Request, t: paths.Target) -> web.Response:
        content_type = request.headers.get("Content-Type", "").split(";")[0].strip()
        if content_type == patches.APPLY_PATCH:
            return await self.server_side_apply(request, t)
        body = await read_body(request)
        if t.subresource == "scale":
            scale = patches.apply_patch(content_type, scale_of(await self.get(t)), body)
            return await self._write_scale(t, scale, _manager(request))
        directive = request.query.get("fieldValidation")
        verb = Verb.STATUS if t.subresource == "status" else Verb.UPDATE
        for attempt in range(PATCH_ATTEMPTS):
            current = await self.get(t)
            patched = patches.apply_patch(content_type, current, body)
            if not isinstance(patched, dict):
                raise BadRequest("the patch does not leave an object")
            pinned = meta(patched).get("resourceVersion") != meta(current).get("resourceVersion")
            meta(patched).setdefault("resourceVersion", meta(current).get("resourceVersion"))
            self._check_name(patched, t)
            checked = fieldvalidation.check(t.info, patched, directive)
            if verb is Verb.UPDATE:
                server_apply.record_update(current, patched, _manager(request), _now())
            try:
                written, warnings = await self.call(self._object_subject(verb, t), {"object": patched})
                return json_response(written, 200, checked + warnings)
            except Conflict:
                if pinned or attempt == PATCH_ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")

    async def server_side_apply(self, request: web.Request, t: paths.Target) -> web.Response:
        if t.subresource is not None:
            raise BadRequest(f"server-side apply of the {t.subresource} subresource is not supported")
        try:
            applied = yaml.safe_load(await request.text())
        except yaml.YAMLError as exc:
            raise BadRequest(f"the apply configuration is not valid YAML: {exc}") from None
        if not isinstance(applied, dict):
            raise BadRequest("the apply configuration must be an object")
        self._check_type(applied, t.info)
        self._check_name(applied, t)
        manager = request.query.get("fieldManager", "")
        checked = fieldvalidation.check(t.info, applied, request.query.get("fieldValidation"))
        for attempt in range(PATCH_ATTEMPTS):
            try:
                current: Obj | None = await self.get(t)
            except NotFound:
                current = None
            result = server_apply.apply(current, applied, manager, format_time(time.time()),
                                        force=flag(request, "force"))
            if current is None:
                await self._may_create(request, t)
                subject = subjects.collection_subject(Verb.CREATE, t.info, t.namespace)
                try:
                    created, warnings = await self.call(subject, {"object": result})
                except AlreadyExists:
                    continue  # created meanwhile: apply to it
                return json_response(created, 201, checked + warnings)
            if result is current:
                return json_response(current, 200, checked)
            meta(result)["resourceVersion"] = meta(current).get("resourceVersion")
            try:
                written, warnings = await self.call(self._object_subject(Verb.UPDATE, t), {"object": result})
                return json_response(written, 200, checked + warnings)
            except Conflict:
                if attempt == PATCH_ATTEMPTS - 1:
                    raise
        raise Conflict("the object kept changing during server-side apply; retry", {"name": t.name})

    async def _may_create(self, request: web.Request, t: paths.Target) -> None:
        """A server-side apply that creates the object: authorized as ``patch`` (``access.composite``) and, as
        Kubernetes does when an apply creates, as ``create`` too (patch alone may not create)."""
        user = request.get(USER)
        if self.access is not None and user is not None:
            await self.access.require(user, Attributes("create", t.info.plural, t.info.group, t.namespace or ""))

    async def _delete_options(self, request: web.Request) -> dict[str, Any]:
        body: Any = {}
        if request.can_read_body and (await request.read()).strip():
            body = await read_body(request)  # JSON, or protobuf from kubectl's typed clients (drain)
        if not isinstance(body, dict):
            raise BadRequest("DeleteOptions must be a JSON object")
        if body.get("dryRun"):
            DRY_RUN.set(dry_run(body["dryRun"]))
        options: dict[str, Any] = {}
        grace = body.get("gracePeriodSeconds", int_param(request, "gracePeriodSeconds"))
        if grace is not None:
            options["gracePeriodSeconds"] = int(grace)
        policy = body.get("propagationPolicy") or request.query.get("propagationPolicy")
        orphan = body.get("orphanDependents")
        if orphan is None and "orphanDependents" in request.query:
            orphan = flag(request, "orphanDependents")
        if policy is None and orphan is not None:
            policy = "Orphan" if orphan else "Background"
        if policy:
            if policy not in ("Background", "Foreground", "Orphan"):
                raise BadRequest(f"propagationPolicy {policy!r}: use Background, Foreground or Orphan")
            options["propagationPolicy"] = policy
        preconditions = body.get("preconditions") or {}
        if preconditions.get("resourceVersion"):
            options["resourceVersion"] = str(preconditions["resourceVersion"])
        if preconditions.get("uid"):
            options["uid"] = str(preconditions["uid"])
        return options

    async def delete(self, request: web.Request, t: paths.Target) -> web.Response:
        options = await self._delete_options(request)
        uid = options.pop("uid", None)
        if uid is not None and meta(await self.get(t)).get("uid") != uid:
            raise Conflict(f"the UID precondition {uid} does not match the object's", {"name": t.name})
        obj, warnings = await self.call(self._object_subject(Verb.DELETE, t), {"options": options})
        if meta(obj).get("deletionTimestamp") or t.info.kind == "Pod":
            return json_response(obj, 200, warnings)
        return json_response(statuses.success({"name": t.name, "group": t.info.group, "kind": t.info.plural,
                                               "uid": meta(obj).get("uid")}), 200, warnings)

    # -- subresources --------------------------------------------------------------------------------
    async def _write_scale(self, t: paths.Target, scale: Any, manager: str) -> web.Response:
        """``spec.replicas`` of the object through its Scale; the field becomes ``manager``'s. Without a
        resourceVersion in the Scale, a concurrent write is retried over; with one, it is a Conflict."""
        if not isinstance(scale, dict) or not isinstance((scale.get("spec") or {}).get("replicas"), int):
            raise BadRequest("a Scale needs spec.replicas (an integer)")
        replicas = scale["spec"]["replicas"]
        rv = meta(scale).get("resourceVersion")
        for attempt in range(PATCH_ATTEMPTS):
            current = await self.get(t)
            if rv and meta(current).get("resourceVersion") != rv:
                raise Conflict(f"the object has been modified since resourceVersion {rv}; get it and retry",
                               {"name": t.name})
            scaled = copy.deepcopy(current)
            scaled.setdefault("spec", {})["replicas"] = replicas
            server_apply.record_update(current, scaled, manager, _now())
            try:
                written, warnings = await self.call(self._object_subject(Verb.UPDATE, t), {"object": scaled})
                return json_response(scale_of(written), 200, warnings)
            except Conflict:
                if rv or attempt == PATCH_ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")

    async def read(self, request: web.Request, t: paths.Target) -> web.StreamResponse:
        if t.subresource in STREAM_VERBS:
            if self.access is not None:
                await self.access.require_stream(request, str(t.namespace), str(t.name), t.subresource)
            token = ACTING_AS.set(None)  # authorized above: the stream's own requests go as the gateway
            try:
                if t.subresource == "log":
                    return await stream_logs(self.client, request, t)
                if t.subresource in ("exec", "attach"):
                    return await streaming.exec_(self.client, request, t)
                return await streaming.portforward(self.client, request, t)
            finally:
                ACTING_AS.reset(token)
        obj = await self.get(t)
        if t.subresource == "scale":
            return json_response(scale_of(obj))
        if table.wants_table(request.headers.get("Accept", "")):
            return json_response(table.table(t.info.kind, [obj], resource_version=str(meta(obj).get("resourceVersion")),
                                             include_object=request.query.get("includeObject", "Metadata")))
        return json_response(obj)


def _manager(request: web.Request) -> str:
    return server_apply.manager_of(request.query.get("fieldManager"), request.headers.get("User-Agent"))


def _now() -> str:
    return format_time(time.time())
