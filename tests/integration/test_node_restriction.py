"""Node-scoped subjects: a kubelet's writes reach only its own Node, Lease and pods."""

from __future__ import annotations

import pytest

from protocol.errors import Forbidden
from runtime.client import ApiClient


def pod(name: str) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"containers": [{"name": "c", "image": "i"}]}}


def lease(name: str) -> dict:
    return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": name, "namespace": "kube-node-lease"}, "spec": {"holderIdentity": name}}


async def test_kubelet_writes_only_what_belongs_to_its_node(client: ApiClient) -> None:
    n1 = ApiClient(client.nc, node_scope="n1")
    await n1.create({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"}})
    with pytest.raises(Forbidden):
        await n1.create({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n2"}})
    await client.create({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n2"}})
    node = await n1.get("Node", "n1")
    node["status"] = {"conditions": [{"type": "Ready", "status": "True"}]}
    await n1.update_status(node)
    other = await client.get("Node", "n2")
    other["status"] = {"conditions": [{"type": "Ready", "status": "False"}]}
    with pytest.raises(Forbidden):
        await n1.update_status(other)
    await n1.create(lease("n1"))
    with pytest.raises(Forbidden):
        await n1.create(lease("n2"))
    with pytest.raises(Forbidden):
        await n1.create(pod("sneaky"))
    await client.create(pod("mine"))
    await client.create(pod("theirs"))
    await client.bind("mine", "default", "n1")
    await client.bind("theirs", "default", "n2")
    await n1.patch("pods", "mine", {"status": {"phase": "Running"}}, status=True)
    with pytest.raises(Forbidden):
        await n1.patch("pods", "theirs", {"status": {"phase": "Running"}}, status=True)
    with pytest.raises(Forbidden):
        await n1.delete("pods", "theirs", grace_period=0)
    assert (await client.get("pods", "theirs"))["status"]["phase"] == "Pending"
    await n1.delete("pods", "mine", grace_period=0)
