"""Node-scoped subjects: a kubelet's writes reach only its own Node, Lease and pods."""

from __future__ import annotations

import pytest

from protocol.errors import Forbidden, NotFound
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
    with pytest.raises(Forbidden):  # evictions are for people and controllers, not for kubelets
        await n1.evict("mine", "default")
    await n1.delete("pods", "mine", grace_period=0)


async def test_a_pods_node_is_checked_on_the_version_read_and_written(client: ApiClient) -> None:
    n1 = ApiClient(client.nc, node_scope="n1")
    await client.create(pod("p"))
    with pytest.raises(Forbidden):  # not bound yet: not n1's
        await n1.patch("pods", "p", {"status": {"phase": "Running"}}, status=True)
    await client.bind("p", "default", "n2")
    theirs = await client.get("pods", "p")
    theirs["status"] = {"phase": "Failed"}
    with pytest.raises(Forbidden):  # a status write carrying the right resourceVersion is still refused
        await n1.update_status(theirs)
    await client.delete("pods", "p", grace_period=0)
    with pytest.raises(NotFound):  # gone: what a kubelet's status writer expects
        await n1.patch("pods", "p", {"status": {"phase": "Running"}}, status=True)
    await client.create(pod("p"))
    await client.bind("p", "default", "n1")
    mine = await n1.get("pods", "p")
    mine["status"] = {"phase": "Running"}
    assert (await n1.update_status(mine))["status"]["phase"] == "Running"
    assert (await client.get("pods", "p"))["status"]["phase"] == "Running"
