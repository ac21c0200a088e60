"""API requests as typed values: one pure parser from a NATS subject to what is asked.

``shoal.api.<verb>.<plural>.<namespace|_all|_>[.<name>]`` (or a kubelet's node-scoped
``shoal.node.<N>.api.<verb>...``, or a component's identity-scoped ``shoal.user.<U>.api.<verb>...``) becomes an
``ApiRequest``; ``shoal.api.admin.<op>`` (also ``shoal.user.<U>.api.admin.<op>``) an ``AdminRequest``.
Malformed subjects are BadRequest here, so handlers never read tokens by position.
"""

from __future__ import annotations

from dataclasses import dataclass

from protocol import keys, subjects
from protocol.errors import BadRequest
from protocol.kinds import KindInfo, by_plural
from protocol.subjects import Verb

COLLECTION_ONLY = frozenset({Verb.CREATE, Verb.LIST, Verb.WATCH})
_VERBS: dict[str, Verb] = {verb.value: verb for verb in Verb}
"""``Verb(token)`` as a lookup (an enum's call is several times slower; every request parses its verb)."""


@dataclass(frozen=True, slots=True)
class ApiRequest:
    verb: Verb
    info: KindInfo
    namespace: str | None
    """None for cluster-scoped kinds and for collections across every namespace."""
    name: str | None
    """None for collection requests (create, list, watch, a batched bind)."""
    node: str | None = None
    """The kubelet's node when the request came on its node-scoped subjects."""
    user: str | None = None
    """The Kubernetes user a component acts as when the request came on its identity-scoped subjects."""

    @property
    def collection(self) -> bool:
        return self.name is None


@dataclass(frozen=True, slots=True)
class AdminRequest:
    op: str
    user: str | None = None
    """As ``ApiRequest.user``."""


def parse_subject(subject: str) -> ApiRequest | AdminRequest:
    node_token, user_token, tokens = subjects.scope_of(subject)
    node = keys.decode_token(node_token) if node_token is not None else None
    user = keys.decode_token(user_token) if user_token is not None else None
    if len(tokens) < 4 or tokens[0] != "shoal" or tokens[1] != "api" or user == "":
        raise BadRequest(f"malformed subject {subject!r}")
    if tokens[2] == "admin" and node is None:
        if len(tokens) != 4:
            raise BadRequest(f"malformed admin subject {subject!r}")
        return AdminRequest(tokens[3], user)
    verb = _VERBS.get(tokens[2])
    if verb is None:
        raise BadRequest(f"unknown verb {tokens[2]!r}")
    info = by_plural(tokens[3])
    if len(tokens) < 5:
        raise BadRequest("the subject names no namespace token")
    ns_token = tokens[4]
    namespace = None if ns_token in (keys.CLUSTER_SCOPE, subjects.ALL_NAMESPACES) else keys.decode_token(ns_token)
    if not info.namespaced:
        namespace = None
    rest = tokens[5:]
    if verb in COLLECTION_ONLY or (verb == Verb.BIND and not rest):
        if rest:
            raise BadRequest(f"{verb} takes a subject ending in .<namespace>, not a name")
        return ApiRequest(verb, info, namespace, None, node, user)
    if len(rest) != 1:
        raise BadRequest(f"{verb} needs a subject ending in .<namespace>.<name>")
    if info.namespaced and namespace is None:
        raise BadRequest(f"{info.kind} is namespaced: the subject must name a namespace")
    return ApiRequest(verb, info, namespace, keys.decode_token(rest[0]), node, user)
