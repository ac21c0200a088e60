"""NATS subject names: requests to API actors, watch streams, health, node agents and events.

Request subjects carry the verb, resource and object so that NATS permissions can be granted per
object (a kubelet may publish ``shoal.api.status.nodes._.<its node>`` and nothing wider).
"""

from __future__ import annotations

from enum import StrEnum

from protocol.keys import CLUSTER_SCOPE, encode_token
from protocol.kinds import KindInfo

API_PREFIX = "shoal.api"
API_QUEUE = "shoal-api"
ALL_NAMESPACES = "_all"


class Verb(StrEnum):
    CREATE = "create"
    GET = "get"
    LIST = "list"
    UPDATE = "update"
    STATUS = "status"
    PATCH = "patch"
    DELETE = "delete"
    BIND = "bind"
    EVICT = "evict"
    WATCH = "watch"
    TOKEN = "token"
    """Kubernetes' TokenRequest on a ServiceAccount (``serviceaccounts/<name>/token``): body a TokenRequest (or
    its spec: ``audiences``, ``expirationSeconds``, ``boundObjectRef``), reply ``{"object": TokenRequest}`` with
    ``status.token``. A kubelet asks through its node-scoped subjects, bound to a pod bound to its node."""



def _ns(info: KindInfo, namespace: str | None, *, collection: bool) -> str:
    if not info.namespaced:
        return CLUSTER_SCOPE
    if not namespace:
        return ALL_NAMESPACES if collection else CLUSTER_SCOPE
    return encode_token(namespace)


def object_subject(verb: Verb, info: KindInfo, namespace: str | None, name: str) -> str:
    """``shoal.api.<verb>.<plural>.<namespace>.<name>`` for verbs on one object."""
    return f"{API_PREFIX}.{verb}.{info.plural}.{_ns(info, namespace, collection=False)}.{encode_token(name)}"


def collection_subject(verb: Verb, info: KindInfo, namespace: str | None) -> str:
    """``shoal.api.<verb>.<plural>.<namespace|_all|_>`` for create, list and watch."""
    return f"{API_PREFIX}.{verb}.{info.plural}.{_ns(info, namespace, collection=True)}"


API_WILDCARD = f"{API_PREFIX}.>"
NODE_API_WILDCARD = "shoal.node.*.api.>"


def node_api(node: str, verb: Verb, info: KindInfo, namespace: str | None, name: str | None = None) -> str:
    """``shoal.node.<node>.api.<verb>.<plural>.<ns>[.<name>]``: a kubelet's writes, node-scoped.

    NATS permissions let only node N's kubelet publish under ``shoal.node.<N>.api.>``; API actors serve
    these subjects and check that the target belongs to node N (a pod bound to it, its Node, its Lease).
    """
    tail = f".{encode_token(name)}" if name else ""
    ns = _ns(info, namespace, collection=name is None)
    return f"shoal.node.{encode_token(node)}.api.{verb}.{info.plural}.{ns}{tail}"


USER_API_WILDCARD = "shoal.user.*.api.>"


def user_api_prefix(user: str) -> str:
    """``shoal.user.<user>.api``: where a control-plane component acting as Kubernetes user ``user`` (e.g.
    ``system:kube-scheduler``) sends its API requests. NATS permissions let only that component's identity
    publish under it, and API actors authorize each request with RBAC for ``user`` (the subject, not the
    body, says who asks: a component cannot claim to be another)."""
    return f"shoal.user.{encode_token(user)}.api"


def scope_of(subject: str) -> tuple[str | None, str | None, list[str]]:
    """A request subject as ``(node token, user token, tokens)``: for a kubelet's ``shoal.node.<N>.api.<verb>...``
    N's (still escaped) token, for a component's ``shoal.user.<U>.api.<verb>...`` U's; the tokens rewritten
    to the ``shoal.api.<verb>...`` form. For any other subject, None, None and its tokens as they are."""
    tokens = subject.split(".")
    if len(tokens) > 4 and tokens[3] == "api":
        if tokens[1] == "node":
            return tokens[2], None, ["shoal", "api", *tokens[4:]]
        if tokens[1] == "user":
            return None, tokens[2], ["shoal", "api", *tokens[4:]]
    return None, None, tokens


def split_api_subject(subject: str) -> tuple[str | None, list[str]]:
    """A request subject as ``(node token, tokens)``: for a kubelet's ``shoal.node.<N>.api.<verb>...``, N's
    (still escaped) subject token and the tokens rewritten to the ``shoal.api.<verb>...`` form (also for a
    component's ``shoal.user.<U>.api.<verb>...``, with None: see ``scope_of``); for any other subject, None
    and its tokens as they are."""
    node, _, tokens = scope_of(subject)
    return node, tokens


INFO = f"{API_PREFIX}.admin.info"
TOKEN_REVIEW = f"{API_PREFIX}.admin.tokenreview"


def watch_control(actor_id: str) -> str:
    """Where a watcher sends keep-alives and cancels for watches held by one API actor."""
    return f"shoal.watchctl.{actor_id}"


def health(actor: str, instance: str | None = None) -> str:
    """Every actor instance answers pings on ``shoal.health.<actor>`` and ``shoal.health.<actor>.<id>``."""
    return f"shoal.health.{actor}" + (f".{instance}" if instance else "")


HEALTH_ALL = "shoal.health.*"


def node_agent(node: str, service: str) -> str:
    """Requests served by one node's kubelet, e.g. ``shoal.node.<node>.logs``."""
    return f"shoal.node.{encode_token(node)}.{service}"


EVENTS_STREAM = "SHOAL_EVENTS"
EVENTS_PREFIX = "shoal.events"


AUDIT_STREAM = "SHOAL_AUDIT"
AUDIT_PREFIX = "shoal.audit"


def audit_subject(outcome: str, verb: str, resource: str) -> str:
    """``shoal.audit.<allowed|refused>.<verb>.<resource>``: one audit record per mutating request or refusal."""
    return f"{AUDIT_PREFIX}.{outcome}.{encode_token(verb)}.{encode_token(resource)}"



def event_subject(namespace: str | None, kind: str, name: str, event: str) -> str:
    """``shoal.events.<namespace>.<Kind>.<name>.<event>``: one cluster Event (``event`` is its name), by
    its namespace and involved object; ``shoal.events.<ns>.<Kind>.<name>.*`` is everything about one object."""
    ns = encode_token(namespace) if namespace else CLUSTER_SCOPE
    return f"{EVENTS_PREFIX}.{ns}.{encode_token(kind)}.{encode_token(name)}.{encode_token(event)}"
