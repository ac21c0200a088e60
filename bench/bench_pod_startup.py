"""Pod startup latency with real Podman, next to a bare ``podman run --rm`` of the same image, same run.

Run: ``.venv/bin/python -m bench.bench_pod_startup [--n 20] [--concurrency 1] [--json out.json]``.
Starts nats-server, an API actor and a kubelet (``python -m agents.kubelet``) as processes, a Podman
service configured by ``podman_service`` (the same ``CONTAINERS_CONF`` env is used for the bare runs),
then measures, per pod, the time from ``create`` (followed at once by ``bind``) until a watch reports
``status.phase == Running``. The bare baseline is ``podman run --rm <image> true`` with that env.
A second series, interleaved with the first, starts pods with a configMap + secret + emptyDir volume
mounted (and one env var from the ConfigMap), as most real manifests have, plus the projected
service-account token volume that admission adds (the serviceaccount and rootca controllers run; the plain
pods opt out with ``automountServiceAccountToken: false``). Prints p50/p99 of the three and their ratios.
With ``--concurrency 1`` (the default) it also prints where each series' start time went, Podman call by
call, from the kubelet's ``--podman-trace`` (``breakdown``): the calls made while a pod started are its own.
Figures, not asserts: the machine is shared and noisy.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from agents.kubelet.images import BUSYBOX_IMAGE, ensure_local_images
from agents.kubelet.podman_runtime import PodmanRuntime
from agents.kubelet.podman_service import start_podman_service
from agents.kubelet.podman_trace import read_trace
from bench.common import cluster, percentile, progress, stop_on_signals, summary
from protocol.objects import condition_true
from runtime.host_subnets import free_block

NODE = "bench-node"
POD_TIMEOUT = 120.0  # a pod not Running by then fails the benchmark with its status, instead of a hang


def bare_runs(n: int, env: dict[str, str]) -> list[float]:
    out = []
    for _ in range(n):
        t = time.perf_counter()
        subprocess.run(["podman", "run", "--rm", BUSYBOX_IMAGE, "true"], env=env, check=True,
                       capture_output=True)
        out.append(time.perf_counter() - t)
    return out


async def run(n: int, concurrency: int) -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory(prefix="shoal-bench-podman-") as tmp:
        service = await start_podman_service(state_dir=Path(tmp) / "podman")
        try:
            await asyncio.to_thread(ensure_local_images, service.env, progress)
            trace = Path(tmp) / "podman-trace.jsonl"
            kubelet = ["agents.kubelet", "--node-name", NODE, "--podman-socket", service.socket_url,
                       "--state-dir", str(Path(tmp) / "kubelet"), "--no-events", "--podman-trace", str(trace)]
            # a pod range no network on this host uses (e.g. a `shoal up` cluster left running)
            controllers = ["actors.controllers", "--controllers", "serviceaccount,rootca,nodeipam", "--no-leader-elect",
                           "--cluster-cidr", free_block("198.18.0.0/16", 24)]
            async with cluster(extra=[kubelet, controllers]) as c:
                client = c.client
                deadline = time.monotonic() + 60
                while True:
                    try:
                        if condition_true(await client.get("Node", NODE), "Ready"):
                            break
                    except Exception:
                        pass
                    if time.monotonic() > deadline:
                        raise TimeoutError("the kubelet did not register its node")
                    await asyncio.sleep(0.2)
                while True:  # the volumes pods get a token volume: its account and the root CA must exist
                    try:
                        await client.get("ServiceAccount", "default", "default")
                        await client.get("ConfigMap", "kube-root-ca.crt", "default")
                        break
                    except Exception:
                        if time.monotonic() > deadline:
                            raise TimeoutError("no default ServiceAccount / kube-root-ca.crt") from None
                        await asyncio.sleep(0.2)
                progress("kubelet ready; warming up")
                await client.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "bench-config"},
                                     "data": {"app.conf": "color=blue\n", "color": "blue"}})
                await client.create({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "bench-secret"},
                                     "stringData": {"password": "s3cret"}})
                windows: dict[str, list[Window]] = {}
                measured = await measure(client, n, concurrency, {"bench": PLAIN_SPEC, "vol": volume_spec()},
                                         windows)
                latencies, with_volumes = measured["bench"], measured["vol"]
                calls = read_trace(trace)
                phases = {prefix: breakdown(calls, w) for prefix, w in windows.items()}
                progress("cleaning up pods")
                for prefix in ("bench", "vol"):
                    for i in range(-1, n):
                        await client.delete("Pod", f"{prefix}-{i}", "default", grace_period=0)
                runtime = PodmanRuntime(service.socket_url)
                try:
                    for _ in range(300):
                        if not await runtime.list_sandboxes(NODE):
                            break
                        await asyncio.sleep(0.1)
                finally:
                    await runtime.close()
            progress(f"bare podman run --rm x{n}")
            bare = await asyncio.to_thread(bare_runs, n, service.env)
        finally:
            await service.close()
    pods = summary("pod create+bind -> Running", latencies, sum(latencies))
    vols = summary("volumes pod create+bind -> Running", with_volumes, sum(with_volumes))
    raw = summary("podman run --rm (bare)", bare, sum(bare))
    ratio = {"p50": percentile(latencies, 50) / percentile(bare, 50),
             "p99": percentile(latencies, 99) / percentile(bare, 99)}
    vratio = {"p50": percentile(with_volumes, 50) / percentile(latencies, 50),
              "p99": percentile(with_volumes, 99) / percentile(latencies, 99)}
    print(f"{'measurement':<36} {'n':>5} {'p50 ms':>10} {'p99 ms':>10} {'mean ms':>10}")
    for r in (pods, vols, raw):
        print(f"{r['name']:<36} {r['n']:>5} {r['p50_ms']:>10} {r['p99_ms']:>10} {r['mean_ms']:>10}")
    print(f"ratio Shoal / bare podman: p50 {ratio['p50']:.2f}x, p99 {ratio['p99']:.2f}x")
    print(f"ratio with volumes / plain pod: p50 {vratio['p50']:.2f}x, p99 {vratio['p99']:.2f}x")
    if concurrency == 1:  # with pods started side by side, a call cannot be told to its pod by time
        print_breakdown("plain pod", phases["bench"])
        print_breakdown("volumes pod", phases["vol"])
    return [pods, vols, raw, {"name": "ratio", **{k: round(v, 3) for k, v in ratio.items()}},
            {"name": "volumes ratio", **{k: round(v, 3) for k, v in vratio.items()}},
            *([{"name": "phases", "plain": phases["bench"], "volumes": phases["vol"]}] if concurrency == 1 else [])]


def volume_spec() -> dict[str, Any]:
    """A pod spec as real manifests have it: a configMap, a secret and an emptyDir mounted, one env var
    from the ConfigMap, and (added by admission) the projected service-account token volume."""
    return {"containers": [{"name": "c", "image": BUSYBOX_IMAGE, "command": ["sleep", "3600"],
                            "env": [{"name": "COLOR",
                                     "valueFrom": {"configMapKeyRef": {"name": "bench-config", "key": "color"}}}],
                            "volumeMounts": [{"name": "config", "mountPath": "/etc/app"},
                                             {"name": "secret", "mountPath": "/etc/secret"},
                                             {"name": "scratch", "mountPath": "/scratch"}]}],
            "volumes": [{"name": "config", "configMap": {"name": "bench-config"}},
                        {"name": "secret", "secret": {"secretName": "bench-secret"}},
                        {"name": "scratch", "emptyDir": {}}],
            "terminationGracePeriodSeconds": 0}


PLAIN_SPEC: dict[str, Any] = {"containers": [{"name": "c", "image": BUSYBOX_IMAGE, "command": ["sleep", "3600"]}],
                              "terminationGracePeriodSeconds": 0, "automountServiceAccountToken": False}


Window = tuple[float, float]
"""A pod's (create sent, Running seen) in Unix seconds, to match the kubelet's Podman trace against."""


async def measure(client: Any, n: int, concurrency: int, series: dict[str, dict[str, Any]],
                  windows: dict[str, list[Window]] | None = None) -> dict[str, list[float]]:
    """Pods ``<prefix>-<i>`` of each series (prefix -> spec), interleaved (plain-0, vol-0, plain-1, …) so that
    every series starts its pods next to the same number of running containers. ``windows`` receives each
    series' (created, Running) wall-clock times."""
    created: dict[str, float] = {}
    running: dict[str, float] = {}
    offset = time.time() - time.perf_counter()
    done = asyncio.Event()
    target = {f"{prefix}-{i}" for prefix in series for i in range(n)}
    watch = client.watch("Pod", "default")

    async def observe() -> None:
        async for event in watch:
            name = event.object["metadata"]["name"]
            if (event.object.get("status") or {}).get("phase") == "Running" and name not in running:
                running[name] = time.perf_counter()
                if target <= running.keys():
                    done.set()
                    return

    async def start_pod(name: str, spec: dict[str, Any]) -> None:
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default"}, "spec": spec}
        created[name] = time.perf_counter()
        await client.create(pod)
        await client.bind(name, "default", NODE)
        deadline = time.monotonic() + POD_TIMEOUT
        while name not in running:
            if time.monotonic() > deadline:
                pod = await client.get("Pod", name, "default")
                raise TimeoutError(f"pod {name} not Running after {POD_TIMEOUT:.0f} s: "
                                   f"{json.dumps(pod.get('status') or {})[:600]}")
            await asyncio.sleep(0.01)

    observer = asyncio.create_task(observe())
    try:
        for prefix, spec in series.items():
            await start_pod(f"{prefix}--1", spec)  # warm-up, not counted
        sem = asyncio.Semaphore(concurrency)

        async def one(name: str, spec: dict[str, Any]) -> None:
            async with sem:
                await start_pod(name, spec)

        order = [(f"{prefix}-{i}", spec) for i in range(n) for prefix, spec in series.items()]
        await asyncio.gather(*(one(name, spec) for name, spec in order))
        await asyncio.wait_for(done.wait(), 120)
    finally:
        observer.cancel()
        await watch.close()
    if windows is not None:
        for prefix in series:
            windows[prefix] = [(created[f"{prefix}-{i}"] + offset, running[f"{prefix}-{i}"] + offset) for i in range(n)]
    return {prefix: [running[f"{prefix}-{i}"] - created[f"{prefix}-{i}"] for i in range(n)] for prefix in series}


def union_seconds(intervals: list[tuple[float, float]]) -> float:
    """Total time covered by ``(start, end)`` intervals (calls running side by side count once)."""
    total, reach = 0.0, float("-inf")
    for start, end in sorted(intervals):
        if end <= reach:
            continue
        total += end - max(start, reach)
        reach = end
    return total


def breakdown(calls: list[dict[str, Any]], windows: list[Window]) -> dict[str, Any]:
    """Where the pods' start time went, from the kubelet's Podman trace: for each kind of call, how many per
    pod and their mean time; then each pod's time split (means over the pods, so the parts add up) into
    before its first Podman call (API create + bind, the kubelet's watch and queue), in Podman (calls side by
    side counted once), the kubelet between calls, and after its last call (status write, the watch).
    A call belongs to the pod whose window (create sent .. Running seen) contains its start."""
    if not windows:
        return {"calls": [], "phases": {}}
    by_call: dict[str, list[float]] = {}
    before, inside, between, after, total = [], [], [], [], []
    for t0, t1 in windows:
        mine = [c for c in calls if t0 <= float(c["start"]) <= t1]
        for c in mine:
            by_call.setdefault(str(c["call"]), []).append(float(c["seconds"]))
        spans = [(float(c["start"]), min(t1, float(c["start"]) + float(c["seconds"]))) for c in mine]
        total.append(t1 - t0)
        if not spans:
            before.append(t1 - t0)
            inside.append(0.0)
            between.append(0.0)
            after.append(0.0)
            continue
        first, last = min(s for s, _ in spans), max(e for _, e in spans)
        busy = union_seconds(spans)
        before.append(first - t0)
        inside.append(busy)
        between.append(last - first - busy)
        after.append(t1 - last)
    n = len(windows)

    def ms(values: list[float]) -> float:
        return round(sum(values) / n * 1000, 1)

    ordered = sorted(by_call.items(), key=lambda item: -sum(item[1]))
    rows = [{"call": name, "per_pod": round(len(seconds) / n, 2),
             "mean_ms": round(sum(seconds) / len(seconds) * 1000, 1), "ms_per_pod": ms(seconds)}
            for name, seconds in ordered]
    phases = {"total": ms(total), "before first Podman call": ms(before), "in Podman": ms(inside),
              "kubelet between calls": ms(between), "after last Podman call": ms(after),
              "Podman calls per pod": round(sum(len(v) for v in by_call.values()) / n, 2)}
    return {"calls": rows, "phases": phases}


def print_breakdown(title: str, result: dict[str, Any]) -> None:
    print(f"\n{title}: mean per pod, from the kubelet's Podman trace")
    for name, value in result["phases"].items():
        print(f"  {name:<34} {value:>10}")
    print(f"  {'call':<46} {'per pod':>8} {'mean ms':>9} {'ms/pod':>9}")
    for row in result["calls"]:
        print(f"  {row['call']:<46} {row['per_pod']:>8} {row['mean_ms']:>9} {row['ms_per_pod']:>9}")


def main() -> None:
    stop_on_signals()
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=20)
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    results = asyncio.run(run(args.n, args.concurrency))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
