"""A paced probe write in its own process and NATS connection: what one person's write sees under load.

One ConfigMap update every ``--every`` seconds (50 ms) until SIGTERM. It prints ``probing`` on stdout once
its first update is answered (the benchmark starts its load a while after that, so "before the load" has
samples on a slow machine too), and at the end ``[started, seconds]`` of each update as a JSON list
(``started``: ``time.monotonic()``, one clock for every process of the machine, so the benchmark can tell
the writes before its load from those under it). A benchmark starts it next to its load (``bench_scale``):
in its own process the figure includes neither the benchmark's own event loop (a watch of every pod, 64
creates in flight) nor its connection (the API actor's admission serves flows in turn, and the benchmark's
connection is one flow), as for a ``shoal`` command typed during the run.

    .venv/bin/python -m bench.probe --server nats://127.0.0.1:4222
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import time
from collections.abc import Callable
from typing import Any

import nats

from protocol.errors import AlreadyExists, ShoalError
from protocol.objects import meta
from runtime.cancel import stop_if_cancelled
from runtime.client import ApiClient


async def probe_writes(client: ApiClient, latencies: list[tuple[float, float]], every: float = 0.05,
                       name: str = "scale-probe", on_first: Callable[[], None] | None = None) -> None:
    """One paced ConfigMap update every ``every`` seconds: the latency a mutating call sees under load.
    ``on_first`` is called once the first update is answered."""
    obj: dict[str, Any] = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"n": "0"}}
    while True:  # an overloaded API actor sheds requests: ask again
        try:
            obj = await client.create(obj)
            break
        except AlreadyExists:
            obj = await client.get("ConfigMap", name, "default")
            break
        except ShoalError:
            stop_if_cancelled()
            await asyncio.sleep(every)
    n = 0
    next_at = time.monotonic()
    while True:
        stop_if_cancelled()  # a cancel that met a request's answer is lost in 3.11's wait_for (runtime/cancel.py)
        next_at += every
        await asyncio.sleep(max(0.0, next_at - time.monotonic()))
        n += 1
        obj["data"] = {"n": str(n)}
        meta(obj).pop("resourceVersion", None)
        at, started = time.monotonic(), time.perf_counter()
        try:
            obj = await client.update(obj)
        except ShoalError:
            continue
        latencies.append((at, time.perf_counter() - started))
        if on_first is not None and len(latencies) == 1:
            on_first()


PROBING = "probing"
"""The line printed once the first update is answered."""


async def run(server: str, every: float) -> list[tuple[float, float]]:
    nc = await nats.connect(server, name="probe")
    latencies: list[tuple[float, float]] = []
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    task = asyncio.create_task(probe_writes(ApiClient(nc, timeout=30), latencies, every,
                                            on_first=lambda: print(PROBING, flush=True)))
    await stop.wait()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task  # its request ends before the connection does (no "exception never retrieved" at exit)
    await nc.close()
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--server", required=True)
    parser.add_argument("--every", type=float, default=0.05)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args.server, args.every))), flush=True)


if __name__ == "__main__":
    main()
