"""The API actors' token signing keys: several ES256 keys by ``kid``, one of which signs. Pure.

Rotation without downtime, as Kubernetes does with several ``--service-account-key-file``s: ``rotated()``
adds a fresh key and makes it the signer while every older key still verifies the tokens it signed;
``without(kid)`` removes an old key once its tokens have expired (tokens it signed are refused from then
on). The active key cannot be removed. The stored form is JSON (``encode``/``decode``), kept in the API
actors' private bucket (``signing.py``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from protocol import jwt
from protocol.errors import BadRequest, Invalid, NotFound


@dataclass(frozen=True, slots=True)
class SigningKey:
    kid: str
    private: jwt.PrivateKey
    added: str
    """When the key was added (RFC 3339), for operators deciding which old key to remove."""


@dataclass(frozen=True, slots=True)
class KeySet:
    keys: tuple[SigningKey, ...]
    active: str

    @staticmethod
    def fresh(added: str) -> KeySet:
        private = jwt.new_private_key()
        kid = jwt.key_id(private.public_key())
        return KeySet((SigningKey(kid, private, added),), kid)

    @property
    def signer(self) -> SigningKey:
        return next(k for k in self.keys if k.kid == self.active)

    def public_keys(self) -> dict[str, jwt.PublicKey]:
        return {k.kid: k.private.public_key() for k in self.keys}

    def sign(self, claims: dict[str, Any]) -> str:
        signer = self.signer
        return jwt.sign(claims, signer.private, signer.kid)

    def jwks(self) -> dict[str, Any]:
        """The JWK Set of every key that verifies (RFC 7517): what ``/openid/v1/jwks`` serves."""
        return {"keys": [jwt.jwk(k.private.public_key()) for k in self.keys]}

    def describe(self) -> list[dict[str, Any]]:
        return [{"kid": k.kid, "added": k.added, "active": k.kid == self.active} for k in self.keys]

    def rotated(self, added: str) -> KeySet:
        """A new key signs from now on; every current key still verifies."""
        fresh = KeySet.fresh(added)
        return KeySet((*self.keys, fresh.keys[0]), fresh.active)

    def without(self, kid: Any) -> KeySet:
        """The set without key ``kid`` (its tokens are refused from then on); the signing key stays."""
        if not isinstance(kid, str) or not kid:
            raise BadRequest("remove-signing-key needs 'kid'")
        if kid == self.active:
            raise BadRequest(f"key {kid} signs new tokens: rotate first, then remove it")
        if all(k.kid != kid for k in self.keys):
            raise NotFound(f"no signing key {kid}", {"kind": "SigningKey", "name": kid})
        return KeySet(tuple(k for k in self.keys if k.kid != kid), self.active)

    def encode(self) -> bytes:
        return json.dumps({"active": self.active, "keys": [
            {"kid": k.kid, "added": k.added, "pem": jwt.private_to_pem(k.private)} for k in self.keys]}).encode()

    @staticmethod
    def decode(raw: bytes) -> KeySet:
        try:
            data = json.loads(raw)
            keys = tuple(SigningKey(str(k["kid"]), jwt.private_from_pem(str(k["pem"])), str(k.get("added", "")))
                         for k in data["keys"])
            active = str(data["active"])
        except (ValueError, KeyError, TypeError) as exc:
            raise Invalid(f"the stored signing keys are unreadable: {exc}") from None
        for key in keys:
            if jwt.key_id(key.private.public_key()) != key.kid:
                raise Invalid(f"the stored signing key {key.kid} does not match its kid")
        if all(k.kid != active for k in keys):
            raise Invalid(f"the stored signing keys do not include the active key {active}")
        return KeySet(keys, active)
