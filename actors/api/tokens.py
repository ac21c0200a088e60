"""ServiceAccount tokens: the TokenRequest API, token review, and the legacy token Secrets.

Tokens are ES256 JWTs signed by the API actors' active key (``signing.py``, ``keyset.py``), with the claims
Kubernetes writes (``protocol.satoken``):

- **TokenRequest** (``shoal.api.token.serviceaccounts.<ns>.<name>``, ``POST .../serviceaccounts/<name>/token``
  on the gateway): a token for the account with ``audiences`` (default: the API's), ``expirationSeconds``
  (600 s to 2^32, default 3600, capped by ``max_expiration``) and optionally ``boundObjectRef``, a Pod
  (valid only while that pod, with that uid, exists and is not deleted for more than 60 s) or a Secret.
  A kubelet asks through its node-scoped subjects, only for pods bound to its node, only for the pod's own
  account (Kubernetes' NodeRestriction).
- **Review** (``shoal.api.admin.tokenreview``): who a token stands for, if a key of ours signed it, it has not
  expired, it is meant for the asked audiences and the account (and what it is bound to) still exist.
- **Legacy Secrets** (``kubernetes.io/service-account-token``): the serviceaccount controller creates them
  with ``data.token`` empty; the API fills in a long-lived token (the legacy claims, signed the same way) on
  create, so the key never leaves the API actors. Such a token is valid while its Secret holds it.
"""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from protocol import satoken
from protocol.errors import BadRequest, Conflict, Forbidden, Invalid, NotFound
from protocol.jwt import TokenInvalid
from protocol.kinds import KindInfo, by_kind
from protocol.objects import Obj, format_time, meta, parse_time

TOKEN_TYPE = "kubernetes.io/service-account-token"
SA_NAME_ANNOTATION = "kubernetes.io/service-account.name"
SA_UID_ANNOTATION = "kubernetes.io/service-account.uid"
TOKEN_REQUEST_VERSION = "authentication.k8s.io/v1"
POD_DELETION_GRACE = 60
"""Seconds a token bound to a pod stays valid after the pod's deletionTimestamp (as Kubernetes)."""

__all__ = ["TokenInvalid"]


@dataclass(frozen=True)
class TokenSettings:
    issuer: str = satoken.DEFAULT_ISSUER
    audiences: tuple[str, ...] = ()
    """The API's own audiences (Kubernetes' ``--api-audiences``); empty: the issuer."""
    max_expiration: int | None = None
    """Tokens asked for longer are issued for this long (Kubernetes' ``--service-account-max-token-expiration``)."""
    test_only_min_expiration: int | None = None
    """TEST ONLY: lowers the shortest ``expirationSeconds`` accepted below Kubernetes' 600 s, so tests watch tokens
    expire in seconds. No command-line flag sets it; None: 600 s."""
    jwks_uri: str | None = None
    """Where verifiers fetch the keys, for the discovery document; None: ``<issuer>/openid/v1/jwks``."""

    @property
    def min_expiration(self) -> int:
        return satoken.MIN_EXPIRATION if self.test_only_min_expiration is None else self.test_only_min_expiration

    @property
    def api_audiences(self) -> tuple[str, ...]:
        return self.audiences or (self.issuer,)


class TokenKeys(Protocol):
    """What issuing and reviewing need of the signing keys (``signing.SigningKeys``)."""

    def sign(self, claims: dict[str, Any]) -> str: ...

    async def verify(self, token: Any) -> dict[str, Any]: ...


class Reader(Protocol):
    async def get(self, info: KindInfo, namespace: str | None, name: str) -> Obj: ...

    async def lookup(self, info: KindInfo, namespace: str | None, name: str) -> Obj | None: ...


@dataclass(frozen=True, slots=True)
class TokenSpec:
    audiences: tuple[str, ...]
    expiration: int
    bound: tuple[str, str, str | None] | None
    """(kind, name, uid or None) of ``boundObjectRef``."""


def parse_spec(body: Any, settings: TokenSettings) -> TokenSpec:
    """A TokenRequest's ``spec`` (the body is the TokenRequest, or its spec alone), defaulted and checked."""
    if not isinstance(body, dict):
        raise BadRequest("a token request must be a map (a TokenRequest)")
    obj = body.get("object", body)
    spec = obj.get("spec", obj) if isinstance(obj, dict) else None
    if not isinstance(spec, dict):
        raise BadRequest("a TokenRequest's spec must be a map")
    causes: list[dict[str, str]] = []
    audiences = spec.get("audiences") or []
    if not isinstance(audiences, list) or not all(isinstance(a, str) and a for a in audiences):
        causes.append({"field": "spec.audiences", "message": "must be a list of non-empty strings"})
        audiences = []
    seconds = spec.get("expirationSeconds", satoken.DEFAULT_EXPIRATION)
    if seconds is None:
        seconds = satoken.DEFAULT_EXPIRATION
    if not isinstance(seconds, int) or isinstance(seconds, bool):
        causes.append({"field": "spec.expirationSeconds", "message": "must be an integer"})
        seconds = satoken.DEFAULT_EXPIRATION
    elif seconds < settings.min_expiration:
        causes.append({"field": "spec.expirationSeconds",
                       "message": f"may not specify a duration less than {settings.min_expiration} seconds"})
    elif seconds > satoken.MAX_EXPIRATION:
        causes.append({"field": "spec.expirationSeconds",
                       "message": "may not specify a duration larger than 2^32 seconds"})
    bound = None
    ref = spec.get("boundObjectRef")
    if ref is not None:
        if not isinstance(ref, dict) or ref.get("kind") not in ("Pod", "Secret") or not ref.get("name") \
                or not isinstance(ref.get("name"), str) or ref.get("apiVersion", "v1") != "v1" \
                or not isinstance(ref.get("uid") or "", str):
            causes.append({"field": "spec.boundObjectRef",
                           "message": "must name a Pod or a Secret (apiVersion v1, name, optional uid)"})
        else:
            bound = (str(ref["kind"]), str(ref["name"]), str(ref["uid"]) if ref.get("uid") else None)
    if causes:
        raise Invalid(f"TokenRequest is invalid: {causes[0]['field']}: {causes[0]['message']}", {"causes": causes})
    if settings.max_expiration is not None:
        seconds = min(seconds, settings.max_expiration)
    return TokenSpec(tuple(audiences) or settings.api_audiences, seconds, bound)


async def issue(reader: Reader, keys: TokenKeys, settings: TokenSettings, namespace: str, name: str, body: Any,
                *, guard: Callable[[Obj], None] | None = None, now: float | None = None) -> Obj:
    """The TokenRequest for account ``namespace/name`` with ``status.token`` filled. ``guard`` (a kubelet's
    request) is run on the bound pod: a node gets tokens only bound to its own pods."""
    spec = parse_spec(body, settings)
    account = await reader.get(by_kind("ServiceAccount"), namespace, name)
    pod: Obj | None = None
    bound_obj: satoken.Bound | None = None
    node: tuple[str, str] | None = None
    if spec.bound is not None:
        kind, bound_name, bound_uid = spec.bound
        target = await reader.get(by_kind(kind), namespace, bound_name)
        if bound_uid is not None and meta(target).get("uid") != bound_uid:
            raise Conflict(f"the UID in the bound object reference ({bound_uid}) does not match the UID in record "
                           f"({meta(target).get('uid')}); the object might have been deleted and then recreated")
        if kind == "Pod":
            pod = target
            if guard is not None:
                guard(pod)
            pod_account = str((pod.get("spec") or {}).get("serviceAccountName") or "default")
            if pod_account != name:
                raise BadRequest(f"cannot bind token for serviceaccount {name!r} to pod running with different "
                                 f"serviceaccount name ({pod_account!r})")
            node_name = (pod.get("spec") or {}).get("nodeName")
            if node_name:
                node_obj = await reader.lookup(by_kind("Node"), None, str(node_name))
                node = (str(node_name), str(meta(node_obj).get("uid") or "") if node_obj else "")
        bound_obj = satoken.Bound(kind, bound_name, str(meta(target).get("uid")))
    if guard is not None and pod is None:
        raise Forbidden("a node may ask only for tokens bound to a pod bound to it (boundObjectRef kind Pod)")
    issued = int(time.time() if now is None else now)
    expires = issued + spec.expiration
    claims = satoken.bound_claims(
        issuer=settings.issuer, audiences=spec.audiences, namespace=namespace, name=name,
        uid=str(meta(account).get("uid")), iat=issued, exp=expires, jti=str(uuid.uuid4()),
        pod=bound_obj if bound_obj is not None and bound_obj.kind == "Pod" else None, node=node)
    if bound_obj is not None and bound_obj.kind == "Secret":
        claims[satoken.CLAIM]["secret"] = {"name": bound_obj.name, "uid": bound_obj.uid}
    spec_out: Obj = {"audiences": list(spec.audiences), "expirationSeconds": spec.expiration}
    if spec.bound is not None and bound_obj is not None:
        spec_out["boundObjectRef"] = {"kind": bound_obj.kind, "apiVersion": "v1", "name": bound_obj.name,
                                      "uid": bound_obj.uid}
    return {"apiVersion": TOKEN_REQUEST_VERSION, "kind": "TokenRequest",
            "metadata": {"name": name, "namespace": namespace, "creationTimestamp": format_time(issued)},
            "spec": spec_out,
            "status": {"token": keys.sign(claims), "expirationTimestamp": format_time(expires)}}


async def review(reader: Reader, keys: TokenKeys, settings: TokenSettings, token: Any, audiences: Any = None,
                 *, now: float | None = None) -> dict[str, Any]:
    """A TokenReview's status for ``token`` (Forbidden when it is not valid): signed by one of our keys,
    claims valid now for ``audiences`` (default: the API's), account and bound object still there."""
    if not isinstance(token, str) or not token:
        raise BadRequest("tokenreview needs 'token'")
    if audiences is not None and (not isinstance(audiences, list)
                                  or not all(isinstance(a, str) and a for a in audiences)):
        raise BadRequest("tokenreview 'audiences' must be a list of non-empty strings")
    at = time.time() if now is None else now
    claims = await keys.verify(token)
    facts = satoken.check(claims, issuer=settings.issuer, audiences=audiences or settings.api_audiences, now=at,
                          api_audiences=settings.api_audiences)
    extra: dict[str, list[str]] = {}
    try:
        account = await reader.get(by_kind("ServiceAccount"), facts.namespace, facts.name)
        if meta(account).get("uid") != facts.uid:
            raise TokenInvalid("the token belongs to a deleted service account")
        private = claims.get(satoken.CLAIM) or {}
        if facts.legacy:
            assert facts.bound is not None
            _check_secret(await reader.get(by_kind("Secret"), facts.namespace, facts.bound.name), facts, token)
        elif isinstance(private.get("secret"), dict):
            secret = await reader.get(by_kind("Secret"), facts.namespace, str(private["secret"].get("name")))
            if meta(secret).get("uid") != private["secret"].get("uid"):
                raise TokenInvalid("the token was revoked: the secret it is bound to is gone")
        if facts.bound is not None and facts.bound.kind == "Pod":
            pod = await reader.get(by_kind("Pod"), facts.namespace, facts.bound.name)
            if meta(pod).get("uid") != facts.bound.uid:
                raise TokenInvalid("the token was revoked: the pod it is bound to is gone")
            deleted = parse_time(meta(pod).get("deletionTimestamp"))
            if deleted is not None and at > deleted + POD_DELETION_GRACE:
                raise TokenInvalid("the token was revoked: the pod it is bound to is being deleted")
            extra = {"authentication.kubernetes.io/pod-name": [facts.bound.name],
                     "authentication.kubernetes.io/pod-uid": [facts.bound.uid]}
            if facts.node:
                extra["authentication.kubernetes.io/node-name"] = [facts.node]
    except NotFound:
        raise TokenInvalid("the token was revoked: what it is bound to or its ServiceAccount is gone") from None
    if isinstance(claims.get("jti"), str):
        extra["authentication.kubernetes.io/credential-id"] = [f"JTI={claims['jti']}"]
    user: dict[str, Any] = {"username": facts.username, "uid": facts.uid,
                            "groups": ["system:serviceaccounts", f"system:serviceaccounts:{facts.namespace}"]}
    if extra:
        user["extra"] = extra
    return {"authenticated": True, "user": user, "audiences": list(facts.audiences)}


def _check_secret(secret: Obj, facts: satoken.ServiceAccountToken, token: str) -> None:
    annotations = meta(secret).get("annotations") or {}
    held = (secret.get("data") or {}).get("token")
    if (not is_token_secret(secret) or annotations.get(SA_NAME_ANNOTATION) != facts.name
            or annotations.get(SA_UID_ANNOTATION) not in (None, facts.uid) or not isinstance(held, str)
            or base64.b64decode(held).decode(errors="replace") != token):
        raise TokenInvalid("the token was revoked: its Secret no longer holds it")


# -- Secrets holding legacy tokens ------------------------------------------------------------------
def is_token_secret(secret: dict[str, Any]) -> bool:
    return secret.get("kind") == "Secret" and secret.get("type") == TOKEN_TYPE


def fill_token_secret(secret: dict[str, Any], service_account_uid: str, sign: Callable[[dict[str, Any]], str]
                      ) -> dict[str, Any]:
    """A copy of ``secret`` with ``data.token`` (a legacy token ``sign`` signs) and ``data.namespace``.

    ``service_account_uid`` is the uid of the ServiceAccount the annotation names, as the API actor read
    it. A Secret whose uid annotation names another ServiceAccount (one since recreated) is refused with
    ``Invalid``; an absent uid annotation is filled in.
    """
    metadata = dict(secret.get("metadata") or {})
    annotations = dict(metadata.get("annotations") or {})
    sa_name = annotations.get(SA_NAME_ANNOTATION)
    namespace = metadata.get("namespace")
    if not is_token_secret(secret) or not sa_name or not namespace or not metadata.get("name"):
        raise Invalid("not a service-account token secret (type, name, namespace and the "
                      f"{SA_NAME_ANNOTATION} annotation are required)",
                      {"causes": [{"field": "metadata.annotations", "message": "Required value"}]})
    given_uid = annotations.get(SA_UID_ANNOTATION)
    if given_uid and given_uid != service_account_uid:
        cause = {"field": f"metadata.annotations[{SA_UID_ANNOTATION}]",
                 "message": "does not match the service account"}
        raise Invalid(f"the secret names service account uid {given_uid}, but {namespace}/{sa_name} is "
                      f"{service_account_uid}", {"causes": [cause]})
    annotations[SA_UID_ANNOTATION] = service_account_uid
    metadata["annotations"] = annotations
    claims = satoken.legacy_claims(str(namespace), str(sa_name), service_account_uid, str(metadata["name"]))
    data = dict(secret.get("data") or {})
    data.pop("token", None)
    data["token"] = base64.b64encode(sign(claims).encode()).decode()
    data["namespace"] = base64.b64encode(str(namespace).encode()).decode()
    string_data = secret.get("stringData")
    out = {**secret, "metadata": metadata, "data": data}
    if isinstance(string_data, dict) and "token" in string_data:  # a client cannot choose its own token
        out["stringData"] = {k: v for k, v in string_data.items() if k != "token"}
    return out
