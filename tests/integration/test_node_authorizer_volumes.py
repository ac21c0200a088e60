"""The Node authorizer's pod -> claim -> volume edge: a kubelet reads a PersistentVolume only while a pod bound
to its node references a claim bound to that volume; real nats-server with two kubelets' credentials."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from protocol import subjects
from protocol.errors import Forbidden, ShoalError
from protocol.kinds import by_kind
from protocol.subjects import Verb
from runtime.client import ApiClient
from tests.integration.test_node_authorizer import secured  # noqa: F401  (fixture)


async def node_get(nc: Any, node: str, kind: str, name: str, namespace: str | None) -> dict[str, Any]:
    reply = await ApiClient(nc, node_scope=node).request(
        subjects.node_api(node, Verb.GET, by_kind(kind), namespace, name), {})
    return reply["object"]  # type: ignore[no-any-return]


async def eventually(call: Any) -> dict[str, Any]:
    for _ in range(100):
        try:
            return await call()  # type: ignore[no-any-return]
        except Forbidden:
            await asyncio.sleep(0.05)
    return await call()  # type: ignore[no-any-return]


async def test_a_kubelet_reads_the_volume_of_a_claim_its_pods_use(secured: dict[str, Any]) -> None:  # noqa: F811
    admin: ApiClient = secured["admin"]
    for name in ("pv1", "pv2"):
        await admin.create({"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": name},
                            "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
                                     "hostPath": {"path": f"/srv/{name}"}}})
    await admin.create({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "data"},
                        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}},
                                 "storageClassName": "", "volumeName": "pv1"}})
    await admin.create({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {
        "volumes": [{"name": "d", "persistentVolumeClaim": {"claimName": "data"}}],
        "containers": [{"name": "c", "image": "i"}]}})
    await admin.bind("p", "default", "n1")
    claim = await eventually(lambda: node_get(secured["n1"], "n1", "PersistentVolumeClaim", "data", "default"))
    assert claim["spec"]["volumeName"] == "pv1"
    assert (await node_get(secured["n1"], "n1", "PersistentVolume", "pv1", None))["metadata"]["name"] == "pv1"
    for node, name in (("n1", "pv2"), ("n2", "pv1")):
        with pytest.raises(Forbidden):
            await node_get(secured[node], node, "PersistentVolume", name, None)
    with pytest.raises(ShoalError):  # nor on the general subjects
        await ApiClient(secured["n1"], timeout=1.0).get("PersistentVolume", "pv1")
    await admin.delete("pods", "p", grace_period=0)
    for _ in range(100):
        try:
            await node_get(secured["n1"], "n1", "PersistentVolume", "pv1", None)
        except Forbidden:
            break
        await asyncio.sleep(0.05)
    else:
        pytest.fail("n1 still reads pv1 after its pod was deleted")
