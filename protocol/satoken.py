"""ServiceAccount token claims as Kubernetes writes them, and their checks. Pure.

A **bound** token (TokenRequest, what the kubelet mounts in pods) carries::

    {"iss": <issuer>, "sub": "system:serviceaccount:<ns>:<name>", "aud": [<audience>, ...],
     "iat": t, "nbf": t, "exp": t + expirationSeconds, "jti": <uuid>,
     "kubernetes.io": {"namespace": <ns>, "serviceaccount": {"name", "uid"},
                       "pod": {"name", "uid"}, "node": {"name", "uid"}}}     # pod/node when bound to a pod

A **legacy** token (the long-lived ``kubernetes.io/service-account-token`` Secret) carries Kubernetes' old
flat claims, no ``exp`` and no ``aud``, issuer ``kubernetes/serviceaccount``; it is valid while its Secret
exists. Both are ES256 JWTs (``protocol.jwt``).

``check`` verifies what the claims alone can tell (issuer, times, audience, shape) and returns a
``ServiceAccountToken``; whether the account, the pod or the Secret still exist (with the same uid) is the
API's to check, since only it can read them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from protocol.jwt import TokenInvalid

DEFAULT_ISSUER = "https://kubernetes.default.svc.cluster.local"
"""The issuer (and default API audience) unless the API actors are told another (``--service-account-issuer``)."""
LEGACY_ISSUER = "kubernetes/serviceaccount"
CLAIM = "kubernetes.io"

LEGACY_NAMESPACE = "kubernetes.io/serviceaccount/namespace"
LEGACY_SA_NAME = "kubernetes.io/serviceaccount/service-account.name"
LEGACY_SA_UID = "kubernetes.io/serviceaccount/service-account.uid"
LEGACY_SECRET_NAME = "kubernetes.io/serviceaccount/secret.name"

NOT_BEFORE_LEEWAY = 60
"""Seconds a token is accepted before its ``nbf``/``iat`` (clocks of several API actors differ a little)."""
MIN_EXPIRATION = 600
"""The shortest ``expirationSeconds`` a TokenRequest may ask (Kubernetes' 10 minutes)."""
MAX_EXPIRATION = 2**32
DEFAULT_EXPIRATION = 3600
"""A TokenRequest without ``expirationSeconds`` (Kubernetes' default: one hour)."""


@dataclass(frozen=True, slots=True)
class Bound:
    """An object a token is bound to: it is valid only while an object of that kind, name and uid exists."""
    kind: str
    name: str
    uid: str


@dataclass(frozen=True, slots=True)
class ServiceAccountToken:
    """What a verified token says: whose it is, what it is bound to, for whom and until when."""
    namespace: str
    name: str
    uid: str
    audiences: tuple[str, ...]
    expires: int | None
    bound: Bound | None
    """The pod (bound token) or the Secret (legacy token); None: a bound token bound to no object."""
    node: str | None = None
    legacy: bool = False

    @property
    def username(self) -> str:
        return subject(self.namespace, self.name)


def subject(namespace: str, name: str) -> str:
    return f"system:serviceaccount:{namespace}:{name}"


def bound_claims(*, issuer: str, audiences: Sequence[str], namespace: str, name: str, uid: str, iat: int,
                 exp: int, jti: str, pod: Bound | None = None, node: tuple[str, str] | None = None
                 ) -> dict[str, Any]:
    """The claims of a TokenRequest's token; ``pod`` when bound to one, with its ``node`` (name, uid)."""
    if not audiences:
        raise ValueError("a bound token needs at least one audience")
    private: dict[str, Any] = {"namespace": namespace, "serviceaccount": {"name": name, "uid": uid}}
    if pod is not None:
        private["pod"] = {"name": pod.name, "uid": pod.uid}
        if node is not None:
            private["node"] = {"name": node[0], "uid": node[1]}
    return {"iss": issuer, "sub": subject(namespace, name), "aud": list(audiences), "iat": iat, "nbf": iat,
            "exp": exp, "jti": jti, CLAIM: private}


def legacy_claims(namespace: str, name: str, uid: str, secret_name: str) -> dict[str, Any]:
    """The claims of a long-lived Secret token, as Kubernetes' legacy token controller wrote them."""
    return {"iss": LEGACY_ISSUER, "sub": subject(namespace, name), LEGACY_NAMESPACE: namespace,
            LEGACY_SA_NAME: name, LEGACY_SA_UID: uid, LEGACY_SECRET_NAME: secret_name}


def _text(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise TokenInvalid(f"token claim {what} is missing or not a string")
    return value


def _time(claims: dict[str, Any], name: str) -> int | None:
    value = claims.get(name)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise TokenInvalid(f"token claim {name} must be an integer")
    return value


def check(claims: dict[str, Any], *, issuer: str, audiences: Sequence[str], now: float,
          api_audiences: Sequence[str] = ()) -> ServiceAccountToken:
    """The token's facts when its claims hold at ``now`` for a verifier accepting ``audiences``: issued by
    ``issuer`` (or a legacy token), not expired, not before ``nbf``, one of its ``aud`` among ``audiences``.
    A legacy token has no ``aud``: it is meant for the API itself (``api_audiences``, as Kubernetes' implicit
    audiences), so it passes only when ``audiences`` include one of those."""
    if claims.get("iss") == LEGACY_ISSUER:
        implicit = tuple(a for a in api_audiences if a in set(audiences))
        if not implicit:
            raise TokenInvalid(f"a legacy token is valid only for the API's audiences {list(api_audiences)}")
        return _check_legacy(claims, implicit)
    if claims.get("iss") != issuer:
        raise TokenInvalid(f"token issuer is not {issuer!r}")
    exp, nbf, iat = _time(claims, "exp"), _time(claims, "nbf"), _time(claims, "iat")
    if exp is None:
        raise TokenInvalid("token has no expiry (exp)")
    if now >= exp:
        raise TokenInvalid("token has expired")
    start = nbf if nbf is not None else iat
    if start is not None and now + NOT_BEFORE_LEEWAY < start:
        raise TokenInvalid("token is not valid yet (nbf)")
    aud = claims.get("aud")
    token_audiences = (aud,) if isinstance(aud, str) else tuple(a for a in aud or () if isinstance(a, str))
    if not set(token_audiences) & set(audiences):
        raise TokenInvalid(f"token audiences {list(token_audiences)} are not among {list(audiences)}")
    private = claims.get(CLAIM)
    if not isinstance(private, dict):
        raise TokenInvalid(f"token has no {CLAIM} claim")
    namespace = _text(private.get("namespace"), f"{CLAIM}.namespace")
    account = private.get("serviceaccount") or {}
    name = _text(account.get("name") if isinstance(account, dict) else None, f"{CLAIM}.serviceaccount.name")
    uid = _text(account.get("uid"), f"{CLAIM}.serviceaccount.uid")
    if claims.get("sub") != subject(namespace, name):
        raise TokenInvalid("token subject does not match its service account")
    pod = private.get("pod")
    bound = None
    if pod is not None:
        if not isinstance(pod, dict):
            raise TokenInvalid(f"token claim {CLAIM}.pod must be an object")
        bound = Bound("Pod", _text(pod.get("name"), f"{CLAIM}.pod.name"), _text(pod.get("uid"), f"{CLAIM}.pod.uid"))
    node = private.get("node")
    node_name = node.get("name") if isinstance(node, dict) and isinstance(node.get("name"), str) else None
    return ServiceAccountToken(namespace, name, uid, token_audiences, exp, bound, node_name)


def _check_legacy(claims: dict[str, Any], audiences: Sequence[str]) -> ServiceAccountToken:
    namespace = _text(claims.get(LEGACY_NAMESPACE), LEGACY_NAMESPACE)
    name = _text(claims.get(LEGACY_SA_NAME), LEGACY_SA_NAME)
    if claims.get("sub") != subject(namespace, name):
        raise TokenInvalid("token subject does not match its service account")
    return ServiceAccountToken(namespace, name, _text(claims.get(LEGACY_SA_UID), LEGACY_SA_UID), tuple(audiences),
                               None, Bound("Secret", _text(claims.get(LEGACY_SECRET_NAME), LEGACY_SECRET_NAME), ""),
                               legacy=True)
