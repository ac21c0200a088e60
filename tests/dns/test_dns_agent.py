"""The DNS agent against a real API actor, queried over UDP and TCP with dnspython's client: answers
follow Services and Endpoints as they change; other names are forwarded (here to a second local server
standing in for the node's resolver) or get SERVFAIL without an upstream."""

from __future__ import annotations

import asyncio

import dns.asyncquery
import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype

from agents.dns.agent import DnsAgent
from agents.dns.records import Record, Result
from agents.dns.server import DnsHandler, DnsServer
from runtime.client import ApiClient
from runtime.nats_server import free_port
from tests.conftest import ActorRunner
from tests.proxy.test_proxy_agent import wait_until


async def query(port: int, name: str, qtype: str = "A", tcp: bool = False) -> dns.message.Message:
    q = dns.message.make_query(name, qtype)
    if tcp:
        return await dns.asyncquery.tcp(q, "127.0.0.1", port=port, timeout=2)
    return await dns.asyncquery.udp(q, "127.0.0.1", port=port, timeout=2)


def addresses(reply: dns.message.Message) -> set[str]:
    return {r.address for rrset in reply.answer if rrset.rdtype == dns.rdatatype.A for r in rrset}


async def test_services_headless_srv_and_forwarding(runner: ActorRunner, client: ApiClient) -> None:
    upstream = DnsServer(DnsHandler(lambda n, t: Result("NOERROR", (Record(n.lower(), "A", "192.0.2.99"),))
                                    if n.lower() == "example.org." else None, "example.org"))
    upstream_port = (await upstream.listen("127.0.0.1", 0))[1]
    port = free_port()
    agent = DnsAgent("node-1", listen=[("127.0.0.1", port)], upstreams=[("127.0.0.1", upstream_port)])
    await runner.start(agent, ready=lambda: agent.synced.is_set())
    web = await client.create({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
                               "spec": {"ports": [{"name": "http", "port": 80}]}})
    await client.create({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "db"},
                         "spec": {"clusterIP": "None", "ports": [{"name": "pg", "port": 5432}]}})
    await client.create({"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "db"},
                         "subsets": [{"addresses": [{"ip": "198.18.1.9"}], "ports": [{"name": "pg", "port": 5432}]}]})

    async def web_known() -> bool:
        return addresses(await query(port, "web.default.svc.cluster.local")) == {web["spec"]["clusterIP"]}

    await wait_until(web_known)
    reply = await query(port, "web.default.svc.cluster.local", tcp=True)
    assert addresses(reply) == {web["spec"]["clusterIP"]} and reply.flags & dns.flags.AA
    srv = await query(port, "_http._tcp.web.default.svc.cluster.local", "SRV")
    assert [(r.port, r.target.to_text()) for rrset in srv.answer for r in rrset] == \
        [(80, "web.default.svc.cluster.local.")]
    assert addresses(await query(port, "db.default.svc.cluster.local")) == {"198.18.1.9"}
    missing = await query(port, "nope.default.svc.cluster.local")
    assert missing.rcode() == dns.rcode.NXDOMAIN and missing.authority  # with the SOA for negative caching

    ep = await client.get("Endpoints", "db", "default")
    ep["subsets"][0]["addresses"].append({"ip": "198.18.1.10"})
    await client.update(ep)

    async def scaled() -> bool:
        return addresses(await query(port, "db.default.svc.cluster.local")) == {"198.18.1.9", "198.18.1.10"}

    await wait_until(scaled)  # a headless Service follows its endpoints
    assert addresses(await query(port, "example.org")) == {"192.0.2.99"}  # forwarded
    assert agent.health()["dns_forwarded"] == 1
    await upstream.close()
    failed = await query(port, "example.net")
    assert failed.rcode() == dns.rcode.SERVFAIL


async def test_garbage_is_answered_formerr_and_the_server_keeps_serving(runner: ActorRunner, client: ApiClient) -> None:
    port = free_port()
    agent = DnsAgent("node-1", listen=[("127.0.0.1", port)])
    await runner.start(agent, ready=lambda: agent.synced.is_set())
    loop = asyncio.get_running_loop()
    got: asyncio.Future[bytes] = loop.create_future()

    class Client(asyncio.DatagramProtocol):
        def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
            got.set_result(data)

    transport, _ = await loop.create_datagram_endpoint(Client, remote_addr=("127.0.0.1", port))
    transport.sendto(b"\x12\x34garbage")
    reply = await asyncio.wait_for(got, 2)
    transport.close()
    assert reply[:2] == b"\x12\x34" and reply[3] & 0x0F == dns.rcode.FORMERR
    pod = await query(port, "198-18-7-7.default.pod.cluster.local")
    assert addresses(pod) == {"198.18.7.7"}
