"""Access reviews (``authorization.k8s.io/v1``) and the gateway's own authorization checks.

``SelfSubjectAccessReview`` (``kubectl auth can-i``), ``SelfSubjectRulesReview`` (``kubectl auth can-i
--list``), ``SubjectAccessReview`` (asking for another user; the caller needs ``create`` on
``subjectaccessreviews``) and ``LocalSubjectAccessReview`` (the same within one namespace, for whoever may
create ``localsubjectaccessreviews`` there: a namespace's ``admin``) are answered by the API actors' RBAC
policy (``shoal.api.admin.accessreview`` and ``rulesreview``), asked through the gateway's trusted client
(these operations are not impersonated).

Streams the gateway opens to a kubelet itself (``pods/log``, ``pods/exec``, ``pods/attach``,
``pods/portforward``) never reach the API as a request of that subresource: ``require`` asks the same review
before the stream opens (``get`` for logs, ``create`` for exec, attach and port-forward, as Kubernetes).

HTTP calls the gateway serves with several API requests (a patch is read-modify-write here, ``scale`` is
served on the object, a collection DELETE lists then deletes) are authorized once as Kubernetes authorizes
them (``composite``: ``patch``, ``<plural>/scale``, ``deletecollection``), then done as the gateway.

``Impersonate-User``/``-Group``/``-Uid`` headers (``kubectl --as``) switch the request's user when the
authenticated one may ``impersonate`` them (``impersonated``), as Kubernetes' impersonation filter.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from actors.gateway import paths
from actors.gateway.auth import AUTHENTICATED, USER, User
from actors.gateway.http import json_response, read_body
from protocol.errors import BadRequest, Forbidden
from protocol.rbac import SERVICE_ACCOUNT_PREFIX, Attributes, UserInfo, forbidden_message
from runtime.client import ApiClient

GROUP_VERSION = "authorization.k8s.io/v1"
PREFIX = f"/apis/{GROUP_VERSION}"
STREAM_VERBS = {"log": "get", "exec": "create", "attach": "create", "portforward": "create"}


def composite(method: str, t: paths.Target) -> Attributes | None:
    """The Kubernetes request of an HTTP call the gateway serves with several API requests of other verbs
    (so authorizing those would differ from Kubernetes): a merge/JSON/strategic patch (read-modify-write
    here) and a server-side apply (get, then create or update here) are ``patch`` (an apply that creates the
    object needs ``create`` as well: ``Handlers.server_side_apply`` asks it), the ``scale`` subresource
    ``get``/``update``/``patch`` of ``<plural>/scale`` (served on the object), a collection DELETE
    ``deletecollection``. None: the API authorizes the call's requests."""
    info, ns, name = t.info, t.namespace or "", t.name or ""
    if t.name is None:
        return Attributes("deletecollection", info.plural, info.group, ns) if method == "DELETE" else None
    verb = {"GET": "get", "PUT": "update", "PATCH": "patch"}.get(method)
    if t.subresource == "scale" and verb is not None:
        return Attributes(verb, info.plural, info.group, ns, name, "scale")
    if method == "PATCH" and t.subresource in (None, "status"):
        return Attributes("patch", info.plural, info.group, ns, name, t.subresource or "")
    return None


def subject_of(user: User) -> dict[str, Any]:
    return UserInfo(user.name, user.groups, user.uid).to_wire()


class AccessReviews:
    def __init__(self, trusted: ApiClient) -> None:
        self.trusted = trusted

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post(f"{PREFIX}/selfsubjectaccessreviews", self._self_review)
        app.router.add_post(f"{PREFIX}/subjectaccessreviews", self._review)
        app.router.add_post(f"{PREFIX}/namespaces/{{namespace}}/localsubjectaccessreviews", self._local_review)
        app.router.add_post(f"{PREFIX}/selfsubjectrulesreviews", self._rules_review)

    async def allowed(self, user: User, attributes: Attributes) -> dict[str, Any]:
        reply = await self.trusted.admin("accessreview", {"subject": subject_of(user), "spec": attributes.to_wire()})
        return reply["status"]  # type: ignore[no-any-return]

    async def require(self, user: User, attributes: Attributes) -> None:
        """Forbidden (Kubernetes' wording) unless ``user`` may do what ``attributes`` describe."""
        if not (await self.allowed(user, attributes)).get("allowed"):
            raise Forbidden(forbidden_message(UserInfo(user.name, user.groups, user.uid), attributes),
                            {"kind": attributes.resource, "name": attributes.name, "group": attributes.api_group})

    async def impersonated(self, user: User, headers: Any) -> User:
        """The user a request acts as: ``user``, or the one its ``Impersonate-User`` / ``-Group`` / ``-Uid``
        headers name when ``user`` may ``impersonate`` them (Kubernetes' impersonation filter: users,
        groups, uids, and service accounts as ``serviceaccounts`` in their namespace)."""
        name = headers.get("Impersonate-User")
        groups = headers.getall("Impersonate-Group", [])
        uid = headers.get("Impersonate-Uid", "")
        if name is None:
            if groups or uid or any(h.lower().startswith("impersonate-extra-") for h in headers):
                raise BadRequest("impersonating groups, a uid or extras requires Impersonate-User")
            return user
        if any(h.lower().startswith("impersonate-extra-") for h in headers):
            raise BadRequest("Impersonate-Extra-* headers are not supported")
        implied: tuple[str, ...] = ()
        if name.startswith(SERVICE_ACCOUNT_PREFIX) and name.count(":") == 3:
            _, _, namespace, account = name.split(":")
            await self.require(user, Attributes("impersonate", "serviceaccounts", "", namespace, account))
            implied = ("system:serviceaccounts", f"system:serviceaccounts:{namespace}")
        else:
            await self.require(user, Attributes("impersonate", "users", "", name=name))
        for group in groups:
            await self.require(user, Attributes("impersonate", "groups", "", name=group))
        if uid:
            await self.require(user, Attributes("impersonate", "uids", "authentication.k8s.io", name=uid))
        all_groups = (*implied, *groups)
        if name != "system:anonymous" and AUTHENTICATED not in all_groups:
            all_groups = (*all_groups, AUTHENTICATED)
        return User(name, uid, all_groups)

    async def require_stream(self, request: web.Request, namespace: str, name: str, subresource: str) -> None:
        await self.require(request[USER], Attributes(STREAM_VERBS[subresource], "pods", "", namespace, name,
                                                     subresource))

    async def _spec(self, request: web.Request, kind: str) -> dict[str, Any]:
        body = await read_body(request)
        if not isinstance(body, dict) or body.get("kind", kind) != kind:
            raise BadRequest(f"expected a {kind}")
        spec = body.get("spec")
        if not isinstance(spec, dict):
            raise BadRequest(f"a {kind} needs a spec")
        return spec

    async def _self_review(self, request: web.Request) -> web.Response:
        spec = await self._spec(request, "SelfSubjectAccessReview")
        reply = await self.trusted.admin("accessreview", {"subject": subject_of(request[USER]), "spec": spec})
        return _review("SelfSubjectAccessReview", spec, reply["status"])

    async def _review(self, request: web.Request) -> web.Response:
        await self.require(request[USER], Attributes("create", "subjectaccessreviews", "authorization.k8s.io"))
        spec = await self._spec(request, "SubjectAccessReview")
        reply = await self.trusted.admin("accessreview", {"subject": _reviewed(spec, "SubjectAccessReview"),
                                                          "spec": spec})
        return _review("SubjectAccessReview", spec, reply["status"])

    async def _local_review(self, request: web.Request) -> web.Response:
        """A LocalSubjectAccessReview: another user's access in one namespace, for whoever may create
        ``localsubjectaccessreviews`` there (a namespace's ``admin``, not only the cluster's): its
        resourceAttributes must name that namespace (or none: it is filled in), non-resource ones are
        refused, as Kubernetes' ``localsubjectaccessreview`` REST does."""
        namespace = request.match_info["namespace"]
        await self.require(request[USER], Attributes("create", "localsubjectaccessreviews", "authorization.k8s.io",
                                                     namespace))
        spec = await self._spec(request, "LocalSubjectAccessReview")
        if spec.get("nonResourceAttributes") is not None:
            raise BadRequest("nonResourceAttributes: disallowed on this kind of request (a LocalSubjectAccessReview "
                             "is about resources in its namespace)")
        attributes = spec.get("resourceAttributes")
        if not isinstance(attributes, dict):
            raise BadRequest("a LocalSubjectAccessReview needs spec.resourceAttributes")
        if attributes.get("namespace") in (None, ""):
            spec = {**spec, "resourceAttributes": {**attributes, "namespace": namespace}}
        elif attributes["namespace"] != namespace:
            raise BadRequest(f"spec.resourceAttributes.namespace must match the namespace of the request "
                             f"({attributes['namespace']!r} is not {namespace!r})")
        reply = await self.trusted.admin("accessreview", {"subject": _reviewed(spec, "LocalSubjectAccessReview"),
                                                          "spec": spec})
        return _review("LocalSubjectAccessReview", spec, reply["status"], namespace)

    async def _rules_review(self, request: web.Request) -> web.Response:
        spec = await self._spec(request, "SelfSubjectRulesReview")
        reply = await self.trusted.admin("rulesreview", {"subject": subject_of(request[USER]),
                                                         "namespace": spec.get("namespace") or "default"})
        return _review("SelfSubjectRulesReview", spec, reply["status"])


def _reviewed(spec: dict[str, Any], kind: str) -> dict[str, Any]:
    """The user a (Local)SubjectAccessReview asks about, in the wire form of ``as``."""
    if not isinstance(spec.get("user"), str) and not spec.get("groups"):
        raise BadRequest(f"a {kind} needs spec.user or spec.groups")
    subject = {"user": spec.get("user") or "", "groups": spec.get("groups") or [],
               **({"uid": spec["uid"]} if spec.get("uid") else {})}
    if not subject["user"]:
        subject["user"] = "system:anonymous"
    return subject


def _review(kind: str, spec: dict[str, Any], status: dict[str, Any], namespace: str | None = None) -> web.Response:
    metadata: dict[str, Any] = {"creationTimestamp": None, **({"namespace": namespace} if namespace else {})}
    return json_response({"kind": kind, "apiVersion": GROUP_VERSION, "metadata": metadata,
                          "spec": spec, "status": status}, 201)
