"""Scale run with hollow kubelets: N nodes in one process (fake runtime, real leases and status through
the real API), the scheduler, and M pods created through the API until every pod is Running.

Run: ``.venv/bin/python -m bench.bench_scale --nodes 1000 --pods 10000 [--json out.json]``.
Prints: time to all bound and all Running, scheduling rate, API create latency p50/p99 while the
cluster works, nodes Ready at the end (heartbeats kept), resident memory of every process, and checks
correctness: no pod on two nodes, no node over capacity.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

from bench.common import cluster, percentile, progress
from protocol.objects import condition_true

POD_CPU_MILLIS = 10


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def pod(i: int) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": f"s-{i}", "labels": {"app": f"a{i % 50}"}},
            "spec": {"containers": [{"name": "c", "image": "busybox",
                                     "resources": {"requests": {"cpu": f"{POD_CPU_MILLIS}m", "memory": "8Mi"}}}]}}


async def run(nodes: int, pods: int, concurrency: int, timeout: float) -> dict[str, Any]:
    extra = [["agents.hollow", "--nodes", str(nodes), "--lease-interval", "10", "--status-interval", "60",
              "--relist-interval", "5", "--max-pods", "250"],
             ["actors.scheduler", "--no-leader-elect"]]
    async with cluster(extra=extra) as c:
        client = c.client
        started = time.monotonic()
        while True:
            ready = sum(1 for n in (await client.list("Node")).items if condition_true(n, "Ready"))
            progress(f"nodes Ready: {ready}/{nodes}")
            if ready == nodes:
                break
            if time.monotonic() - started > timeout:
                raise SystemExit(f"only {ready}/{nodes} hollow nodes became Ready")
            await asyncio.sleep(1)
        register_s = time.monotonic() - started
        latencies: list[float] = []
        sem = asyncio.Semaphore(concurrency)

        async def create(i: int) -> None:
            async with sem:
                t = time.perf_counter()
                await client.create(pod(i))
                latencies.append(time.perf_counter() - t)

        first = time.monotonic()
        creator = asyncio.ensure_future(asyncio.gather(*(create(i) for i in range(pods))))
        bound_at = running_at = None
        while running_at is None:
            await asyncio.sleep(2)
            listing = (await client.list("Pod", "default")).items
            bound = sum(1 for p in listing if (p.get("spec") or {}).get("nodeName"))
            running = sum(1 for p in listing if (p.get("status") or {}).get("phase") == "Running")
            progress(f"pods created {len(latencies)}/{pods}, bound {bound}, Running {running}")
            if bound == pods and bound_at is None:
                bound_at = time.monotonic()
            if running == pods:
                running_at = time.monotonic()
            if time.monotonic() - first > timeout:
                raise SystemExit(f"timed out: {bound} bound, {running} Running of {pods}")
        await creator
        listing = (await client.list("Pod", "default")).items
        per_node = Counter(p["spec"]["nodeName"] for p in listing)
        assert len(listing) == pods and sum(per_node.values()) == pods, "a pod is missing or bound twice"
        assert max(per_node.values()) <= 250, "a node runs more pods than it allows"
        node_list = (await client.list("Node")).items
        ready_end = sum(1 for n in node_list if condition_true(n, "Ready"))
        memory = {name: round(rss_mib(proc.pid), 1)
                  for name, proc in zip(["api", "hollow", "scheduler"], c.procs, strict=False)}
        assert bound_at is not None
        return {
            "nodes": nodes, "pods": pods, "register_s": round(register_s, 1),
            "all_bound_s": round(bound_at - first, 1), "all_running_s": round(running_at - first, 1),
            "scheduled_per_s": round(pods / (bound_at - first), 1),
            "create_p50_ms": round(percentile(latencies, 50) * 1000, 1),
            "create_p99_ms": round(percentile(latencies, 99) * 1000, 1),
            "nodes_ready_at_end": ready_end, "rss_mib": memory,
            "rss_total_mib": round(sum(memory.values()), 1),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--nodes", type=int, default=200)
    parser.add_argument("--pods", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--timeout", type=float, default=900)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    r = asyncio.run(run(args.nodes, args.pods, args.concurrency, args.timeout))
    print(f"hollow nodes {r['nodes']}, pods {r['pods']}")
    for key in ("register_s", "all_bound_s", "all_running_s", "scheduled_per_s", "create_p50_ms", "create_p99_ms",
                "nodes_ready_at_end", "rss_total_mib"):
        print(f"  {key:<22} {r[key]}")
    print(f"  rss by process (MiB)   {r['rss_mib']}")
    if args.json:
        Path(args.json).write_text(json.dumps(r, indent=2))


if __name__ == "__main__":
    main()
