"""Scheduler throughput benchmark (a script, not a test).

Starts a nats-server, an API actor and a scheduler (each its own process, as in a cluster), registers
hollow nodes (Node objects with allocatable and Ready=True; no kubelet), then:

1. baseline: creates ``--pods`` pods nobody schedules (schedulerName ``none``), the raw API create rate;
2. creates ``--pods`` schedulable pods and waits until the scheduler has bound them all; with ``--backlog``
   every pod is created before the scheduler starts, and the throughput is first bind to last bind (the
   scheduler's sustained rate, as kube-scheduler's scheduler_perf reports it, not bounded by creates).

Prints throughput (first create to last bind, pods/s), bind latency per pod (create sent -> bound seen
on a watch) p50/p99, and the ratio to the baseline create rate.

    .venv/bin/python bench/bench_scheduler.py --nodes 1000 --pods 5000
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nats

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.calibrate import fingerprint  # noqa: E402
from bench.common import actor_health, api_arguments, cpu_seconds, profiled, stop_on_signals  # noqa: E402
from protocol.errors import ShoalError  # noqa: E402
from protocol.objects import Obj, name_of  # noqa: E402
from runtime.client import ApiClient  # noqa: E402
from runtime.informer import Informer  # noqa: E402
from runtime.nats_server import NatsServer, NatsServerConfig, free_port  # noqa: E402
from tests.scheduler.helpers import make_node, make_pod  # noqa: E402


def spawn(module: str, url: str, *extra: str, log_dir: Path) -> subprocess.Popen[bytes]:
    log = (log_dir / f"{module.rsplit('.', 1)[-1]}.log").open("wb")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, *profiled(module), "--server", url, "--log-level", "warning",
                             "--log-format", "json", *extra], cwd=ROOT, env=env, stdout=log, stderr=log)


async def create_many(client: ApiClient, objects: list[Obj], concurrency: int,
                      sent: dict[str, float] | None = None, label: str = "") -> float:
    """Create every object with ``concurrency`` requests in flight; returns the seconds it took."""
    it = iter(objects)
    done = 0
    started = time.monotonic()

    async def worker() -> None:
        nonlocal done
        for obj in it:
            if sent is not None:
                sent[name_of(obj)] = time.monotonic()
            for attempt in range(5):
                try:
                    await client.create(obj)
                    break
                except ShoalError as exc:
                    if not exc.retryable or attempt == 4:
                        raise
                    await asyncio.sleep(0.2 * (attempt + 1))
            done += 1

    async def progress() -> None:
        while True:
            await asyncio.sleep(1)
            print(f"  .. {label}: {done}/{len(objects)} created", flush=True)

    reporter = asyncio.create_task(progress())
    try:
        await asyncio.gather(*(worker() for _ in range(concurrency)))
    finally:
        reporter.cancel()
    return time.monotonic() - started


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


async def run(args: argparse.Namespace) -> None:
    machine = fingerprint()
    print(f"CPU: {machine['cpu_model']}; calibration: {machine['msgpack_round_trips_per_s']:,} msgpack pod round "
          f"trips/s; load average {os.getloadavg()[0]:.2f}", flush=True)
    with tempfile.TemporaryDirectory(prefix="shoal-bench-") as tmp:
        tmpdir = Path(tmp)
        server = NatsServer(NatsServerConfig(state_dir=tmpdir / "nats", port=free_port()))
        await server.start()
        procs: list[subprocess.Popen[bytes]] = []
        nc = await nats.connect(server.url)
        try:
            client = ApiClient(nc, timeout=30)
            procs.append(spawn("actors.api", server.url, *api_arguments(args), log_dir=tmpdir))
            for _ in range(300):
                with contextlib.suppress(ShoalError):
                    await client.info()
                    break
                await asyncio.sleep(0.1)
            for ns in ("bench", "baseline"):
                await client.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})

            print(f"registering {args.nodes} hollow nodes", flush=True)
            await create_many(client, [make_node(f"hollow-{i:05d}", labels={"zone": f"z{i % 3}"})
                                       for i in range(args.nodes)], args.concurrency, label="nodes")

            rng = random.Random(42)

            def pods(namespace: str, scheduler: str | None) -> list[Obj]:
                out = []
                for i in range(args.pods):
                    owner = {"name": f"rs-{i % 20}", "uid": f"uid-rs-{i % 20}"} if i % 2 == 0 else None
                    out.append(make_pod(f"p-{i:06d}", namespace=namespace, owner=owner, scheduler=scheduler,
                                        cpu=f"{rng.choice([100, 200, 250, 500])}m",
                                        memory=f"{rng.choice([128, 256, 512])}Mi"))
                return out

            print(f"baseline: creating {args.pods} pods nobody schedules", flush=True)
            baseline_s = await create_many(client, pods("baseline", "none"), args.concurrency, label="baseline")
            baseline_rate = args.pods / baseline_s
            print(f"baseline create rate: {baseline_rate:.0f} pods/s ({baseline_s:.1f}s)", flush=True)

            bound_at: dict[str, float] = {}
            node_of: dict[str, str] = {}

            def on_bound(event: str, old: Obj | None, new: Obj | None) -> None:
                if new is not None and event != "DELETED" and name_of(new) not in bound_at:
                    bound_at[name_of(new)] = time.monotonic()
                    node_of[name_of(new)] = new["spec"]["nodeName"]

            watcher = Informer(client, "Pod", "bench", field_selector="spec.nodeName!=")
            watcher.add_handler(on_bound)
            watch_task = asyncio.create_task(watcher.run())
            await watcher.synced.wait()

            sent: dict[str, float] = {}
            backlog_s = 0.0
            if args.backlog:
                print(f"backlog: creating {args.pods} pods before the scheduler starts", flush=True)
                backlog_s = await create_many(client, pods("bench", None), args.concurrency, sent, label="backlog")
            procs.append(spawn("actors.scheduler", server.url, "--no-leader-elect",
                               "--bind-concurrency", str(args.bind_concurrency),
                               *(["--bind-batch", str(args.bind_batch)] if args.bind_batch else []),
                               "--percentage-of-nodes-to-score", str(args.percentage), log_dir=tmpdir))
            if not args.backlog:
                while not ((h := await actor_health(client, "scheduler")) and h.get("synced")):
                    await asyncio.sleep(0.2)
                print(f"scheduler synced: {h['nodes']} nodes", flush=True)
                print(f"scheduling: creating {args.pods} pods", flush=True)
            pids = {"scheduler": procs[-1].pid, "api": procs[0].pid, "nats-server": server.proc.pid if server.proc
                    else 0, "bench": os.getpid()}
            cpu_start = {name: cpu_seconds(pid) for name, pid in pids.items()}
            cpu_first: dict[str, float] | None = None
            first_seen = 0.0
            first = time.monotonic()
            create_task = asyncio.create_task(
                create_many(client, [] if args.backlog else pods("bench", None), args.concurrency, sent,
                            label="scheduled pods"))
            deadline = first + args.timeout
            while len(bound_at) < args.pods:
                await asyncio.sleep(1)
                if cpu_first is None and bound_at:
                    cpu_first, first_seen = {name: cpu_seconds(pid) for name, pid in pids.items()}, time.monotonic()
                h = await actor_health(client, "scheduler")
                print(f"  .. bound {len(bound_at)}/{args.pods}  (scheduler: pending={h.get('pending')} "
                      f"assumed={h.get('assumed')} bindFailures={h.get('bindFailures')})", flush=True)
                if time.monotonic() > deadline:
                    raise SystemExit(f"timed out: only {len(bound_at)}/{args.pods} pods bound")
            cpu_end, end_seen = {name: cpu_seconds(pid) for name, pid in pids.items()}, time.monotonic()
            create_s = backlog_s or await create_task
            last = max(bound_at.values())
            if args.backlog:  # pure scheduling: first bind to last, the pods all waiting from the start
                first = min(bound_at.values())
            watch_task.cancel()

            total_s = last - first
            latencies = [(bound_at[n] - sent[n]) * 1000 for n in bound_at]
            per_node: dict[str, int] = {}
            for n in node_of.values():
                per_node[n] = per_node.get(n, 0) + 1
            rate = args.pods / total_s
            h = await actor_health(client, "scheduler")
            print()
            print(f"nodes {args.nodes}, pods {args.pods}, bind concurrency {args.bind_concurrency}, "
                  f"percentage of nodes to score {args.percentage or 'adaptive'}, cpus {os.cpu_count()}")
            print(f"API create rate (baseline, no scheduler): {baseline_rate:8.0f} pods/s")
            create_label = f"create rate {'(backlog)' if args.backlog else 'while scheduling'}:"
            print(f"{create_label:<42}{args.pods / create_s:8.0f} pods/s")
            span = "first bind -> last bind, all pending at start" if args.backlog else "first create -> all bound"
            print(f"scheduler throughput ({span}): {rate:8.0f} pods/s  ({total_s:.1f}s)")
            print(f"ratio scheduled / baseline create rate:  {rate / baseline_rate:8.2f}")
            print(f"bind latency per pod (create sent -> bound seen): p50 {statistics.median(latencies):.0f} ms, "
                  f"p99 {percentile(latencies, 99):.0f} ms, max {max(latencies):.0f} ms")
            print(f"pods per node: min {min(per_node.values())}, max {max(per_node.values())}, "
                  f"nodes used {len(per_node)}")
            cpu_first = cpu_first or cpu_start
            window = end_seen - first_seen if first_seen else end_seen - first
            busy = {name: round(cpu_end[name] - cpu_first[name], 1) for name in pids}
            print(f"CPU seconds while binding ({window:.1f} s wall, sampled each second): "
                  + ", ".join(f"{name} {busy[name]}" for name in pids)
                  + f"; scheduler {busy['scheduler'] / max(window, 1e-9):.0%} of a core; before the first bind "
                  f"(its lists): scheduler {cpu_first['scheduler'] - cpu_start['scheduler']:.1f} s")
            print(f"scheduler health: {h}")
            if args.json:
                with open(args.json, "w") as f:
                    json.dump({**machine, "load_average_end": round(os.getloadavg()[0], 2),
                           "nodes": args.nodes, "pods": args.pods, "baseline_create_per_s": round(baseline_rate, 1),
                               "scheduled_per_s": round(rate, 1), "ratio": round(rate / baseline_rate, 3),
                               "backlog": args.backlog, "cpu_seconds_while_binding": busy,
                               "binding_window_s": round(window, 1),
                               "bind_latency_p50_ms": round(statistics.median(latencies), 1),
                               "bind_latency_p99_ms": round(percentile(latencies, 99), 1)}, f, indent=2)
        finally:
            await nc.close()
            for proc in procs:
                proc.terminate()
            for proc in procs:
                try:
                    proc.wait(60)
                except subprocess.TimeoutExpired:
                    proc.kill()
            await server.stop()


def main() -> None:
    stop_on_signals()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--pods", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=128, help="creates in flight")
    parser.add_argument("--bind-concurrency", type=int, default=512,
                        help="pods decided and not yet bound, at most, in the scheduler")
    parser.add_argument("--bind-batch", type=int, default=0,
                        help="the scheduler's bindings per batched bind request (0 = its default)")
    parser.add_argument("--percentage", type=int, default=0,
                        help="scheduler's percentage of nodes to score (0 = adaptive, as Kubernetes)")
    parser.add_argument("--backlog", action="store_true",
                        help="create every pod before the scheduler starts: its sustained rate, not the create rate")
    parser.add_argument("--timeout", type=float, default=600)
    parser.add_argument("--group-commit", type=int, default=None,
                        help="the API actor's --group-commit (default: its own; 0: every write alone)")
    parser.add_argument("--json", default=None, help="also write the figures to this file")
    args = parser.parse_args()
    with contextlib.suppress(ImportError):
        import uvloop
        uvloop.install()
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
