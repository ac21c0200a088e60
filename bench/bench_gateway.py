"""The Kubernetes API gateway next to the NATS API it translates to, in the same run.

Run: ``.venv/bin/python -m bench.bench_gateway [--pods 10000] [--lists 10] [--watch-n 3000] [--rate 1000]``.
A cluster of nats-server, one API actor and one gateway process (HTTPS, admin token) is started; then:

* lists of ``--pods`` pods: the gateway's ``GET /api/v1/namespaces/default/pods`` (JSON, one request, kept-alive
  HTTPS connection) and its kubectl-shaped form (``Accept: ...as=Table``, ``limit=500`` pages) next to
  ``runtime.client`` listing the same pods over NATS, both from this process; the JSON list until its last
  byte is in (before the client decodes it: the gateway's part); and once each, the real ``kubectl get pods``
  (and ``--chunk-size=0``: one request, where pages of 500 wait for client-go's rate limiter of 5 requests/s,
  burst 10) next to ``shoal get pods`` (whole process, wall time);
* watch delivery: a writer creates ConfigMaps at ``--rate``, each stamped with its send time; a watch through
  the gateway (HTTP chunked JSON lines) and one over NATS receive them; latency = receipt - send (one
  process, one clock). "Gateway after NATS" is the gateway's own share: its receipt minus the NATS watch's
  receipt of the same change.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sys
import time
from collections.abc import Awaitable
from typing import Any

import aiohttp
import yaml

from bench.common import create_all, gateway_cluster, paced, percentile, progress, stop_on_signals, write_json
from runtime.client import ApiClient
from shoal.kubeconfig import kubeconfig

TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"


def ms(seconds: float) -> float:
    return round(seconds * 1000, 3)


def _pods(n: int) -> list[dict[str, Any]]:
    return [{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": f"p{i:05d}", "labels": {"app": "bench"}},
             "spec": {"containers": [{"name": "c", "image": "localhost/shoal/busybox:latest"}]}} for i in range(n)]


async def _list_http(http: aiohttp.ClientSession, table: bool) -> int:
    if not table:
        async with http.get("/api/v1/namespaces/default/pods") as response:
            return len((await response.json())["items"])
    count, token = 0, ""
    while True:
        async with http.get("/api/v1/namespaces/default/pods", params={"limit": "500", "continue": token},
                            headers={"Accept": TABLE}) as response:
            body = await response.json()
        count += len(body["rows"])
        token = body["metadata"].get("continue", "")
        if not token:
            return count


async def _received(http: aiohttp.ClientSession, repeat: int, expect: int) -> list[float]:
    """The JSON list until its last byte is in, before the client decodes it (decoded afterwards, untimed, to
    check it): the gateway's part of a list, without the client's JSON decoding."""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        async with http.get("/api/v1/namespaces/default/pods") as response:
            body = await response.read()
        times.append(time.perf_counter() - t0)
        if len(json.loads(body)["items"]) != expect:
            raise RuntimeError(f"gateway list returned a wrong count, expected {expect}")
    return times


async def _timed(what: str, fn: Any, repeat: int, expect: int) -> list[float]:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        got = await fn()
        times.append(time.perf_counter() - t0)
        if got != expect:
            raise RuntimeError(f"{what} returned {got} items, expected {expect}")
    return times


async def _wall(argv: list[str], env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    proc = await asyncio.create_subprocess_exec(*argv, stdout=asyncio.subprocess.DEVNULL,
                                                stderr=asyncio.subprocess.PIPE, env=env)
    _, err = await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed: {err.decode()[-500:]}")
    return time.perf_counter() - t0


async def _watch_figures(c: Any, http: aiohttp.ClientSession, n: int, rate: float) -> dict[str, Any]:
    client: ApiClient = c.client
    start_rv = (await client.list("configmaps", "default")).resource_version
    nats_at: dict[str, float] = {}
    gw_at: dict[str, float] = {}
    sent_at: dict[str, float] = {}
    done_nats, done_gw = asyncio.Event(), asyncio.Event()

    async def nats_watch() -> None:
        async with client.watch("configmaps", "default", resource_version=start_rv) as watch:
            async for event in watch:
                nats_at[event.object["metadata"]["name"]] = time.perf_counter()
                if len(nats_at) >= n:
                    done_nats.set()
                    return

    async def gateway_watch() -> None:
        async with http.get("/api/v1/namespaces/default/configmaps",
                            params={"watch": "true", "resourceVersion": str(start_rv)},
                            timeout=aiohttp.ClientTimeout(total=None, sock_read=None)) as response:
            async for line in response.content:
                now = time.perf_counter()
                event = json.loads(line)
                if event["type"] == "ADDED":
                    gw_at[event["object"]["metadata"]["name"]] = now
                    if len(gw_at) >= n:
                        done_gw.set()
                        return

    tasks = [asyncio.create_task(nats_watch()), asyncio.create_task(gateway_watch())]
    await asyncio.sleep(1.0)
    progress(f"writing {n} ConfigMaps at {rate:.0f}/s, watched through the gateway and over NATS")

    def send(i: int) -> Awaitable[object]:
        name = f"w{i:05d}"
        sent_at[name] = time.perf_counter()
        return client.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name},
                              "data": {"i": str(i)}})

    achieved = await paced(n, rate, send)
    await asyncio.wait_for(asyncio.gather(done_nats.wait(), done_gw.wait()), 120)
    for task in tasks:
        task.cancel()
    nats_lat = [nats_at[k] - sent_at[k] for k in nats_at]
    gw_lat = [gw_at[k] - sent_at[k] for k in gw_at]
    extra = [gw_at[k] - nats_at[k] for k in gw_at if k in nats_at]
    return {"writes_per_s": round(achieved, 1),
            "gateway_watch_p50_ms": ms(percentile(gw_lat, 50)), "gateway_watch_p99_ms": ms(percentile(gw_lat, 99)),
            "nats_watch_p50_ms": ms(percentile(nats_lat, 50)), "nats_watch_p99_ms": ms(percentile(nats_lat, 99)),
            "gateway_after_nats_p50_ms": ms(percentile(extra, 50)),
            "gateway_after_nats_p99_ms": ms(percentile(extra, 99))}


async def run(pods: int, lists: int, watch_n: int, rate: float) -> dict[str, Any]:
    async with gateway_cluster("shoal-bench-gw-") as g:
        c, http, tmp = g.cluster, g.http, g.tmp
        progress(f"creating {pods} pods")
        await create_all(c.client, _pods(pods))

        async def over_nats() -> int:
            return len((await c.client.list("pods", "default")).items)

        progress(f"listing {pods} pods {lists} times each way")
        await over_nats()
        await _list_http(http, False)
        nats_t = await _timed("NATS list", over_nats, lists, pods)
        json_t = await _timed("gateway list", lambda: _list_http(http, False), lists, pods)
        table_t = await _timed("gateway Table list", lambda: _list_http(http, True), lists, pods)
        received_t = await _received(http, lists, pods)
        result: dict[str, Any] = {
            "pods": pods, "lists": lists,
            "nats_list_p50_ms": ms(percentile(nats_t, 50)), "nats_list_p99_ms": ms(percentile(nats_t, 99)),
            "gateway_list_p50_ms": ms(percentile(json_t, 50)),
            "gateway_list_p99_ms": ms(percentile(json_t, 99)),
            "gateway_table_list_p50_ms": ms(percentile(table_t, 50)),
            "gateway_table_list_p99_ms": ms(percentile(table_t, 99)),
            "gateway_list_received_p50_ms": ms(percentile(received_t, 50)),
            "gateway_list_received_p99_ms": ms(percentile(received_t, 99)),
        }
        result["list_ratio_p50"] = round(result["gateway_list_p50_ms"] / result["nats_list_p50_ms"], 2)
        kubectl = shutil.which("kubectl")
        if kubectl:
            path = tmp / "kubeconfig"
            path.write_text(yaml.safe_dump(kubeconfig(g.base, g.creds)))
            env = {**os.environ, "KUBECONFIG": str(path), "HOME": str(tmp)}
            await _wall([kubectl, "get", "pods"], env)  # fills kubectl's discovery cache
            result["kubectl_get_pods_s"] = round(await _wall([kubectl, "get", "pods"], env), 3)
            # one request: kubectl's pages of 500 wait for client-go's own rate limiter (5/s, burst 10)
            result["kubectl_get_pods_one_request_s"] = round(
                await _wall([kubectl, "get", "pods", "--chunk-size=0"], env), 3)
            env.pop("KUBECONFIG")
            result["shoal_get_pods_s"] = round(await _wall(
                [sys.executable, "-m", "shoal", "--server", c.server.url, "get", "pods"], env), 3)
        result.update(await _watch_figures(c, http, watch_n, rate))
        return result


def main() -> None:
    stop_on_signals()
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pods", type=int, default=10_000)
    parser.add_argument("--lists", type=int, default=10)
    parser.add_argument("--watch-n", type=int, default=3000)
    parser.add_argument("--rate", type=float, default=1000)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    r = asyncio.run(run(args.pods, args.lists, args.watch_n, args.rate))
    print(f"list of {r['pods']} pods       {'p50 ms':>10} {'p99 ms':>10}")
    print(f"{'over NATS (runtime.client)':<28} {r['nats_list_p50_ms']:>10} {r['nats_list_p99_ms']:>10}")
    print(f"{'gateway, JSON':<28} {r['gateway_list_p50_ms']:>10} {r['gateway_list_p99_ms']:>10}")
    print(f"{'gateway, Table, limit=500':<28} {r['gateway_table_list_p50_ms']:>10} "
          f"{r['gateway_table_list_p99_ms']:>10}")
    print(f"{'gateway, JSON, received':<28} {r['gateway_list_received_p50_ms']:>10} "
          f"{r['gateway_list_received_p99_ms']:>10}")
    if "kubectl_get_pods_s" in r:
        print(f"kubectl get pods: {r['kubectl_get_pods_s']} s (--chunk-size=0: "
              f"{r['kubectl_get_pods_one_request_s']} s); shoal get pods: {r['shoal_get_pods_s']} s (wall)")
    print(f"watch at {r['writes_per_s']}/s: gateway p50 {r['gateway_watch_p50_ms']} "
          f"p99 {r['gateway_watch_p99_ms']} ms; "
          f"NATS p50 {r['nats_watch_p50_ms']} p99 {r['nats_watch_p99_ms']} ms; gateway after NATS p50 "
          f"{r['gateway_after_nats_p50_ms']} p99 {r['gateway_after_nats_p99_ms']} ms")
    write_json(r, args.json)


if __name__ == "__main__":
    main()
