"""The scheduler's decision alone, in process (a script, not a test): ``decide`` + ``assume`` per pod.

Builds a scheduler cache of ``--nodes`` Node objects and ``--pods`` pods as ``bench_scheduler`` makes them
(half owned by 20 ReplicaSets, random cpu and memory requests), then decides and assumes every pod in
order, as the scheduler's loop does, and prints the CPU time per pod and a digest of the decisions (the
same digest before and after a change means the same decisions: the seed is fixed). ``--json PATH`` writes
them for ``bench.suite``.

    .venv/bin/python -m bench.bench_decide --nodes 5000 --pods 20000
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import time
from pathlib import Path

from actors.scheduler.cache import SchedulerCache
from actors.scheduler.decide import Scheduled, decide
from actors.scheduler.model import node_info, pod_info
from protocol.objects import Obj
from tests.scheduler.helpers import make_node, make_pod


def build(nodes: int, pods: int) -> tuple[SchedulerCache, list[Obj]]:
    cache = SchedulerCache()
    for i in range(nodes):
        cache.set_node(node_info(make_node(f"hollow-{i:05d}", labels={"zone": f"z{i % 3}"})))
    rng = random.Random(42)
    out = []
    for i in range(pods):
        owner = {"name": f"rs-{i % 20}", "uid": f"uid-rs-{i % 20}"} if i % 2 == 0 else None
        pod = make_pod(f"p-{i:06d}", namespace="bench", owner=owner,
                       cpu=f"{rng.choice([100, 200, 250, 500])}m", memory=f"{rng.choice([128, 256, 512])}Mi")
        pod["metadata"]["uid"] = f"u{i}"
        out.append(pod)
    return cache, out


def run(cache: SchedulerCache, pods: list[Obj], rng: random.Random) -> list[str]:
    chosen = []
    for pod in pods:
        info = pod_info(pod)
        nodes = cache.schedulable_nodes()
        decision = decide(info, nodes, start=cache.next_start, rng=rng, named=cache.nodes, fits=cache.fits)
        cache.next_start = (cache.next_start + decision.examined) % len(nodes)
        if isinstance(decision, Scheduled):
            cache.assume(info, decision.node)
            chosen.append(decision.node)
        else:
            chosen.append("")
    return chosen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nodes", type=int, default=5000)
    parser.add_argument("--pods", type=int, default=20000)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    cache, pods = build(args.nodes, args.pods)
    started = time.process_time()
    chosen = run(cache, pods, random.Random(7))
    spent = time.process_time() - started
    digest = hashlib.sha256("\n".join(chosen).encode()).hexdigest()[:16]
    per_pod_us = spent / len(pods) * 1e6
    print(f"{args.nodes} nodes, {args.pods} pods: decide + assume {per_pod_us:.0f} µs/pod "
          f"(CPU); decisions digest {digest}")
    if args.json:
        Path(args.json).write_text(json.dumps({"nodes": args.nodes, "pods": args.pods,
                                               "decide_us_per_pod": round(per_pod_us, 1), "digest": digest}))


if __name__ == "__main__":
    main()
