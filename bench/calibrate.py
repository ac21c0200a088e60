"""A machine's fingerprint for comparing figures across machines: CPU model and a fixed CPU figure.

The calibration is a fixed msgpack round trip of a pod-sized object (what every actor spends its time
on), timed best of five in this process: ``round trips/s`` on one core. Two machines whose suite figures
differ can be compared by this figure first (a slower or busier core shows here too). Printed with every
suite run, at the start and at the end (the machine is shared; a change says the load moved).
Run alone: ``.venv/bin/python -m bench.calibrate``.
"""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path
from typing import Any

import msgpack

ROUNDS = 2000


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def sample_pod(i: int) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": f"web-{i}", "namespace": "default", "uid": f"{i:032x}", "resourceVersion": str(i),
                         "labels": {"app": "web", "pod-template-hash": "7c9d8b"},
                         "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-7c9d8b",
                                              "uid": "0" * 32, "controller": True}]},
            "spec": {"nodeName": f"node-{i % 500}", "containers": [
                {"name": "c", "image": "localhost/shoal/busybox:latest", "command": ["sleep", "3600"],
                 "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}},
                 "ports": [{"containerPort": 8080, "protocol": "TCP"}]}]},
            "status": {"phase": "Running", "podIP": "198.18.1.2",
                       "conditions": [{"type": t, "status": "True"} for t in ("PodScheduled", "Initialized", "Ready")]}}


def round_trips_per_second(rounds: int = ROUNDS, repeats: int = 5) -> float:
    """Best-of-``repeats`` msgpack pack+unpack of a pod-sized object, per second on one core."""
    pods = [sample_pod(i) for i in range(64)]
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        for i in range(rounds):
            msgpack.unpackb(msgpack.packb(pods[i % 64]))
        best = min(best, time.perf_counter() - started)
    return rounds / best


def per_cpu(repeats: int = 3) -> list[int]:
    """The calibration on each CPU this process may use, pinned to one at a time. Seen on a 2-core AMD EPYC
    VM (session 14): either core gave ~81,000 or ~150,000 from one run to the next, as the host's load moved,
    so a figure is read next to its own entry's calibration, not only the suite's."""
    allowed = os.sched_getaffinity(0)
    rates = []
    try:
        for cpu in sorted(allowed):
            os.sched_setaffinity(0, {cpu})
            rates.append(round(round_trips_per_second(repeats=repeats)))
    finally:
        os.sched_setaffinity(0, allowed)
    return rates


def fingerprint() -> dict[str, Any]:
    return {"cpu_model": cpu_model(), "msgpack_round_trips_per_s": round(round_trips_per_second())}


if __name__ == "__main__":
    fp = fingerprint()
    print(f"CPU: {fp['cpu_model']}; calibration: {fp['msgpack_round_trips_per_s']:,} msgpack pod round trips/s")
