"""The API client every actor, agent and the admin tool uses: typed calls over NATS request/reply.

Errors arrive as the typed exceptions of ``protocol.errors``. ``NoResponders`` (no API actor up) and
timeouts become ``Unavailable``/``Timeout``, both retryable. Warnings a reply carries (a deprecated or
ignored field: the object was still written) go to ``on_warning``, by default a log line.

Impersonation (``impersonate``): a function giving the identity to act as (``{"user", "groups", "uid"?}``,
or None for the caller's own); every request on ``shoal.api.>`` then carries it as ``"as"`` and the API
authorizes it with RBAC for that user. The gateway passes its current HTTP user; ``shoal --as`` a fixed one.

Acting as a component (``identity``, e.g. ``system:kube-scheduler``): every API request goes to the
identity-scoped subjects ``shoal.user.<identity>.api.…`` instead of ``shoal.api.…``; NATS lets only that
component's user publish there (``runtime.nats_security``) and the API authorizes it with RBAC for that user.
"""

from __future__ import annotations

import asyncio
import builtins
from collections.abc import AsyncGenerator, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import structlog
from nats.aio.client import Client
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeout

from protocol import codec, rbac, subjects
from protocol.bindings import Binding, read_result
from protocol.errors import BadRequest, Forbidden, InternalError, ShoalError, Timeout, Unavailable
from protocol.kinds import KindInfo, by_kind, resolve
from protocol.objects import Obj, meta, name_of, namespace_of
from protocol.subjects import Verb
from runtime.watch import Watch

KindLike = KindInfo | str
_API_DOT = subjects.API_PREFIX + "."
NO_API = ("no API actor answered on NATS: is the cluster running? Start one with `shoal up`, or point "
          "--server/SHOAL_SERVER at it")


def log_warning(text: str) -> None:
    structlog.get_logger("api-client").warning("API warning", warning=text)


def kind_info(kind: KindLike) -> KindInfo:
    if isinstance(kind, KindInfo):
        return kind
    try:
        return by_kind(kind)
    except BadRequest:
        return resolve(kind)


def item_object(item: Any) -> Obj:
    """Lists and watches carry ``{"rv": N, "object": {...}}``: the object with its resourceVersion set."""
    obj: Obj = item["object"]
    meta(obj)["resourceVersion"] = str(item["rv"])
    return obj


@dataclass
class ObjectList:
    items: list[Obj]
    resource_version: int


class ApiClient:
    def __init__(self, nc: Client, *, timeout: float = 10.0, node_scope: str | None = None,
                 on_warning: Callable[[str], None] = log_warning, field_validation: str | None = None,
                 impersonate: Callable[[], dict[str, Any] | None] | None = None,
                 identity: str | None = None) -> None:
        """``node_scope``: a kubelet's node; its writes then go to the node-scoped subjects
        ``shoal.node.<node>.api.…``, the only ones NATS lets that kubelet publish on. ``identity``: the
        Kubernetes user a control-plane component acts as; all its requests then go to
        ``shoal.user.<identity>.api.…``. ``on_warning`` receives each warning of a reply (the ``shoal`` tool
        prints ``Warning: …`` lines)."""
        if identity is not None and (node_scope is not None or impersonate is not None):
            raise ValueError("an ApiClient acting as a component identity neither is node-scoped nor impersonates")
        self.nc = nc
        self.timeout = timeout
        self.node_scope = node_scope
        self.on_warning = on_warning
        self.field_validation = field_validation
        """``Strict``, ``Warn`` or ``Ignore`` for creates, updates and patches (None: the server's default, Warn)."""
        self.impersonate = impersonate
        self.identity = identity
        self._scope = subjects.user_api_prefix(identity) if identity is not None else None

    def _scoped(self, subject: str) -> str:
        """``shoal.api.X`` as ``shoal.user.<identity>.api.X`` when acting as a component identity."""
        if self._scope is None or not subject.startswith(_API_DOT):
            return subject
        return self._scope + subject[len(subjects.API_PREFIX):]

    def _as(self, subject: str, payload: dict[str, Any]) -> dict[str, Any]:
        """``payload`` with the impersonated identity, if any, on API subjects."""
        if self.impersonate is None or not subject.startswith(subjects.API_PREFIX + "."):
            return payload
        who = self.impersonate()
        return payload if who is None else {**payload, "as": who}

    def _object_subject(self, verb: Verb, info: KindInfo, namespace: str | None, name: str) -> str:
        if self.node_scope and verb != Verb.GET:
            return subjects.node_api(self.node_scope, verb, info, namespace, name)
        return subjects.object_subject(verb, info, namespace, name)

    async def request(self, subject: str, payload: dict[str, Any], timeout: float | None = None) -> dict[str, Any]:
        try:
            msg = await self.nc.request(self._scoped(subject), codec.encode(self._as(subject, payload)),
                                        timeout=timeout or self.timeout)
        except NoRespondersError:
            raise Unavailable(NO_API) from None
        except NatsTimeout:
            raise Timeout(f"no answer on {subject} within {timeout or self.timeout}s; retry") from None
        reply = codec.check_reply(codec.decode(msg.data))
        for warning in reply.get("warnings") or ():
            self.on_warning(str(warning))
        return reply

    async def create(self, obj: Obj, namespace: str | None = None) -> Obj:
        info = kind_info(str(obj.get("kind", "")))
        ns = namespace or namespace_of(obj) or ("default" if info.namespaced else None)
        subject = (subjects.node_api(self.node_scope, Verb.CREATE, info, ns) if self.node_scope
                   else subjects.collection_subject(Verb.CREATE, info, ns))
        reply = await self.request(subject, self._with_validation({"object": obj}))
        return reply["object"]  # type: ignore[no-any-return]

    def _with_validation(self, payload: dict[str, Any]) -> dict[str, Any]:
        if self.field_validation is not None:
            payload["fieldValidation"] = self.field_validation
        return payload

    async def get(self, kind: KindLike, name: str, namespace: str | None = None) -> Obj:
        info = kind_info(kind)
        reply = await self.request(subjects.object_subject(Verb.GET, info, _ns(info, namespace), name), {})
        return reply["object"]  # type: ignore[no-any-return]

    async def list(self, kind: KindLike, namespace: str | None = None, *, label_selector: str | None = None,
                   field_selector: str | None = None, attempts: int = 3,
                   min_resource_version: int | None = None) -> ObjectList:
        """List (every namespace when ``namespace`` is None); replies arrive in chunks for big lists.

        Without ``min_resource_version`` the list sees every write acknowledged before it (the API actor
        asks the datastore for its latest revision); with it, the list is served from the API actor's cache
        as soon as that holds at least this version (no datastore round trip): an informer relisting after
        an error passes the last version it saw, so it never goes back in time.

        A list is a read: when no answer comes (an API actor failing over, a NATS server restarting)
        it is asked again, ``attempts`` times in all, before ``Unavailable`` is raised."""
        for attempt in range(attempts):
            try:
                return await self._list_once(kind, namespace, label_selector, field_selector,
                                             min_resource_version)
            except Unavailable:
                if attempt == attempts - 1:
                    raise
                await asyncio.sleep(0.2 * (attempt + 1))
        raise AssertionError("unreachable")

    async def _list_once(self, kind: KindLike, namespace: str | None, label_selector: str | None,
                         field_selector: str | None, min_resource_version: int | None) -> ObjectList:
        items: list[Obj] = []
        version = 0
        async for chunk, last in self.list_chunks(kind, namespace, label_selector=label_selector,
                                                  field_selector=field_selector,
                                                  min_resource_version=min_resource_version):
            items.extend(chunk)
            version = last or version
        return ObjectList(items, version)

    async def list_chunks(self, kind: KindLike, namespace: str | None = None, *, label_selector: str | None = None,
                          field_selector: str | None = None, min_resource_version: int | None = None
                          ) -> AsyncGenerator[tuple[builtins.list[Obj], int], None]:
        """One list (as ``list``, asked once: no retry), chunk by chunk as the API actor sends them: (objects,
        the list's resourceVersion, 0 until the last chunk). The next chunk is asked for only when the caller
        takes it, so a caller that reduces each chunk (the gateway's node sums) never holds the whole list."""
        info = kind_info(kind)
        subject = subjects.collection_subject(Verb.LIST, info, namespace)
        payload: dict[str, Any] = {"labelSelector": label_selector, "fieldSelector": field_selector,
                                   "acks": True}
        if min_resource_version:
            payload["resourceVersion"] = min_resource_version
        inbox = self.nc.new_inbox()
        sub = await self.nc.subscribe(inbox, pending_msgs_limit=100_000, pending_bytes_limit=512 * 1024 * 1024)
        try:
            await self.nc.publish(self._scoped(subject), codec.encode(self._as(subject, payload)), reply=inbox)
            expected = 0
            while True:
                try:
                    msg = await sub.next_msg(timeout=self.timeout if expected == 0 else 30)
                except NatsTimeout:
                    raise Unavailable(f"no answer to a list of {info.plural} within {self.timeout}s (is an API "
                                      "actor running?)" if expected == 0 else "list reply stopped mid-way; retry"
                                      ) from None
                if msg.headers and msg.headers.get("Status") == "503":
                    raise Unavailable(NO_API)
                reply = codec.check_reply(codec.decode(msg.data, check_nesting=False))  # stored objects
                if reply.get("chunk") != expected:
                    raise Unavailable("a list reply chunk was lost; retry the list")
                chunk = [item_object(i) for i in reply.get("items") or []]
                if not reply.get("more"):
                    yield chunk, int(reply.get("resourceVersion") or 0)
                    return
                yield chunk, 0
                if msg.reply:  # flow control: the API actor sends further chunks as these are taken
                    await self.nc.publish(msg.reply, codec.encode({"chunk": expected}))
                expected += 1
        finally:
            await sub.unsubscribe()

    async def update(self, obj: Obj) -> Obj:
        return await self._write(Verb.UPDATE, obj)

    async def update_status(self, obj: Obj) -> Obj:
        return await self._write(Verb.STATUS, obj)

    async def _write(self, verb: Verb, obj: Obj) -> Obj:
        info = kind_info(str(obj.get("kind", "")))
        subject = self._object_subject(verb, info, _ns(info, namespace_of(obj)), name_of(obj))
        reply = await self.request(subject, self._with_validation({"object": obj}) if verb == Verb.UPDATE
                                   else {"object": obj})
        return reply["object"]  # type: ignore[no-any-return]

    async def patch(self, kind: KindLike, name: str, patch: Obj, namespace: str | None = None, *,
                    status: bool = False) -> Obj:
        info = kind_info(kind)
        payload: dict[str, Any] = {"patch": patch}
        if status:
            payload["subresource"] = "status"
        else:
            self._with_validation(payload)
        reply = await self.request(self._object_subject(Verb.PATCH, info, _ns(info, namespace), name), payload)
        return reply["object"]  # type: ignore[no-any-return]

    async def delete(self, kind: KindLike, name: str, namespace: str | None = None, *,
                     grace_period: int | None = None, propagation: str | None = None,
                     resource_version: str | int | None = None) -> Obj:
        info = kind_info(kind)
        options: dict[str, Any] = {}
        if grace_period is not None:
            options["gracePeriodSeconds"] = grace_period
        if propagation:
            options["propagationPolicy"] = propagation
        if resource_version:
            options["resourceVersion"] = str(resource_version)
        subject = self._object_subject(Verb.DELETE, info, _ns(info, namespace), name)
        reply = await self.request(subject, {"options": options})
        return reply["object"]  # type: ignore[no-any-return]

    async def evict(self, name: str, namespace: str, *, grace_period: int | None = None) -> Obj:
        """Evict a pod (policy/v1 Eviction): it is deleted unless a PodDisruptionBudget covering it allows no
        disruption now, which raises ``TooManyRequests`` (retry later). Returns the deleted pod."""
        options: dict[str, Any] = {} if grace_period is None else {"gracePeriodSeconds": grace_period}
        subject = self._object_subject(Verb.EVICT, by_kind("Pod"), namespace, name)
        reply = await self.request(subject, {"options": options})
        return reply["object"]  # type: ignore[no-any-return]

    async def bind(self, name: str, namespace: str, node: str, resource_version: str | None = None, *,
                   uid: str | None = None) -> Obj:
        """Bind a pod to a node; with ``uid``, only that incarnation of the pod (Conflict otherwise)."""
        subject = subjects.object_subject(Verb.BIND, by_kind("Pod"), namespace, name)
        reply = await self.request(subject, {"node": node, "resourceVersion": resource_version, "uid": uid})
        return reply["object"]  # type: ignore[no-any-return]

    async def bind_many(self, bindings: Sequence[Binding]) -> builtins.list[int | ShoalError]:
        """Bind a batch of pods in one request (at most ``protocol.bindings.MAX_BINDINGS``).

        Returns one result per binding, in order: the pod's new resourceVersion, or the typed error that
        refused that binding (``Conflict``, ``NotFound``...). An error of the request as a whole (timeout,
        no API actor, a malformed batch) is raised."""
        subject = subjects.collection_subject(Verb.BIND, by_kind("Pod"), None)
        reply = await self.request(subject, {"bindings": [b.to_wire() for b in bindings]})
        results = reply.get("results")
        if not isinstance(results, list) or len(results) != len(bindings):
            raise InternalError(f"a batched bind answered {len(results) if isinstance(results, list) else 'no'} "
                              f"results for {len(bindings)} bindings")
        return [read_result(r) for r in results]

    def watch(self, kind: KindLike, namespace: str | None = None, *, label_selector: str | None = None,
              field_selector: str | None = None, resource_version: int | str | None = None) -> Watch:
        return Watch(self, kind_info(kind), namespace, label_selector=label_selector,
                     field_selector=field_selector, resource_version=resource_version)

    async def review_token(self, token: str, audiences: builtins.list[str] | None = None) -> dict[str, Any]:
        """Ask the API who a service-account token stands for (Forbidden if invalid, expired, revoked or not
        meant for ``audiences``, default the API's own)."""
        body: dict[str, Any] = {"token": token, **({"audiences": audiences} if audiences else {})}
        return (await self.request(subjects.TOKEN_REVIEW, body))["status"]  # type: ignore[no-any-return]

    async def request_token(self, account: str, namespace: str, *, audiences: builtins.list[str] | None = None,
                            expiration_seconds: int | None = None, bound_pod: tuple[str, str | None] | None = None
                            ) -> Obj:
        """Kubernetes' TokenRequest on ServiceAccount ``namespace/account``: the TokenRequest with
        ``status.token``; ``bound_pod`` (name, uid or None) binds the token to that pod."""
        spec: dict[str, Any] = {}
        if audiences:
            spec["audiences"] = audiences
        if expiration_seconds is not None:
            spec["expirationSeconds"] = expiration_seconds
        if bound_pod is not None:
            spec["boundObjectRef"] = {"kind": "Pod", "apiVersion": "v1", "name": bound_pod[0],
                                      **({"uid": bound_pod[1]} if bound_pod[1] else {})}
        subject = self._object_subject(Verb.TOKEN, by_kind("ServiceAccount"), namespace, account)
        reply = await self.request(subject, {"object": {"apiVersion": "authentication.k8s.io/v1",
                                                        "kind": "TokenRequest", "spec": spec}})
        return reply["object"]  # type: ignore[no-any-return]

    async def authorize_stream(self, subresource: str, namespace: str, pod: str) -> None:
        """When impersonating: Forbidden unless the user may open ``pods/<subresource>`` (``log``: get; exec,
        attach, portforward: create) on the pod: streams go to the kubelet, not through the API, so the API
        is asked first (an access review, as the trusted caller). Without impersonation nothing is asked."""
        who = self.impersonate() if self.impersonate is not None else None
        if who is None:
            return
        attributes = rbac.Attributes("get" if subresource == "log" else "create", "pods", "", namespace, pod,
                                     subresource)
        reply = await ApiClient(self.nc, timeout=self.timeout).admin(
            "accessreview", {"subject": who, "spec": attributes.to_wire()})
        if not (reply.get("status") or {}).get("allowed"):
            raise Forbidden(rbac.forbidden_message(rbac.user_from_wire(who), attributes),
                            {"kind": "pods", "name": pod, "group": ""})

    async def admin(self, op: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        """An admin operation of the API actors (``shoal.api.admin.<op>``), e.g. ``oidc``, ``rotate-signing-key``."""
        return await self.request(f"{subjects.API_PREFIX}.admin.{op}", body or {})

    async def info(self) -> dict[str, Any]:
        return (await self.request(subjects.INFO, {}))["info"]  # type: ignore[no-any-return]


def _ns(info: KindInfo, namespace: str | None) -> str | None:
    return (namespace or "default") if info.namespaced else None


