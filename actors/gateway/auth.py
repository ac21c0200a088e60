"""Who is asking: ``Authorization: Bearer <token>`` is the cluster owner's admin token (written by
``shoal up``) or a ServiceAccount token, which the API actors review (``shoal.api.admin.tokenreview``); without
a token, a client certificate signed by the cluster CA (TLS verified it) names the user and its groups.
A token's review is remembered for ``CACHE_SECONDS`` (as the API server's token cache does), so a busy
client does not cost a NATS round trip per request, but never past the token's ``exp``. No token, or one nobody
vouches for, is a 401.

A browser cannot set headers on a websocket: as the Kubernetes API server does, a websocket upgrade without an
``Authorization`` header may carry its bearer token as the subprotocol
``base64url.bearer.authorization.k8s.io.<token, base64url without padding>`` (``websocket_authorization``);
the gateway never selects that subprotocol, so the token is not echoed back. A browser opens a websocket to
any site without asking it (no same-origin policy, no CORS) and presents an installed client certificate on
its own: a websocket upgrade whose ``Origin`` is another site is refused (``cross_site_websocket``), so a page
elsewhere cannot read watches or exec into pods with the user's certificate. Non-browser clients send no
``Origin`` or their own host."""

from __future__ import annotations

import base64
import binascii
import contextvars
import hmac
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from protocol import jwt
from protocol.errors import Forbidden, ShoalError
from runtime.client import ApiClient

CACHE_SECONDS = 10.0
CACHE_LIMIT = 10_000
BEARER_PROTOCOL_PREFIX = "base64url.bearer.authorization.k8s.io."


@dataclass(frozen=True, slots=True)
class User:
    name: str
    uid: str = ""
    groups: tuple[str, ...] = ()


    def to_wire(self) -> dict[str, Any]:
        """The request's ``as``: the API authorizes what the gateway asks for this user with RBAC."""
        return {"user": self.name, "groups": list(self.groups), **({"uid": self.uid} if self.uid else {})}


ADMIN = User("shoal-admin", groups=("system:masters", "system:authenticated"))
USER = web.RequestKey("user", User)
"""Where the gateway keeps the authenticated user of a request."""
ACTING_AS: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar("acting_as", default=None)
"""The identity the gateway's API client impersonates in the current request's task (None: the gateway's
own, trusted, as for unauthenticated public paths and its background work)."""
ON_BEHALF_OF: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar("on_behalf_of", default=None)
"""The user a request the gateway makes as itself is for (a patch or an apply it authorized as the user's
``patch``): sent as ``onBehalfOf``, so that the API's admission that depends on who asks (RBAC escalation)
still judges the user, not the gateway."""
AUTHENTICATED = "system:authenticated"


def certificate_user(certificate: Any) -> User:
    """User = the subject's common name, groups = its organizations (as Kubernetes' x509 authenticator)."""
    names: list[tuple[str, str]] = [pair for rdn in certificate.get("subject", ()) for pair in rdn]
    common = [v for k, v in names if k == "commonName"]
    if not common:
        raise Unauthenticated("Unauthorized: the client certificate has no common name")
    return User(common[0], groups=(*(v for k, v in names if k == "organizationName"), "system:authenticated"))


class Unauthenticated(Exception):
    """No credential, or one that is not valid: answered 401."""


def websocket_authorization(headers: Mapping[str, str]) -> str | None:
    """``Bearer <token>`` from the bearer subprotocol of a websocket upgrade, or None (no upgrade, or none
    offered). A bearer subprotocol that is not base64url is refused (``Unauthenticated``), not ignored."""
    if headers.get("Upgrade", "").lower() != "websocket":
        return None
    for offered in headers.get("Sec-WebSocket-Protocol", "").split(","):
        offered = offered.strip()
        if offered.startswith(BEARER_PROTOCOL_PREFIX):
            encoded = offered[len(BEARER_PROTOCOL_PREFIX):]
            try:
                token = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
            except (binascii.Error, UnicodeDecodeError, ValueError):
                raise Unauthenticated("Unauthorized: the bearer token subprotocol is not base64url") from None
            return f"Bearer {token}"
    return None


def cross_site_websocket(headers: Mapping[str, str]) -> bool:
    """A websocket upgrade from a page of another origin than the gateway's (``Origin`` vs ``Host``)."""
    if headers.get("Upgrade", "").lower() != "websocket" or "Origin" not in headers:
        return False
    origin = urlsplit(headers["Origin"].strip())
    return not origin.netloc or origin.netloc.lower() != headers.get("Host", "").strip().lower()


class Authenticator:
    def __init__(self, client: ApiClient, admin_token: str | None, cache_seconds: float = CACHE_SECONDS) -> None:
        self.client = client
        self.cache_seconds = cache_seconds
        self.admin_token = admin_token
        self._cache: dict[str, tuple[float, User]] = {}

    async def authenticate(self, authorization: str | None, peer_certificate: Any = None) -> User:
        """``peer_certificate``: the client certificate TLS verified against the client CA (as Python's
        ``getpeercert()`` gives it), used when no bearer token is sent."""
        if not authorization and peer_certificate:
            return certificate_user(peer_certificate)
        if not authorization:
            raise Unauthenticated("Unauthorized: no bearer token or client certificate")
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise Unauthenticated("Unauthorized: only bearer tokens are accepted")
        if self.admin_token and hmac.compare_digest(token.encode(), self.admin_token.encode()):
            return ADMIN
        cached = self._cache.get(token)
        now = time.monotonic()
        if cached is not None and cached[0] > now:
            return cached[1]
        try:
            review = await self.client.review_token(token)
        except Forbidden:
            raise Unauthenticated("Unauthorized: the token is not valid") from None
        except ShoalError:
            raise
        if not review.get("authenticated"):
            raise Unauthenticated("Unauthorized: the token is not valid")
        user_info = review.get("user") or {}
        groups = tuple(str(g) for g in user_info.get("groups") or ())
        user = User(str(user_info.get("username", "")), str(user_info.get("uid", "")),
                    groups if AUTHENTICATED in groups else (*groups, AUTHENTICATED))
        if len(self._cache) >= CACHE_LIMIT:
            self._cache.clear()
        self._cache[token] = (now + min(self.cache_seconds, _seconds_left(token)), user)
        return user


def _seconds_left(token: str) -> float:
    """Seconds until the (already reviewed) token's ``exp``: a review is not remembered past it. A token
    without ``exp`` (a legacy Secret token) has no such bound."""
    try:
        exp = jwt.unverified_claims(token).get("exp")
    except Exception:
        return 0.0
    if not isinstance(exp, int) or isinstance(exp, bool):
        return float("inf")
    return max(0.0, exp - time.time())
