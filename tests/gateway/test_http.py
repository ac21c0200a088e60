"""The gateway's HTTP behaviour that kubectl does not show directly, with a plain HTTP client (aiohttp over
the cluster CA): discovery, watch bookmarks and 410 Expired, Table responses, Status bodies, Warning headers
refused parameters, and authentication."""

from __future__ import annotations

import json
import ssl
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from actors.gateway import watching
from runtime.client import ApiClient
from tests.conftest import ActorRunner, start_api
from tests.gateway.conftest import Gateway, start_gateway

TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"


@pytest.fixture
async def http(gateway: Gateway) -> AsyncIterator[aiohttp.ClientSession]:
    context = ssl.create_default_context(cafile=str(gateway.credentials.ca_cert))
    headers = {"Authorization": f"Bearer {gateway.credentials.token()}"}
    async with aiohttp.ClientSession(gateway.url, headers=headers,
                                     connector=aiohttp.TCPConnector(ssl=context)) as session:
        yield session


async def get_json(http: aiohttp.ClientSession, path: str, status: int = 200, **kwargs: Any) -> Any:
    async with http.get(path, **kwargs) as response:
        body = await response.json(content_type=None)
        assert response.status == status, body
        return body


async def test_discovery(http: aiohttp.ClientSession) -> None:
    assert (await get_json(http, "/version"))["major"] == "1"
    core = await get_json(http, "/api/v1")
    names = {r["name"] for r in core["resources"]}
    assert {"pods", "pods/status", "pods/log", "pods/eviction", "replicationcontrollers/scale", "namespaces",
            "nodes"} <= names
    groups = {g["name"] for g in (await get_json(http, "/apis"))["groups"]}
    assert groups == {"apps", "coordination.k8s.io", "scheduling.k8s.io", "authentication.k8s.io", "policy",
                      "autoscaling", "batch", "storage.k8s.io", "metrics.k8s.io", "rbac.authorization.k8s.io",
                      "authorization.k8s.io"}
    apps = await get_json(http, "/apis/apps/v1")
    deploy = next(r for r in apps["resources"] if r["name"] == "deployments")
    assert deploy["kind"] == "Deployment" and deploy["shortNames"] == ["deploy"] and "watch" in deploy["verbs"]
    assert {"statefulsets", "statefulsets/status", "statefulsets/scale"} <= {r["name"] for r in apps["resources"]}
    autoscaling = await get_json(http, "/apis/autoscaling/v2")
    assert [r["shortNames"] for r in autoscaling["resources"] if r["name"] == "horizontalpodautoscalers"] == [["hpa"]]
    await get_json(http, "/apis/networking.k8s.io/v1", 404)
    aggregated = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json"
    async with http.get("/apis", headers={"Accept": aggregated}) as response:
        assert response.headers["Content-Type"].startswith("application/json;g=apidiscovery.k8s.io;v=v2")
        body = await response.json(content_type=None)
    apps_v1 = next(i for i in body["items"] if i["metadata"]["name"] == "apps")["versions"][0]
    deployments = next(r for r in apps_v1["resources"] if r["resource"] == "deployments")
    assert deployments["scope"] == "Namespaced" and deployments["responseKind"]["kind"] == "Deployment"
    assert {s["subresource"] for s in deployments["subresources"]} == {"status", "scale"}
    index = await get_json(http, "/openapi/v3")
    assert set(index["paths"]) == {"api/v1", "apis/apps/v1", "apis/coordination.k8s.io/v1", "apis/scheduling.k8s.io/v1",
                                   "apis/policy/v1", "apis/autoscaling/v2", "apis/batch/v1", "apis/storage.k8s.io/v1",
                                   "apis/rbac.authorization.k8s.io/v1"}
    doc = await get_json(http, index["paths"]["apis/apps/v1"]["serverRelativeURL"])
    assert doc["components"]["schemas"]["io.k8s.api.apps.v1.Deployment"]["x-kubernetes-group-version-kind"] == [
        {"group": "apps", "version": "v1", "kind": "Deployment"}]


async def test_errors_are_status_and_tokens_are_required(gateway: Gateway, http: aiohttp.ClientSession) -> None:
    missing = await get_json(http, "/api/v1/namespaces/default/pods/nope", 404)
    assert missing["kind"] == "Status" and missing["reason"] == "NotFound" and missing["details"]["name"] == "nope"
    bad = await get_json(http, "/api/v1/pods?labelSelector=a%20in%20(", 400)
    assert bad["reason"] == "BadRequest"
    invalid = await http.post("/api/v1/namespaces/default/pods", json={"metadata": {"name": "x"}, "spec": {}})
    body = await invalid.json()
    assert invalid.status == 422 and body["reason"] == "Invalid" and body["details"]["causes"]
    refused = await get_json(http, "/api/v1/pods?dryRun=Some", 400)
    assert "dryRun" in refused["message"]
    async with aiohttp.ClientSession(gateway.url, connector=aiohttp.TCPConnector(
            ssl=ssl.create_default_context(cafile=str(gateway.credentials.ca_cert)))) as anonymous:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic YTpi"}):
            async with anonymous.get("/api/v1/pods", headers=headers) as response:
                assert response.status == 401
                assert (await response.json())["reason"] == "Unauthorized"
        async with anonymous.get("/healthz") as response:
            assert response.status == 200


async def test_table(http: aiohttp.ClientSession, api_client: ApiClient) -> None:
    await api_client.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "b"}})
    table = await get_json(http, "/api/v1/namespaces/default/configmaps", headers={"Accept": TABLE})
    assert table["kind"] == "Table"
    assert [c["name"] for c in table["columnDefinitions"]] == ["Name", "Data", "Age"]
    assert table["rows"][0]["cells"][:2] == ["c", "1"]
    assert table["rows"][0]["object"]["kind"] == "PartialObjectMetadata"
    full = await get_json(http, "/api/v1/namespaces/default/configmaps?includeObject=Object", headers={"Accept": TABLE})
    assert full["rows"][0]["object"]["data"] == {"a": "b"}


async def read_events(response: aiohttp.ClientResponse, count: int) -> list[dict[str, Any]]:
    events = []
    while len(events) < count:
        line = await response.content.readline()
        assert line, f"stream ended after {events}"
        events.append(json.loads(line))
    return events


async def test_watch_events_and_bookmarks(http: aiohttp.ClientSession, api_client: ApiClient,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(watching, "BOOKMARK_EVERY", 0.3)
    listed = await get_json(http, "/api/v1/namespaces/default/configmaps")
    rv = listed["metadata"]["resourceVersion"]
    async with http.get(f"/api/v1/namespaces/default/configmaps?watch=true&resourceVersion={rv}"
                        "&allowWatchBookmarks=true&timeoutSeconds=20") as response:
        assert response.status == 200
        created = await api_client.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "w"}})
        await api_client.delete("ConfigMap", "w", "default")
        events = await read_events(response, 2)
        assert [e["type"] for e in events] == ["ADDED", "DELETED"]
        assert events[0]["object"]["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]
        while True:  # quiet now: a bookmark at least as new as the deletion
            (event,) = await read_events(response, 1)
            if event["type"] == "BOOKMARK":
                break
        assert int(event["object"]["metadata"]["resourceVersion"]) >= int(events[1]["object"]["metadata"][
            "resourceVersion"])
        assert event["object"]["kind"] == "ConfigMap"


async def test_watch_too_old_is_410_expired(nats_server: Any, runner: ActorRunner, tmp_path: Any) -> None:
    await start_api(runner, window=5)  # an API actor remembering only 5 changes
    gateway = await start_gateway(runner, tmp_path)
    import nats
    nc = await nats.connect(nats_server.url)
    client = ApiClient(nc)
    try:
        first = await client.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "old"}})
        for n in range(20):
            await client.patch("ConfigMap", "old", {"data": {"n": str(n)}}, "default")
        context = ssl.create_default_context(cafile=str(gateway.credentials.ca_cert))
        async with aiohttp.ClientSession(gateway.url, connector=aiohttp.TCPConnector(ssl=context),
                                         headers={"Authorization": f"Bearer {gateway.credentials.token()}"}) as http, \
                http.get("/api/v1/namespaces/default/configmaps?watch=1&resourceVersion="
                         f"{first['metadata']['resourceVersion']}") as response:
            (event,) = await read_events(response, 1)
        assert event["type"] == "ERROR"
        assert event["object"]["code"] == 410 and event["object"]["reason"] == "Expired"
    finally:
        await nc.close()


async def test_field_validation_and_warning_headers(http: aiohttp.ClientSession, api_client: ApiClient) -> None:
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "f", "colour": "red"}, "data": {"a": "b"}}
    async with http.post("/api/v1/namespaces/default/configmaps?fieldValidation=Strict", json=body) as response:
        status = await response.json()
        assert response.status == 400 and 'unknown field "metadata.colour"' in status["message"]
    async with http.post("/api/v1/namespaces/default/configmaps", json=body) as response:
        assert response.status == 201
        assert response.headers.getall("Warning") == ['299 - "unknown field \\"metadata.colour\\""']
    stored = await api_client.get("ConfigMap", "f", "default")
    assert "colour" not in stored["metadata"] and stored["data"] == {"a": "b"}
    async with http.patch("/api/v1/namespaces/default/configmaps/f?fieldValidation=Ignore", json={"extra": 1},
                          headers={"Content-Type": "application/merge-patch+json"}) as response:
        assert response.status == 200 and "Warning" not in response.headers
    assert "extra" not in await api_client.get("ConfigMap", "f", "default")


async def test_two_gateways_share_nothing_but_continue_tokens(gateway: Gateway, http: aiohttp.ClientSession,
                                                              api_client: ApiClient, runner: ActorRunner,
                                                              tmp_path: Any) -> None:
    """Page one from one gateway, page two from another (which holds no snapshot): the second lists again at
    least as new as the first page and continues after its last name."""
    other = await start_gateway(runner, tmp_path)
    assert other.url != gateway.url
    for n in range(5):
        await api_client.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"c{n}"}})
    first = await get_json(http, "/api/v1/namespaces/default/configmaps?limit=2")
    token = first["metadata"]["continue"]
    context = ssl.create_default_context(cafile=str(other.credentials.ca_cert))
    async with aiohttp.ClientSession(other.url, connector=aiohttp.TCPConnector(ssl=context),
                                     headers={"Authorization": f"Bearer {other.credentials.token()}"}) as second:
        rest = await get_json(second, f"/api/v1/namespaces/default/configmaps?limit=10&continue={token}")
    names = [i["metadata"]["name"] for i in first["items"] + rest["items"]]
    assert names == ["c0", "c1", "c2", "c3", "c4"] and "continue" not in rest["metadata"]


async def test_no_api_actor_is_503_service_unavailable(nats_server: Any, runner: ActorRunner, tmp_path: Any) -> None:
    gateway = await start_gateway(runner, tmp_path)  # no API actor on this NATS
    context = ssl.create_default_context(cafile=str(gateway.credentials.ca_cert))
    async with aiohttp.ClientSession(gateway.url, connector=aiohttp.TCPConnector(ssl=context),
                                     headers={"Authorization": f"Bearer {gateway.credentials.token()}"}) as http:
        body = await get_json(http, "/api/v1/namespaces/default/pods/web", 503)
        assert body["reason"] == "ServiceUnavailable" and body["details"]["retryAfterSeconds"] == 1
        # a service-account token cannot be reviewed either: 503, not 401 (the token may well be valid)
        async with http.get("/api/v1/pods", headers={"Authorization": "Bearer some.sa.token"}) as response:
            assert response.status == 503


async def test_eviction_subresource_honours_budgets(http: aiohttp.ClientSession, api_client: ApiClient) -> None:
    for name in ("a", "b", "free"):
        await api_client.create({"apiVersion": "v1", "kind": "Pod", "metadata": {
            "name": name, "labels": {"app": "db" if name != "free" else "other"}},
            "spec": {"containers": [{"name": "c", "image": "i"}]}})
        pod = await api_client.get("Pod", name, "default")
        pod["status"] = {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}
        await api_client.update_status(pod)
    budget = await api_client.create({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
                                      "metadata": {"name": "db"},
                                      "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "db"}}}})
    budget["status"] = {"observedGeneration": budget["metadata"]["generation"], "currentHealthy": 2,
                        "desiredHealthy": 1, "expectedPods": 2, "disruptionsAllowed": 1}
    await api_client.update_status(budget)
    eviction = {"apiVersion": "policy/v1", "kind": "Eviction", "deleteOptions": {"gracePeriodSeconds": 0}}
    async with http.post("/api/v1/namespaces/default/pods/a/eviction", json=eviction) as response:
        assert response.status == 201, await response.text()
    async with http.post("/api/v1/namespaces/default/pods/b/eviction", json=eviction) as response:
        body = await response.json(content_type=None)
        assert response.status == 429, body
        assert body["reason"] == "TooManyRequests" and "disruption budget" in body["message"]
    async with http.post("/api/v1/namespaces/default/pods/free/eviction", json=eviction) as response:
        assert response.status == 201, await response.text()
    spent = await api_client.get("PodDisruptionBudget", "db", "default")
    assert spent["status"]["disruptionsAllowed"] == 0 and set(spent["status"]["disruptedPods"]) == {"a"}
