"""Service-account tokens: HS256 JSON Web Tokens signed with a key only the API actors hold. Pure.

The serviceaccount controller creates a Secret of type ``kubernetes.io/service-account-token`` naming
its ServiceAccount in annotations and leaves ``data.token`` empty. The API actor, which holds the
signing key, fills the token in when it creates such a Secret (``fill_token_secret``), so the key never
leaves the API actors. The key lives in the Secret ``kube-system/shoal-signing-key`` (``data.key``,
base64), created by the first API actor that starts (``signing_key_secret``; a create that fails with
AlreadyExists means another API actor won the race: read the stored key with ``key_from_secret``).

Only the standard library is used: hmac, hashlib, base64, json, secrets.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import time
from typing import Any

from protocol.errors import Forbidden, Invalid

ISSUER = "shoal"
TOKEN_TYPE = "kubernetes.io/service-account-token"
SA_NAME_ANNOTATION = "kubernetes.io/service-account.name"
SA_UID_ANNOTATION = "kubernetes.io/service-account.uid"
KEY_NAMESPACE = "kube-system"
KEY_SECRET_NAME = "shoal-signing-key"
KEY_BYTES = 32

CLAIM_NAMESPACE = "kubernetes.io/serviceaccount/namespace"
CLAIM_SA_NAME = "kubernetes.io/serviceaccount/service-account.name"
CLAIM_SA_UID = "kubernetes.io/serviceaccount/service-account.uid"
CLAIM_SECRET_NAME = "kubernetes.io/serviceaccount/secret.name"
CLAIM_POD_NAME = "kubernetes.io/pod/name"
CLAIM_POD_UID = "kubernetes.io/pod/uid"

DEFAULT_EXPIRATION = 3607
"""Seconds a pod-bound token lives unless asked otherwise (Kubernetes' admission default for kubelets)."""
MIN_EXPIRATION, MAX_EXPIRATION = 600, 2**32

_HEADER = {"alg": "HS256", "typ": "JWT"}


class TokenInvalid(Forbidden):
    """The token is malformed, signed with another key, or not a Shoal service-account token."""


def new_key() -> bytes:
    """A fresh random HS256 signing key."""
    return secrets.token_bytes(KEY_BYTES)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64url(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise TokenInvalid("token is not valid base64url") from None


def _json(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), sort_keys=True).encode()


def subject(namespace: str, name: str) -> str:
    return f"system:serviceaccount:{namespace}:{name}"


def service_account_claims(namespace: str, name: str, uid: str, secret_name: str, iat: int) -> dict[str, Any]:
    """The claims of a (legacy, non-expiring) service-account token, as Kubernetes names them."""
    return {
        "iss": ISSUER, "sub": subject(namespace, name), "iat": iat,
        CLAIM_NAMESPACE: namespace, CLAIM_SA_NAME: name, CLAIM_SA_UID: uid, CLAIM_SECRET_NAME: secret_name,
    }


def pod_token_claims(namespace: str, name: str, uid: str, pod_name: str, pod_uid: str, iat: int, exp: int,
                     audiences: list[str]) -> dict[str, Any]:
    """The claims of a token bound to a pod (Kubernetes' bound service-account token): valid until ``exp``
    while the pod (name and uid) and the account (uid) exist."""
    claims: dict[str, Any] = {
        "iss": ISSUER, "sub": subject(namespace, name), "iat": iat, "nbf": iat, "exp": exp,
        CLAIM_NAMESPACE: namespace, CLAIM_SA_NAME: name, CLAIM_SA_UID: uid, CLAIM_POD_NAME: pod_name,
        CLAIM_POD_UID: pod_uid,
    }
    if audiences:
        claims["aud"] = list(audiences)
    return claims


def sign(claims: dict[str, Any], key: bytes) -> str:
    """Encode ``claims`` as a compact JWT signed with HMAC-SHA256."""
    if not key:
        raise ValueError("an empty signing key")
    signing_input = f"{_b64url(_json(_HEADER))}.{_b64url(_json(claims))}"
    mac = hmac.new(key, signing_input.encode("ascii"), hashlib.sha256).digest()
    return f"{signing_input}.{_b64url(mac)}"


def verify(token: str, key: bytes, *, now: float | None = None) -> dict[str, Any]:
    """The claims of ``token`` if its signature is ours, it is well formed and (with ``exp``) not expired at
    ``now`` (default: the current time); else ``TokenInvalid``."""
    if not isinstance(token, str):
        raise TokenInvalid("token must be a string")
    parts = token.strip().split(".")
    if len(parts) != 3:
        raise TokenInvalid("token is not a JWT (expected three dot-separated parts)")
    head_b64, body_b64, sig_b64 = parts
    expected = hmac.new(key, f"{head_b64}.{body_b64}".encode("ascii", "replace"), hashlib.sha256).digest()
    if not hmac.compare_digest(expected, _unb64url(sig_b64)):
        raise TokenInvalid("token signature is invalid")
    try:
        header = json.loads(_unb64url(head_b64))
        claims = json.loads(_unb64url(body_b64))
    except (ValueError, UnicodeDecodeError):
        raise TokenInvalid("token header or claims are not JSON") from None
    if not isinstance(header, dict) or header.get("alg") != "HS256":
        raise TokenInvalid("token algorithm must be HS256")
    if not isinstance(claims, dict) or claims.get("iss") != ISSUER:
        raise TokenInvalid(f"token issuer must be {ISSUER!r}")
    if not str(claims.get("sub", "")).startswith("system:serviceaccount:"):
        raise TokenInvalid("token subject is not a service account")
    exp = claims.get("exp")
    if exp is not None and (not isinstance(exp, int) or (time.time() if now is None else now) >= exp):
        raise TokenInvalid("token has expired")
    return claims


# -- Secrets holding tokens and the key -------------------------------------------------------------
def is_token_secret(secret: dict[str, Any]) -> bool:
    return secret.get("kind") == "Secret" and secret.get("type") == TOKEN_TYPE


def needs_token(secret: dict[str, Any]) -> bool:
    """A service-account token Secret whose ``data.token`` is still to be filled by the API actor."""
    return is_token_secret(secret) and not (secret.get("data") or {}).get("token")


def fill_token_secret(secret: dict[str, Any], service_account_uid: str, key: bytes, *,
                      iat: int | None = None) -> dict[str, Any]:
    """A copy of ``secret`` with ``data.token`` (and ``data.namespace``) filled in.

    ``service_account_uid`` is the uid of the ServiceAccount the annotation names, as the API actor read
    it. A Secret whose uid annotation names another ServiceAccount (one since recreated) is refused with
    ``Invalid``; an absent uid annotation is filled in. ``iat`` defaults to the current time.
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
    issued = int(time.time()) if iat is None else iat
    claims = service_account_claims(str(namespace), str(sa_name), service_account_uid, str(metadata["name"]),
                                    issued)
    data = dict(secret.get("data") or {})
    data["token"] = base64.b64encode(sign(claims, key).encode()).decode()
    data["namespace"] = base64.b64encode(str(namespace).encode()).decode()
    return {**secret, "metadata": metadata, "data": data}


def signing_key_secret(key: bytes) -> dict[str, Any]:
    """The Secret the API actors keep their signing key in."""
    return {
        "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
        "metadata": {"name": KEY_SECRET_NAME, "namespace": KEY_NAMESPACE},
        "data": {"key": base64.b64encode(key).decode()},
    }


def key_from_secret(secret: dict[str, Any]) -> bytes:
    encoded = (secret.get("data") or {}).get("key")
    if not isinstance(encoded, str) or not encoded:
        raise Invalid(f"secret {KEY_NAMESPACE}/{KEY_SECRET_NAME} has no data.key")
    try:
        return base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise Invalid(f"secret {KEY_NAMESPACE}/{KEY_SECRET_NAME} data.key is not base64") from None
