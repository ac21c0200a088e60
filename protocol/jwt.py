"""ES256 JSON Web Tokens and JSON Web Keys (RFC 7515, 7517, 7518), as Kubernetes signs ServiceAccount tokens. Pure.

A token is ``base64url(header).base64url(claims).base64url(signature)``; the header names the algorithm
(``ES256``: ECDSA on P-256 with SHA-256, the signature being ``r || s``, 32 bytes each) and the key (``kid``).
A verifier holds the public keys by ``kid`` (a JWK Set, as the gateway publishes at ``/openid/v1/jwks``) and
picks the one the header names, so several keys verify side by side while one signs (key rotation).

The ``kid`` of a key is Kubernetes' choice: base64url of the SHA-256 of its public key in DER
(SubjectPublicKeyInfo), so any holder of the public key computes the same id.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

from protocol.errors import Forbidden

ALGORITHM = "ES256"
_COORDINATE_BYTES = 32
MAX_TOKEN_BYTES = 16 * 1024
"""Longer strings are refused before any decoding (a token of ours is well under 2 KiB)."""

PrivateKey = ec.EllipticCurvePrivateKey
PublicKey = ec.EllipticCurvePublicKey


class TokenInvalid(Forbidden):
    """The token is malformed, signed by no key we hold, expired, or not meant for this audience."""


def new_private_key() -> PrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def key_id(public: PublicKey) -> str:
    der = public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return b64url(hashlib.sha256(der).digest())


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64url(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise TokenInvalid("token is not valid base64url") from None


def _json(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), sort_keys=True).encode()


def sign(claims: dict[str, Any], private: PrivateKey, kid: str) -> str:
    """``claims`` as a compact JWT signed with ``private`` (ES256), the header naming ``kid``."""
    header = {"alg": ALGORITHM, "kid": kid, "typ": "JWT"}
    signing_input = f"{b64url(_json(header))}.{b64url(_json(claims))}"
    der = private.sign(signing_input.encode("ascii"), ec.ECDSA(hashes.SHA256()))
    r, s = decode_dss_signature(der)
    raw = r.to_bytes(_COORDINATE_BYTES, "big") + s.to_bytes(_COORDINATE_BYTES, "big")
    return f"{signing_input}.{b64url(raw)}"


def header_of(token: Any) -> dict[str, Any]:
    """The token's header (unverified): to learn which ``kid`` to verify it with."""
    if not isinstance(token, str):
        raise TokenInvalid("token must be a string")
    if len(token) > MAX_TOKEN_BYTES:
        raise TokenInvalid(f"token is longer than {MAX_TOKEN_BYTES} bytes")
    parts = token.strip().split(".")
    if len(parts) != 3:
        raise TokenInvalid("token is not a JWT (expected three dot-separated parts)")
    header = _json_part(parts[0], "header")
    if header.get("alg") != ALGORITHM:
        raise TokenInvalid(f"token algorithm must be {ALGORITHM}")
    if not isinstance(header.get("kid"), str) or not header["kid"]:
        raise TokenInvalid("token header names no key (kid)")
    return header


def unverified_claims(token: Any) -> dict[str, Any]:
    """The claims of ``token`` WITHOUT checking its signature: only for a token something else verified."""
    header_of(token)
    return _json_part(token.strip().split(".")[1], "claims")


def verify(token: Any, keys: dict[str, PublicKey]) -> dict[str, Any]:
    """The claims of ``token`` when it is signed (ES256) by the key of ``keys`` its header names; else
    ``TokenInvalid``. Nothing about the claims themselves is checked here (``protocol.satoken`` does)."""
    header = header_of(token)
    public = keys.get(header["kid"])
    if public is None:
        raise TokenInvalid(f"token is signed by an unknown key (kid {str(header['kid'])[:64]!r})")
    head_b64, body_b64, sig_b64 = token.strip().split(".")
    raw = unb64url(sig_b64)
    if len(raw) != 2 * _COORDINATE_BYTES:
        raise TokenInvalid("token signature is invalid")
    der = encode_dss_signature(int.from_bytes(raw[:_COORDINATE_BYTES], "big"),
                               int.from_bytes(raw[_COORDINATE_BYTES:], "big"))
    try:
        public.verify(der, f"{head_b64}.{body_b64}".encode("ascii", "replace"), ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        raise TokenInvalid("token signature is invalid") from None
    return _json_part(body_b64, "claims")


def _json_part(text: str, what: str) -> dict[str, Any]:
    try:
        value = json.loads(unb64url(text))
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise TokenInvalid(f"token {what} is not JSON") from None
    if not isinstance(value, dict):
        raise TokenInvalid(f"token {what} is not a JSON object")
    return value


# -- JSON Web Keys ----------------------------------------------------------------------------------
def jwk(public: PublicKey) -> dict[str, str]:
    """The public key as a JWK (RFC 7517), with its ``kid``, for signature use with ES256."""
    numbers = public.public_numbers()
    return {"kty": "EC", "crv": "P-256", "alg": ALGORITHM, "use": "sig", "kid": key_id(public),
            "x": b64url(numbers.x.to_bytes(_COORDINATE_BYTES, "big")),
            "y": b64url(numbers.y.to_bytes(_COORDINATE_BYTES, "big"))}


def public_from_jwk(key: dict[str, Any]) -> PublicKey:
    """A public key from its JWK (what a verifier that fetched the JWK Set does)."""
    if key.get("kty") != "EC" or key.get("crv") != "P-256":
        raise TokenInvalid("only EC P-256 keys are supported")
    try:
        x = int.from_bytes(unb64url(str(key["x"])), "big")
        y = int.from_bytes(unb64url(str(key["y"])), "big")
        return ec.EllipticCurvePublicNumbers(x, y, ec.SECP256R1()).public_key()
    except (KeyError, ValueError):
        raise TokenInvalid("the JWK is not a valid P-256 public key") from None


def private_to_pem(private: PrivateKey) -> str:
    return private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                 serialization.NoEncryption()).decode("ascii")


def private_from_pem(pem: str) -> PrivateKey:
    try:
        key = serialization.load_pem_private_key(pem.encode("ascii"), password=None)
    except (ValueError, TypeError, UnicodeEncodeError):
        raise ValueError("not a PEM private key") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
        raise ValueError("the signing key must be an EC P-256 key")
    return key
