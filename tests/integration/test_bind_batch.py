"""Batched binds: per-item results, one bad item never fails the others, no pod bound twice."""

from __future__ import annotations

import asyncio

import nats
import pytest

from protocol import codec
from protocol.bindings import MAX_BINDINGS, Binding
from protocol.errors import BadRequest, Conflict, Forbidden, NotFound
from runtime.client import ApiClient


def pod(name: str, namespace: str = "default") -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": namespace},
            "spec": {"containers": [{"name": "c", "image": "i"}]}}


async def raw_request(nc: nats.NATS, subject: str, payload: dict) -> dict:
    msg = await nc.request(subject, codec.encode(payload), timeout=5)
    return codec.decode(msg.data)


async def test_batch_binds_each_item_and_reports_per_item(client: ApiClient) -> None:
    await client.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "other"}})
    for name in ("a", "b", "taken", "recreated"):
        await client.create(pod(name))
    await client.create(pod("c", "other"))
    await client.bind("taken", "default", "node-9")
    old_uid = (await client.get("pods", "recreated"))["metadata"]["uid"]
    results = await client.bind_many([
        Binding("default", "a", "node-1"),
        Binding("default", "taken", "node-1"),          # bound elsewhere already: Conflict
        Binding("default", "ghost", "node-1"),          # no such pod: NotFound
        Binding("other", "c", "node-2"),                # another namespace in the same batch
        Binding("default", "recreated", "node-1", uid="not-" + old_uid),  # another incarnation: Conflict
        Binding("default", "b", "node-3"),
    ])
    assert isinstance(results[0], int) and isinstance(results[3], int) and isinstance(results[5], int)
    assert isinstance(results[1], Conflict) and "node-9" in results[1].message
    assert isinstance(results[2], NotFound)
    assert isinstance(results[4], Conflict)
    a = await client.get("pods", "a")
    assert a["spec"]["nodeName"] == "node-1" and a["metadata"]["resourceVersion"] == str(results[0])
    assert any(c["type"] == "PodScheduled" and c["status"] == "True" for c in a["status"]["conditions"])
    assert (await client.get("pods", "c", "other"))["spec"]["nodeName"] == "node-2"
    assert (await client.get("pods", "b"))["spec"]["nodeName"] == "node-3"
    assert (await client.get("pods", "taken"))["spec"]["nodeName"] == "node-9"
    assert "nodeName" not in (await client.get("pods", "recreated"))["spec"]
    # binding again to the same node is idempotent; to another node is a Conflict
    again = await client.bind_many([Binding("default", "a", "node-1"), Binding("default", "b", "node-1")])
    assert again[0] == results[0] and isinstance(again[1], Conflict)


async def test_racing_batches_never_bind_a_pod_twice(client: ApiClient) -> None:
    names = [f"p{i}" for i in range(40)]
    await asyncio.gather(*(client.create(pod(n)) for n in names))
    batches = [[Binding("default", n, f"node-{k}") for n in names] for k in range(4)]
    outcomes = await asyncio.gather(*(client.bind_many(b) for b in batches))
    for i, name in enumerate(names):
        winners = [k for k in range(4) if isinstance(outcomes[k][i], int)]
        assert len(winners) == 1, (name, [outcomes[k][i] for k in range(4)])
        assert all(isinstance(outcomes[k][i], Conflict) for k in range(4) if k != winners[0])
        assert (await client.get("pods", name))["spec"]["nodeName"] == f"node-{winners[0]}"


async def test_malformed_batches_get_typed_errors_and_change_nothing(client: ApiClient) -> None:
    await client.create(pod("keep"))
    nc = client.nc
    for payload in ({}, {"bindings": "a string"}, {"bindings": {"name": "keep"}},
                    {"bindings": [{"name": "keep", "node": "n"}] * (MAX_BINDINGS + 1)}):
        reply = await raw_request(nc, "shoal.api.bind.pods._all", payload)
        assert reply["ok"] is False and reply["error"]["code"] == "BadRequest", reply
    reply = await raw_request(nc, "shoal.api.bind.configmaps._all", {"bindings": []})
    assert reply["ok"] is False and reply["error"]["code"] == "BadRequest"
    # item by item: malformed items are refused, the good one in the same batch is bound
    reply = await raw_request(nc, "shoal.api.bind.pods.default", {"bindings": [
        "not a map", {"name": "keep"}, {"name": "keep", "node": 5}, {"node": "n1"},
        {"name": "keep", "node": "n1", "namespace": "elsewhere"}, {"name": "keep", "node": "n1", "uid": 7},
        {"name": "keep", "node": "n1", "resourceVersion": [1]}, {"name": "keep", "node": "n1"}]})
    assert reply["ok"] is True
    codes = [r["error"]["code"] if not r["ok"] else "ok" for r in reply["results"]]
    assert codes == ["BadRequest"] * 7 + ["ok"]
    assert (await client.get("pods", "keep"))["spec"]["nodeName"] == "n1"
    # _all needs a namespace on every item
    reply = await raw_request(nc, "shoal.api.bind.pods._all", {"bindings": [{"name": "keep", "node": "n1"}]})
    assert reply["results"][0]["error"]["code"] == "BadRequest"
    with pytest.raises(BadRequest):
        await client.request("shoal.api.bind.pods._all", {"bindings": None})
    assert await client.bind_many([]) == []


async def test_kubelets_cannot_batch_bind(client: ApiClient) -> None:
    await client.create(pod("x"))
    with pytest.raises(Forbidden):
        await client.request("shoal.node.n1.api.bind.pods._all",
                             {"bindings": [{"namespace": "default", "name": "x", "node": "n1"}]})
    assert "nodeName" not in (await client.get("pods", "x"))["spec"]
