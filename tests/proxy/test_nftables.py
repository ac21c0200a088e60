"""The nftables data path: the rendered table (pure, table-tested) and the kernel doing the work against
a real API actor and real TCP/UDP servers. Each test owns a table with a unique name, deleted afterwards
even when the test fails."""

from __future__ import annotations

import asyncio
import functools
import os
import shutil
import subprocess
import uuid
from collections import Counter
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from agents.proxy.agent import ProxyAgent
from agents.proxy.datapath import choose, remove_orphaned_table
from agents.proxy.nftables import (
    NftablesDataPath,
    NftablesError,
    delete_table,
    nft_available,
    orphaned,
    owner_pid,
    render,
    run_nft,
)
from agents.proxy.rules import Backend, Rule
from runtime.client import ApiClient
from runtime.nats_server import free_port
from tests.conftest import ActorRunner
from tests.proxy.test_proxy_agent import ask, serves, start_backend, wait_until

WEB = Rule("default/web:http", "TCP", (("198.19.0.10", 80), ("0.0.0.0", 30080), ("192.0.2.7", 30080)),
           (Backend("198.18.1.5", 8080), Backend("198.18.2.9", 8080)), None)


def test_render_dispatch_balancing_and_masquerade() -> None:
    text = render("shoal-t", [WEB], "198.19.0.0/16")
    assert "ip daddr . meta l4proto . th dport vmap { 198.19.0.10 . tcp . 80 : goto svc-0, " \
           "192.0.2.7 . tcp . 30080 : goto svc-0 }" in text
    assert "fib daddr type local meta l4proto . th dport vmap { tcp . 30080 : goto svc-0 }" in text
    assert "meta l4proto tcp dnat ip addr . port to numgen random mod 2 map " \
           "{ 0 : 198.18.1.5 . 8080, 1 : 198.18.2.9 . 8080 }" in text  # one rule per Service
    assert "chain ep-" not in text
    assert "meta mark & 0x4000 == 0x4000 masquerade" in text
    assert "ct state new ip daddr 198.19.0.0/16 reject" in text
    assert text.startswith("table ip shoal-t {}\ndelete table ip shoal-t\n")  # one atomic replacement


@pytest.mark.parametrize(("rule", "present", "absent"), [
    (Rule("d/one:53", "UDP", (("198.19.0.11", 53),), (Backend("198.18.1.6", 53),), None),
     ["198.19.0.11 . udp . 53 : goto svc-0", "meta l4proto udp dnat to 198.18.1.6:53"], ["numgen"]),
    (Rule("d/none:80", "TCP", (("198.19.0.12", 80),), (), None),
     ["198.19.0.12 . tcp . 80 : goto svc-0"], ["dnat", "numgen"]),
    (Rule("d/sticky:80", "TCP", (("198.19.0.13", 80),), (Backend("198.18.1.7", 80), Backend("198.18.1.8", 80)), 60),
     ["set aff-0-1 { type ipv4_addr; flags dynamic,timeout; timeout 60s; }", "ip saddr @aff-0-0 goto ep-0-0",
      "update @aff-0-1 { ip saddr }", "numgen random mod 2 vmap { 0 : goto ep-0-0, 1 : goto ep-0-1 }",
      "chain ep-0-1 {"], []),
    (Rule("d/local:80/local", "TCP", (("0.0.0.0", 30081),), (Backend("198.18.1.9", 80),), None, masquerade=False),
     ["tcp . 30081 : goto svc-0", "meta l4proto tcp dnat to 198.18.1.9:80"], ["meta mark set"]),
    (Rule("d/sctp:80", "SCTP", (("198.19.0.14", 80),), (Backend("198.18.1.9", 80),), None), [], ["svc-0", "vmap"]),
])
def test_render_cases(rule: Rule, present: list[str], absent: list[str]) -> None:
    text = render("t", [rule], None)
    for fragment in present:
        assert fragment in text
    for fragment in absent:
        assert fragment not in text
    assert "reject" not in text  # no service CIDR given


def test_the_owner_is_written_in_the_table_comment() -> None:
    text = render("shoal-t", [WEB], "198.19.0.0/16", owner=4321)
    assert '\n    comment "shoal-proxy pid=4321"\n' in text
    assert owner_pid(text) == 4321
    assert owner_pid(render("shoal-t", [WEB], None)) is None  # an older proxy's table: no owner recorded
    assert owner_pid('chain svc-0 {\n        comment "shoal-proxy pid=7"\n') == 7  # any comment line
    assert owner_pid('        comment "default/shoal-proxy pid=7:http"\n') is None


needs_nft = pytest.mark.skipif(shutil.which("nft") is None or not nft_available(),
                               reason="nft is not usable here (apt-get install nftables; needs root)")


@pytest_asyncio.fixture
async def table() -> AsyncIterator[str]:
    name = f"shoal-test-{uuid.uuid4().hex[:10]}"
    try:
        yield name
    finally:
        await delete_table(name)
        listed = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True, check=False).stdout
        assert name not in listed


@needs_nft
async def test_bad_table_is_refused_whole(table: str) -> None:
    datapath = NftablesDataPath(table)
    with pytest.raises(NftablesError):
        await datapath.apply([Rule("d/x:80", "TCP", (("not-an-ip", 80),), (Backend("198.18.1.1", 80),), None)])
    assert datapath.failures == 1
    with pytest.raises(NftablesError):
        NftablesDataPath("bad name; flush ruleset")


@needs_nft
async def test_cluster_ip_balances_follows_endpoints_and_refuses_without(runner: ActorRunner, client: ApiClient,
                                                                         table: str) -> None:
    backends = [await start_backend(n) for n in ("a", "b", "c")]
    agent = ProxyAgent("node-1", node_addresses=["0.0.0.0"],
                       datapath=NftablesDataPath(table, service_cidr="198.19.0.0/16"))
    await runner.start(agent, ready=lambda: agent.synced.is_set())
    svc = await client.create({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
                               "spec": {"type": "NodePort", "ports": [{"port": 80, "targetPort": 1}]}})
    ip, node_port = svc["spec"]["clusterIP"], svc["spec"]["ports"][0]["nodePort"]
    assert ip.startswith("198.19.")
    ep = await client.create({"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "web"},
                              "subsets": [{"addresses": [{"ip": "127.0.0.1"}], "ports": [{"port": p}]}
                                          for _, p in backends]})

    await wait_until(functools.partial(serves, ip, 80))
    seen = Counter([(await ask(ip, 80)).split(b":")[0] for _ in range(40)])
    assert set(seen) == {b"a", b"b", b"c"}, seen  # random balancing over every ready endpoint
    assert (await ask("192.0.2.2", node_port)).endswith(b":hi")  # NodePort on the node's address
    assert agent.health()["datapath"] == "nftables"

    ep["subsets"] = [{"addresses": [{"ip": "127.0.0.1"}], "ports": [{"port": backends[1][1]}]}]
    await client.update(ep)

    async def only_b() -> bool:
        return {(await ask(ip, 80)).split(b":")[0] for _ in range(10)} == {b"b"}

    await wait_until(only_b)
    ep = await client.get("Endpoints", "web", "default")
    ep["subsets"] = []
    await client.update(ep)

    async def refused() -> bool:
        try:
            await ask(ip, 80)
        except ConnectionRefusedError:
            return True
        return False

    await wait_until(refused)  # no ready endpoint: refused at once, nothing leaves the node
    for server, _ in backends:
        server.close()


@needs_nft
async def test_udp_and_client_ip_affinity(runner: ActorRunner, client: ApiClient, table: str) -> None:
    loop = asyncio.get_running_loop()

    class Echo(asyncio.DatagramProtocol):
        def __init__(self, name: bytes) -> None:
            self.name = name

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport = transport

        def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
            self.transport.sendto(self.name + b":" + data, addr)  # type: ignore[attr-defined]

    ports = [free_port() for _ in range(2)]
    transports = []
    for name, p in zip((b"x", b"y"), ports, strict=True):
        transport, _ = await loop.create_datagram_endpoint(functools.partial(Echo, name), local_addr=("127.0.0.1", p))
        transports.append(transport)
    tcp = [await start_backend(n) for n in ("a", "b", "c")]
    agent = ProxyAgent("node-1", datapath=NftablesDataPath(table, service_cidr="198.19.0.0/16"))
    await runner.start(agent, ready=lambda: agent.synced.is_set())
    dns = await client.create({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "dns"},
                               "spec": {"ports": [{"port": 53, "protocol": "UDP"}]}})
    sticky = await client.create({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "sticky"},
                                  "spec": {"ports": [{"port": 80}], "sessionAffinity": "ClientIP"}})
    await client.create({"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "dns"},
                         "subsets": [{"addresses": [{"ip": "127.0.0.1"}], "ports": [{"port": p, "protocol": "UDP"}]}
                                     for p in ports]})
    await client.create({"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "sticky"},
                         "subsets": [{"addresses": [{"ip": "127.0.0.1"}], "ports": [{"port": p}]} for _, p in tcp]})

    async def udp_answer() -> bytes | None:
        reply: asyncio.Future[bytes] = loop.create_future()

        class Client(asyncio.DatagramProtocol):
            def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
                if not reply.done():
                    reply.set_result(data)

        transport, _ = await loop.create_datagram_endpoint(Client, remote_addr=(dns["spec"]["clusterIP"], 53))
        try:
            transport.sendto(b"q")
            return await asyncio.wait_for(reply, 0.5)
        except TimeoutError:
            return None
        finally:
            transport.close()

    async def udp_ok() -> bool:
        answer = await udp_answer()
        return answer is not None and answer.endswith(b":q")

    await wait_until(udp_ok)
    ip = sticky["spec"]["clusterIP"]

    await wait_until(functools.partial(serves, ip, 80))
    assert len({(await ask(ip, 80)).split(b":")[0] for _ in range(20)}) == 1  # one client, one endpoint
    for t in transports:
        t.close()
    for server, _ in tcp:
        server.close()


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


@needs_nft
async def test_a_killed_proxys_table_is_told_apart_and_removed(table: str) -> None:
    assert not orphaned(table) and not remove_orphaned_table(table)  # no table: nothing to do
    await run_nft(render(table, [WEB], "198.19.0.0/16", owner=os.getpid()))
    assert not orphaned(table) and not remove_orphaned_table(table)  # its proxy is alive: kept
    await run_nft(render(table, [WEB], "198.19.0.0/16", owner=_dead_pid()))
    assert orphaned(table)
    assert remove_orphaned_table(table)
    assert table not in subprocess.run(["nft", "list", "tables"], capture_output=True, text=True).stdout
    await run_nft(render(table, [WEB], "198.19.0.0/16"))  # no owner recorded: an older proxy's, gone too
    assert orphaned(table) and remove_orphaned_table(table)


@needs_nft
async def test_userspace_proxy_serves_where_a_killed_nftables_proxy_left_its_table(
        runner: ActorRunner, client: ApiClient, table: str) -> None:
    """The CI failure of stop 26: a proxy killed before ``close`` left ``shoal-shoal``, whose filter chains
    refused every new connection to the service CIDR; the userspace proxy of that cluster timed out."""
    await run_nft(render(table, [], "198.19.0.0/16", owner=_dead_pid()))
    backend = await start_backend("a")
    datapath = choose("userspace", cluster=table.removeprefix("shoal-"), service_cidr="198.19.0.0/16",
                      drain_seconds=1)
    agent = ProxyAgent("node-1", node_addresses=["127.0.0.1"], datapath=datapath)
    await runner.start(agent, ready=lambda: agent.synced.is_set())
    svc = await client.create({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
                               "spec": {"ports": [{"port": free_port(), "targetPort": 1}]}})
    await client.create({"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "web"},
                         "subsets": [{"addresses": [{"ip": "127.0.0.1"}], "ports": [{"port": backend[1]}]}]})
    ip, port = svc["spec"]["clusterIP"], svc["spec"]["ports"][0]["port"]

    await wait_until(functools.partial(serves, ip, port))
    backend[0].close()
