"""The service-account issuer on the gateway (issue 18 item 4): ``kubectl create token`` (TokenRequest), the
published discovery document and JWK Set (fetched without credentials, as an external verifier does) verify
the token with ``cryptography`` alone; such tokens authenticate to the gateway only for the API's audience and
only while their bound pod lives; a key rotation keeps old tokens valid and publishes the new key."""

from __future__ import annotations

import ssl
import time
from typing import Any

import aiohttp
import pytest

from actors.api.keyset import KeySet
from actors.gateway import auth
from runtime.client import ApiClient
from tests.controllers.conftest import eventually
from tests.gateway.conftest import Gateway
from tests.integration.test_sa_tokens import kid_of, verify_with_jwks

UNAUTHORIZED = "You must be logged in to the server"


async def fetch(gateway: Gateway, path: str) -> tuple[int, Any, dict[str, str]]:
    context = ssl.create_default_context(cafile=str(gateway.credentials.ca_cert))
    async with aiohttp.ClientSession() as http, http.get(gateway.url + path, ssl=context) as response:
        return response.status, await response.json(content_type=None), dict(response.headers)


async def test_kubectl_create_token_verified_with_the_published_keys(gateway: Gateway, api_client: ApiClient) -> None:
    await api_client.create({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "robot"}})
    status, discovery, headers = await fetch(gateway, "/.well-known/openid-configuration")
    assert status == 200, discovery
    assert discovery["issuer"] == "https://kubernetes.default.svc.cluster.local"
    assert discovery["jwks_uri"] == "https://kubernetes.default.svc.cluster.local/openid/v1/jwks"
    assert discovery["id_token_signing_alg_values_supported"] == ["ES256"]
    status, jwks, headers = await fetch(gateway, "/openid/v1/jwks")
    assert status == 200 and headers["Content-Type"].startswith("application/jwk-set+json")
    assert all("d" not in key for key in jwks["keys"])  # public halves only

    token = (await gateway.ok("create", "token", "robot", "--duration", "15m")).strip()
    claims = verify_with_jwks(token, jwks)
    assert claims["sub"] == "system:serviceaccount:default:robot" and claims["exp"] - claims["iat"] == 900
    assert claims["aud"] == [discovery["issuer"]]
    assert "system:serviceaccount:default:robot" in await gateway.ok("auth", "whoami", "--token", token)

    # a token for another audience does not open the API
    vault = (await gateway.ok("create", "token", "robot", "--audience", "vault")).strip()
    assert verify_with_jwks(vault, jwks)["aud"] == ["vault"]
    result = await gateway.kubectl("get", "pods", "--token", vault)
    assert result.rc != 0 and UNAUTHORIZED in result.err, result

    # bound to a pod: refused once the pod is deleted
    await api_client.create({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web"},
                             "spec": {"serviceAccountName": "robot", "containers": [{"name": "c", "image": "i"}]}})
    bound = (await gateway.ok("create", "token", "robot", "--bound-object-kind", "Pod",
                              "--bound-object-name", "web")).strip()
    assert verify_with_jwks(bound, jwks)["kubernetes.io"]["pod"]["name"] == "web"
    assert "system:serviceaccount:default:robot" in await gateway.ok("auth", "whoami", "--token", bound)
    result = await gateway.kubectl("create", "token", "robot", "--duration", "1m")
    assert result.rc != 0 and "less than 600 seconds" in result.err, result  # Kubernetes' minimum
    await api_client.delete("pods", "web", grace_period=0)

    async def refused() -> bool:
        outcome = await gateway.kubectl("get", "pods", "--token", bound)
        return outcome.rc != 0 and UNAUTHORIZED in outcome.err
    # the gateway remembers a review for 10 s (auth.CACHE_SECONDS)
    await eventually(refused, timeout=30, interval=1.0)

    # rotation: old tokens keep working, new ones carry the new kid, the JWK Set publishes both
    rotated = await api_client.admin("rotate-signing-key")
    fresh = (await gateway.ok("create", "token", "robot")).strip()
    assert kid_of(fresh) == rotated["active"] and kid_of(token) != rotated["active"]
    _, jwks, _ = await fetch(gateway, "/openid/v1/jwks")
    assert {kid_of(token), kid_of(fresh)} <= {key["kid"] for key in jwks["keys"]}
    verify_with_jwks(fresh, jwks)
    verify_with_jwks(token, jwks)
    for t in (token, fresh):
        assert "system:serviceaccount:default:robot" in await gateway.ok("auth", "whoami", "--token", t)


@pytest.mark.parametrize("path", ["/openid/v1/jwks", "/.well-known/openid-configuration"])
async def test_discovery_needs_no_credentials_but_the_api_does(gateway: Gateway, path: str) -> None:
    status, _, _ = await fetch(gateway, path)
    assert status == 200
    status, _, _ = await fetch(gateway, "/api/v1/namespaces/default/pods")
    assert status == 401


def test_a_review_is_not_remembered_past_the_tokens_expiry() -> None:
    keys = KeySet.fresh("t0")
    soon = keys.sign({"exp": int(time.time()) + 3})
    assert 0 < auth._seconds_left(soon) <= 3
    assert auth._seconds_left(keys.sign({"exp": int(time.time()) - 5})) == 0
    assert auth._seconds_left(keys.sign({"iss": "kubernetes/serviceaccount"})) == float("inf")  # legacy: no exp
    assert auth._seconds_left("not-a-jwt") == 0
