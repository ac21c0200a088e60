"""Scale run with hollow kubelets: N nodes simulated by hollow-node processes (fake runtime, real leases and
status through the real API), the scheduler, and M pods created through the API until every pod is Running.

Run: ``.venv/bin/python -m bench.bench_scale --nodes 1000 --pods 10000 [--json out.json]``.

Prints (and writes as JSON): time until all pods are bound and all Running; the scheduler's rate; the API
create latency p50/p99 while the cluster works, and the latency of a paced probe write (one ConfigMap
update every 50 ms, from its own process and connection: ``bench/probe.py``) that measures what one person's
write sees under that load, next to the same probe's latency in the 2 s before the load; heartbeats kept (the
oldest node Lease seen during the whole run, and how many nodes ever went longer than the lease duration
without renewing: each would have been falsely marked NotReady); the resident memory of every process.

``--events on|off`` (default off, as the scale figures were measured): on, every pod's Events are recorded
as in a real cluster (the scheduler's ``Scheduled``, the hollow kubelets' ``Pulled``/``Created``/``Started``,
the nodes' ``Starting``/``NodeReady``); off, ``--no-scheduled-events`` and hollow nodes without ``--events``.
``--compare-events`` runs the same sizes twice in one invocation, events off then on, and reports both with
the ratio of their times: datastore writes per pod (the KV bucket's messages while the pods start, divided
by the pods: node heartbeats included, so a longer run counts more), pod writes per pod (the pod versions
the run's watch saw) and event stream messages per pod are reported for each.

``--api-actors N`` (default 1) runs N API actor processes, one NATS queue group (no coordination: every write
is compare-and-swap); every figure for ``api`` (RSS, CPU, GC seconds) is their sum, each also listed alone
under ``api_processes``. ``--compare-api-actors`` runs the same sizes with 1 then 2 API actors, alternating as
``--compare-events`` does (``bench/scale_compare.py``), and prints every figure of both sides with the ratio.

``--backlog`` creates every pod before the scheduler starts, then measures pure scheduling throughput
(first bind to last bind, nothing else competing), as kube-scheduler's scheduler_perf does.

Correctness is asserted at the end: every acknowledged create is present and Running (no lost update),
no pod was ever seen bound to two nodes, no node holds more pods than it allows or more CPU than it has.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from bench.common import (
    actor_health,
    api_arguments,
    cluster,
    cpu_seconds,
    percentile,
    progress,
    stop_on_signals,
)
from bench.probe import PROBING
from bench.scale_compare import API_ACTORS, EVENTS, alternate, compare, comparison_lines
from bench.scale_processes import API, api_processes, by_role, process_names, renice, role
from protocol import codec, keys, subjects
from protocol.errors import AlreadyExists, ShoalError
from protocol.objects import condition_true, name_of, parse_time
from protocol.quantity import cpu_millis
from protocol.subjects import EVENTS_STREAM
from runtime.client import ApiClient

POD_CPU_MILLIS = 10
NODE_CPU = "8"
MAX_PODS = 250
KV_STREAM = f"KV_{keys.BUCKET}"
"""The datastore's stream: its last sequence counts every write."""
LEASE_DURATION_S = 40.0
"""The kubelet's lease duration: a node whose lease is older than this is declared NotReady."""


def rss_mib(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


async def gc_seconds_by_pid(client: ApiClient, actors: tuple[str, ...] = ("api", "scheduler", "hollow")
                            ) -> dict[int, float]:
    """Seconds each actor process spent in garbage collection, from every instance's health reply."""
    inbox = client.nc.new_inbox()
    sub = await client.nc.subscribe(inbox)
    found: dict[int, float] = {}
    try:
        for actor in actors:
            await client.nc.publish(subjects.health(actor), b"", reply=inbox)
        while True:
            try:
                msg = await sub.next_msg(timeout=1.0)
            except Exception:
                return found
            health = codec.decode(msg.data).get("health") or {}
            if isinstance(health.get("pid"), int):
                found[health["pid"]] = float((health.get("gc") or {}).get("seconds", 0.0))
    finally:
        await sub.unsubscribe()


def pod(i: int) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": f"s-{i}", "labels": {"app": f"a{i % 50}"}},
            "spec": {"containers": [{"name": "c", "image": "busybox",
                                     "resources": {"requests": {"cpu": f"{POD_CPU_MILLIS}m", "memory": "8Mi"}}}]}}


class PodCounter:
    """Follows every pod change through one watch: bound and Running counts, and double binds."""

    def __init__(self) -> None:
        self.node_of: dict[str, str] = {}
        self.bound_at: dict[str, float] = {}
        self.running: set[str] = set()
        self.rebound: list[tuple[str, str, str]] = []
        self.writes = 0  # pod versions seen (each one a datastore write)

    def see(self, obj: dict[str, Any]) -> None:
        name = name_of(obj)
        node = (obj.get("spec") or {}).get("nodeName")
        if node:
            before = self.node_of.get(name)
            if before is None:
                self.node_of[name] = node
                self.bound_at[name] = time.monotonic()
            elif before != node:
                self.rebound.append((name, before, node))
        if (obj.get("status") or {}).get("phase") == "Running":
            self.running.add(name)

    async def follow(self, client: ApiClient, rv: int) -> None:
        async with client.watch("Pod", "default", resource_version=rv) as watch:
            async for event in watch:
                self.writes += 1
                if event.type != "DELETED":
                    self.see(event.object)


class LeaseMonitor:
    """Samples every node Lease: the oldest renewal seen and the nodes that went stale (falsely NotReady)."""

    def __init__(self, nodes: int) -> None:
        self.nodes = nodes
        self.max_age = 0.0
        self.stale: set[str] = set()
        self.samples = 0

    async def run(self, client: ApiClient, every: float = 5.0) -> None:
        while True:
            await asyncio.sleep(every)
            try:
                leases = (await client.list("Lease", "kube-node-lease")).items
            except ShoalError:
                continue
            now = time.time()
            self.samples += 1
            for lease in leases:
                renewed = parse_time((lease.get("spec") or {}).get("renewTime"))
                if renewed is None:
                    continue
                age = now - renewed
                self.max_age = max(self.max_age, age)
                if age > LEASE_DURATION_S:
                    self.stale.add(name_of(lease))


async def create_pods(client: ApiClient, pods: int, concurrency: int, latencies: list[float],
                      acked: set[str]) -> None:
    next_index = 0

    async def worker() -> None:
        nonlocal next_index
        while next_index < pods:
            i = next_index
            next_index += 1
            body = pod(i)
            for attempt in range(60):  # a retryable refusal (an overloaded API actor sheds) is asked again
                started = time.perf_counter()
                try:
                    await client.create(body)
                except AlreadyExists:
                    pass  # an earlier attempt was acknowledged after its timeout
                except ShoalError as exc:
                    if not exc.retryable:
                        raise
                    await asyncio.sleep(min(0.5 * (attempt + 1), 5.0))
                    continue
                latencies.append(time.perf_counter() - started)
                acked.add(name_of(body))
                break

    await asyncio.gather(*(worker() for _ in range(concurrency)))


def hollow_commands(nodes: int, procs: int, lease_interval: float, events: bool = False) -> list[list[str]]:
    per = [nodes // procs + (1 if k < nodes % procs else 0) for k in range(procs)]
    return [["agents.hollow", "--nodes", str(n), "--prefix", f"hollow-{k}-", "--cpu", NODE_CPU,
             "--lease-interval", str(lease_interval), "--status-interval", "60", "--relist-interval", "10",
             "--max-pods", str(MAX_PODS), *(["--events"] if events else [])] for k, n in enumerate(per) if n > 0]


async def stream_last(client: ApiClient, stream: str) -> int:
    """The last sequence of a JetStream stream: the messages ever written to it."""
    try:
        return int((await client.nc.jetstream().stream_info(stream)).state.last_seq)
    except Exception:
        return 0


async def run(args: argparse.Namespace) -> dict[str, Any]:
    nodes, pods = args.nodes, args.pods
    events_on = args.events == "on"
    hollow = hollow_commands(nodes, args.hollow_procs, args.lease_interval, events_on)
    scheduler_cmd = ["actors.scheduler", "--no-leader-elect", *([] if events_on else ["--no-scheduled-events"])]
    extra = hollow + ([] if args.backlog else [scheduler_cmd])
    async with cluster(api_actors=args.api_actors, extra=extra, api_args=api_arguments(args)) as c:
        client = ApiClient(c.client.nc, timeout=30)
        names = process_names(args.api_actors, len(hollow), scheduler=not args.backlog)
        procs = dict(zip(names, c.procs, strict=True))
        apis = [proc for name, proc in procs.items() if role(name) == API]
        for name, proc in procs.items():
            if name.startswith("hollow-") and args.hollow_nice:
                renice(proc.pid, args.hollow_nice)
        started = time.monotonic()
        while True:
            try:
                ready = sum(1 for n in (await client.list("Node")).items if condition_true(n, "Ready"))
            except ShoalError as exc:  # an overloaded API actor sheds requests: ask again
                progress(f"hollow nodes: list failed ({exc.code}); asking again")
                await asyncio.sleep(2)
                continue
            progress(f"hollow nodes Ready: {ready}/{nodes}")
            if ready == nodes:
                break
            if time.monotonic() - started > args.timeout:
                raise SystemExit(f"only {ready}/{nodes} hollow nodes became Ready")
            await asyncio.sleep(2)
        register_s = time.monotonic() - started
        counter = PodCounter()
        leases = LeaseMonitor(nodes)
        created: list[float] = []
        acked: set[str] = set()
        rv = (await client.list("Pod", "default")).resource_version
        background = [asyncio.create_task(counter.follow(client, rv)), asyncio.create_task(leases.run(client))]
        prober = subprocess.Popen([sys.executable, "-m", "bench.probe", "--server", c.server.url],
                                  stdout=subprocess.PIPE)
        c.procs.append(prober)  # stopped with the cluster if the run fails
        kv_before, events_before = await stream_last(client, KV_STREAM), await stream_last(client, EVENTS_STREAM)
        assert prober.stdout is not None
        if await asyncio.wait_for(asyncio.to_thread(prober.stdout.readline), 120) != f"{PROBING}\n".encode():
            raise SystemExit("the probe ended before its first write was answered")
        await asyncio.sleep(2)  # probe writes before the load: the baseline of the same run
        first = time.monotonic()
        creator = asyncio.create_task(create_pods(client, pods, args.concurrency, created, acked))
        created_at = [first]
        creator.add_done_callback(lambda _: created_at.__setitem__(0, time.monotonic()))
        if args.backlog:
            while not creator.done():
                await asyncio.sleep(2)
                progress(f"backlog: pods created {len(acked)}/{pods} (no scheduler yet)")
            await creator
            env = dict(os.environ, SHOAL_LOG_LEVEL="warning")
            proc = subprocess.Popen([sys.executable, "-m", *scheduler_cmd, "--server", c.server.url], env=env)
            c.procs.append(proc)
            procs["scheduler"] = proc
        bound_at = running_at = None
        last_report = 0.0
        while running_at is None:
            await asyncio.sleep(1)
            bound, running = len(counter.node_of), len(counter.running)
            now = time.monotonic()
            if now - last_report >= 5:
                last_report = now
                h = await actor_health(client, "scheduler")
                progress(f"{now - first:5.0f}s pods created {len(acked)}/{pods}, bound {bound}, Running {running}; "
                         f"scheduler pending {h.get('pending', '?')}; oldest lease {leases.max_age:.0f}s; "
                         f"rss api {sum(rss_mib(p.pid) for p in apis):.0f} MiB")
            if bound >= pods and bound_at is None:
                bound_at = max(counter.bound_at.values())
            if running >= pods:
                running_at = now
            if now - first > args.timeout:
                raise SystemExit(f"timed out after {args.timeout:.0f}s: {bound} bound, {running} Running of {pods}")
        await creator
        kv_writes = await stream_last(client, KV_STREAM) - kv_before
        event_messages = await stream_last(client, EVENTS_STREAM) - events_before
        memory_each = {name: round(rss_mib(proc.pid), 1) for name, proc in procs.items()}
        cpu_each = {name: round(cpu_seconds(proc.pid), 1) for name, proc in procs.items()}
        collected = await gc_seconds_by_pid(client)
        gc_each = {name: round(collected[proc.pid], 1) for name, proc in procs.items() if proc.pid in collected}
        memory, cpu, gc_time = by_role(memory_each), by_role(cpu_each), by_role(gc_each)
        server_proc = getattr(c.server, "proc", None)
        if server_proc is not None:
            memory["nats-server"] = round(rss_mib(server_proc.pid), 1)
            cpu["nats-server"] = round(cpu_seconds(server_proc.pid), 1)
        for task in background:
            task.cancel()
        prober.terminate()
        probed: list[tuple[float, float]] = json.loads(prober.communicate(timeout=30)[0].splitlines()[-1])
        idle = [seconds for at, seconds in probed if at < first]
        probe = [seconds for at, seconds in probed if at >= first]
        # -- correctness -------------------------------------------------------------------------
        listing = (await client.list("Pod", "default")).items
        node_list = (await client.list("Node")).items
        per_node = Counter(p["spec"]["nodeName"] for p in listing if (p.get("spec") or {}).get("nodeName"))
        cpu_per_node: Counter[str] = Counter()
        for p in listing:
            for container in p["spec"].get("containers") or []:
                requests = (container.get("resources") or {}).get("requests") or {}
                cpu_per_node[p["spec"].get("nodeName", "")] += cpu_millis(str(requests.get("cpu", "0")))
        capacity = {name_of(n): cpu_millis(str(((n.get("status") or {}).get("allocatable") or {}).get("cpu", "0")))
                    for n in node_list}
        names_listed = {name_of(p) for p in listing}
        lost = acked - names_listed
        not_running = [name_of(p) for p in listing if (p.get("status") or {}).get("phase") != "Running"]
        over_pods = [n for n, count in per_node.items() if count > MAX_PODS]
        over_cpu = [n for n, used in cpu_per_node.items() if used > capacity.get(n, 0)]
        checks = {
            "pods_listed": len(listing), "creates_acknowledged": len(acked), "lost_updates": len(lost),
            "not_running": len(not_running), "bound_twice": len(counter.rebound),
            "nodes_over_pod_limit": len(over_pods), "nodes_over_cpu": len(over_cpu),
        }
        ready_end = sum(1 for n in node_list if condition_true(n, "Ready"))
        binds = sorted(counter.bound_at.values())
        bind_window = (binds[-1] - binds[0]) if len(binds) > 1 else 0.0
        assert bound_at is not None
        result = {
            "nodes": nodes, "pods": pods, "hollow_processes": len(hollow), "hollow_nice": args.hollow_nice,
            "backlog": args.backlog, "events": args.events, "api_actors": args.api_actors,
            "datastore_writes_per_pod": round(kv_writes / pods, 2),
            "pod_writes_per_pod": round(counter.writes / pods, 2),
            "event_messages_per_pod": round(event_messages / pods, 2),
            "register_s": round(register_s, 1),
            "all_bound_s": round(bound_at - first, 1), "all_running_s": round(running_at - first, 1),
            "create_per_s": round(len(acked) / max(1e-9, created_at[0] - first), 1),
            "scheduled_per_s": round(pods / max(1e-9, bound_at - first), 1) if not args.backlog
            else round(pods / max(1e-9, bind_window), 1),
            "create_p50_ms": round(percentile(created, 50) * 1000, 1),
            "create_p99_ms": round(percentile(created, 99) * 1000, 1),
            "probe_write_idle_p50_ms": round(percentile(idle, 50) * 1000, 1),
            "probe_write_idle_p99_ms": round(percentile(idle, 99) * 1000, 1),
            "probe_write_n": len(probe),
            "probe_write_p50_ms": round(percentile(probe, 50) * 1000, 1),
            "probe_write_p99_ms": round(percentile(probe, 99) * 1000, 1),
            "oldest_lease_s": round(leases.max_age, 1), "nodes_lease_stale": len(leases.stale),
            "lease_samples": leases.samples, "nodes_ready_at_end": ready_end,
            "rss_mib": memory,
            "rss_control_plane_mib": round(sum(v for k, v in memory.items() if not k.startswith("hollow")), 1),
            "rss_total_mib": round(sum(memory.values()), 1),
            "cpu_s": cpu, "gc_s": gc_time,
            "api_processes": {"rss_mib": api_processes(memory_each), "cpu_s": api_processes(cpu_each),
                              "gc_s": api_processes(gc_each)},
            "checks": checks,
        }
        failures = [k for k in ("lost_updates", "not_running", "bound_twice", "nodes_over_pod_limit",
                                "nodes_over_cpu") if checks[k]]
        if len(listing) != pods:
            failures.append("pods_listed")
        result["correct"] = not failures
        if failures:
            print(f"CORRECTNESS FAILED: {failures}: {checks}; lost {sorted(lost)[:5]}, rebound {counter.rebound[:5]}",
                  flush=True)
        return result


def main() -> None:
    stop_on_signals()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nodes", type=int, default=200)
    parser.add_argument("--pods", type=int, default=2000)
    parser.add_argument("--hollow-procs", type=int, default=1, help="processes the hollow nodes are spread over")
    parser.add_argument("--lease-interval", type=float, default=10.0, help="hollow node lease renewal, seconds")
    parser.add_argument("--hollow-nice", type=int, default=0, choices=range(20),
                        help="niceness of the hollow processes (they stand for other machines: at 10 they take the "
                             "CPU the control plane leaves)")
    parser.add_argument("--concurrency", type=int, default=64, help="pod creates in flight")
    parser.add_argument("--backlog", action="store_true",
                        help="create every pod first, then start the scheduler: pure scheduling throughput")
    parser.add_argument("--timeout", type=float, default=900)
    parser.add_argument("--events", choices=("on", "off"), default="off",
                        help="record every pod's Events (scheduler and hollow kubelets), or none")
    parser.add_argument("--api-actors", type=int, default=1,
                        help="API actor processes (one NATS queue group); their figures are summed as 'api'")
    compared = parser.add_mutually_exclusive_group()
    compared.add_argument("--compare-events", action="store_true",
                          help="run twice, events off then on, and report both and the ratio of every figure")
    compared.add_argument("--compare-api-actors", action="store_true",
                          help="run twice, 1 then 2 API actors, and report both and the ratio of every figure")
    parser.add_argument("--repeat", type=int, default=1,
                        help="with --compare-*: pairs of runs (alternating); the best of each side counts")
    parser.add_argument("--group-commit", type=int, default=None,
                        help="the API actors' --group-commit (default: their own; 0: every write alone)")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    if args.api_actors < 1:
        parser.error("--api-actors must be at least 1")
    spec = EVENTS if args.compare_events else API_ACTORS if args.compare_api_actors else None
    if spec is None:
        r = asyncio.run(run(args))
        report(r)
        if args.json:
            Path(args.json).write_text(json.dumps(r, indent=2))
        if not r["correct"]:
            raise SystemExit(1)
        return

    def run_side(value: Any) -> dict[str, Any]:
        setattr(args, spec.option, value)
        r = asyncio.run(run(args))
        report(r)
        return r

    result = compare(spec, alternate(spec, args.repeat, run_side))
    print("\n".join(comparison_lines(spec, result)), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    if not result["correct"]:
        raise SystemExit(1)


def report(r: dict[str, Any]) -> None:
    print(f"hollow nodes {r['nodes']} ({r['hollow_processes']} processes, nice {r.get('hollow_nice', 0)}), "
          f"pods {r['pods']}"
          f"{' (backlog)' if r['backlog'] else ''}, events {r['events']}, API actors {r.get('api_actors', 1)}")
    for key in ("register_s", "all_bound_s", "all_running_s", "create_per_s", "scheduled_per_s", "create_p50_ms",
                "create_p99_ms", "probe_write_idle_p99_ms", "probe_write_p50_ms", "probe_write_p99_ms",
                "oldest_lease_s", "nodes_lease_stale",
                "nodes_ready_at_end", "datastore_writes_per_pod", "pod_writes_per_pod", "event_messages_per_pod",
                "rss_control_plane_mib", "rss_total_mib", "correct"):
        print(f"  {key:<24} {r[key]}")
    print(f"  rss by process (MiB)     {r['rss_mib']}")
    print(f"  cpu by process (s)       {r['cpu_s']}")
    print(f"  gc by process (s)        {r['gc_s']}")
    print(f"  each API actor           {r['api_processes']}")
    print(f"  checks                   {r['checks']}")


if __name__ == "__main__":
    main()
