"""The cloud controller manager with the local provider, against a real API actor."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from actors.cloud.local import LocalProvider
from actors.cloud.manager import LB_FINALIZER, CloudControllerManager
from actors.cloud.provider import ProviderError, VolumeRequest
from agents.proxy.agent import ProxyAgent
from protocol.errors import NotFound
from runtime.client import ApiClient
from runtime.nats_server import free_port
from tests.conftest import ActorRunner


async def eventually(check, timeout: float = 15.0):  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        try:
            result = await check()
            if result:
                return result
        except (AssertionError, NotFound):
            pass
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.1)


def node(name: str, cidr: str) -> dict:
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name}, "spec": {"podCIDR": cidr}}


async def test_nodes_routes_and_load_balancers(tmp_path: Path, runner: ActorRunner, client: ApiClient) -> None:
    provider = LocalProvider(tmp_path)
    (tmp_path / "machines").mkdir()
    for name in ("m1", "m2"):
        (tmp_path / "machines" / name).touch()
        await client.create(node(name, f"127.88.{name[-1]}.0/24"))
    await runner.start(CloudControllerManager(provider, leader_elect=False, resync=0.5), ready=lambda: True)

    async def routes() -> bool:
        return {(r.node, r.destination_cidr) for r in await provider.list_routes()} == {
            ("m1", "127.88.1.0/24"), ("m2", "127.88.2.0/24")}

    await eventually(routes)
    (tmp_path / "machines" / "m2").unlink()  # the operator decommissions machine m2

    async def m2_gone() -> bool:
        try:
            await client.get("Node", "m2")
            return False
        except NotFound:
            return True

    await eventually(m2_gone)
    await client.get("Node", "m1")

    # a LoadBalancer service gets an address, and the proxy serves it there
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"from-backend")
        await writer.drain()
        writer.close()

    backend = await asyncio.start_server(handle, "127.0.0.1", 0)
    agent = ProxyAgent("m1", node_addresses=["127.0.0.1"])
    await runner.start(agent, ready=lambda: agent.synced.is_set())
    port = free_port()
    await client.create({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "lb"},
                         "spec": {"type": "LoadBalancer", "ports": [{"port": port}]}})
    await client.create({"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "lb"},
                         "subsets": [{"addresses": [{"ip": "127.0.0.1"}],
                                      "ports": [{"port": backend.sockets[0].getsockname()[1]}]}]})

    async def ingress() -> str | None:
        svc = await client.get("svc", "lb")
        items = ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
        assert LB_FINALIZER in svc["metadata"].get("finalizers", [])
        return items[0]["ip"] if items else None

    ip = await eventually(ingress)
    assert ip.startswith("127.78.")

    async def reachable() -> bytes:
        reader, writer = await asyncio.open_connection(ip, port)
        data = await reader.read()
        writer.close()
        return data

    assert await eventually(lambda: _try(reachable)) == b"from-backend"
    await client.delete("svc", "lb")

    async def lb_deleted() -> bool:
        try:
            await client.get("svc", "lb")
            return False
        except NotFound:
            return True

    await eventually(lb_deleted)
    backend.close()


async def _try(fn):  # type: ignore[no-untyped-def]
    try:
        return await fn()
    except OSError:
        return None


async def test_local_provider_volumes_are_node_directories(tmp_path: Path) -> None:
    provider = LocalProvider(tmp_path, volume_dir=str(tmp_path / "lp"))
    (default,) = provider.storage_classes()
    assert default["provisioner"] == provider.provisioner == "shoal.io/local-path"
    assert default["volumeBindingMode"] == "WaitForFirstConsumer" and default["reclaimPolicy"] == "Delete"
    request = VolumeRequest("pvc-1", "team", "data", 2**30, (), "n1")
    source = await provider.provision_volume(request)
    path = str(tmp_path / "lp" / "pvc-1_team_data")
    assert source["hostPath"] == {"path": path, "type": "DirectoryOrCreate"}
    assert source["nodeAffinity"]["required"]["nodeSelectorTerms"][0]["matchExpressions"] == [
        {"key": "kubernetes.io/hostname", "operator": "In", "values": ["n1"]}]
    with pytest.raises(ProviderError, match="node-local"):
        await provider.provision_volume(VolumeRequest("pvc-2", "team", "data", 2**30))
    os.makedirs(path)
    with open(os.path.join(path, "file"), "w") as f:
        f.write("x")
    await provider.delete_volume({"metadata": {"name": "pvc-1"}, "spec": source})
    assert not await asyncio.to_thread(os.path.exists, path)
    await provider.delete_volume({"metadata": {"name": "pvc-1"}, "spec": source})  # idempotent
    with pytest.raises(ProviderError, match="not deleting"):
        await provider.delete_volume({"metadata": {"name": "x"}, "spec": {"hostPath": {"path": "/etc"}}})
