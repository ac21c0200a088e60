"""The proxy agent against a real API actor, forwarding to real local TCP and UDP servers."""

from __future__ import annotations

import asyncio
import functools
from collections import Counter

from agents.proxy.agent import ProxyAgent
from runtime.client import ApiClient
from runtime.nats_server import free_port
from tests.conftest import ActorRunner


async def start_backend(name: str) -> tuple[asyncio.AbstractServer, int]:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        data = await reader.read(65536)
        writer.write(f"{name}:".encode() + data)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


async def ask(host: str, port: int, payload: bytes = b"hi") -> bytes:
    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 5)
    writer.write(payload)
    await writer.drain()
    data = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    return data


async def serves(host: str, port: int) -> bool:
    """Whether a request to ``host:port`` reaches a backend (as ``start_backend`` answers)."""
    try:
        return (await ask(host, port)).endswith(b":hi")
    except OSError:
        return False


async def wait_until(check, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


async def test_service_round_robin_endpoint_removal_nodeport_and_udp(runner: ActorRunner, client: ApiClient) -> None:
    backends = [await start_backend(n) for n in ("a", "b", "c")]
    agent = ProxyAgent("node-1", node_addresses=["127.0.0.1"], drain_seconds=1)
    await runner.start(agent, ready=lambda: agent.synced.is_set())
    svc = await client.create({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
                               "spec": {"type": "NodePort", "ports": [{"port": free_port(), "targetPort": 1}]}})
    ip, port = svc["spec"]["clusterIP"], svc["spec"]["ports"][0]["port"]
    node_port = svc["spec"]["ports"][0]["nodePort"]
    ep = await client.create({"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "web"},
                              "subsets": [{"addresses": [{"ip": "127.0.0.1"}] ,
                                           "ports": [{"port": p}]} for _, p in backends]})

    await wait_until(functools.partial(serves, ip, port))
    seen = Counter([(await ask(ip, port)).split(b":")[0] for _ in range(9)])
    assert set(seen) == {b"a", b"b", b"c"}, seen
    assert (await ask("127.0.0.1", node_port)).endswith(b":hi")
    # one endpoint leaves: no request goes to it any more
    ep["subsets"] = ep["subsets"][:1]
    await client.update(ep)

    async def only_a() -> bool:
        return {(await ask(ip, port)).split(b":")[0] for _ in range(4)} == {b"a"}

    await wait_until(only_a)
    assert {(await ask(ip, port)).split(b":")[0] for _ in range(10)} == {b"a"}
    # deleting the service closes its listeners
    await client.delete("svc", "web")

    async def closed() -> bool:
        try:
            await ask(ip, port)
            return False
        except OSError:
            return True

    await wait_until(closed)
    for server, _ in backends:
        server.close()


async def test_udp_service(runner: ActorRunner, client: ApiClient) -> None:
    class Echo(asyncio.DatagramProtocol):
        def connection_made(self, transport):  # type: ignore[no-untyped-def]
            self.transport = transport

        def datagram_received(self, data, addr):  # type: ignore[no-untyped-def]
            self.transport.sendto(b"udp:" + data, addr)

    loop = asyncio.get_running_loop()
    backend_port = free_port()
    transport, _ = await loop.create_datagram_endpoint(Echo, local_addr=("127.0.0.1", backend_port))
    agent = ProxyAgent("node-1", node_addresses=["127.0.0.1"])
    await runner.start(agent, ready=lambda: agent.synced.is_set())
    svc = await client.create({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "dns"},
                               "spec": {"ports": [{"port": free_port(), "protocol": "UDP"}]}})
    await client.create({"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "dns"},
                         "subsets": [{"addresses": [{"ip": "127.0.0.1"}],
                                      "ports": [{"port": backend_port, "protocol": "UDP"}]}]})
    got: asyncio.Queue[bytes] = asyncio.Queue()

    class Client(asyncio.DatagramProtocol):
        def datagram_received(self, data, addr):  # type: ignore[no-untyped-def]
            got.put_nowait(data)

    target = (svc["spec"]["clusterIP"], svc["spec"]["ports"][0]["port"])
    client_transport, _ = await loop.create_datagram_endpoint(Client, remote_addr=target)
    answer = b""
    for _ in range(50):
        client_transport.sendto(b"ping")
        try:
            answer = await asyncio.wait_for(got.get(), 0.2)
            break
        except TimeoutError:
            continue
    assert answer == b"udp:ping"
    client_transport.close()
    transport.close()
