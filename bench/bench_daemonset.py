"""DaemonSet on N hollow nodes: time to one Ready pod on every node, and to roll a new template across
them, next to a Deployment of N replicas in the same run (the baseline: the same number of pods through
the ReplicaSet path).

One nats-server, API actor, scheduler, controller manager (deployment, replicaset, daemonset controllers)
and hollow-node processes, each its own process. In order: the Deployment is created and timed until
all its replicas are available; then the DaemonSet until ``numberAvailable`` equals the node count;
then its template changes and the rollout is timed until every node runs an updated, available pod
(``--max-unavailable`` of the nodes at a time, default 10%). Figures, not asserts; the one check is that
the DaemonSet ends with exactly one pod on every node.

Run: ``.venv/bin/python -m bench.bench_daemonset --nodes 50``
"""

from __future__ import annotations

import argparse
import asyncio
from collections import Counter
from typing import Any

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
from protocol import codec, subjects
from protocol.errors import ShoalError
from protocol.objects import Obj, controller_of, meta
from runtime.client import ApiClient

CONTAINERS = [{"name": "c", "image": "bench:1", "resources": {"requests": {"cpu": "10m", "memory": "8Mi"}}}]


def deployment(replicas: int) -> Obj:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "default"},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": CONTAINERS}}}}


def daemonset(max_unavailable: str) -> Obj:
    return {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "agent", "namespace": "default"},
            "spec": {"selector": {"matchLabels": {"app": "agent"}},
                     "updateStrategy": {"type": "RollingUpdate",
                                        "rollingUpdate": {"maxUnavailable": _int_or_percent(max_unavailable)}},
                     "template": {"metadata": {"labels": {"app": "agent"}},
                                  "spec": {"containers": [dict(CONTAINERS[0], name="agent")]}}}}


def _int_or_percent(text: str) -> int | str:
    return text if text.endswith("%") else int(text)


async def pass_stats(client: ApiClient) -> dict[str, Any]:
    """The DaemonSet controller's passes so far and their planning time, from the controller manager's
    health reply ({} when it does not answer or keeps none)."""
    try:
        msg = await client.nc.request(subjects.health("controller-manager"), b"", timeout=10)
        stats: dict[str, Any] = codec.check_reply(codec.decode(msg.data))["health"].get("stats", {})
        return dict(stats.get("daemonset") or {})
    except Exception:
        return {}


async def agent_pods(client: ApiClient, attempts: int = 5) -> list[Obj]:
    """The DaemonSet's pods for the final check, asked again when an overloaded API actor fails the list
    (at 5,000 nodes it is the run's largest read, after every figure was taken)."""
    for attempt in range(attempts):
        try:
            return (await client.list("Pod", "default", label_selector="app=agent")).items
        except ShoalError as exc:
            if attempt == attempts - 1:
                raise
            progress(f"list the daemonset's pods: {exc}; asking again")
            await asyncio.sleep(5)
    return []


def _passes(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """The passes between two ``pass_stats`` readings: count, planning seconds (wall and CPU), means (ms) and
    the longest so far."""
    if not after:
        return {}
    passes = after["passes"] - before.get("passes", 0)
    planning = after["planning_s"] - before.get("planning_s", 0.0)
    cpu = after["planning_cpu_s"] - before.get("planning_cpu_s", 0.0)
    return {"passes": passes, "planning_s": round(planning, 2), "planning_cpu_s": round(cpu, 2),
            "mean_ms": round(planning / passes * 1000, 1) if passes else 0.0,
            "mean_cpu_ms": round(cpu / passes * 1000, 1) if passes else 0.0, "max_ms_so_far": after["max_ms"]}


async def run(args: argparse.Namespace) -> dict[str, Any]:
    nodes = args.nodes
    hollow = hollow_commands(nodes, args.hollow_procs, args.lease_interval)
    extra = [*hollow, ["actors.scheduler", "--no-leader-elect"],
             ["actors.controllers", "--controllers", "deployment,replicaset,daemonset", "--no-leader-elect"]]
    async with cluster(extra=extra) as c:
        client = ApiClient(c.client.nc, timeout=30)
        await wait_nodes_ready(client, nodes, args.timeout)

        await retrying(lambda: client.create(deployment(nodes)), "create the deployment")
        deploy_s = await wait_status(
            client, "Deployment", "web",
            lambda s, o: s.get("availableReplicas") == nodes and s.get("updatedReplicas") == nodes,
            "deployment", args.timeout)
        progress(f"deployment of {nodes}: all available after {deploy_s:.1f}s")

        stats0 = await pass_stats(client)
        await retrying(lambda: client.create(daemonset(args.max_unavailable)), "create the daemonset")
        ds_s = await wait_status(
            client, "DaemonSet", "agent",
            lambda s, o: s.get("desiredNumberScheduled") == nodes and s.get("numberAvailable") == nodes,
            "daemonset", args.timeout)
        stats1 = await pass_stats(client)
        progress(f"daemonset on {nodes} nodes: all available after {ds_s:.1f}s; passes {_passes(stats0, stats1)}")

        ds = await retrying(lambda: client.get("DaemonSet", "agent", "default"), "read the daemonset")
        ds["spec"]["template"]["spec"]["containers"][0]["image"] = "bench:2"
        await retrying(lambda: client.update(ds), "update the daemonset")
        roll_s = await wait_status(
            client, "DaemonSet", "agent",
            lambda s, o: s.get("updatedNumberScheduled") == nodes and s.get("numberAvailable") == nodes
            and s.get("currentNumberScheduled") == nodes,
            "daemonset rollout", args.timeout)
        stats2 = await pass_stats(client)
        progress(f"daemonset rolled across {nodes} nodes after {roll_s:.1f}s; passes {_passes(stats1, stats2)}")

        ds = await retrying(lambda: client.get("DaemonSet", "agent", "default"), "read the daemonset")
        pods = await agent_pods(client)
        ours = [p for p in pods if (controller_of(p) or {}).get("uid") == meta(ds)["uid"]
                and not meta(p).get("deletionTimestamp")]
        per_node = Counter((p.get("spec") or {}).get("nodeName") for p in ours)
        updated = sum(1 for p in ours if p["spec"]["containers"][0]["image"] == "bench:2")
        correct = len(per_node) == nodes and set(per_node.values()) == {1} and updated == nodes
        result = {
            "nodes": nodes, "hollow_processes": len(hollow), "max_unavailable": args.max_unavailable,
            "deployment_available_s": round(deploy_s, 1),
            "deployment_pods_per_s": round(nodes / max(deploy_s, 1e-9), 1),
            "daemonset_available_s": round(ds_s, 1),
            "daemonset_pods_per_s": round(nodes / max(ds_s, 1e-9), 1),
            "daemonset_rollout_s": round(roll_s, 1),
            "daemonset_vs_deployment": round(ds_s / max(deploy_s, 1e-9), 2),
            "controller_passes_create": _passes(stats0, stats1),
            "controller_passes_rollout": _passes(stats1, stats2),
            "checks": {"nodes_with_pod": len(per_node), "max_pods_on_a_node": max(per_node.values(), default=0),
                       "updated_pods": updated},
            "correct": correct,
        }
        if not correct:
            print(f"CORRECTNESS FAILED: {result['checks']}", flush=True)
        return result


def main() -> None:
    stop_on_signals()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nodes", type=int, default=50)
    parser.add_argument("--max-unavailable", default="10%", help="the rollout's maxUnavailable (int or N%%)")
    hollow_options(parser)
    args = parser.parse_args()
    report(asyncio.run(run(args)), args.json)


if __name__ == "__main__":
    main()
