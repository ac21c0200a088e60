"""The authorization step of every API request: RBAC for impersonated requests, node restriction for kubelets.

Requests on ``shoal.api.>`` come from trusted callers (NATS permissions decide who may publish there: the
control plane, the gateway, the admin); without ``"as"`` they are served as ``system:masters``. With
``"as": {"user", "groups", "uid"?}`` (Kubernetes' impersonation: the gateway puts each HTTP user there) the
request is authorized by RBAC for that user (``protocol.rbac``, from the API's cached policy; Forbidden worded
as Kubernetes'). ``request_attributes`` maps a request to RBAC's attributes (a list or watch whose field
selector pins ``metadata.name=X`` is one on name X, as Kubernetes authorizes it): ``status`` is ``update`` of
``<plural>/status``, a status patch ``patch`` of it, a bind ``create`` of ``pods/binding``, an eviction
``create`` of ``pods/eviction``, a TokenRequest ``create`` of ``serviceaccounts/token``. Requests on a node's
``shoal.node.<N>.api.>`` (only node N's kubelet can publish there) go through node restriction
(``noderestriction.admit``): the answer is None (allowed as is), a guard the handler runs on the stored
object it reads (allowed if the pod is bound to N), or Forbidden. Requests on a component's
``shoal.user.<U>.api.>`` (only the component NATS lets publish there: the scheduler as
``system:kube-scheduler``, the controller manager as ``system:kube-controller-manager``, the cloud controller
manager as ``system:cloud-controller-manager``) are authorized by RBAC for user U in the groups
``system:authenticated`` (``scoped_user``), as Kubernetes authorizes those components; they may not carry ``as``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from actors.api import noderestriction
from protocol.errors import BadRequest, Forbidden
from protocol.rbac import AUTHENTICATED, Attributes, Policy, UserInfo, user_from_wire
from protocol.rbac_escalation import KINDS as ESCALATION_KINDS
from protocol.rbac_escalation import confirm_no_escalation
from protocol.requests import ApiRequest
from protocol.selectors import parse_field_selector
from protocol.subjects import Verb

_VERBS: dict[Verb, tuple[str, str]] = {
    Verb.STATUS: ("update", "status"), Verb.BIND: ("create", "binding"), Verb.EVICT: ("create", "eviction"),
    Verb.TOKEN: ("create", "token"),
}


def request_attributes(request: ApiRequest, body: dict[str, Any]) -> Attributes:
    verb, subresource = _VERBS.get(request.verb, (str(request.verb), ""))
    if request.verb == Verb.PATCH and body.get("subresource") == "status":
        subresource = "status"
    name = request.name or ""
    if request.verb in _SELECTABLE and body.get("fieldSelector"):
        name = _selected_name(body["fieldSelector"])
    return Attributes(verb, request.info.plural, request.info.group, request.namespace or "", name, subresource)


_SELECTABLE = frozenset({Verb.LIST, Verb.WATCH})


def _selected_name(selector: Any) -> str:
    """The name a list or watch is pinned to by ``metadata.name=X`` in its field selector: Kubernetes
    authorizes such a request with that name (``RequestInfoFactory``), so a rule whose resourceNames list X
    allows watching that one object. A selector that does not parse pins nothing (the handler refuses it)."""
    if not isinstance(selector, str):
        return ""
    try:
        name = parse_field_selector(selector).value_of("metadata.name")
    except BadRequest:
        return ""
    return name if name and "/" not in name and "%" not in name and name not in (".", "..") else ""


_SCOPED: dict[str, UserInfo] = {}


def scoped_user(name: str) -> UserInfo:
    """The user of an identity-scoped subject (one ``UserInfo`` per name, kept: no allocation per request)."""
    user = _SCOPED.get(name)
    if user is None:
        if len(_SCOPED) > 1024:
            _SCOPED.clear()
        user = _SCOPED[name] = UserInfo(name, (AUTHENTICATED,))
    return user


def authorize(request: ApiRequest, body: dict[str, Any],
              referenced: noderestriction.Referenced | None = None,
              policy: Callable[[], Policy] | None = None) -> noderestriction.Guard | None:
    """``referenced`` answers the Node authorizer's question (does a pod bound to the node reference the
    object?) for reads of Secrets, ConfigMaps, PersistentVolumeClaims and ServiceAccounts; ``policy`` gives
    the current RBAC policy (None: no request may carry ``as``)."""
    node = request.node
    impersonated = body.get("as")
    if request.user is not None:
        if impersonated is not None or policy is None:
            raise Forbidden("identity-scoped subjects (shoal.user.<U>.api) do not serve 'as'")
        policy().authorize(scoped_user(request.user), request_attributes(request, body))
        return None
    if impersonated is not None:
        if node is not None or policy is None:
            raise Forbidden("this caller may not impersonate: 'as' is served on shoal.api subjects only")
        policy().authorize(user_from_wire(impersonated), request_attributes(request, body))
        return None
    if node is None:
        return None
    if request.name is not None:
        return noderestriction.admit(node, request.verb, request.info, request.namespace, request.name,
                                     referenced)
    if request.verb == Verb.BIND:
        raise Forbidden("node-scoped subjects do not serve binds")
    obj = body.get("object")
    target = (obj.get("metadata") or {}).get("name") if isinstance(obj, dict) else None
    if request.verb != Verb.CREATE or not isinstance(target, str):
        raise Forbidden("node-scoped subjects serve only writes to the node's own objects")
    if noderestriction.admit(node, request.verb, request.info, request.namespace, target) is not None:
        raise Forbidden("creates through node-scoped subjects are limited to the node's own Node and Lease")
    return None


def acting_user(request: ApiRequest, body: dict[str, Any]) -> UserInfo | None:
    """Who a write is made for, for the admission that depends on it (RBAC escalation): the component of an
    identity-scoped subject, the impersonated user, or the user a trusted caller names in ``onBehalfOf`` (the
    gateway, serving a patch or an apply it authorized itself as the user's ``patch``); None: the trusted
    caller itself (``system:masters``)."""
    if request.user is not None:
        return scoped_user(request.user)
    if request.node is not None:
        return UserInfo(f"system:node:{request.node}", ("system:nodes", AUTHENTICATED))
    who = body.get("as") if body.get("as") is not None else body.get("onBehalfOf")
    return None if who is None else user_from_wire(who)


def escalation_check(request: ApiRequest, body: dict[str, Any],
                     policy: Callable[[], Policy]) -> Callable[[dict[str, Any]], None] | None:
    """For a write of a Role, ClusterRole or one of their bindings by someone other than the trusted caller:
    the check of the object about to be stored (``protocol.rbac_escalation``), against the policy current
    then; None for everything else."""
    if request.info.kind not in ESCALATION_KINDS:
        return None
    user = acting_user(request, body)
    if user is None:
        return None
    kind = request.info.kind
    return lambda obj: confirm_no_escalation(policy(), user, kind, obj)
