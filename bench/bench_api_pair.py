"""API create at 64 in flight against raw ``kv.put``, two trees side by side: for before/after on a noisy machine.

Run from either tree: ``.venv/bin/python -m bench.bench_api_pair --before /tmp/before --after /tmp/after``.
Starts a nats-server and an API actor from each tree at once (each actor runs its own tree's code; the client is
this process), then interleaved rounds, who goes first alternating: ``--n`` raw ``kv.put`` then ``--n`` API
creates, 64 in flight, on each side. Prints each round's rates, the ratio API create / raw put, and the API
actor's and nats-server's CPU per create (``/proc``), then the medians: both sides see the same noise.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nats
from nats.aio.client import Client
from nats.js.kv import KeyValue

from bench.common import cpu_seconds, stop_on_signals, wait_for_api
from protocol import codec
from runtime.client import ApiClient
from runtime.nats_server import NatsServer, NatsServerConfig, free_port


@dataclass
class Side:
    name: str
    server: NatsServer
    api: asyncio.subprocess.Process
    nc: Client
    client: ApiClient
    kv: KeyValue


def config_map(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "labels": {"bench": "api"}},
            "data": {"payload": "x" * 200}}


async def in_flight(n: int, concurrency: int, op: Callable[[int], Awaitable[Any]]) -> float:
    """``n`` calls of ``op``, ``concurrency`` at a time; calls per second."""
    sem = asyncio.Semaphore(concurrency)

    async def one(i: int) -> None:
        async with sem:
            await op(i)

    start = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(n)))
    return n / (time.perf_counter() - start)


def putter(side: Side, prefix: str, value: bytes) -> Callable[[int], Awaitable[Any]]:
    return lambda i: side.kv.put(f"{prefix}{i}", value)


def creator(side: Side, prefix: str) -> Callable[[int], Awaitable[Any]]:
    return lambda i: side.client.create(config_map(f"{prefix}{i}"))


async def start_side(state: Path, name: str, tree: str) -> Side:
    server = NatsServer(NatsServerConfig(state_dir=state / name, port=free_port()))
    await server.start()
    api = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "actors.api", "--server", server.url, cwd=tree,
        env=dict(os.environ, SHOAL_LOG_LEVEL="warning", PYTHONPATH=tree))
    nc = await nats.connect(server.url)
    client = ApiClient(nc)
    await wait_for_api(client)
    kv = await nc.jetstream().create_key_value(bucket="rawbench", history=1)
    return Side(name, server, api, nc, client, kv)


async def run(before: str, after: str, rounds: int, n: int, concurrency: int) -> dict[str, list[dict[str, float]]]:
    raw = codec.packb(config_map("raw"))
    results: dict[str, list[dict[str, float]]] = {"before": [], "after": []}
    with tempfile.TemporaryDirectory(prefix="shoal-bench-pair-") as tmp:
        sides = [await start_side(Path(tmp), "before", before), await start_side(Path(tmp), "after", after)]
        try:
            for side in sides:  # warm both
                await in_flight(500, concurrency, putter(side, "w", raw))
                await in_flight(500, concurrency, creator(side, "w"))
            for r in range(rounds):
                for side in sides if r % 2 == 0 else sides[::-1]:
                    put = await in_flight(n, concurrency, putter(side, f"p{r}-", raw))
                    api0, nats0 = cpu_seconds(side.api.pid), cpu_seconds(side.server.proc.pid)  # type: ignore[union-attr]
                    create = await in_flight(n, concurrency, creator(side, f"c{r}-"))
                    row = {"put_per_s": put, "create_per_s": create, "ratio": create / put,
                           "api_cpu_us": (cpu_seconds(side.api.pid) - api0) / n * 1e6,
                           "nats_cpu_us": (cpu_seconds(side.server.proc.pid) - nats0) / n * 1e6}  # type: ignore[union-attr]
                    results[side.name].append(row)
                    print(f"round {r} {side.name:<6} kv.put {put:6.0f}/s  API create {create:6.0f}/s  "
                          f"ratio {row['ratio']:.2f}  API CPU {row['api_cpu_us']:4.0f} us/create  "
                          f"nats CPU {row['nats_cpu_us']:4.0f} us/create  load {os.getloadavg()[0]:.1f}", flush=True)
        finally:
            for side in sides:
                await side.nc.close()
                side.api.terminate()
                await side.api.wait()
                await side.server.stop()
    for name, rows in results.items():
        def median(key: str, rows: list[dict[str, float]] = rows) -> float:
            return statistics.median(row[key] for row in rows)
        print(f"{name:<6} median of {len(rows)}: ratio {median('ratio'):.2f}  kv.put {median('put_per_s'):.0f}/s  "
              f"API create {median('create_per_s'):.0f}/s  API CPU {median('api_cpu_us'):.0f} us/create  "
              f"nats CPU {median('nats_cpu_us'):.0f} us/create")
    return results


def main() -> None:
    stop_on_signals()
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--before", required=True, help="the tree (a checkout) of the 'before' API actor")
    parser.add_argument("--after", required=True, help="the tree of the 'after' API actor")
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--n", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args()
    asyncio.run(run(args.before, args.after, args.rounds, args.n, args.concurrency))


if __name__ == "__main__":
    main()
