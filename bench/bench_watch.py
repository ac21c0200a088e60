"""Watch delivery latency through an API actor, next to a raw JetStream KV watch, in the same run.

Run: ``.venv/bin/python -m bench.bench_watch [--n 3000] [--rate 1000]``. A writer creates objects at
a steady rate, each stamped with its send time; one API watch and one raw ordered consumer on the
bucket receive them; latency = receipt time - send time (one process, one clock). "After commit" is the
watch path alone: receipt through the API watch minus receipt of the same change by the raw consumer.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from typing import Any

from nats.js.api import DeliverPolicy

from bench.common import cluster, percentile, progress, stop_on_signals
from protocol import codec, keys


async def run(n: int, rate: float) -> dict[str, Any]:
    async with cluster() as c:
        client = c.client
        start_rv = (await client.list("configmaps")).resource_version
        api_lat: list[float] = []
        raw_lat: list[float] = []
        api_at: dict[str, float] = {}
        raw_at: dict[str, float] = {}
        done_api, done_raw = asyncio.Event(), asyncio.Event()

        async def api_watch() -> None:
            async with client.watch("configmaps", resource_version=start_rv) as watch:
                async for event in watch:
                    now = time.perf_counter()
                    sent = float(event.object["data"]["sent"])
                    api_lat.append(now - sent)
                    api_at[event.object["metadata"]["name"]] = now
                    if len(api_lat) >= n:
                        done_api.set()
                        return

        js = client.nc.jetstream()

        async def on_raw(msg: Any) -> None:
            if not msg.data:
                return
            now = time.perf_counter()
            obj = codec.unpackb(msg.data)
            raw_lat.append(now - float(obj["data"]["sent"]))
            raw_at[obj["metadata"]["name"]] = now
            if len(raw_lat) >= n:
                done_raw.set()

        raw_sub = await js.subscribe(f"{keys.KV_SUBJECT_PREFIX}configmaps.>", cb=on_raw, ordered_consumer=True,
                                     deliver_policy=DeliverPolicy.NEW)
        watcher = asyncio.create_task(api_watch())
        await asyncio.sleep(0.5)
        progress(f"writing {n} objects at {rate:.0f}/s")
        interval = 1.0 / rate
        t0 = time.perf_counter()
        inflight: set[asyncio.Task[Any]] = set()
        for i in range(n):
            target = t0 + i * interval
            delay = target - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            task = asyncio.create_task(client.create({
                "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"w{i}"},
                "data": {"sent": repr(time.perf_counter())}}))
            inflight.add(task)
            task.add_done_callback(inflight.discard)
        await asyncio.gather(*inflight)
        achieved = n / (time.perf_counter() - t0)
        await asyncio.wait_for(asyncio.gather(done_api.wait(), done_raw.wait()), 60)
        watcher.cancel()
        await raw_sub.unsubscribe()
    # the watch path alone: from the change reaching a raw KV consumer to the same change reaching the API watch
    after_commit = [api_at[name] - raw_at[name] for name in api_at if name in raw_at]

    def ms(seconds: float) -> float:
        return round(seconds * 1000, 3)

    result: dict[str, Any] = {
        "writes_per_s": round(achieved, 1),
        "api_watch_p50_ms": ms(percentile(api_lat, 50)), "api_watch_p99_ms": ms(percentile(api_lat, 99)),
        "raw_kv_watch_p50_ms": ms(percentile(raw_lat, 50)), "raw_kv_watch_p99_ms": ms(percentile(raw_lat, 99)),
        "delivery_after_commit_p50_ms": ms(percentile(after_commit, 50)),
        "delivery_after_commit_p99_ms": ms(percentile(after_commit, 99)),
    }
    result["ratio_p50"] = round(result["api_watch_p50_ms"] / result["raw_kv_watch_p50_ms"], 2)
    result["ratio_p99"] = round(result["api_watch_p99_ms"] / result["raw_kv_watch_p99_ms"], 2)
    return result


def main() -> None:
    stop_on_signals()
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=3000)
    parser.add_argument("--rate", type=float, default=500)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    r = asyncio.run(run(args.n, args.rate))
    print(f"writes: {r['writes_per_s']}/s (create latency included in the delivery figure)")
    print(f"{'watch':<28} {'p50 ms':>10} {'p99 ms':>10}")
    print(f"{'API watch (via API actor)':<28} {r['api_watch_p50_ms']:>10} {r['api_watch_p99_ms']:>10}")
    print(f"{'raw KV ordered consumer':<28} {r['raw_kv_watch_p50_ms']:>10} {r['raw_kv_watch_p99_ms']:>10}")
    print(f"{'API watch after raw KV watch':<28} {r['delivery_after_commit_p50_ms']:>10} "
          f"{r['delivery_after_commit_p99_ms']:>10}")
    print(f"ratio API/raw: p50 {r['ratio_p50']}x, p99 {r['ratio_p99']}x")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(r, f, indent=2)


if __name__ == "__main__":
    main()
