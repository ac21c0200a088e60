"""API latency with ``shoal up``'s authentication on vs off, in the same run (issue 18, item 1).

Two clusters at once, each a nats-server and an API actor: one as ``shoal up`` runs it now (NATS users
and per-identity permissions, private inboxes; the client is the ``cli`` identity), one open as before.
Get and create of ConfigMaps are measured in interleaved rounds so the machine's drift hits both alike.
What authentication costs per request is nats-server's permission check on each publish and subscribe
(cached per subject) and nothing in the API actor; the connection handshake is paid once.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import time
from pathlib import Path
from typing import Any

from bench.common import cluster, percentile, progress
from runtime.client import ApiClient


async def latencies(client: ApiClient, n: int, tag: str) -> tuple[list[float], list[float]]:
    gets, creates = [], []
    for i in range(n):
        started = time.perf_counter()
        await client.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"{tag}-{i}"},
                             "data": {"k": "value"}})
        creates.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        await client.get("ConfigMap", f"{tag}-{i}", "default")
        gets.append((time.perf_counter() - started) * 1000)
    return gets, creates


async def main_async(n: int, rounds: int) -> dict[str, Any]:
    lat: dict[str, list[float]] = {}
    async with contextlib.AsyncExitStack() as stack:
        clusters = {tag: await stack.enter_async_context(cluster(auth=tag == "auth")) for tag in ("auth", "open")}
        for c in clusters.values():
            await latencies(c.client, 30, "warm")
        per_round = max(1, n // rounds)
        for r in range(rounds):
            for tag in ("auth", "open") if r % 2 == 0 else ("open", "auth"):  # who goes first alternates
                c = clusters[tag]
                gets, creates = await latencies(c.client, per_round, f"r{r}")
                lat.setdefault(f"get_{tag}", []).extend(gets)
                lat.setdefault(f"create_{tag}", []).extend(creates)
    figures: dict[str, Any] = {"n": n, "rounds": rounds}
    for key, values in lat.items():
        figures[f"{key}_p50_ms"] = round(percentile(values, 50), 3)
        figures[f"{key}_p99_ms"] = round(percentile(values, 99), 3)
    for verb in ("get", "create"):
        figures[f"{verb}_ratio_p50"] = round(figures[f"{verb}_auth_p50_ms"] / figures[f"{verb}_open_p50_ms"], 2)
    progress(f"get p50 {figures['get_auth_p50_ms']} ms with auth vs {figures['get_open_p50_ms']} ms open "
             f"({figures['get_ratio_p50']}x); create p50 {figures['create_auth_p50_ms']} vs "
             f"{figures['create_open_p50_ms']} ms ({figures['create_ratio_p50']}x)")
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=1000, help="gets and creates per cluster")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--json", default="")
    args = parser.parse_args()
    result = asyncio.run(main_async(args.n, args.rounds))
    print(json.dumps(result, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(result))


if __name__ == "__main__":
    main()
