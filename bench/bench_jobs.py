"""Job throughput on hollow nodes, next to a ReplicaSet of the same size in the same run.

One cluster (nats-server, API actor, scheduler, controller manager running the ``replicaset``, ``job``
and ``gc`` controllers, one process of hollow kubelets on the in-memory runtime), then:

1. baseline: a ReplicaSet of N pods, timed from its creation until ``status.readyReplicas`` is N (every
   pod created, scheduled, started and reported Ready by its kubelet); then it is deleted and its pods
   are waited out;
2. a Job of N completions with parallelism P whose container exits 0 after ``--run-seconds``
   (``SHOAL_FAKE_EXIT_AFTER``), timed from its creation until its ``Complete`` condition.

Completions/s is N over the Job's time; the ReplicaSet's pods/s is N over its time. A Job pod also has
to be seen finished by its kubelet (the hollow kubelets relist every ``--relist-interval`` seconds) and
counted by the controller before its replacement starts, so at P < N the Job runs in N/P waves.

Run: ``.venv/bin/python -m bench.bench_jobs --nodes 20 --completions 200 --parallelism 50``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path
from typing import Any

from bench.common import cluster, progress, stop_on_signals
from protocol.errors import NotFound, ShoalError
from protocol.objects import Obj, condition_true
from runtime.client import ApiClient

FAKE_EXIT_AFTER = "SHOAL_FAKE_EXIT_AFTER"


def replicaset(n: int) -> Obj:
    return {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "baseline", "namespace": "default"},
            "spec": {"replicas": n, "selector": {"matchLabels": {"app": "baseline"}},
                     "template": {"metadata": {"labels": {"app": "baseline"}},
                                  "spec": {"terminationGracePeriodSeconds": 0,
                                           "containers": [{"name": "c", "image": "busybox"}]}}}}


def job(n: int, parallelism: int, run_seconds: float) -> Obj:
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "batch", "namespace": "default"},
            "spec": {"completions": n, "parallelism": parallelism, "backoffLimit": 6,
                     "template": {"metadata": {"labels": {"app": "batch"}},
                                  "spec": {"restartPolicy": "Never", "terminationGracePeriodSeconds": 0,
                                           "containers": [{"name": "c", "image": "busybox",
                                                           "env": [{"name": FAKE_EXIT_AFTER,
                                                                    "value": str(run_seconds)}]}]}}}}


async def get_or_none(client: ApiClient, kind: str, name: str) -> Obj | None:
    try:
        return await client.get(kind, name, "default")
    except NotFound:
        return None
    except ShoalError:  # an overloaded API sheds a request now and then: ask again
        return {}


async def count_pods(client: ApiClient, selector: str) -> int:
    return len((await client.list("Pod", "default", label_selector=selector)).items)


async def wait_nodes(client: ApiClient, nodes: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        ready = sum(1 for n in (await client.list("Node")).items if condition_true(n, "Ready"))
        if ready == nodes:
            return
        if time.monotonic() > deadline:
            raise SystemExit(f"only {ready}/{nodes} hollow nodes became Ready")
        progress(f"hollow nodes Ready: {ready}/{nodes}")
        await asyncio.sleep(1)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    n, parallelism = args.completions, args.parallelism
    extra = [["actors.scheduler", "--no-leader-elect"],
             ["actors.controllers", "--controllers", "replicaset,job,gc", "--no-leader-elect"],
             ["agents.hollow", "--nodes", str(args.nodes), "--max-pods", str(args.max_pods),
              "--lease-interval", "10", "--status-interval", "60", "--relist-interval", str(args.relist_interval)]]
    async with cluster(extra=extra) as c:
        client = ApiClient(c.client.nc, timeout=30)
        await wait_nodes(client, args.nodes, args.timeout)

        # -- baseline: a ReplicaSet of N pods to Ready ------------------------------------------
        started = time.monotonic()
        await client.create(replicaset(n))
        while True:
            rs = await get_or_none(client, "ReplicaSet", "baseline") or {}
            ready = int((rs.get("status") or {}).get("readyReplicas") or 0)
            if ready >= n:
                break
            if time.monotonic() - started > args.timeout:
                raise SystemExit(f"the ReplicaSet reached {ready}/{n} ready pods in {args.timeout:.0f}s")
            progress(f"{time.monotonic() - started:5.1f}s replicaset ready {ready}/{n}")
            await asyncio.sleep(0.5)
        rs_s = time.monotonic() - started
        await client.delete("ReplicaSet", "baseline", "default")
        while (left := await count_pods(client, "app=baseline")) > 0:
            progress(f"waiting for the ReplicaSet's {left} pods to go")
            await asyncio.sleep(1)

        # -- a Job of N completions, P at a time ------------------------------------------------
        started = time.monotonic()
        await client.create(job(n, parallelism, args.run_seconds))
        while True:
            current = await get_or_none(client, "Job", "batch") or {}
            status = current.get("status") or {}
            if condition_true(current, "Complete") or condition_true(current, "Failed"):
                break
            if time.monotonic() - started > args.timeout:
                raise SystemExit(f"the Job did not finish in {args.timeout:.0f}s: {status}")
            progress(f"{time.monotonic() - started:5.1f}s job succeeded {status.get('succeeded', 0)}/{n}, "
                     f"active {status.get('active', 0)}, failed {status.get('failed', 0)}")
            await asyncio.sleep(0.5)
        job_s = time.monotonic() - started
        pods = await count_pods(client, "batch.kubernetes.io/job-name=batch")
        status = current.get("status") or {}
        return {
            "nodes": args.nodes, "completions": n, "parallelism": parallelism, "run_seconds": args.run_seconds,
            "relist_interval": args.relist_interval,
            "job_complete": condition_true(current, "Complete"),
            "job_s": round(job_s, 2), "job_completions_per_s": round(n / job_s, 1),
            "job_succeeded": status.get("succeeded"), "job_failed": status.get("failed"), "job_pods": pods,
            "replicaset_ready_s": round(rs_s, 2), "replicaset_pods_per_s": round(n / rs_s, 1),
            "waves": -(-n // parallelism),
            "ideal_job_s": round(-(-n // parallelism) * args.run_seconds, 2),
        }


def main() -> None:
    stop_on_signals()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nodes", type=int, default=20)
    parser.add_argument("--max-pods", type=int, default=110)
    parser.add_argument("--completions", type=int, default=200)
    parser.add_argument("--parallelism", type=int, default=50)
    parser.add_argument("--run-seconds", type=float, default=0.5, help="how long each Job pod runs")
    parser.add_argument("--relist-interval", type=float, default=1.0, help="hollow kubelets' relist period")
    parser.add_argument("--timeout", type=float, default=900.0)
    parser.add_argument("--json", default="")
    args = parser.parse_args()
    result = asyncio.run(run(args))
    print(json.dumps(result, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(result))
    if not (result["job_complete"] and result["job_succeeded"] == args.completions):
        print(f"CORRECTNESS FAILED: the Job did not complete exactly: {result}", flush=True)
        raise SystemExit(1)


if __name__ == "__main__":
    main()
