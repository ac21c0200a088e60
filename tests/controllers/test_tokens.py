"""actors/api/keyset.py and the pure parts of actors/api/tokens.py: rotation by kid, TokenRequest specs,
legacy token Secrets."""

from __future__ import annotations

import base64

import pytest

from actors.api import tokens
from actors.api.keyset import KeySet
from protocol import jwt, satoken
from protocol.errors import BadRequest, Invalid, NotFound


def test_rotation_keeps_old_keys_verifying_and_signs_with_the_new() -> None:
    first = KeySet.fresh("t0")
    old_token = first.sign({"x": 1})
    second = first.rotated("t1")
    assert second.active != first.active and len(second.keys) == 2
    assert jwt.header_of(second.sign({"x": 2}))["kid"] == second.active
    assert jwt.verify(old_token, second.public_keys()) == {"x": 1}
    assert {k["kid"] for k in second.jwks()["keys"]} == {first.active, second.active}
    with pytest.raises(BadRequest, match="rotate first"):
        second.without(second.active)
    with pytest.raises(NotFound):
        second.without("nope")
    third = second.without(first.active)
    with pytest.raises(jwt.TokenInvalid, match="unknown key"):
        jwt.verify(old_token, third.public_keys())
    assert KeySet.decode(third.encode()).describe() == third.describe()


def test_stored_key_sets_are_checked() -> None:
    keys = KeySet.fresh("t0")
    assert jwt.verify(keys.sign({"a": 1}), KeySet.decode(keys.encode()).public_keys()) == {"a": 1}
    with pytest.raises(Invalid):
        KeySet.decode(b"not json")
    with pytest.raises(Invalid, match="active"):
        KeySet.decode(keys.encode().replace(keys.active.encode(), b"other", 1))


SETTINGS = tokens.TokenSettings(issuer="https://i")


@pytest.mark.parametrize(("body", "expected"), [
    ({}, tokens.TokenSpec(("https://i",), 3600, None)),
    ({"spec": {"audiences": ["vault"], "expirationSeconds": 600}}, tokens.TokenSpec(("vault",), 600, None)),
    ({"object": {"spec": {"boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": "web", "uid": "u"}}}},
     tokens.TokenSpec(("https://i",), 3600, ("Pod", "web", "u"))),
    ({"expirationSeconds": 7200}, tokens.TokenSpec(("https://i",), 7200, None)),
])
def test_token_request_specs(body: dict[str, object], expected: tokens.TokenSpec) -> None:
    assert tokens.parse_spec(body, SETTINGS) == expected


@pytest.mark.parametrize("spec", [
    {"expirationSeconds": 599}, {"expirationSeconds": True}, {"expirationSeconds": "600"},
    {"expirationSeconds": 2**32 + 1}, {"audiences": "api"}, {"audiences": [""]},
    {"boundObjectRef": {"kind": "Node", "name": "n"}}, {"boundObjectRef": {"kind": "Pod"}},
    {"boundObjectRef": {"kind": "Pod", "name": "p", "apiVersion": "v2"}},
])
def test_invalid_token_requests_are_refused(spec: dict[str, object]) -> None:
    with pytest.raises(Invalid):
        tokens.parse_spec({"spec": spec}, SETTINGS)


def test_expiration_is_capped_and_the_test_minimum_is_explicit() -> None:
    capped = tokens.TokenSettings(max_expiration=900)
    assert tokens.parse_spec({"expirationSeconds": 3607}, capped).expiration == 900
    short = tokens.TokenSettings(test_only_min_expiration=2)
    assert tokens.parse_spec({"expirationSeconds": 2}, short).expiration == 2


def secret(**annotations: str) -> dict[str, object]:
    return {"apiVersion": "v1", "kind": "Secret", "type": tokens.TOKEN_TYPE,
            "metadata": {"name": "default-token-abcde", "namespace": "team",
                         "annotations": {tokens.SA_NAME_ANNOTATION: "default", **annotations}}}


def test_fill_token_secret_signs_legacy_claims_the_new_way() -> None:
    keys = KeySet.fresh("t0")
    original = secret()
    filled = tokens.fill_token_secret(original, "sa-uid", keys.sign)
    assert "data" not in original  # not modified in place
    assert filled["metadata"]["annotations"][tokens.SA_UID_ANNOTATION] == "sa-uid"
    token = base64.b64decode(filled["data"]["token"]).decode()
    assert jwt.header_of(token)["alg"] == "ES256"
    assert jwt.verify(token, keys.public_keys()) == satoken.legacy_claims("team", "default", "sa-uid",
                                                                         "default-token-abcde")
    assert base64.b64decode(filled["data"]["namespace"]) == b"team"


def test_fill_token_secret_refuses_other_account_uid_and_non_tokens() -> None:
    keys = KeySet.fresh("t0")
    with pytest.raises(Invalid, match="names service account uid"):
        tokens.fill_token_secret(secret(**{tokens.SA_UID_ANNOTATION: "old"}), "new", keys.sign)
    with pytest.raises(Invalid):
        tokens.fill_token_secret({**secret(), "type": "Opaque"}, "uid", keys.sign)
