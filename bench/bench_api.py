"""API latency and throughput, next to the raw JetStream KV it writes, measured in the same run.

Run: ``.venv/bin/python -m bench.bench_api [--n 2000] [--concurrency 64] [--json out.json]``.
Prints create/get/update p50/p99 and throughput for the API actor and for raw ``kv.put``/``kv.get``,
and the ratio API cost / raw store cost. Figures, not asserts: the machine is shared and noisy.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

from bench.common import actor_health, api_arguments, cluster, progress, stop_on_signals, summary
from protocol import codec
from protocol.errors import Unavailable


async def timed_sequential(n: int, op: Callable[[int], Awaitable[Any]]) -> tuple[list[float], float]:
    lat = []
    start = time.perf_counter()
    for i in range(n):
        t = time.perf_counter()
        await op(i)
        lat.append(time.perf_counter() - t)
    return lat, time.perf_counter() - start


async def timed_concurrent(n: int, concurrency: int,
                           op: Callable[[int], Awaitable[Any]]) -> tuple[list[float], float]:
    lat: list[float] = []
    sem = asyncio.Semaphore(concurrency)

    async def one(i: int) -> None:
        async with sem:
            t = time.perf_counter()
            await op(i)
            lat.append(time.perf_counter() - t)

    start = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(n)))
    return lat, time.perf_counter() - start


async def timed_paced(rate: float, seconds: float, op: Callable[[int], Awaitable[Any]],
                      shed: list[int] | None = None) -> tuple[list[float], float]:
    """Open loop: call ``op`` at ``rate`` per second for ``seconds`` whatever the answers' pace; latency of each.
    A request the API sheds (``Unavailable``: overloaded, a busy machine) is counted in ``shed``, not timed."""
    lat: list[float] = []
    n = max(1, int(rate * seconds))
    tasks: list[asyncio.Task[None]] = []

    async def one(i: int) -> None:
        t = time.perf_counter()
        try:
            await op(i)
        except Unavailable:
            if shed is None:
                raise
            shed.append(i)
            return
        lat.append(time.perf_counter() - t)

    start = time.perf_counter()
    for i in range(n):
        delay = start + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(i)))
    await asyncio.gather(*tasks)
    return lat, time.perf_counter() - start


def cm(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "labels": {"bench": "api"}},
            "data": {"payload": "x" * 200}}


async def run(n: int, concurrency: int, rate: float = 0.0, seconds: float = 5.0,
              api_args: list[str] | None = None) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []
    async with cluster(api_args=api_args) as c:
        client = c.client
        js = client.nc.jetstream()
        kv = await js.create_key_value(bucket="rawbench", history=1)
        raw_value = codec.packb(cm("raw"))

        progress(f"raw kv.put x{n} sequential")
        raw_put = summary("raw kv.put (sequential)", *await timed_sequential(n, lambda i: kv.put(f"k{i}", raw_value)))
        progress(f"API create x{n} sequential")
        api_create = summary("API create (sequential)",
                             *await timed_sequential(n, lambda i: client.create(cm(f"s{i}"))))
        progress(f"raw kv.get / API get x{n}")
        raw_get = summary("raw kv.get (sequential)", *await timed_sequential(n, lambda i: kv.get(f"k{i}")))
        api_get = summary("API get (sequential)", *await timed_sequential(n, lambda i: client.get("cm", f"s{i}")))
        objs = [await client.get("cm", f"s{i}") for i in range(n)]
        progress(f"API update x{n}")

        async def update(i: int) -> Any:
            objs[i]["data"] = {"payload": "y" * 200}
            return await client.update(objs[i])

        api_update = summary("API update (sequential, CAS)", *await timed_sequential(n, update))
        progress(f"concurrent ({concurrency} in flight)")
        raw_put_c = summary(f"raw kv.put ({concurrency} in flight)",
                            *await timed_concurrent(n, concurrency, lambda i: kv.put(f"c{i}", raw_value)))
        api_create_c = summary(f"API create ({concurrency} in flight)",
                               *await timed_concurrent(n, concurrency, lambda i: client.create(cm(f"c{i}"))))
        grouped = (await actor_health(client, "api")).get("groupCommit") or {}
        if grouped:
            print(f"API group commit so far: {grouped['batched']} writes in {grouped['batches']} atomic batches, "
                  f"{grouped['refused']} batches refused and sent again alone")
        paced: list[dict[str, Any]] = []
        if rate > 0:
            progress(f"paced: raw kv.put then API create at {rate:.0f}/s for {seconds:.0f}s each")
            raw_paced = summary(f"raw kv.put at {rate:.0f}/s (open loop)",
                                *await timed_paced(rate, seconds, lambda i: kv.put(f"r{i}", raw_value)))
            shed: list[int] = []
            api_paced = summary(f"API create at {rate:.0f}/s (open loop)",
                                *await timed_paced(rate, seconds, lambda i: client.create(cm(f"r{i}")), shed))
            api_paced["shed"] = len(shed)  # answered "overloaded, retry" (the machine could not keep the pace)
            if shed:
                print(f"API create at {rate:.0f}/s: {len(shed)} of {int(rate * seconds)} shed as overloaded")
            paced = [raw_paced, api_paced]
        progress("list of everything")
        t = time.perf_counter()
        listing = await client.list("cm")
        list_s = time.perf_counter() - t
        results = [raw_put, api_create, raw_get, api_get, api_update, raw_put_c, api_create_c, *paced,
                   {"name": f"API list of {len(listing.items)} objects", "n": 1, "p50_ms": round(list_s * 1000, 1),
                    "p99_ms": round(list_s * 1000, 1), "mean_ms": round(list_s * 1000, 1), "per_s": 0}]
        ratios = {
            "create/raw put p50 (sequential)": api_create["p50_ms"] / raw_put["p50_ms"],
            "get/raw get p50": api_get["p50_ms"] / raw_get["p50_ms"],
            "create/raw put throughput (concurrent)": raw_put_c["per_s"] / max(api_create_c["per_s"], 1e-9),
        }
        if paced:
            ratios[f"create/raw put p99 at {rate:.0f}/s"] = paced[1]["p99_ms"] / max(paced[0]["p99_ms"], 1e-9)
        for r in results:
            print(f"{r['name']:<42} n={r['n']:<6} p50={r['p50_ms']:>8} ms  p99={r['p99_ms']:>8} ms  "
                  f"{r['per_s']:>9}/s")
        print("ratios (API cost over raw store; 1.0 = no overhead):")
        for name, value in ratios.items():
            print(f"  {name:<42} {value:.2f}x")
        results.append({"name": "ratios", **{k: round(v, 3) for k, v in ratios.items()}})
    return results


def main() -> None:
    stop_on_signals()
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--rate", type=float, default=1000.0, help="open-loop writes/s for the paced figure (0: skip)")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each paced phase")
    parser.add_argument("--group-commit", type=int, default=None,
                        help="the API actor's --group-commit (default: its own; 0: every write alone)")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    results = asyncio.run(run(args.n, args.concurrency, args.rate, args.seconds, api_arguments(args)))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
