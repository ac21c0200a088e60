"""StatefulSet of N on hollow nodes: time to N Ready pods with OrderedReady (one at a time, each Ready before
the next) and with Parallel, next to a Deployment of N replicas in the same run (the baseline).

One nats-server, API actor, scheduler, controller manager (deployment, replicaset, statefulset controllers)
and hollow-node processes, each its own process. In order: the Deployment is created and timed until all
its replicas are available; then a Parallel StatefulSet, then an OrderedReady one, each until
``readyReplicas`` and ``availableReplicas`` equal N. Figures, not asserts; the one check is that each
StatefulSet ends with exactly the pods ``<name>-0..N-1``.

OrderedReady is a chain of N round trips (create, schedule, run, report Ready, see it, create the next): its
time per pod is the latency of one pod's start, not a throughput.

Run: ``.venv/bin/python -m bench.bench_statefulset --nodes 20 --replicas 50``
"""

from __future__ import annotations

import argparse
import asyncio
import functools
from typing import Any

from bench.bench_daemonset import CONTAINERS, deployment
from bench.bench_scale import hollow_commands
from bench.common import (
    cluster,
    hollow_options,
    progress,
    report,
    retrying,
    stop_on_signals,
    wait_nodes_ready,
    wait_status,
)
from protocol.objects import Obj, meta
from runtime.client import ApiClient


def statefulset(name: str, replicas: int, policy: str) -> Obj:
    return {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": name, "namespace": "default"},
            "spec": {"replicas": replicas, "serviceName": name, "podManagementPolicy": policy,
                     "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [dict(CONTAINERS[0], name="db")]}}}}


async def run(args: argparse.Namespace) -> dict[str, Any]:
    nodes, n = args.nodes, args.replicas
    hollow = hollow_commands(nodes, args.hollow_procs, args.lease_interval)
    extra = [*hollow, ["actors.scheduler", "--no-leader-elect"],
             ["actors.controllers", "--controllers", "deployment,replicaset,statefulset", "--no-leader-elect"]]
    async with cluster(extra=extra) as c:
        client = ApiClient(c.client.nc, timeout=30)
        await wait_nodes_ready(client, nodes, args.timeout, interval=1.0)

        await retrying(lambda: client.create(deployment(n)), "create the deployment")
        deploy_s = await wait_status(
            client, "Deployment", "web",
            lambda s, o: s.get("availableReplicas") == n and s.get("updatedReplicas") == n,
            "deployment", args.timeout)
        progress(f"deployment of {n}: all available after {deploy_s:.1f}s")

        times: dict[str, float] = {}
        checks: dict[str, bool] = {}
        for name, policy in (("par", "Parallel"), ("ord", "OrderedReady")):
            await retrying(functools.partial(client.create, statefulset(name, n, policy)),
                           f"create the {policy} statefulset")
            times[policy] = await wait_status(
                client, "StatefulSet", name,
                lambda s, o: s.get("readyReplicas") == n and s.get("availableReplicas") == n,
                f"statefulset {policy}", args.timeout)
            progress(f"statefulset {policy} of {n}: all ready after {times[policy]:.1f}s")
            pods = (await client.list("Pod", "default", label_selector=f"app={name}")).items
            names = {meta(p)["name"] for p in pods if not meta(p).get("deletionTimestamp")}
            checks[policy] = names == {f"{name}-{i}" for i in range(n)}
        result = {
            "nodes": nodes, "replicas": n,
            "deployment_available_s": round(deploy_s, 1),
            "deployment_pods_per_s": round(n / max(deploy_s, 1e-9), 1),
            "parallel_ready_s": round(times["Parallel"], 1),
            "parallel_pods_per_s": round(n / max(times["Parallel"], 1e-9), 1),
            "ordered_ready_s": round(times["OrderedReady"], 1),
            "ordered_s_per_pod": round(times["OrderedReady"] / n, 3),
            "parallel_vs_deployment": round(times["Parallel"] / max(deploy_s, 1e-9), 2),
            "ordered_vs_deployment": round(times["OrderedReady"] / max(deploy_s, 1e-9), 2),
            "checks": checks, "correct": all(checks.values()),
        }
        if not result["correct"]:
            print(f"CORRECTNESS FAILED: {checks}", flush=True)
        return result


def main() -> None:
    stop_on_signals()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nodes", type=int, default=20)
    parser.add_argument("--replicas", type=int, default=50)
    hollow_options(parser)
    args = parser.parse_args()
    report(asyncio.run(run(args)), args.json)


if __name__ == "__main__":
    main()
