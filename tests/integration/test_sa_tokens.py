"""ServiceAccount tokens against real API actors on a real nats-server (issue 18 item 4): TokenRequest on
``serviceaccounts/<name>/token``, tokens verified with the published keys independently of our code, expiry,
revocation with the bound pod, signing-key rotation across two API actors, the kubelet's renewal at 80%."""

from __future__ import annotations

import asyncio
import base64
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from actors.api.tokens import TokenSettings
from agents.kubelet import volumes as volumes_module
from agents.kubelet.volumes import PodVolumes, node_token
from protocol import subjects
from protocol.errors import BadRequest, Forbidden, Invalid, NotFound
from protocol.kinds import by_kind
from protocol.objects import Obj
from protocol.subjects import Verb
from runtime.client import ApiClient
from runtime.nats_server import NatsServer
from tests.conftest import ActorRunner, start_api
from tests.controllers.conftest import eventually

ISSUER = "https://shoal.test"


def b64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def verify_with_jwks(token: str, jwks: dict[str, Any]) -> dict[str, Any]:
    """What any relying party does with ``/openid/v1/jwks``, written with ``cryptography`` alone."""
    head, body, sig = token.split(".")
    header = json.loads(b64(head))
    assert header["alg"] == "ES256"
    [key] = [k for k in jwks["keys"] if k["kid"] == header["kid"]]
    public = ec.EllipticCurvePublicNumbers(int.from_bytes(b64(key["x"]), "big"), int.from_bytes(b64(key["y"]), "big"),
                                           ec.SECP256R1()).public_key()
    raw = b64(sig)
    public.verify(encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big")),
                  f"{head}.{body}".encode(), ec.ECDSA(hashes.SHA256()))
    claims: dict[str, Any] = json.loads(b64(body))
    return claims


def kid_of(token: str) -> str:
    return str(json.loads(b64(token.split(".")[0]))["kid"])


async def setup(client: ApiClient, *pods: str) -> dict[str, Obj]:
    await client.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team"}})
    await client.create({"apiVersion": "v1", "kind": "ServiceAccount",
                         "metadata": {"name": "robot", "namespace": "team"}})
    return {name: await client.create(robot_pod(name)) for name in pods}


def robot_pod(name: str) -> Obj:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "team"},
            "spec": {"serviceAccountName": "robot", "containers": [{"name": "c", "image": "i"}]}}


@pytest.fixture
async def short_api(runner: ActorRunner) -> Any:
    """An API actor that accepts tokens as short as 1 s (``test_only_min_expiration``)."""
    return await start_api(runner, tokens=TokenSettings(issuer=ISSUER, test_only_min_expiration=1))


@pytest.fixture
async def short_client(nats_server: NatsServer, short_api: Any) -> Any:
    import nats
    nc = await nats.connect(nats_server.url)
    try:
        yield ApiClient(nc)
    finally:
        await nc.close()


async def test_token_request_claims_and_published_keys(short_client: ApiClient) -> None:
    client = short_client
    pods = await setup(client, "web")
    issued = await client.request_token("robot", "team", audiences=["vault"], expiration_seconds=900,
                                        bound_pod=("web", pods["web"]["metadata"]["uid"]))
    assert issued["kind"] == "TokenRequest" and issued["spec"]["expirationSeconds"] == 900
    token = issued["status"]["token"]
    oidc = await client.admin("oidc")
    assert oidc["issuer"] == ISSUER and oidc["jwksUri"] == f"{ISSUER}/openid/v1/jwks"
    claims = verify_with_jwks(token, oidc["jwks"])
    account = await client.get("ServiceAccount", "robot", "team")
    assert claims["iss"] == ISSUER and claims["sub"] == "system:serviceaccount:team:robot"
    assert claims["aud"] == ["vault"] and claims["exp"] - claims["iat"] == 900 and claims["nbf"] == claims["iat"]
    assert claims["kubernetes.io"]["namespace"] == "team"
    assert claims["kubernetes.io"]["serviceaccount"] == {"name": "robot", "uid": account["metadata"]["uid"]}
    assert claims["kubernetes.io"]["pod"] == {"name": "web", "uid": pods["web"]["metadata"]["uid"]}
    tampered = token.rsplit(".", 1)[0] + "." + base64.urlsafe_b64encode(bytes(64)).decode().rstrip("=")
    with pytest.raises(InvalidSignature):
        verify_with_jwks(tampered, oidc["jwks"])

    # audiences: a token for "vault" is not one for the API, and the other way round
    with pytest.raises(Forbidden, match="audiences"):
        await client.review_token(token)
    assert (await client.review_token(token, ["vault"]))["user"]["username"] == "system:serviceaccount:team:robot"
    api_token = (await client.request_token("robot", "team"))["status"]["token"]
    assert verify_with_jwks(api_token, oidc["jwks"])["aud"] == [ISSUER]
    assert (await client.review_token(api_token))["audiences"] == [ISSUER]
    with pytest.raises(Forbidden, match="audiences"):
        await client.review_token(api_token, ["vault"])

    # bad requests are typed
    with pytest.raises(Invalid, match="expirationSeconds"):
        await client.request_token("robot", "team", expiration_seconds=0)
    with pytest.raises(NotFound):
        await client.request_token("ghost", "team")
    with pytest.raises(NotFound):
        await client.request_token("robot", "team", bound_pod=("ghost", None))
    with pytest.raises(BadRequest, match="token"):
        await client.request(subjects.object_subject(Verb.TOKEN, by_kind("Pod"), "team", "web"), {})


async def test_expired_and_deleted_pod_tokens_are_refused(short_client: ApiClient) -> None:
    client = short_client
    pods = await setup(client, "web", "db")
    short = (await client.request_token("robot", "team", expiration_seconds=3))["status"]["token"]
    bound = (await client.request_token("robot", "team", bound_pod=("db", pods["db"]["metadata"]["uid"])))
    assert (await client.review_token(bound["status"]["token"]))["user"]["extra"][
        "authentication.kubernetes.io/pod-uid"] == [pods["db"]["metadata"]["uid"]]

    async def refused(token: str) -> str | None:
        try:
            await client.review_token(token)
        except Forbidden as exc:
            return exc.message
        return None

    assert "expired" in await eventually(lambda: refused(short), timeout=15)
    await client.delete("pods", "db", "team", grace_period=0)
    assert "revoked" in await eventually(lambda: refused(bound["status"]["token"]), timeout=15)
    # a pod of the same name is another pod: the old token stays refused
    await client.create(robot_pod("db"))
    assert "revoked" in (await refused(bound["status"]["token"]) or "")
    # bound to a Secret: dies with it
    await client.create({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "anchor", "namespace": "team"}})
    anchored = (await client.request(subjects.object_subject(Verb.TOKEN, by_kind("ServiceAccount"), "team", "robot"),
                                     {"object": {"spec": {"boundObjectRef": {"kind": "Secret", "name": "anchor"}}}}))
    anchored_token = anchored["object"]["status"]["token"]
    assert (await client.review_token(anchored_token))["authenticated"]
    await client.delete("secrets", "anchor", "team")
    assert "revoked" in await eventually(lambda: refused(anchored_token), timeout=15)


async def test_signing_key_rotation_across_two_api_actors(runner: ActorRunner, nats_server: NatsServer) -> None:
    import nats
    await start_api(runner)
    await start_api(runner)
    nc = await nats.connect(nats_server.url)
    client = ApiClient(nc)
    try:
        await setup(client)
        old = (await client.request_token("robot", "team"))["status"]["token"]
        legacy = await client.create({
            "apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/service-account-token",
            "metadata": {"name": "robot-token", "namespace": "team",
                         "annotations": {"kubernetes.io/service-account.name": "robot"}}})
        legacy_token = base64.b64decode(legacy["data"]["token"]).decode()
        first = await client.admin("signing-keys")
        rotated = await client.admin("rotate-signing-key")
        assert rotated["active"] != first["active"] and {k["kid"] for k in rotated["keys"]} == {
            first["active"], rotated["active"]}

        async def all_new() -> bool:  # both actors sign with the new key (the queue group picks either)
            fresh = [(await client.request_token("robot", "team"))["status"]["token"] for _ in range(8)]
            return all(kid_of(t) == rotated["active"] for t in fresh)
        await eventually(all_new, timeout=15)
        jwks = (await client.admin("oidc"))["jwks"]
        assert {k["kid"] for k in jwks["keys"]} == {first["active"], rotated["active"]}
        for _ in range(8):  # old tokens verify on either actor, without any downtime
            assert (await client.review_token(old))["authenticated"]
            assert (await client.review_token(legacy_token))["authenticated"]
        new = (await client.request_token("robot", "team"))["status"]["token"]
        assert verify_with_jwks(new, jwks)["sub"] == "system:serviceaccount:team:robot"

        with pytest.raises(BadRequest, match="rotate first"):
            await client.admin("remove-signing-key", {"kid": rotated["active"]})
        removed = await client.admin("remove-signing-key", {"kid": first["active"]})
        assert [k["kid"] for k in removed["keys"]] == [rotated["active"]]

        async def old_refused() -> bool:
            results = []
            for _ in range(8):
                try:
                    await client.review_token(old)
                    results.append(False)
                except Forbidden:
                    results.append(True)
            return all(results)
        await eventually(old_refused, timeout=15)
        assert (await client.review_token(new))["authenticated"]
        # a legacy Secret made now is signed by the new key
        again = await client.create({
            "apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/service-account-token",
            "metadata": {"name": "robot-token-2", "namespace": "team",
                         "annotations": {"kubernetes.io/service-account.name": "robot"}}})
        assert kid_of(base64.b64decode(again["data"]["token"]).decode()) == rotated["active"]
    finally:
        await nc.close()


async def test_kubelet_renews_a_pod_token_at_80_percent_of_its_life(
        runner: ActorRunner, nats_server: NatsServer, tmp_path: Path) -> None:
    """The kubelet's token source (PodVolumes + node_token through the node-scoped TokenRequest) against a real
    API actor whose tokens last 100 s (``max_expiration``); the kubelet's clock is injected, so no test waits."""
    import nats
    import structlog
    await start_api(runner, tokens=TokenSettings(max_expiration=100))
    nc = await nats.connect(nats_server.url)
    client = ApiClient(nc)
    try:
        pods = await setup(client, "web")
        await client.bind("web", "team", "node-a")
        pod = await client.get("pods", "web", "team")
        pod["spec"]["volumes"] = [{"name": "kube-api-access-x", "projected": {"sources": [
            {"serviceAccountToken": {"path": "token", "expirationSeconds": 3607}}]}}]
        now = [1000.0]
        volumes = PodVolumes(tmp_path, _no_fetch, node="node-a", log=structlog.get_logger(), facts=_no_facts,
                             clock=lambda: now[0], token=node_token(client, "node-a"))

        async def token_now() -> str:
            sources = await volumes.sources(pod)
            [held] = [v for k, v in sources.items() if k[0] == "ServiceAccountToken"]
            assert held is not None
            return str(held["token"])

        first = await token_now()
        claims = json.loads(b64(first.split(".")[1]))
        assert claims["exp"] - claims["iat"] == 100  # capped by the API: the kubelet renews by what it got
        assert claims["kubernetes.io"]["pod"]["uid"] == pods["web"]["metadata"]["uid"]
        assert volumes._until_token_renewal(pod["metadata"]["uid"]) == pytest.approx(80)
        now[0] += 79
        assert await token_now() == first
        now[0] += 1.5
        second = await token_now()
        assert second != first and (await client.review_token(second))["authenticated"]
        assert volumes_module._renew_after(10 * 24 * 3600) == 24 * 3600  # a long token: renewed daily
        # another node cannot get this pod's token through its own subjects
        with pytest.raises(Forbidden):
            await client.request(subjects.node_api("node-b", Verb.TOKEN, by_kind("ServiceAccount"), "team", "robot"),
                                 {"object": {"spec": {"boundObjectRef": {"kind": "Pod", "name": "web"}}}})
    finally:
        await nc.close()


async def _no_fetch(kind: str, namespace: str, name: str) -> Obj | None:
    return None


def _no_facts(pod: Obj, sandbox: Any) -> Any:
    raise AssertionError("not used")


__all__ = ["asyncio"]
