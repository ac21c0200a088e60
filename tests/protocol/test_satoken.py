"""protocol/jwt.py and protocol/satoken.py: ES256 tokens, JWKs, Kubernetes' claims and their checks."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from protocol import jwt, satoken
from protocol.errors import Forbidden

ISSUER = "https://issuer.test"


def bound(**overrides: Any) -> dict[str, Any]:
    claims = satoken.bound_claims(issuer=ISSUER, audiences=["api"], namespace="team", name="robot", uid="sa-uid",
                                  iat=1000, exp=2000, jti="j-1", pod=satoken.Bound("Pod", "web", "pod-uid"),
                                  node=("node-a", "node-uid"))
    return {**claims, **overrides}


def test_claims_are_kubernetes_bound_token_claims() -> None:
    assert bound() == {
        "iss": ISSUER, "sub": "system:serviceaccount:team:robot", "aud": ["api"], "iat": 1000, "nbf": 1000,
        "exp": 2000, "jti": "j-1",
        "kubernetes.io": {"namespace": "team", "serviceaccount": {"name": "robot", "uid": "sa-uid"},
                          "pod": {"name": "web", "uid": "pod-uid"}, "node": {"name": "node-a", "uid": "node-uid"}}}


def test_sign_verify_and_verify_independently_with_the_jwk() -> None:
    key = jwt.new_private_key()
    kid = jwt.key_id(key.public_key())
    token = jwt.sign(bound(), key, kid)
    head, body, sig = token.split(".")
    assert json.loads(base64.urlsafe_b64decode(head + "==")) == {"alg": "ES256", "kid": kid, "typ": "JWT"}
    assert jwt.verify(token, {kid: key.public_key()}) == bound()
    # a verifier holding only the published JWK, using cryptography directly
    public = jwt.public_from_jwk(jwt.jwk(key.public_key()))
    raw = base64.urlsafe_b64decode(sig + "==")
    public.verify(encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big")),
                  f"{head}.{body}".encode(), ec.ECDSA(hashes.SHA256()))
    assert jwt.jwk(key.public_key())["kid"] == kid and "d" not in jwt.jwk(key.public_key())


@pytest.mark.parametrize("mangle", [
    lambda t: t + "x",
    lambda t: t.replace(".", "", 1),
    lambda t: "a.b.c",
    lambda t: "",
    lambda t: 42,
    lambda t: "x" * 20000,
    lambda t: t.split(".")[0] + "." + base64.urlsafe_b64encode(b'{"sub":"system:serviceaccount:x:admin"}')
    .decode().rstrip("=") + "." + t.split(".")[2],
    lambda t: base64.urlsafe_b64encode(b'{"alg":"HS256","kid":"k"}').decode().rstrip("=") + "." + t.split(".", 1)[1],
    lambda t: base64.urlsafe_b64encode(b'{"alg":"none"}').decode().rstrip("=") + "." + t.split(".")[1] + ".",
])
def test_tampered_tokens_are_refused_forbidden(mangle: Any) -> None:
    key = jwt.new_private_key()
    kid = jwt.key_id(key.public_key())
    with pytest.raises(Forbidden) as info:
        jwt.verify(mangle(jwt.sign(bound(), key, kid)), {kid: key.public_key()})
    assert isinstance(info.value, jwt.TokenInvalid) and info.value.to_wire()["code"] == "Forbidden"


def test_another_key_with_the_same_kid_or_an_unknown_kid_is_refused() -> None:
    key, other = jwt.new_private_key(), jwt.new_private_key()
    kid = jwt.key_id(key.public_key())
    with pytest.raises(jwt.TokenInvalid, match="signature"):
        jwt.verify(jwt.sign(bound(), other, kid), {kid: key.public_key()})
    with pytest.raises(jwt.TokenInvalid, match="unknown key"):
        jwt.verify(jwt.sign(bound(), other, "nope"), {kid: key.public_key()})


def test_check_times_audiences_issuer() -> None:
    facts = satoken.check(bound(), issuer=ISSUER, audiences=["api"], now=1500)
    assert facts.username == "system:serviceaccount:team:robot" and facts.uid == "sa-uid"
    assert facts.bound == satoken.Bound("Pod", "web", "pod-uid") and facts.node == "node-a"
    assert facts.expires == 2000 and facts.audiences == ("api",)
    with pytest.raises(jwt.TokenInvalid, match="expired"):
        satoken.check(bound(), issuer=ISSUER, audiences=["api"], now=2000)
    with pytest.raises(jwt.TokenInvalid, match="not valid yet"):
        satoken.check(bound(), issuer=ISSUER, audiences=["api"], now=1000 - satoken.NOT_BEFORE_LEEWAY - 1)
    with pytest.raises(jwt.TokenInvalid, match="audiences"):
        satoken.check(bound(), issuer=ISSUER, audiences=["vault"], now=1500)
    with pytest.raises(jwt.TokenInvalid, match="issuer"):
        satoken.check(bound(iss="https://other"), issuer=ISSUER, audiences=["api"], now=1500)
    with pytest.raises(jwt.TokenInvalid, match="no expiry"):
        satoken.check({k: v for k, v in bound().items() if k != "exp"}, issuer=ISSUER, audiences=["api"], now=1500)
    with pytest.raises(jwt.TokenInvalid, match="subject"):
        satoken.check(bound(sub="system:serviceaccount:team:admin"), issuer=ISSUER, audiences=["api"], now=1500)
    with pytest.raises(jwt.TokenInvalid, match="integer"):
        satoken.check(bound(exp="2000"), issuer=ISSUER, audiences=["api"], now=1500)


def test_legacy_claims_are_valid_for_the_api_audiences_only() -> None:
    claims = satoken.legacy_claims("team", "default", "sa-uid", "default-token-abcde")
    assert claims["iss"] == "kubernetes/serviceaccount" and "exp" not in claims and "aud" not in claims
    facts = satoken.check(claims, issuer=ISSUER, audiences=["api"], now=10**10, api_audiences=["api"])
    assert facts.legacy and facts.bound == satoken.Bound("Secret", "default-token-abcde", "")
    with pytest.raises(jwt.TokenInvalid, match="legacy"):
        satoken.check(claims, issuer=ISSUER, audiences=["vault"], now=1, api_audiences=["api"])
