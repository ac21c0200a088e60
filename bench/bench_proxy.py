"""Service data paths vs direct: many small request/responses, new connections and one large transfer,
and cluster DNS lookups, in the same run.

Run: ``.venv/bin/python -m bench.bench_proxy [--requests 2000] [--megabytes 256] [--dns-queries 5000]``.
The backend and the userspace proxy (one static rule) each run in their own process; where ``nft``
works, a table of its own (``shoal-bench-<pid>``, deleted at the end) DNATs a cluster IP to the backend in
the kernel (kube-proxy's nftables mode). The client measures the backend directly, through the
userspace proxy (``proxied_*``) and through nftables (``nft_*``), and prints the ratios.

DNS: the cluster DNS server (``agents.dns``, 1,000 Services in its zone) in its own process answers
``<svc>.<ns>.svc.cluster.local`` A queries, one at a time over UDP; the baseline is the same server
sockets answering a canned reply without decoding or lookup (``dns_direct_*``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import subprocess
import sys
import time

from bench.common import percentile, progress, stop_on_signals
from runtime.nats_server import free_port

CHUNK = 256 * 1024
BULK_ROUNDS = 3


async def backend(port: int) -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            line = await reader.readline()
            if not line:
                break
            if line.startswith(b"BULK "):
                remaining = int(line.split()[1])
                block = b"x" * CHUNK
                while remaining > 0:
                    writer.write(block[: min(CHUNK, remaining)])
                    remaining -= CHUNK
                    await writer.drain()
            else:
                writer.write(line)
                await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", port)
    async with server:
        await server.serve_forever()


async def proxy(listen_port: int, backend_port: int) -> None:
    from agents.proxy.rules import Backend, Rule
    from agents.proxy.userspace import UserspaceProxy

    datapath = UserspaceProxy()
    await datapath.apply([Rule("bench/proxy:80", "TCP", (("127.0.0.1", listen_port),),
                               (Backend("127.0.0.1", backend_port),), None)])
    await asyncio.Event().wait()


async def nft_rule(table: str, target: tuple[str, int], backend_port: int) -> bool:
    """One cluster IP DNAT'ed to the backend by a table of our own; False where nft does not work here."""
    from agents.proxy.nftables import NftablesDataPath, NftablesError, nft_available
    from agents.proxy.rules import Backend, Rule

    if not nft_available():
        progress("nft is not usable here: no nftables figures")
        return False
    try:
        await NftablesDataPath(table, cleanup=False).apply(
            [Rule("bench/web:80", "TCP", (target,), (Backend("127.0.0.1", backend_port),), None)])
    except NftablesError as exc:
        progress(f"nftables rule refused: {exc}")
        return False
    return True


async def nft_rebuild_ms(table: str, services: int = 1000, endpoints: int = 10, rounds: int = 3) -> list[float]:
    """Wall time of replacing the whole table for ``services`` x ``endpoints`` (render + ``nft -f``)."""
    from agents.proxy.nftables import NftablesDataPath
    from agents.proxy.rules import Backend, Rule

    rules = [Rule(f"bench/s{i}:80", "TCP", ((f"198.19.{i // 250}.{i % 250 + 1}", 80),),
                  tuple(Backend(f"198.18.{j}.{i % 250 + 1}", 8080) for j in range(endpoints)), None)
             for i in range(services)]
    datapath = NftablesDataPath(table, cleanup=True)
    times = []
    try:
        for _ in range(rounds):
            started = time.perf_counter()
            await datapath.apply(rules)
            times.append((time.perf_counter() - started) * 1000)
    finally:
        await datapath.close()
    return times


async def drop_table(table: str) -> None:
    from agents.proxy.nftables import NftablesError, delete_table, nft_available

    if nft_available():
        with contextlib.suppress(NftablesError):
            await delete_table(table)


async def small_requests(host: str, port: int, n: int) -> tuple[list[float], float]:
    reader, writer = await asyncio.open_connection(host, port)
    lat = []
    start = time.perf_counter()
    for i in range(n):
        t = time.perf_counter()
        writer.write(f"ping {i}\n".encode())
        await reader.readline()
        lat.append(time.perf_counter() - t)
    elapsed = time.perf_counter() - start
    writer.close()
    return lat, elapsed


async def connections(host: str, port: int, n: int) -> tuple[list[float], float]:
    lat = []
    start = time.perf_counter()
    for _ in range(n):
        t = time.perf_counter()
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(b"hello\n")
        await reader.readline()
        writer.close()
        lat.append(time.perf_counter() - t)
    return lat, time.perf_counter() - start


async def bulk(host: str, port: int, size: int) -> float:
    reader, writer = await asyncio.open_connection(host, port, limit=CHUNK * 4)
    start = time.perf_counter()
    writer.write(f"BULK {size}\n".encode())
    got = 0
    while got < size:
        data = await reader.read(CHUNK * 4)
        if not data:
            break
        got += len(data)
    elapsed = time.perf_counter() - start
    writer.close()
    return got / elapsed / 1e6


async def wait_listening(port: int, timeout: float = 30.0, host: str = "127.0.0.1") -> None:
    """Wait until something accepts connections on ``port`` (the helper processes start in parallel)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            _, writer = await asyncio.open_connection(host, port)
        except OSError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.1)
            continue
        writer.close()
        return


async def client(direct: int, proxied: int, requests: int, megabytes: int,
                 nft_target: tuple[str, int] | None = None) -> dict[str, float]:
    await wait_listening(direct)
    await wait_listening(proxied)
    out: dict[str, float] = {}
    paths = [("direct", "127.0.0.1", direct), ("proxied", "127.0.0.1", proxied)]
    if nft_target is not None:
        paths.append(("nft", *nft_target))
    for label, host, port in paths:
        progress(f"{label}: {requests} request/responses on one connection")
        lat, elapsed = await small_requests(host, port, requests)
        out[f"{label}_rr_p50_us"] = percentile(lat, 50) * 1e6
        out[f"{label}_rr_p99_us"] = percentile(lat, 99) * 1e6
        out[f"{label}_rr_per_s"] = requests / elapsed
        progress(f"{label}: {requests // 4} new connections")
        lat, elapsed = await connections(host, port, requests // 4)
        out[f"{label}_conn_p50_us"] = percentile(lat, 50) * 1e6
        out[f"{label}_conn_p99_us"] = percentile(lat, 99) * 1e6
    # Bulk transfers interleaved, path after path, three rounds, the median kept: on a shared machine one
    # transfer per path mostly measures what the neighbours did at that moment.
    rounds: dict[str, list[float]] = {label: [] for label, _, _ in paths}
    for round_ in range(BULK_ROUNDS):
        for label, host, port in paths:
            progress(f"{label}: {megabytes} MB transfer, round {round_ + 1}/{BULK_ROUNDS}")
            rounds[label].append(await bulk(host, port, megabytes * 1_000_000))
    for label, values in rounds.items():
        out[f"{label}_bulk_MBps"] = sorted(values)[len(values) // 2]
    return out


BENCH_SERVICES = 1000


def dns_server(port: int, direct: bool) -> None:
    """The cluster DNS server with 1,000 Services (or, ``direct``, a canned answer) on 127.0.0.1:port."""
    import dns.message

    from agents.dns.records import resolve
    from agents.dns.server import DnsHandler, DnsServer

    services = {f"bench/svc-{i}": {"spec": {"clusterIP": f"198.19.{i // 250}.{i % 250 + 1}",
                                             "ports": [{"port": 80}]}} for i in range(BENCH_SERVICES)}
    canned = dns.message.make_response(dns.message.make_query("svc-1.bench.svc.cluster.local", "A")).to_wire()

    class Canned(DnsHandler):
        async def handle(self, wire: bytes) -> bytes | None:
            return wire[:2] + canned[2:]

    def answer(name: str, qtype: str) -> object:
        return resolve(name, qtype, domain="cluster.local", services=services.get, endpoints=lambda _k: None)

    async def serve() -> None:
        handler_type = Canned if direct else DnsHandler
        server = DnsServer(handler_type(answer, "cluster.local"))  # type: ignore[arg-type]
        await server.listen("127.0.0.1", port)
        await asyncio.Event().wait()

    asyncio.run(serve())


def dns_client(port: int, n: int) -> tuple[list[float], float]:
    """``n`` A queries for random Services, one at a time, over a connected UDP socket."""
    import random
    import socket

    import dns.message

    queries = [dns.message.make_query(f"svc-{random.randrange(BENCH_SERVICES)}.bench.svc.cluster.local",
                                      "A").to_wire() for _ in range(256)]
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.settimeout(2)
    sock.connect(("127.0.0.1", port))
    deadline = time.monotonic() + 30
    while True:  # the server process may still be starting
        try:
            sock.send(queries[0])
            sock.recv(4096)
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
    lat = []
    start = time.perf_counter()
    for i in range(n):
        t = time.perf_counter()
        sock.send(queries[i % len(queries)])
        reply = sock.recv(4096)
        lat.append(time.perf_counter() - t)
        assert reply[:2] == queries[i % len(queries)][:2]
    elapsed = time.perf_counter() - start
    sock.close()
    return lat, elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--role", default="client", choices=("client", "backend", "proxy", "dns", "dns-direct"))
    parser.add_argument("--dns-queries", type=int, default=5000)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--backend-port", type=int, default=0)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--megabytes", type=int, default=256)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    if args.role == "backend":
        asyncio.run(backend(args.port))
        return
    if args.role == "proxy":
        asyncio.run(proxy(args.port, args.backend_port))
        return
    if args.role in ("dns", "dns-direct"):
        dns_server(args.port, args.role == "dns-direct")
        return
    stop_on_signals()  # the client only: the servers it starts end on its SIGTERM
    backend_port, proxy_port, dns_port, dns_direct_port = free_port(), free_port(), free_port(), free_port()
    me = [sys.executable, "-m", "bench.bench_proxy"]
    procs = [subprocess.Popen([*me, "--role", "backend", "--port", str(backend_port)]),
             subprocess.Popen([*me, "--role", "proxy", "--port", str(proxy_port), "--backend-port", str(backend_port)]),
             subprocess.Popen([*me, "--role", "dns", "--port", str(dns_port)]),
             subprocess.Popen([*me, "--role", "dns-direct", "--port", str(dns_direct_port)])]
    table = f"shoal-bench-{os.getpid()}"
    nft_target = ("198.19.255.254", 80)
    try:
        nft = asyncio.run(nft_rule(table, nft_target, backend_port))
        r = asyncio.run(client(backend_port, proxy_port, args.requests, args.megabytes,
                               nft_target if nft else None))
        if nft:
            progress("nftables: rebuilding a table of 1,000 Services x 10 endpoints, 3 times")
            rebuilds = asyncio.run(nft_rebuild_ms(f"{table}-scale"))
            r["nft_rebuild_1000x10_ms"] = sorted(rebuilds)[len(rebuilds) // 2]
        for label, port in (("dns", dns_port), ("dns_direct", dns_direct_port)):
            progress(f"{label}: {args.dns_queries} lookups")
            lat, elapsed = dns_client(port, args.dns_queries)
            r[f"{label}_p50_us"] = percentile(lat, 50) * 1e6
            r[f"{label}_p99_us"] = percentile(lat, 99) * 1e6
            r[f"{label}_per_s"] = args.dns_queries / elapsed
    finally:
        for p in procs:
            p.terminate()
            p.wait()
        asyncio.run(drop_table(table))
    rows = [("request/response on one connection", "rr_p50_us", "rr_p99_us", "us"),
            ("new connection + one exchange", "conn_p50_us", "conn_p99_us", "us")]
    print(f"{'measure':<40} {'direct p50/p99':>20} {'proxied p50/p99':>20} {'ratio p50':>10}")
    for title, p50, p99, unit in rows:
        print(f"{title:<40} {r['direct_' + p50]:>9.0f}/{r['direct_' + p99]:<7.0f}{unit} "
              f"{r['proxied_' + p50]:>9.0f}/{r['proxied_' + p99]:<7.0f}{unit} "
              f"{r['proxied_' + p50] / r['direct_' + p50]:>9.2f}x")
    print(f"{'requests/s on one connection':<40} {r['direct_rr_per_s']:>20.0f} {r['proxied_rr_per_s']:>20.0f} "
          f"{r['direct_rr_per_s'] / r['proxied_rr_per_s']:>9.2f}x")
    print(f"{'bulk transfer MB/s':<40} {r['direct_bulk_MBps']:>20.0f} {r['proxied_bulk_MBps']:>20.0f} "
          f"{r['direct_bulk_MBps'] / r['proxied_bulk_MBps']:>9.2f}x")
    if "nft_rr_p50_us" in r:
        print(f"{'nftables':<40} {'direct p50/p99':>20} {'nftables p50/p99':>20} {'ratio p50':>10}")
        for title, p50, p99, unit in rows:
            print(f"{title:<40} {r['direct_' + p50]:>9.0f}/{r['direct_' + p99]:<7.0f}{unit} "
                  f"{r['nft_' + p50]:>9.0f}/{r['nft_' + p99]:<7.0f}{unit} "
                  f"{r['nft_' + p50] / r['direct_' + p50]:>9.2f}x")
        print(f"{'bulk transfer MB/s':<40} {r['direct_bulk_MBps']:>20.0f} {r['nft_bulk_MBps']:>20.0f} "
              f"{r['nft_bulk_MBps'] / r['direct_bulk_MBps']:>9.2f}x (of direct)")
        print(f"{'table rebuild, 1,000 Services x 10 eps':<40} {'':>20} {r['nft_rebuild_1000x10_ms']:>18.0f}ms")
    print(f"{'DNS A lookup (1,000 Services)':<40} {r['dns_direct_p50_us']:>9.0f}/{r['dns_direct_p99_us']:<7.0f}us "
          f"{r['dns_p50_us']:>9.0f}/{r['dns_p99_us']:<7.0f}us {r['dns_p99_us'] / r['dns_direct_p99_us']:>9.2f}x p99")
    print(f"{'DNS lookups/s (one at a time)':<40} {r['dns_direct_per_s']:>20.0f} {r['dns_per_s']:>20.0f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(r, f, indent=2)


if __name__ == "__main__":
    main()
