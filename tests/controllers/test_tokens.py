"""actors/api/tokens.py: HS256 service-account tokens and the Secrets that carry them and the key."""

from __future__ import annotations

import base64
import json

import pytest

from actors.api import tokens
from protocol.errors import Forbidden, Invalid


def claims() -> dict[str, object]:
    return tokens.service_account_claims("team", "default", "sa-uid", "default-token-abcde", 1700000000)


def test_sign_and_verify_round_trip() -> None:
    key = tokens.new_key()
    assert len(key) == 32 and tokens.new_key() != key
    token = tokens.sign(claims(), key)
    head, _body, _sig = token.split(".")
    assert json.loads(base64.urlsafe_b64decode(head + "==")) == {"alg": "HS256", "typ": "JWT"}
    got = tokens.verify(token, key)
    assert got["iss"] == "shoal"
    assert got["sub"] == "system:serviceaccount:team:default"
    assert got[tokens.CLAIM_NAMESPACE] == "team"
    assert got[tokens.CLAIM_SA_NAME] == "default"
    assert got[tokens.CLAIM_SA_UID] == "sa-uid"
    assert got[tokens.CLAIM_SECRET_NAME] == "default-token-abcde"
    assert got["iat"] == 1700000000
    assert "=" not in token


@pytest.mark.parametrize("mangle", [
    lambda t: t + "x",
    lambda t: t.replace(".", "", 1),
    lambda t: "a.b.c",
    lambda t: "",
    lambda t: t.split(".")[0] + "." + base64.urlsafe_b64encode(b'{"iss":"shoal","sub":"system:serviceaccount:x:admin"}')
    .decode().rstrip("=") + "." + t.split(".")[2],
])
def test_tampered_tokens_are_refused(mangle: object) -> None:
    key = tokens.new_key()
    token = tokens.sign(claims(), key)
    with pytest.raises(tokens.TokenInvalid):
        tokens.verify(mangle(token), key)  # type: ignore[operator]


def test_another_key_is_refused_and_error_is_forbidden() -> None:
    token = tokens.sign(claims(), tokens.new_key())
    with pytest.raises(Forbidden) as info:
        tokens.verify(token, tokens.new_key())
    assert isinstance(info.value, tokens.TokenInvalid)
    assert info.value.to_wire()["code"] == "Forbidden"


def test_wrong_issuer_or_algorithm_is_refused() -> None:
    key = tokens.new_key()
    with pytest.raises(tokens.TokenInvalid, match="issuer"):
        tokens.verify(tokens.sign({**claims(), "iss": "other"}, key), key)
    with pytest.raises(tokens.TokenInvalid, match="subject"):
        tokens.verify(tokens.sign({**claims(), "sub": "admin"}, key), key)


def secret(**annotations: str) -> dict[str, object]:
    return {"apiVersion": "v1", "kind": "Secret", "type": tokens.TOKEN_TYPE,
            "metadata": {"name": "default-token-abcde", "namespace": "team",
                         "annotations": {tokens.SA_NAME_ANNOTATION: "default", **annotations}}}


def test_fill_token_secret() -> None:
    key = tokens.new_key()
    original = secret()
    assert tokens.needs_token(original)
    filled = tokens.fill_token_secret(original, "sa-uid", key, iat=5)
    assert "data" not in original  # not modified in place
    assert not tokens.needs_token(filled)
    assert filled["metadata"]["annotations"][tokens.SA_UID_ANNOTATION] == "sa-uid"
    token = base64.b64decode(filled["data"]["token"]).decode()
    got = tokens.verify(token, key)
    assert got[tokens.CLAIM_SECRET_NAME] == "default-token-abcde" and got["iat"] == 5
    assert base64.b64decode(filled["data"]["namespace"]) == b"team"


def test_fill_token_secret_refuses_other_account_uid_and_non_tokens() -> None:
    with pytest.raises(Invalid, match="names service account uid"):
        tokens.fill_token_secret(secret(**{tokens.SA_UID_ANNOTATION: "old"}), "new", tokens.new_key())
    plain = {**secret(), "type": "Opaque"}
    assert not tokens.needs_token(plain)
    with pytest.raises(Invalid):
        tokens.fill_token_secret(plain, "uid", tokens.new_key())


def test_signing_key_secret_round_trip() -> None:
    key = tokens.new_key()
    stored = tokens.signing_key_secret(key)
    assert stored["metadata"] == {"name": "shoal-signing-key", "namespace": "kube-system"}
    assert tokens.key_from_secret(stored) == key
    with pytest.raises(Invalid):
        tokens.key_from_secret({"data": {}})
    with pytest.raises(Invalid):
        tokens.key_from_secret({"data": {"key": "***"}})
