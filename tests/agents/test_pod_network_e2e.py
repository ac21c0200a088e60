"""The node's pod network on real Podman: a bridge network with the podCIDR node IPAM gave the Node,
pods reaching each other at podIP:containerPort, the node reaching them, hostPorts still published.

Each test gets its own node name and its own /24 (the first half of a /23 in 198.18.64-127.0 that no host
route overlaps, picked at random), so two runs on one machine, or a `shoal up` cluster left running, never
share a network; the network and every sandbox are removed afterwards,
pass or fail.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import pytest_asyncio

from actors.api.server import ApiActor
from agents.kubelet.agent import KubeletAgent
from agents.kubelet.config import KubeletConfig
from agents.kubelet.images import BUSYBOX_IMAGE
from agents.kubelet.podman_runtime import PodmanRuntime
from agents.kubelet.podman_service import PodmanService
from agents.kubelet.podnetwork import network_name
from agents.kubelet.podnetwork_nat import PodNatExemption
from agents.kubelet.podnetwork_nat import table_name as nat_table
from protocol.objects import Obj
from runtime.client import ApiClient
from runtime.host_subnets import free_block
from tests.agents.kubelet_helpers import create_bound, eventually, is_ready, phase, pod_manifest, pod_where, started
from tests.conftest import ActorRunner
from tests.controllers.conftest import start_manager

pytestmark = [pytest.mark.podman, pytest.mark.slow]
CLUSTER = "h8test"


@dataclass
class NetNode:
    name: str
    cidr: str
    runtime: PodmanRuntime


@pytest_asyncio.fixture
async def net_node(podman_service: PodmanService, runner: ActorRunner) -> AsyncIterator[NetNode]:
    node = f"net-{uuid.uuid4().hex[:8]}"
    runtime = PodmanRuntime(podman_service.socket_url)
    try:
        pair = ipaddress.IPv4Network(free_block("198.18.64.0/18", 23))
        yield NetNode(node, str(next(pair.subnets(new_prefix=24))), runtime)
    finally:
        await runner.stop_all()
        for sandbox in await runtime.list_sandboxes(node):
            await runtime.remove_sandbox(sandbox.id)
        for c in await runtime.list_containers(node):
            await runtime.remove_container(c.id)
        await runtime.remove_network(network_name(CLUSTER, node))
        await runtime.close()


def sh(name: str, script: str, **extra: object) -> Obj:
    return {"name": name, "image": BUSYBOX_IMAGE, "command": ["sh", "-c", script], **extra}


def web(name: str, port: int = 8080, **extra: object) -> Obj:
    return sh(name, f"mkdir -p /www && echo {name} > /www/index.html && exec httpd -f -p {port} -h /www",
              ports=[{"containerPort": port, **extra}],
              readinessProbe={"tcpSocket": {"port": port}, "periodSeconds": 1})


def peer_web(name: str, port: int = 8080) -> Obj:
    """``web`` that also answers ``/cgi-bin/peer`` with the client's address as the pod sees it."""
    cgi = "printf '#!/bin/sh\\necho Content-Type: text/plain\\necho\\necho $REMOTE_ADDR\\n' > /www/cgi-bin/peer"
    return sh(name, f"mkdir -p /www/cgi-bin && echo {name} > /www/index.html && {cgi} && "
                    f"chmod +x /www/cgi-bin/peer && exec httpd -f -p {port} -h /www",
              ports=[{"containerPort": port}], readinessProbe={"tcpSocket": {"port": port}, "periodSeconds": 1})


async def http_get(host: str, port: int) -> str:
    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 3)
    writer.write(b"GET / HTTP/1.0\r\nHost: test\r\n\r\n")
    await writer.drain()
    body = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    return body.decode()


async def running(client: ApiClient, name: str) -> Obj:
    return await eventually(lambda: pod_where(client, name, lambda p: phase(p) == "Running" and is_ready(p)),
                            timeout=60, what=f"{name} Running and Ready")


async def in_pod(runtime: PodmanRuntime, node: str, pod: str, script: str) -> tuple[int, str]:
    containers = [c for c in await runtime.list_containers(node) if c.state == "running"]
    sandboxes = {s.id: s.name for s in await runtime.list_sandboxes(node)}
    target = next(c for c in containers if sandboxes.get(c.sandbox_id) == pod)
    return await runtime.exec_in_container(target.id, ["sh", "-c", script], 10)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_pods_on_the_node_bridge_reach_each_other(runner: ActorRunner, api: ApiActor, client: ApiClient,
                                                        podman_service: PodmanService, net_node: NetNode,
                                                        tmp_path: Path) -> None:
    await start_manager(runner, ["nodeipam"], cluster_cidr=net_node.cidr)  # a /24: one block, this node's
    config = KubeletConfig(node_name=net_node.name, state_dir=tmp_path, pod_network="bridge", pod_cidr=None,
                           cluster_name=CLUSTER, relist_interval=0.5, node_status_interval=1.0)
    agent = KubeletAgent(config, runtime=PodmanRuntime(podman_service.socket_url), runtime_version="podman://t")
    await runner.start(agent, started(agent))
    host_port = free_port()
    await create_bound(client, pod_manifest("server", [web("server", hostPort=host_port)]), net_node.name)
    await create_bound(client, pod_manifest("client", [sh("c", "exec sleep 1000")]), net_node.name)
    server, _ = await running(client, "server"), await running(client, "client")

    node = await client.get("Node", net_node.name)
    assert node["spec"]["podCIDR"] == net_node.cidr  # from node IPAM

    async def network_reported() -> Obj | None:
        conditions = (await client.get("Node", net_node.name))["status"]["conditions"]
        found = next(c for c in conditions if c["type"] == "NetworkUnavailable")
        return found if found["status"] == "False" else None

    network = await eventually(network_reported, timeout=10, what="NetworkUnavailable=False")
    assert network["reason"] == "BridgePodNetwork"
    assert network_name(CLUSTER, net_node.name) in network["message"]

    ip = server["status"]["podIP"]
    prefix = net_node.cidr.rsplit(".", 1)[0] + "."
    assert ip.startswith(prefix) and not ip.endswith(".1")  # .1 is the node's gateway
    code, out = await in_pod(net_node.runtime, net_node.name, "client",
                             f"printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 {ip} 8080")
    assert code == 0 and "server" in out, out  # pod to pod at podIP:containerPort
    assert "server" in await http_get(ip, 8080)  # the node reaches the pod
    assert "server" in await http_get("127.0.0.1", host_port)  # hostPort still published on the node
    health = agent.health()
    assert health["pod_network"] == "bridge"


async def nft_table_exists(table: str) -> bool:
    proc = await asyncio.create_subprocess_exec("nft", "list", "table", "ip", table, stdout=asyncio.subprocess.DEVNULL,
                                                stderr=asyncio.subprocess.DEVNULL)
    return await proc.wait() == 0


async def test_a_kubelet_stopping_with_no_pod_left_removes_its_nat_exemption(
        runner: ActorRunner, api: ApiActor, podman_service: PodmanService, net_node: NetNode, tmp_path: Path) -> None:
    """The kubelet's no-NAT table (pod to pod keeps the pod's address) goes with its pod network when it
    stops with no pod left; with pods left both stay for the next kubelet (the e2e tests above)."""
    from agents.proxy.nftables import nft_available

    if not nft_available():
        pytest.skip("nft is not usable here")
    await start_manager(runner, ["nodeipam"], cluster_cidr=net_node.cidr)
    config = KubeletConfig(node_name=net_node.name, state_dir=tmp_path, pod_network="bridge", pod_cidr=None,
                           cluster_name=CLUSTER, relist_interval=0.5, node_status_interval=1.0, node_routes=True)
    agent = KubeletAgent(config, runtime=PodmanRuntime(podman_service.socket_url), runtime_version="podman://t")
    await runner.start(agent, started(agent))
    table = nat_table(CLUSTER, net_node.name)
    try:
        await eventually(lambda: nft_table_exists(table), timeout=30, what=f"the NAT exemption table {table}")
        await runner.stop_all()
        assert not await nft_table_exists(table)
    finally:
        await PodNatExemption(table, log=None).delete()


def addresses_in(nslookup_output: str, name: str) -> set[str]:
    """The addresses busybox nslookup printed for ``name`` (after the server's own lines)."""
    _, _, answers = nslookup_output.partition(f"Name:\t{name}")
    if not answers:
        _, _, answers = nslookup_output.partition(f"Name: {name}")
    return {line.split()[-1] for line in answers.splitlines() if line.startswith("Address")}


async def test_services_and_dns_from_inside_pods(runner: ActorRunner, api: ApiActor, client: ApiClient,
                                                 podman_service: PodmanService, net_node: NetNode,
                                                 tmp_path: Path) -> None:
    """The Kubernetes network model on one node: a pod reaches another pod, a Service by cluster IP, by
    short name and FQDN through cluster DNS, a headless Service's endpoints, a NodePort, and itself
    through its Service (hairpin); Service traffic is DNAT'ed by the proxy's nftables table."""
    from agents.dns.agent import DnsAgent
    from agents.proxy.agent import ProxyAgent
    from agents.proxy.nftables import NftablesDataPath, delete_table, nft_available

    if not nft_available():
        pytest.skip("nft is not usable here")
    table = f"shoal-test-{uuid.uuid4().hex[:10]}"
    try:
        await start_manager(runner, ["nodeipam", "endpoints"], cluster_cidr=net_node.cidr)
        config = KubeletConfig(node_name=net_node.name, state_dir=tmp_path, pod_network="bridge", pod_cidr=None,
                               cluster_name=CLUSTER, relist_interval=0.5, node_status_interval=1.0)
        kubelet = KubeletAgent(config, runtime=PodmanRuntime(podman_service.socket_url),
                               runtime_version="podman://t")
        await runner.start(kubelet, started(kubelet))
        proxy = ProxyAgent(net_node.name, node_addresses=["0.0.0.0"],
                           datapath=NftablesDataPath(table, service_cidr="198.19.0.0/16"))
        await runner.start(proxy, ready=lambda: proxy.synced.is_set())
        dns = DnsAgent(net_node.name, gateway=True)  # no upstreams: nothing is forwarded in tests
        await runner.start(dns, ready=lambda: dns.synced.is_set())

        for name in ("server-0", "server-1"):
            pod = pod_manifest(name, [web(name)])
            pod["metadata"]["labels"] = {"app": "web"}
            await create_bound(client, pod, net_node.name)
        await create_bound(client, pod_manifest("client", [sh("c", "exec sleep 1000")]), net_node.name)
        svc = await client.create({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
                                   "spec": {"type": "NodePort", "selector": {"app": "web"},
                                            "ports": [{"name": "http", "port": 80, "targetPort": 8080}]}})
        await client.create({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web-headless"},
                             "spec": {"clusterIP": "None", "selector": {"app": "web"},
                                      "ports": [{"name": "http", "port": 8080}]}})
        servers = [await running(client, n) for n in ("server-0", "server-1")]
        await running(client, "client")
        server_ips = {p["status"]["podIP"] for p in servers}
        cluster_ip, node_port = svc["spec"]["clusterIP"], svc["spec"]["ports"][0]["nodePort"]
        gateway = net_node.cidr.rsplit(".", 1)[0] + ".1"

        async def run(pod: str, script: str) -> str:
            code, out = await in_pod(net_node.runtime, net_node.name, pod, script)
            assert code == 0, (script, out)
            return out

        def get(host: str, port: int) -> str:
            return f"printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 {host} {port}"

        resolv = await run("client", "cat /etc/resolv.conf")
        assert f"nameserver {gateway}" in resolv and "ndots:5" in resolv
        assert "search default.svc.cluster.local svc.cluster.local cluster.local" in resolv

        ip0 = servers[0]["status"]["podIP"]
        assert "server-0" in await run("client", get(ip0, 8080))  # pod to pod

        async def both_behind(host: str, port: int) -> bool:
            seen = set()
            for _ in range(12):
                _, out = await in_pod(net_node.runtime, net_node.name, "client", get(host, port))
                seen |= {n for n in ("server-0", "server-1") if n in out}
            return seen == {"server-0", "server-1"}

        await eventually(lambda: both_behind(cluster_ip, 80), timeout=30, what="cluster IP to both endpoints")

        async def short_name() -> str | None:
            _, out = await in_pod(net_node.runtime, net_node.name, "client", "nslookup web")
            return out if cluster_ip in addresses_in(out, "web.default.svc.cluster.local") else None

        await eventually(short_name, timeout=20, what="nslookup web (short name, search domains)")
        fqdn = await run("client", "nslookup web.default.svc.cluster.local")
        assert addresses_in(fqdn, "web.default.svc.cluster.local") == {cluster_ip}, fqdn
        resolved = addresses_in(fqdn, "web.default.svc.cluster.local").pop()
        assert "server-" in await run("client", get(resolved, 80))  # by name, then to it

        headless = await run("client", "nslookup web-headless.default.svc.cluster.local")
        headless_ips = addresses_in(headless, "web-headless.default.svc.cluster.local")
        assert headless_ips == server_ips, headless
        for ip in headless_ips:
            assert "server-" in await run("client", get(ip, 8080))

        assert "server-" in await run("client", get(gateway, node_port))  # NodePort on the node's address
        assert "server-" in await http_get(cluster_ip, 80)  # the node itself reaches the cluster IP
        hairpin = await run("server-0", f"for i in 1 2 3 4 5 6; do {get(cluster_ip, 80)}; done")
        assert "server-0" in hairpin or "server-1" in hairpin  # a pod reaching itself through its Service
        assert proxy.health()["datapath"] == "nftables"
    finally:
        await runner.stop_all()
        await delete_table(table)


async def test_pods_on_two_nodes_reach_each_other_and_a_service_spanning_both(
        runner: ActorRunner, api: ApiActor, client: ApiClient, podman_service: PodmanService, net_node: NetNode,
        tmp_path: Path) -> None:
    """Two kubelets (two nodes, each with its bridge and /24 from node IPAM) on one machine: a pod on one
    node reaches a pod on the other by its podIP, and a Service whose endpoints are on both nodes."""
    from agents.proxy.agent import ProxyAgent
    from agents.proxy.nftables import NftablesDataPath, delete_table, nft_available

    if not nft_available():
        pytest.skip("nft is not usable here")
    other = f"{net_node.name}-b"
    table = f"shoal-test-{uuid.uuid4().hex[:10]}"
    base = int(net_node.cidr.split(".")[2]) & ~1  # an even third octet: a /23 holding two /24s
    cluster_cidr = f"198.18.{base}.0/23"
    try:
        await start_manager(runner, ["nodeipam", "endpoints"], cluster_cidr=cluster_cidr)
        for name, state in ((net_node.name, tmp_path / "a"), (other, tmp_path / "b")):
            config = KubeletConfig(node_name=name, state_dir=state, pod_network="bridge", pod_cidr=None,
                                   cluster_name=CLUSTER, relist_interval=0.5, node_status_interval=1.0,
                                   node_routes=True)
            agent = KubeletAgent(config, runtime=PodmanRuntime(podman_service.socket_url),
                                 runtime_version="podman://t")
            await runner.start(agent, started(agent))
        proxy = ProxyAgent(net_node.name, datapath=NftablesDataPath(table, service_cidr="198.19.0.0/16"))
        await runner.start(proxy, ready=lambda: proxy.synced.is_set())
        for name, node in (("web-a", net_node.name), ("web-b", other)):
            pod = pod_manifest(name, [web(name)] if name == "web-a" else [peer_web(name)])
            pod["metadata"]["labels"] = {"app": "spread"}
            await create_bound(client, pod, node)
        await create_bound(client, pod_manifest("client", [sh("c", "exec sleep 1000")]), net_node.name)
        svc = await client.create({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "spread"},
                                   "spec": {"selector": {"app": "spread"},
                                            "ports": [{"port": 80, "targetPort": 8080}]}})
        web_a, web_b = await running(client, "web-a"), await running(client, "web-b")
        await running(client, "client")
        cidrs = {(await client.get("Node", n))["spec"]["podCIDR"] for n in (net_node.name, other)}
        assert cidrs == {f"198.18.{base}.0/24", f"198.18.{base + 1}.0/24"}  # a /24 each
        assert web_a["status"]["podIP"].rsplit(".", 1)[0] != web_b["status"]["podIP"].rsplit(".", 1)[0]

        def get(host: str, port: int) -> str:
            return f"printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 {host} {port}"

        code, out = await in_pod(net_node.runtime, net_node.name, "client", get(web_b["status"]["podIP"], 8080))
        assert code == 0 and "web-b" in out, out  # across nodes, by podIP
        client_ip = (await client.get("Pod", "client", "default"))["status"]["podIP"]
        peer = f"printf 'GET /cgi-bin/peer HTTP/1.0\\r\\n\\r\\n' | nc -w 3 {web_b['status']['podIP']} 8080"
        code, out = await in_pod(net_node.runtime, net_node.name, "client", peer)
        seen = out.split()[-1].strip("[]").removeprefix("::ffff:")  # httpd listens on IPv6: a mapped address
        assert code == 0 and seen == client_ip, (client_ip, out)  # without NAT: the pod's own address

        async def both() -> bool:
            seen = set()
            for _ in range(12):
                _, out = await in_pod(net_node.runtime, net_node.name, "client", get(svc["spec"]["clusterIP"], 80))
                seen |= {n for n in ("web-a", "web-b") if n in out}
            return seen == {"web-a", "web-b"}

        await eventually(both, timeout=30, what="the Service reaching endpoints on both nodes")
    finally:
        await runner.stop_all()
        await delete_table(table)
        for name in (net_node.name, other):
            await PodNatExemption(nat_table(CLUSTER, name), log=None).delete()
        for sandbox in await net_node.runtime.list_sandboxes(other):
            await net_node.runtime.remove_sandbox(sandbox.id)
        for c in await net_node.runtime.list_containers(other):
            await net_node.runtime.remove_container(c.id)
        await net_node.runtime.remove_network(network_name(CLUSTER, other))
