"""Service-account tokens end to end: signed by the API actor, verified by it, revoked with their Secret."""

from __future__ import annotations

import base64

import pytest

from protocol.errors import Forbidden
from runtime.client import ApiClient
from tests.controllers.conftest import StartControllers, eventually


async def test_default_account_token_is_signed_verified_and_revocable(
        client: ApiClient, start_controllers: StartControllers) -> None:
    await client.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team"}})
    await start_controllers("serviceaccount")

    async def token_secret() -> dict | None:
        for secret in (await client.list("secrets", "team")).items:
            if secret.get("type") == "kubernetes.io/service-account-token" and (secret.get("data") or {}).get("token"):
                return secret
        return None

    secret = await eventually(token_secret)
    token = base64.b64decode(secret["data"]["token"]).decode()
    review = await client.review_token(token)
    assert review["authenticated"] and review["user"]["username"] == "system:serviceaccount:team:default"
    with pytest.raises(Forbidden):
        await client.review_token(token[:-4] + "AAAA")  # a forged signature
    with pytest.raises(Forbidden):
        await client.review_token("not-a-token")
    # a client cannot choose its own token: the API signs over whatever it was sent
    forged = await client.create({"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/service-account-token",
                                  "metadata": {"name": "mine", "namespace": "team",
                                               "annotations": {"kubernetes.io/service-account.name": "default"}},
                                  "stringData": {"token": "chosen-by-client"}})
    assert base64.b64decode(forged["data"]["token"]).decode() != "chosen-by-client"
    await client.delete("secrets", secret["metadata"]["name"], "team")
    with pytest.raises(Forbidden, match="revoked"):
        await client.review_token(token)
