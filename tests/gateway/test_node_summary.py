"""The console's per-node pod summary (``actors.gateway.nodesummary``) through a real gateway and API actor:
a GET answers the snapshot; a websocket (authenticated by subprotocol, as a browser must) gets the snapshot,
then only the nodes whose totals changed when pods are created, bound, finish and are deleted; a user who may
not list pods in every namespace is refused in the API's words (and the console then falls back to the pods
it may list); a second tab shares the gateway's one feed; the feed stops and forgets its sums once nobody
watches, unless it is kept (``--keep-node-summary``)."""

from __future__ import annotations

import asyncio
import base64
import json
import ssl
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest

from actors.gateway import watching
from actors.gateway.nodesummary import PATH, NodeSummaryFeed
from protocol.objects import Obj
from runtime.client import ApiClient
from tests.gateway.conftest import Gateway

MI = 2**20


def bearer_protocol(token: str) -> str:
    return "base64url.bearer.authorization.k8s.io." + base64.urlsafe_b64encode(token.encode()).decode().rstrip("=")


def pod(name: str, node: str | None, cpu: str = "250m", namespace: str = "default") -> Obj:
    spec: dict[str, Any] = {"containers": [{"name": "c", "image": "img:1",
                                            "resources": {"requests": {"cpu": cpu, "memory": "64Mi"}}}]}
    if node:
        spec["nodeName"] = node
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": namespace}, "spec": spec}


@pytest.fixture
async def http(gateway: Gateway) -> AsyncIterator[aiohttp.ClientSession]:
    context = ssl.create_default_context(cafile=str(gateway.credentials.ca_cert))
    async with aiohttp.ClientSession(gateway.url, connector=aiohttp.TCPConnector(ssl=context)) as session:
        yield session


async def next_change(ws: aiohttp.ClientWebSocketResponse, figures: dict[str, Any]) -> dict[str, Any]:
    """The next message, applied to ``figures`` (node -> totals) as the console applies it."""
    message = await ws.receive(timeout=30)
    assert message.type == aiohttp.WSMsgType.TEXT, message
    body: dict[str, Any] = json.loads(message.data)
    if body["type"] == "SNAPSHOT":
        figures.clear()
    for node, totals in body["nodes"].items():
        if totals is None:
            figures.pop(node, None)
        else:
            figures[node] = totals
    return body


async def until(ws: aiohttp.ClientWebSocketResponse, figures: dict[str, Any], wanted: dict[str, Any]) -> None:
    seen = []
    while figures != wanted:
        try:
            seen.append(await next_change(ws, figures))
        except TimeoutError:
            raise AssertionError(f"the summary shows {figures}, not {wanted}, after {seen}") from None
        assert len(seen) < 50, seen


async def test_snapshot_then_live_changes(gateway: Gateway, api_client: ApiClient,
                                          http: aiohttp.ClientSession) -> None:
    token = gateway.credentials.token()
    await api_client.create(pod("a", "n1"))
    await api_client.create(pod("b", "n1", cpu="1"))
    await api_client.create(pod("c", "n2"), "default")
    async with http.get(PATH, headers={"Authorization": f"Bearer {token}"}) as response:
        assert response.status == 200, await response.text()
        plain = await response.json()
    assert plain["kind"] == "NodeSummary" and plain["fields"] == ["pods", "cpu", "memory", "notRunning"]
    assert plain["nodes"] == {"n1": [2, 1250, 128 * MI, 2], "n2": [1, 250, 64 * MI, 1]} and plain["pods"] == 3

    ws = await http.ws_connect(PATH, protocols=(bearer_protocol(token), watching.WEBSOCKET_PROTOCOL))
    second = await http.ws_connect(PATH, protocols=(bearer_protocol(token), watching.WEBSOCKET_PROTOCOL))
    try:
        assert ws.protocol == watching.WEBSOCKET_PROTOCOL  # the token is never echoed back
        figures: dict[str, Any] = {}
        first = await next_change(ws, figures)
        assert first["type"] == "SNAPSHOT" and first["fields"] == plain["fields"]
        assert figures == plain["nodes"]

        await api_client.create(pod("d", "n3", cpu="2"))
        await until(ws, figures, {**plain["nodes"], "n3": [1, 2000, 64 * MI, 1]})
        running = await api_client.get("Pod", "a", "default")
        running["status"] = {"phase": "Running"}
        await api_client.update_status(running)
        await until(ws, figures, {"n1": [2, 1250, 128 * MI, 1], "n2": [1, 250, 64 * MI, 1],
                                  "n3": [1, 2000, 64 * MI, 1]})
        await api_client.delete("Pod", "b", "default", grace_period=0)  # no kubelet to confirm
        await api_client.delete("Pod", "d", "default", grace_period=0)
        await until(ws, figures, {"n1": [1, 250, 64 * MI, 0], "n2": [1, 250, 64 * MI, 1]})
        # a pod not yet bound is summed under "" (unscheduled); its binding moves it to the node
        await api_client.create(pod("e", None))
        await until(ws, figures, {"n1": [1, 250, 64 * MI, 0], "n2": [1, 250, 64 * MI, 1], "": [1, 250, 64 * MI, 1]})
        await api_client.bind("e", "default", "n2")
        await until(ws, figures, {"n1": [1, 250, 64 * MI, 0], "n2": [2, 500, 128 * MI, 2]})
        # a finished pod costs its node nothing
        done = await api_client.get("Pod", "c", "default")
        done["status"] = {"phase": "Succeeded"}
        await api_client.update_status(done)
        await until(ws, figures, {"n1": [1, 250, 64 * MI, 0], "n2": [1, 250, 64 * MI, 1]})
        # the second tab, fed by the same watch, got there too
        other: dict[str, Any] = {}
        await until(second, other, figures)
        assert len(gateway.actor.node_summary.subscribers) == 2
        assert gateway.actor.node_summary.relists == 1  # one list for both tabs and the GET
    finally:
        await ws.close()
        await second.close()


async def test_a_user_who_may_not_list_every_pod_is_refused(gateway: Gateway, api_client: ApiClient,
                                                           http: aiohttp.ClientSession) -> None:
    await api_client.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team"}})
    await api_client.create({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "robot"}}, "team")
    secret = await api_client.create({
        "apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/service-account-token",
        "metadata": {"name": "robot-token", "annotations": {"kubernetes.io/service-account.name": "robot"}}}, "team")
    token = base64.b64decode(secret["data"]["token"]).decode()
    # allowed to read pods in its own namespace only: the summary is of every namespace's pods
    view = {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"}
    await api_client.create({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                             "metadata": {"name": "robot-view", "namespace": "team"}, "roleRef": view,
                             "subjects": [{"kind": "ServiceAccount", "name": "robot", "namespace": "team"}]}, "team")
    async with http.get(PATH, headers={"Authorization": f"Bearer {token}"}) as response:
        assert response.status == 403
        body = await response.json()
    assert body["reason"] == "Forbidden"
    assert body["message"] == ('pods is forbidden: User "system:serviceaccount:team:robot" cannot list resource '
                               '"pods" in API group "" at the cluster scope')
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await http.ws_connect(PATH, protocols=(bearer_protocol(token), watching.WEBSOCKET_PROTOCOL))
    assert refused.value.status == 403
    async with http.get("/api/v1/namespaces/team/pods", headers={"Authorization": f"Bearer {token}"}) as response:
        assert response.status == 200  # what it may see: the console's fallback
    assert gateway.actor.node_summary.relists == 0  # nothing was listed for a refused user


async def settle(check: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "not within the time"
        await asyncio.sleep(0.02)


async def test_the_feed_runs_while_watched_then_forgets_or_is_kept(gateway: Gateway, api_client: ApiClient) -> None:
    await api_client.create(pod("a", "n1"))
    lazy = NodeSummaryFeed(api_client, idle=0.2)
    assert lazy.relists == 0  # nothing listed before a subscriber
    async with lazy.subscribe() as subscriber:
        assert lazy.snapshot()["nodes"] == {"n1": (1, 250, 64 * MI, 1)}
        await api_client.create(pod("b", "n2"))
        await settle(lambda: "n2" in subscriber.dirty)
    await settle(lambda: not lazy.synced.is_set() and len(lazy.sums) == 0)  # stopped, sums dropped
    kept = NodeSummaryFeed(api_client, idle=None)  # --keep-node-summary: listed at once, without a subscriber
    try:
        await settle(lambda: kept.synced.is_set() and len(kept.sums) == 2)
        async with kept.subscribe():
            pass
        await asyncio.sleep(0.3)
        assert kept.synced.is_set() and kept.sums.totals("n2") == (1, 250, 64 * MI, 1)  # still there
    finally:
        kept.stop()
