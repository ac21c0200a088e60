"""Many concurrent watches through one gateway (one NATS connection), over websockets as the web console
opens them and over plain HTTP streams as kubectl does: each sees an object created after it opened.

Issue 17's regression: the console's workloads view opens eight watches, and a browser keeps at most six
HTTP/1.1 connections to a server, each streamed watch holding one; the seventh and eighth (endpoints, pods)
never started, so a pod created later never appeared. The console now watches over websockets, which the
gateway serves as the Kubernetes API server does (one event per text message, the bearer token as the
``base64url.bearer.authorization.k8s.io.`` subprotocol); the gateway's multiplexing of many watches over its
one NATS connection was never at fault, which the HTTP half of the test keeps showing."""

from __future__ import annotations

import asyncio
import base64
import json
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from actors.gateway import watching
from actors.gateway.server import GatewayActor, GatewaySettings
from actors.gateway.watchslots import WatchSlots
from protocol.errors import TooManyRequests
from runtime.client import ApiClient
from shoal.kubeconfig import ensure_credentials, issue_client_certificate
from tests.conftest import ActorRunner, start_api
from tests.controllers.conftest import eventually
from tests.gateway.conftest import Gateway

WORKLOADS_VIEW = ("/apis/apps/v1/namespaces/default/deployments", "/apis/apps/v1/namespaces/default/statefulsets",
                  "/apis/apps/v1/namespaces/default/daemonsets", "/apis/apps/v1/namespaces/default/replicasets",
                  "/apis/batch/v1/namespaces/default/jobs", "/api/v1/namespaces/default/services",
                  "/api/v1/namespaces/default/endpoints")
PODS = "/api/v1/namespaces/default/pods"


def bearer_protocol(token: str) -> str:
    encoded = base64.urlsafe_b64encode(token.encode()).decode().rstrip("=")
    return f"base64url.bearer.authorization.k8s.io.{encoded}"


@pytest.fixture
async def http(gateway: Gateway) -> AsyncIterator[aiohttp.ClientSession]:
    """A session with no Authorization header: websockets authenticate by subprotocol, as a browser must."""
    context = ssl.create_default_context(cafile=str(gateway.credentials.ca_cert))
    async with aiohttp.ClientSession(gateway.url, connector=aiohttp.TCPConnector(ssl=context, limit=0)) as session:
        yield session


async def list_version(http: aiohttp.ClientSession, token: str, path: str) -> str:
    async with http.get(path, params={"limit": "500"}, headers={"Authorization": f"Bearer {token}"}) as response:
        assert response.status == 200, await response.text()
        return str((await response.json())["metadata"]["resourceVersion"])


async def ws_names(ws: aiohttp.ClientWebSocketResponse, wanted: str) -> list[str]:
    """The ADDED names a websocket watch delivers, up to ``wanted``."""
    seen: list[str] = []
    async for message in ws:
        assert message.type == aiohttp.WSMsgType.TEXT, message
        event = json.loads(message.data)
        assert event["type"] != "ERROR", event
        if event["type"] == "ADDED":
            seen.append(event["object"]["metadata"]["name"])
            if event["object"]["metadata"]["name"] == wanted:
                return seen
    raise AssertionError(f"the websocket closed before {wanted} was added; saw {seen}")


async def stream_names(response: aiohttp.ClientResponse, wanted: str) -> list[str]:
    seen: list[str] = []
    async for line in response.content:
        if not line.strip():
            continue
        event = json.loads(line)
        assert event["type"] != "ERROR", event
        if event["type"] == "ADDED":
            seen.append(event["object"]["metadata"]["name"])
            if event["object"]["metadata"]["name"] == wanted:
                return seen
    raise AssertionError(f"the stream ended before {wanted} was added; saw {seen}")


def pod(name: str) -> dict[str, object]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default"},
            "spec": {"nodeName": "nowhere", "containers": [{"name": "c", "image": "img:1"}]}}


async def test_many_concurrent_watches_each_see_a_later_create(gateway: Gateway, api_client: ApiClient,
                                                                http: aiohttp.ClientSession) -> None:
    token = gateway.credentials.token()
    protocols = (bearer_protocol(token), watching.WEBSOCKET_PROTOCOL)
    opened: list[aiohttp.ClientWebSocketResponse] = []
    streams: list[aiohttp.ClientResponse] = []
    try:
        # the console's workloads view: seven collections and pods, over websockets; then eight more pod
        # watches over websockets and eight over HTTP streams (each its own connection): 23 watches at once
        for path in (*WORKLOADS_VIEW, *[PODS] * 9):
            version = await list_version(http, token, path)
            ws = await http.ws_connect(f"{path}?watch=true&allowWatchBookmarks=true&resourceVersion={version}",
                                       protocols=protocols)
            assert ws.protocol == watching.WEBSOCKET_PROTOCOL  # the token is never echoed back
            opened.append(ws)
        for _ in range(8):
            version = await list_version(http, token, PODS)
            response = await http.get(PODS, params={"watch": "true", "resourceVersion": version},
                                      headers={"Authorization": f"Bearer {token}"})
            assert response.status == 200
            streams.append(response)
        await api_client.create(pod("late"))
        pod_sockets = opened[len(WORKLOADS_VIEW):]
        seen = await asyncio.wait_for(asyncio.gather(*(ws_names(ws, "late") for ws in pod_sockets),
                                                     *(stream_names(r, "late") for r in streams)), 30)
        assert seen == [["late"]] * (len(pod_sockets) + len(streams))
        # the other collections' sockets are open and quiet (no pod leaked into them), then closed by us
        for ws in opened[:len(WORKLOADS_VIEW)]:
            assert not ws.closed
    finally:
        for ws in opened:
            await ws.close()
        for response in streams:
            response.close()


async def test_websocket_watch_authentication(gateway: Gateway, http: aiohttp.ClientSession) -> None:
    path = f"{PODS}?watch=true"
    for protocols in ((bearer_protocol("not-the-token"), watching.WEBSOCKET_PROTOCOL),  # a token nobody vouches for
                      ("base64url.bearer.authorization.k8s.io.!!!", watching.WEBSOCKET_PROTOCOL),  # not base64url
                      (watching.WEBSOCKET_PROTOCOL,)):  # no token at all
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await http.ws_connect(path, protocols=protocols)
        assert refused.value.status == 401, protocols
    # an Authorization header (kubectl-like clients) works as for any request
    ws = await http.ws_connect(path, protocols=(watching.WEBSOCKET_PROTOCOL,),
                               headers={"Authorization": f"Bearer {gateway.credentials.token()}"})
    assert ws.protocol == watching.WEBSOCKET_PROTOCOL
    await ws.close()


async def test_a_websocket_from_another_site_is_refused(gateway: Gateway, http: aiohttp.ClientSession) -> None:
    """A page elsewhere cannot open a watch (or exec) with the browser's ambient credentials (a client
    certificate): an upgrade whose Origin is not the gateway's own is 403 even with a valid token."""
    path = f"{PODS}?watch=true"
    protocols = (bearer_protocol(gateway.credentials.token()), watching.WEBSOCKET_PROTOCOL)
    host = gateway.url.removeprefix("https://")
    for origin in ("https://evil.example", f"https://{host}.evil.example", "null"):
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await http.ws_connect(path, protocols=protocols, origin=origin)
        assert refused.value.status == 403, origin
    ws = await http.ws_connect(path, protocols=protocols, origin=gateway.url)  # the console's own page
    assert ws.protocol == watching.WEBSOCKET_PROTOCOL
    await ws.close()


def test_watch_slots_count_per_user() -> None:
    slots = WatchSlots(2)
    with slots.hold("a"), slots.hold("a"), slots.hold("b"):
        with pytest.raises(TooManyRequests) as refused, slots.hold("a"):
            pass
        assert refused.value.details == {"limit": 2} and slots.open == {"a": 2, "b": 1}
    assert slots.open == {}  # every slot given back, a refused one never taken
    with pytest.raises(ValueError):
        WatchSlots(0)


async def test_watches_are_limited_per_user_not_per_gateway(nats_server: object, runner: ActorRunner,
                                                            tmp_path: Path) -> None:
    """The gateway's watches all ride its one NATS connection (the API actors allow 500 there): one user
    gets ``watches_per_user`` of them, then 429, and another user still gets theirs; a closed watch gives its
    slot back, and every slot is back once the clients are gone."""
    await start_api(runner)
    creds = ensure_credentials(tmp_path / "gateway")
    actor = GatewayActor(GatewaySettings(port=0, cert_file=creds.cert, key_file=creds.key,
                                         admin_token_file=creds.token_file, client_ca_file=creds.ca_cert,
                                         watches_per_user=3))
    await runner.start(actor, ready=lambda: actor.port is not None)
    url = f"https://127.0.0.1:{actor.port}"
    cert, key = issue_client_certificate(creds, "alice")
    (tmp_path / "alice.crt").write_bytes(cert)
    (tmp_path / "alice.key").write_bytes(key)
    alice_tls = ssl.create_default_context(cafile=str(creds.ca_cert))
    alice_tls.load_cert_chain(tmp_path / "alice.crt", tmp_path / "alice.key")
    admin_tls = ssl.create_default_context(cafile=str(creds.ca_cert))
    protocols = (bearer_protocol(creds.token()), watching.WEBSOCKET_PROTOCOL)
    path = f"{PODS}?watch=true"
    async with aiohttp.ClientSession(url, connector=aiohttp.TCPConnector(ssl=admin_tls, limit=0)) as admin, \
            aiohttp.ClientSession(url, connector=aiohttp.TCPConnector(ssl=alice_tls, limit=0)) as alice:
        held = [await admin.ws_connect(path, protocols=protocols) for _ in range(3)]
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await admin.ws_connect(path, protocols=protocols)
        assert refused.value.status == 429
        async with admin.get(PODS, params={"watch": "true"},
                             headers={"Authorization": f"Bearer {creds.token()}"}) as response:
            body = await response.json()
            assert response.status == 429 and body["reason"] == "TooManyRequests", body
            assert "3 watches open" in body["message"]
        theirs = [await alice.ws_connect(path, protocols=(watching.WEBSOCKET_PROTOCOL,)) for _ in range(3)]
        await held.pop().close()  # a closed watch gives its slot back

        async def reopened() -> aiohttp.ClientWebSocketResponse | None:
            try:
                return await admin.ws_connect(path, protocols=protocols)
            except aiohttp.WSServerHandshakeError as exc:
                assert exc.status == 429
                return None

        held.append(await eventually(reopened))
        for ws in held + theirs:
            await ws.close()

    async def all_given_back() -> bool:
        return actor.handlers.watch_slots.open == {}

    await eventually(all_given_back)
