"""Proxied vs direct: many small request/responses and one large transfer, in the same run.

Run: ``.venv/bin/python -m bench.bench_proxy [--requests 2000] [--megabytes 256]``. The backend and
the proxy (the userspace data path with one static rule) each run in their own process; the client
measures the backend directly and through the proxy, and prints the ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time

from bench.common import percentile, progress
from runtime.nats_server import free_port

CHUNK = 256 * 1024


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


async def small_requests(port: int, n: int) -> tuple[list[float], float]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
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


async def connections(port: int, n: int) -> tuple[list[float], float]:
    lat = []
    start = time.perf_counter()
    for _ in range(n):
        t = time.perf_counter()
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"hello\n")
        await reader.readline()
        writer.close()
        lat.append(time.perf_counter() - t)
    return lat, time.perf_counter() - start


async def bulk(port: int, size: int) -> float:
    reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=CHUNK * 4)
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


async def wait_listening(port: int, timeout: float = 30.0) -> None:
    """Wait until something accepts connections on ``port`` (the helper processes start in parallel)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.1)
            continue
        writer.close()
        return


async def client(direct: int, proxied: int, requests: int, megabytes: int) -> dict[str, float]:
    await wait_listening(direct)
    await wait_listening(proxied)
    out: dict[str, float] = {}
    for label, port in (("direct", direct), ("proxied", proxied)):
        progress(f"{label}: {requests} request/responses on one connection")
        lat, elapsed = await small_requests(port, requests)
        out[f"{label}_rr_p50_us"] = percentile(lat, 50) * 1e6
        out[f"{label}_rr_p99_us"] = percentile(lat, 99) * 1e6
        out[f"{label}_rr_per_s"] = requests / elapsed
        progress(f"{label}: {requests // 4} new connections")
        lat, elapsed = await connections(port, requests // 4)
        out[f"{label}_conn_p50_us"] = percentile(lat, 50) * 1e6
        out[f"{label}_conn_p99_us"] = percentile(lat, 99) * 1e6
        progress(f"{label}: one {megabytes} MB transfer")
        out[f"{label}_bulk_MBps"] = await bulk(port, megabytes * 1_000_000)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--role", default="client", choices=("client", "backend", "proxy"))
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
    backend_port, proxy_port = free_port(), free_port()
    procs = [subprocess.Popen([sys.executable, "-m", "bench.bench_proxy", "--role", "backend", "--port",
                               str(backend_port)]),
             subprocess.Popen([sys.executable, "-m", "bench.bench_proxy", "--role", "proxy", "--port",
                               str(proxy_port), "--backend-port", str(backend_port)])]
    try:
        r = asyncio.run(client(backend_port, proxy_port, args.requests, args.megabytes))
    finally:
        for p in procs:
            p.terminate()
            p.wait()
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
    if args.json:
        with open(args.json, "w") as f:
            json.dump(r, f, indent=2)


if __name__ == "__main__":
    main()
