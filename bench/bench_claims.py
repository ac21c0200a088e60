"""Pod startup with a WaitForFirstConsumer PersistentVolumeClaim, next to the same pod with an emptyDir, same run.

Run: ``.venv/bin/python -m bench.bench_claims [--n 20] [--json out.json]``.
Starts nats-server, an API actor, the scheduler, the controller manager's PV controller, the cloud
controller manager (local provider: the default class ``local-path``) and hollow kubelets (fake runtime:
the control-plane path, no container is started) as processes. Per pod of the claim series, the time
from creating its claim (the pod created right after) until a watch reports ``status.phase == Running``:
the scheduler chooses a node, marks the claim, the cloud controller manager provisions the volume there,
the PV controller binds it, the scheduler then binds the pod and its kubelet mounts the claim. The
emptyDir series, interleaved with it, times pod create -> Running. Figures, not asserts.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from typing import Any

from bench.common import cluster, percentile, progress, stop_on_signals, summary
from protocol.errors import NotFound
from protocol.objects import condition_true

NODES = 3


def pod(name: str, volume: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default"}, "spec": {
        "containers": [{"name": "c", "image": "bench/app:1", "volumeMounts": [{"name": "data", "mountPath": "/data"}]}],
        "volumes": [{"name": "data", **volume}], "terminationGracePeriodSeconds": 0}}


def claim(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": name, "namespace": "default"},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "64Mi"}}}}


async def run(n: int) -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory(prefix="shoal-bench-claims-") as cloud_state:
        extra = [["agents.hollow", "--nodes", str(NODES), "--prefix", "claims-", "--status-interval", "5"],
                 ["actors.scheduler", "--no-leader-elect"],
                 ["actors.controllers", "--controllers", "persistentvolume", "--no-leader-elect"],
                 ["actors.cloud", "--state-dir", cloud_state, "--no-leader-elect"]]
        async with cluster(extra=extra) as c:
            client = c.client
            deadline = time.monotonic() + 90
            while True:
                nodes = (await client.list("Node")).items
                ready = sum(1 for node in nodes if condition_true(node, "Ready"))
                try:
                    await client.get("StorageClass", "local-path")
                    has_class = True
                except NotFound:
                    has_class = False
                if ready >= NODES and has_class:
                    break
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{ready}/{NODES} nodes Ready, default class: {has_class}")
                await asyncio.sleep(0.2)
            progress("hollow nodes Ready, default StorageClass served; measuring")
            started: dict[str, float] = {}
            running: dict[str, float] = {}
            watch = client.watch("Pod", "default")

            async def observe() -> None:
                async for event in watch:
                    name = event.object["metadata"]["name"]
                    if (event.object.get("status") or {}).get("phase") == "Running" and name not in running:
                        running[name] = time.perf_counter()

            async def start(name: str, with_claim: bool) -> None:
                started[name] = time.perf_counter()
                if with_claim:
                    await client.create(claim(name))
                    await client.create(pod(name, {"persistentVolumeClaim": {"claimName": name}}))
                else:
                    await client.create(pod(name, {"emptyDir": {}}))
                while name not in running:
                    await asyncio.sleep(0.005)

            observer = asyncio.create_task(observe())
            try:
                await start("empty--1", False)  # warm-up, not counted
                await start("claim--1", True)
                for i in range(n):
                    await start(f"empty-{i}", False)
                    await start(f"claim-{i}", True)
            finally:
                observer.cancel()
                await watch.close()
    empty = [running[f"empty-{i}"] - started[f"empty-{i}"] for i in range(n)]
    claims = [running[f"claim-{i}"] - started[f"claim-{i}"] for i in range(n)]
    e = summary("emptyDir pod create -> Running (hollow)", empty, sum(empty))
    v = summary("WaitForFirstConsumer claim + pod -> Running (hollow)", claims, sum(claims))
    ratio = {q: percentile(claims, n_) / percentile(empty, n_) for q, n_ in (("p50", 50), ("p99", 99))}
    print(f"{'measurement':<54} {'n':>5} {'p50 ms':>10} {'p99 ms':>10} {'mean ms':>10}")
    for r in (e, v):
        print(f"{r['name']:<54} {r['n']:>5} {r['p50_ms']:>10} {r['p99_ms']:>10} {r['mean_ms']:>10}")
    print(f"ratio claim / emptyDir: p50 {ratio['p50']:.2f}x, p99 {ratio['p99']:.2f}x")
    return [e, v, {"name": "claims ratio", **{k: round(x, 3) for k, x in ratio.items()}}]


def main() -> None:
    stop_on_signals()
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=20)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    results = asyncio.run(run(args.n))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
