"""The web console's cluster view in a real headless Chromium, next to the raw lists it is built from.

Run: ``.venv/bin/python -m bench.bench_console [--nodes 200] [--pods 2000] [--rate 500] [--seconds 3]``.
A cluster of nats-server, one API actor and one gateway process (HTTPS, admin token) gets ``--nodes`` Ready
nodes and ``--pods`` pods bound to them (requests set); then, in the same run:

* the raw lists of those nodes and pods through the gateway (``GET /api/v1/nodes`` + ``GET /api/v1/pods``,
  JSON, one kept-alive HTTPS connection from this process): the floor under any page showing them;
* time to first render with complete counts: Chromium loads ``/ui/#/nodes`` (token already in the tab's
  sessionStorage) and the page records ``performance.now()`` when the summary and the visible tiles are drawn
  from the nodes list and the gateway's per-node pod sums (``window.shoalConsole.firstRender``, milliseconds
  since navigation started), and when the nodes were first drawn (``nodesRender``). The first load after the
  gateway started is "cold" (the gateway's summary feed lists the pods for it); later loads find it warm;
* the baseline of the same run: the same view summing the pods in the browser (``#/nodes?pods=list``: every pod
  listed in pages of 5,000, as before the gateway's summary), and the raw lists above;
* the gateway's memory for the sums: ``NodeSums`` of the same pods, measured in this process (tracemalloc), and
  the peak of the feed's first list (``NodeSummaryFeed`` on this process's client, list chunk by chunk) next to
  the peak of one whole ``list`` of the same pods, same run;
* the page's memory: the JS heap in use after a garbage collection (CDP ``Performance.getMetrics``) and the
  DOM node count (only visible tiles are in the DOM);
* events flowing: pods are created at ``--rate`` for ``--seconds`` while the view is open; the page's long
  tasks (``PerformanceObserver('longtask')``, > 50 ms, wall time: a renderer starved of CPU shows here too) are
  counted and the longest reported, next to the view's own drawing time per frame (``shoalConsole.renders``),
  and the pod count on the page must reach the total. ``--heartbeats H`` also writes H node status updates a
  second meanwhile (each a node's Ready condition with a new heartbeat time, as kubelets do every 10 s: 500/s
  at 5,000 nodes), which the view takes from its nodes watch. With ``--profile FILE`` Chromium's sampling profiler runs
  over that window (CDP ``Profiler``): the profile is written to FILE (``.cpuprofile``, opens in Chromium's
  DevTools) and the functions with the most self time are printed, idle and the renderer's own work
  (``(program)``, ``(garbage collector)``) included, so a long task can be put down to the page's code or not.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import time
from pathlib import Path
from typing import Any

import aiohttp

from bench.common import create_all, gateway_cluster, paced, progress, stop_on_signals, write_json
from protocol.objects import format_time
from runtime.client import ApiClient


def ms(seconds: float) -> float:
    return round(seconds * 1000, 1)


def _node(i: int) -> dict[str, Any]:
    now = format_time(time.time())
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": f"node-{i:05d}"}, "spec": {},
            "status": {"allocatable": {"cpu": "8", "memory": "32Gi", "pods": "110"},
                       "conditions": [{"type": "Ready", "status": "True", "lastHeartbeatTime": now,
                                       "lastTransitionTime": now}]}}


def _pod(i: int, nodes: int, prefix: str = "p") -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": f"{prefix}{i:06d}", "namespace": "default"},
            "spec": {"nodeName": f"node-{i % nodes:05d}", "containers": [
                {"name": "c", "image": "localhost/shoal/busybox:latest",
                 "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}}}]}}


def _driver() -> Any:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(shutil.which("chromium"))
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1400,900", "--enable-precise-memory-info", "--disable-extensions"):
        options.add_argument(arg)
    options.accept_insecure_certs = True
    return webdriver.Chrome(options=options, service=Service(executable_path=str(shutil.which("chromedriver"))))


def _wait(driver: Any, script: str, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = driver.execute_script(script)
        if value:
            return value
        if time.monotonic() > deadline:
            page = driver.execute_script("return document.body ? document.body.innerText : ''")
            raise RuntimeError(f"the page did not satisfy {script!r} within {timeout}s; it shows: {page[:500]}")
        time.sleep(0.02)


def _first_render(driver: Any, base: str, token: str, route: str = "#/nodes") -> dict[str, Any]:
    for _ in range(5):  # Chromium gives up on a load when the host's interfaces change (ERR_NETWORK_CHANGED)
        driver.get(f"{base}/ui/#/login")
        if driver.execute_script("return document.getElementById('view') !== null"):
            break
        time.sleep(0.5)
    driver.execute_script("sessionStorage.setItem('shoal.token', arguments[0])", token)
    driver.get(f"{base}/ui/?fresh={time.monotonic()}{route}")  # a new document, timed from its start
    first = _wait(driver, "return window.shoalConsole && window.shoalConsole.firstRender", 300)
    driver.execute_cdp_cmd("HeapProfiler.collectGarbage", {})
    driver.execute_cdp_cmd("Performance.enable", {})
    metrics = {m["name"]: m["value"] for m in driver.execute_cdp_cmd("Performance.getMetrics", {})["metrics"]}
    nodes_first = driver.execute_script("return window.shoalConsole.nodesRender")
    return {"first_render_ms": round(float(first), 1), "nodes_render_ms": round(float(nodes_first), 1),
            "js_heap_mib": round(metrics["JSHeapUsedSize"] / 2**20, 1),
            "dom_nodes": int(metrics["Nodes"]),
            "tiles_in_dom": driver.execute_script("return document.querySelectorAll('.tile').length"),
            "summary": driver.execute_script("return document.getElementById('cluster-summary').innerText"),
            "source": driver.execute_script("return document.getElementById('view').dataset.podSource")}


def _sums_memory(nodes: int, pods: int) -> float:
    """MiB that ``NodeSums`` of ``pods`` pods on ``nodes`` nodes holds (what the gateway keeps per pod)."""
    import tracemalloc

    from actors.gateway.nodesums import NodeSums, facts, pod_key

    objects = [_pod(i, nodes) for i in range(pods)]
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    sums = NodeSums()
    for obj in objects:
        sums.apply(pod_key(obj), facts(obj))
    held = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    if len(sums) != pods:
        raise RuntimeError(f"summed {len(sums)} pods, expected {pods}")
    return round(held / 2**20, 1)


async def _first_list_peaks(client: ApiClient) -> tuple[float, float]:
    """MiB at the peak of (the node sums feed's first list, one whole list of every pod), tracemalloc."""
    import tracemalloc

    from actors.gateway.nodesummary import NodeSummaryFeed

    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        feed = NodeSummaryFeed(client, idle=None)
        await feed.synced.wait()
        feed_peak = tracemalloc.get_traced_memory()[1] - base
        feed.stop()
        del feed
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        listing = await client.list("Pod")
        list_peak = tracemalloc.get_traced_memory()[1] - base
        del listing
    finally:
        tracemalloc.stop()
    return round(feed_peak / 2**20, 1), round(list_peak / 2**20, 1)


async def _raw_lists(http: aiohttp.ClientSession, nodes: int, pods: int) -> float:
    t0 = time.perf_counter()
    async with http.get("/api/v1/nodes") as response:
        got_nodes = len((await response.json())["items"])
    async with http.get("/api/v1/pods") as response:
        got_pods = len((await response.json())["items"])
    elapsed = time.perf_counter() - t0
    if (got_nodes, got_pods) != (nodes, pods):
        raise RuntimeError(f"listed {got_nodes} nodes and {got_pods} pods, expected {nodes} and {pods}")
    return elapsed


def _top_functions(profile: dict[str, Any], count: int = 8) -> list[tuple[str, float]]:
    """(function and where, self milliseconds) of a CDP CPU profile, most first."""
    by_id = {node["id"]: node for node in profile["nodes"]}
    spent: dict[str, float] = {}
    for node_id, delta in zip(profile["samples"], profile["timeDeltas"], strict=False):
        frame = by_id[node_id]["callFrame"]
        name = str(frame.get("functionName") or "(anonymous)")
        url = str(frame.get("url") or "").rsplit("/", 1)[-1]
        if url:
            name += f" {url}:{int(frame.get('lineNumber', 0)) + 1}"
        spent[name] = spent.get(name, 0.0) + delta / 1000
    return sorted(((k, round(v, 1)) for k, v in spent.items()), key=lambda kv: -kv[1])[:count]


async def _events_flowing(client: ApiClient, driver: Any, nodes: int, pods: int, rate: float,
                          seconds: float, profile: str | None = None, heartbeats: float = 0) -> dict[str, Any]:
    await asyncio.to_thread(driver.execute_script, """
        window.longTasks = [];
        window.shoalConsole.renders = { count: 0, totalMs: 0, maxMs: 0 };
        new PerformanceObserver((list) => { for (const e of list.getEntries()) window.longTasks.push(e.duration); })
          .observe({ type: 'longtask' });""")
    if profile:
        await asyncio.to_thread(driver.execute_cdp_cmd, "Profiler.enable", {})
        await asyncio.to_thread(driver.execute_cdp_cmd, "Profiler.setSamplingInterval", {"interval": 200})
        await asyncio.to_thread(driver.execute_cdp_cmd, "Profiler.start", {})
    n = int(rate * seconds)

    async def heartbeat(i: int) -> None:
        now = format_time(time.time())
        await client.patch("Node", f"node-{i % nodes:05d}", {"status": {"conditions": [
            {"type": "Ready", "status": "True", "lastHeartbeatTime": now, "lastTransitionTime": now}]}}, status=True)

    beating = asyncio.ensure_future(paced(int(heartbeats * seconds), heartbeats, heartbeat)) if heartbeats else None
    achieved = await paced(n, rate, lambda i: create_all(client, [_pod(i, nodes, "e")], 1))
    beats = await beating if beating is not None else 0.0
    total = pods + n
    script = ("const s = document.querySelector('[data-stat=pods] b');"
              f"return s && Number(s.textContent) === {total}")
    t_wait = time.perf_counter()
    await asyncio.to_thread(_wait, driver, script, 120)
    caught_up = time.perf_counter() - t_wait
    top: list[tuple[str, float]] = []
    if profile:
        recorded = (await asyncio.to_thread(driver.execute_cdp_cmd, "Profiler.stop", {}))["profile"]
        await asyncio.to_thread(Path(profile).write_text, json.dumps(recorded))
        top = _top_functions(recorded)
    tasks: list[float] = await asyncio.to_thread(driver.execute_script, "return window.longTasks")
    renders: dict[str, float] = await asyncio.to_thread(driver.execute_script, "return window.shoalConsole.renders")
    return {"events": n, "events_per_s": round(achieved, 1), "heartbeats_per_s": round(beats, 1),
            "long_tasks": len(tasks),
            "longest_task_ms": round(max(tasks, default=0.0), 1), "caught_up_after_writes_ms": ms(caught_up),
            "frames_drawn": int(renders["count"]), "longest_draw_ms": round(float(renders["maxMs"]), 1),
            "mean_draw_ms": round(float(renders["totalMs"]) / max(1, renders["count"]), 2),
            **({"profile_top_self_ms": top} if profile else {})}


async def run(nodes: int, pods: int, rate: float, seconds: float, lists: int,
              profile: str | None = None, heartbeats: float = 0) -> dict[str, Any]:
    async with gateway_cluster("shoal-bench-console-") as g:
        c, http, base, token = g.cluster, g.http, g.base, g.creds.token()
        progress(f"creating {nodes} nodes and {pods} pods")
        await create_all(c.client, [_node(i) for i in range(nodes)])
        await create_all(c.client, [_pod(i, nodes) for i in range(pods)])
        progress(f"listing them through the gateway {lists} times")
        await _raw_lists(http, nodes, pods)
        raw = sorted([await _raw_lists(http, nodes, pods) for _ in range(lists)])
        progress("opening the cluster view in headless Chromium")
        driver = await asyncio.to_thread(_driver)
        try:
            cold = await asyncio.to_thread(_first_render, driver, base, token)
            renders = []
            for _ in range(max(1, lists // 2)):
                renders.append(await asyncio.to_thread(_first_render, driver, base, token))
            best = min(renders, key=lambda r: r["first_render_ms"])
            progress("the baseline: the same view summing every pod in the browser")
            summed = [await asyncio.to_thread(_first_render, driver, base, token, "#/nodes?pods=list")
                      for _ in range(max(1, lists // 4))]
            if {r["source"] for r in (cold, *renders)} != {"summary"} or {r["source"] for r in summed} != {"pods"}:
                raise RuntimeError(f"the pod figures came from {cold['source']}, {[r['source'] for r in renders]} "
                                   f"and {[r['source'] for r in summed]}")
            if any(r["summary"] != best["summary"] for r in (cold, *summed)):
                raise RuntimeError(f"the summed figures differ: {best['summary']!r} vs "
                                   f"{[r['summary'] for r in (cold, *summed)]!r}")
            await asyncio.to_thread(_first_render, driver, base, token)  # back to the summary for what follows
            progress(f"creating pods at {rate:.0f}/s for {seconds:.0f} s with the view open")
            flowing = await _events_flowing(c.client, driver, nodes, pods, rate, seconds, profile, heartbeats)
        finally:
            await asyncio.to_thread(driver.quit)
        progress("the peak memory of the sums' first list, next to a whole list")
        feed_peak, list_peak = await _first_list_peaks(c.client)
        return {"nodes": nodes, "pods": pods, "raw_list_p50_ms": ms(raw[len(raw) // 2]),
                "raw_list_min_ms": ms(raw[0]),
                "first_render_cold_ms": cold["first_render_ms"],
                "first_render_ms": [r["first_render_ms"] for r in renders],
                "browser_summed_first_render_ms": [r["first_render_ms"] for r in summed],
                "browser_summed_nodes_render_ms": [r["nodes_render_ms"] for r in summed],
                "browser_summed_js_heap_mib": min(r["js_heap_mib"] for r in summed),
                "gateway_sums_mib": await asyncio.to_thread(_sums_memory, nodes, pods),
                "gateway_first_list_peak_mib": feed_peak, "whole_list_peak_mib": list_peak,
                "first_render_best_ms": best["first_render_ms"], "js_heap_mib": best["js_heap_mib"],
                "nodes_render_ms": [r["nodes_render_ms"] for r in renders],
                "dom_nodes": best["dom_nodes"], "tiles_in_dom": best["tiles_in_dom"],
                "summary": best["summary"], **flowing}


def main() -> None:
    stop_on_signals()
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--nodes", type=int, default=200)
    parser.add_argument("--pods", type=int, default=2000)
    parser.add_argument("--rate", type=float, default=500)
    parser.add_argument("--seconds", type=float, default=3)
    parser.add_argument("--lists", type=int, default=4)
    parser.add_argument("--heartbeats", type=float, default=0,
                        help="node status updates a second while pods are created (5,000 kubelets: 500)")
    parser.add_argument("--json", default=None)
    parser.add_argument("--profile", default=None, help="write Chromium's CPU profile of the events window here")
    args = parser.parse_args()
    r = asyncio.run(run(args.nodes, args.pods, args.rate, args.seconds, args.lists, args.profile, args.heartbeats))
    print(f"{r['nodes']} nodes, {r['pods']} pods: raw lists through the gateway p50 {r['raw_list_p50_ms']} ms; "
          f"console first render with complete counts from the gateway's summary: cold {r['first_render_cold_ms']} ms, "
          f"warm {r['first_render_ms']} ms (nodes drawn at {r['nodes_render_ms']} ms), JS heap {r['js_heap_mib']} MiB, "
          f"{r['dom_nodes']} DOM nodes ({r['tiles_in_dom']} tiles); gateway sums {r['gateway_sums_mib']} MiB, "
          f"their first list's peak {r['gateway_first_list_peak_mib']} MiB (a whole list: "
          f"{r['whole_list_peak_mib']} MiB)")
    print(f"baseline, pods summed in the browser: complete counts {r['browser_summed_first_render_ms']} ms "
          f"(nodes drawn at {r['browser_summed_nodes_render_ms']} ms), JS heap {r['browser_summed_js_heap_mib']} MiB")
    print(f"{r['events']} pods created at {r['events_per_s']}/s (and {r['heartbeats_per_s']} node heartbeats/s) "
          f"with the view open: {r['long_tasks']} long tasks, "
          f"longest {r['longest_task_ms']} ms; {r['frames_drawn']} frames drawn, "
          f"longest draw {r['longest_draw_ms']} ms, "
          f"mean {r['mean_draw_ms']} ms; page caught up {r['caught_up_after_writes_ms']} ms after the writes")
    if args.profile:
        print("most self time in the page while pods were created (ms): "
              + ", ".join(f"{name} {spent}" for name, spent in r["profile_top_self_ms"]))
    write_json(r, args.json)


if __name__ == "__main__":
    main()
