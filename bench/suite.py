"""The benchmark suite: every benchmark in one command, one table, one JSON file.

Run: ``.venv/bin/python -m bench.suite --quick`` (under two minutes: a smoke run of every figure) or
``.venv/bin/python -m bench.suite`` (the full sizes; see docs/BENCHMARKS.md). Each benchmark runs in
its own process tree and writes its figures as JSON; ``--json PATH`` (default bench-results.json)
collects them all, with the table's rows. Progress lines of the running benchmark are shown as they
come. Figures, not asserts: each comes with its baseline measured in the same run and, where the issue
sets one, its target and whether it was met on this machine. Only the scale runs' correctness checks
(no pod bound twice, no node over capacity, no lost update) make the suite fail.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench.calibrate import fingerprint, per_cpu, round_trips_per_second

QUICK: dict[str, list[str]] = {
    "api": ["bench.bench_api", "--n", "300", "--concurrency", "32", "--rate", "1000", "--seconds", "3"],
    "watch": ["bench.bench_watch", "--n", "2000", "--rate", "1000"],
    "proxy": ["bench.bench_proxy", "--requests", "500", "--megabytes", "50"],
    "scheduler": ["bench.bench_scale", "--nodes", "500", "--pods", "2000", "--backlog"],
    "scheduler_perf": ["bench.bench_scheduler", "--nodes", "500", "--pods", "2000", "--backlog"],
    "decide": ["bench.bench_decide", "--nodes", "500", "--pods", "2000"],
    "memory": ["bench.bench_memory", "--nodes", "500", "--pods", "5000"],
    "scale": ["bench.bench_scale", "--nodes", "200", "--pods", "2000"],
    "events": ["bench.bench_scale", "--nodes", "200", "--pods", "2000", "--compare-events"],
    "pod_startup": ["bench.bench_pod_startup", "--n", "5"],
    "daemonset": ["bench.bench_daemonset", "--nodes", "50"],
    "statefulset": ["bench.bench_statefulset", "--nodes", "20", "--replicas", "50"],
    "gateway": ["bench.bench_gateway", "--pods", "500", "--lists", "3", "--watch-n", "500", "--rate", "500"],
    "abuse": ["bench.bench_abuse", "--watches", "600", "--objects", "200", "--seconds", "8", "--writes", "120"],
    "auth": ["bench.bench_auth", "--n", "300", "--rounds", "6"],
    "rbac": ["bench.bench_rbac", "--n", "300", "--rounds", "6", "--bindings", "50"],
    "claims": ["bench.bench_claims", "--n", "10"],
    "jobs": ["bench.bench_jobs", "--nodes", "20", "--completions", "200", "--parallelism", "50"],
    "exec": ["bench.bench_exec", "--n", "5"],
    "console": ["bench.bench_console", "--nodes", "200", "--pods", "2000", "--rate", "500", "--seconds", "3"],
}
QUICK_LIMIT = 300.0  # seconds a quick-mode benchmark may take (each takes under a minute on our machines)
FULL: dict[str, list[str]] = {
    "api": ["bench.bench_api", "--n", "3000", "--concurrency", "64", "--rate", "1000", "--seconds", "20"],
    "watch": ["bench.bench_watch", "--n", "20000", "--rate", "1000"],
    "proxy": ["bench.bench_proxy", "--requests", "20000", "--megabytes", "1000"],
    "pod_startup": ["bench.bench_pod_startup", "--n", "30"],
    "gateway": ["bench.bench_gateway", "--pods", "10000", "--lists", "10", "--watch-n", "5000", "--rate", "1000"],
    "abuse": ["bench.bench_abuse", "--watches", "3000", "--objects", "500", "--seconds", "20", "--writes", "600"],
    "auth": ["bench.bench_auth", "--n", "2000", "--rounds", "10"],
    "rbac": ["bench.bench_rbac", "--n", "2000", "--rounds", "10", "--bindings", "500"],
    "claims": ["bench.bench_claims", "--n", "40"],
    "exec": ["bench.bench_exec", "--n", "30"],
    "console": ["bench.bench_console", "--nodes", "5000", "--pods", "20000", "--rate", "1000", "--seconds", "5"],
    "scheduler_perf_5k": ["bench.bench_scheduler", "--nodes", "5000", "--pods", "20000", "--backlog"],
    "decide_5k": ["bench.bench_decide", "--nodes", "5000", "--pods", "20000"],
    "memory_150k": ["bench.bench_memory", "--nodes", "5000", "--pods", "150000"],
    "scheduler_5k": ["bench.bench_scale", "--nodes", "5000", "--pods", "20000", "--backlog", "--hollow-procs", "2",
                     "--timeout", "1800"],
    "scale_1k": ["bench.bench_scale", "--nodes", "100", "--pods", "1000"],
    "scale_10k": ["bench.bench_scale", "--nodes", "1000", "--pods", "10000"],
    "scale_50k": ["bench.bench_scale", "--nodes", "2500", "--pods", "50000", "--hollow-procs", "2",
                  "--timeout", "2400"],
    "scale_150k": ["bench.bench_scale", "--nodes", "5000", "--pods", "150000", "--hollow-procs", "2",
                   "--timeout", "5400"],
    "daemonset_1k": ["bench.bench_daemonset", "--nodes", "1000"],
    "daemonset_5k": ["bench.bench_daemonset", "--nodes", "5000", "--hollow-procs", "2", "--timeout", "2400"],
    "statefulset_500": ["bench.bench_statefulset", "--nodes", "100", "--replicas", "500"],
    "events_10k": ["bench.bench_scale", "--nodes", "1000", "--pods", "10000", "--compare-events"],
    "events_150k": ["bench.bench_scale", "--nodes", "5000", "--pods", "150000", "--hollow-procs", "2",
                    "--timeout", "5400", "--compare-events"],
    "api_actors": ["bench.bench_scale", "--nodes", "200", "--pods", "2000", "--compare-api-actors"],
    "api_actors_150k": ["bench.bench_scale", "--nodes", "5000", "--pods", "150000", "--hollow-procs", "2",
                        "--timeout", "5400", "--compare-api-actors"],
    "jobs_10k": ["bench.bench_jobs", "--nodes", "500", "--completions", "10000", "--parallelism", "1000",
                 "--timeout", "3600"],
}


@dataclass
class Row:
    figure: str
    p50: str
    p99: str
    rate: str = ""
    baseline: str = ""
    ratio: str = ""
    target: str = ""
    met: str = ""


def _ms(v: Any) -> str:
    return f"{float(v):.1f} ms" if v is not None else ""


def _met(ok: bool) -> str:
    return "yes" if ok else "NO"


def _by_name(rows: list[dict[str, Any]], prefix: str) -> dict[str, Any]:
    return next((r for r in rows if str(r.get("name", "")).startswith(prefix)), {})


def rows_api(r: list[dict[str, Any]]) -> list[Row]:
    out = []
    pairs = [("API create (sequential)", "raw kv.put (sequential)"), ("API get", "raw kv.get"),
             ("API update", "raw kv.put (sequential)")]
    for api_name, raw_name in pairs:
        a, b = _by_name(r, api_name), _by_name(r, raw_name)
        if a:
            out.append(Row(a["name"], _ms(a["p50_ms"]), _ms(a["p99_ms"]), f"{a['per_s']:.0f}/s",
                           f"{b['name']}: p50 {_ms(b['p50_ms'])}", f"{a['p50_ms'] / b['p50_ms']:.2f}x p50"))
    a, b = _by_name(r, "API create ("), _by_name(r, "raw kv.put (")
    conc = [x for x in r if "in flight" in str(x.get("name"))]
    if len(conc) == 2:
        b, a = conc
        out.append(Row(a["name"], _ms(a["p50_ms"]), _ms(a["p99_ms"]), f"{a['per_s']:.0f}/s",
                       f"{b['name']}: {b['per_s']:.0f}/s", f"{a['per_s'] / b['per_s']:.2f}x rate"))
    paced = [x for x in r if "open loop" in str(x.get("name"))]
    if len(paced) == 2:
        b, a = paced
        shed = int(a.get("shed") or 0)
        out.append(Row(a["name"], _ms(a["p50_ms"]), _ms(a["p99_ms"]),
                       f"{a['per_s']:.0f}/s" + (f", {shed} shed" if shed else ""),
                       f"{b['name']}: p99 {_ms(b['p99_ms'])}", f"{a['p99_ms'] / b['p99_ms']:.2f}x p99",
                       "p99 <= 50 ms at 1,000/s", _met(a["p99_ms"] <= 50 and a["per_s"] >= 950 and not shed)))
    return out


def rows_watch(r: dict[str, Any]) -> list[Row]:
    return [
        Row("watch: write sent -> event via API watch", _ms(r["api_watch_p50_ms"]), _ms(r["api_watch_p99_ms"]),
            f"{r['writes_per_s']:.0f} writes/s",
            f"raw KV watch: p50 {_ms(r['raw_kv_watch_p50_ms'])}, p99 {_ms(r['raw_kv_watch_p99_ms'])}",
            f"{r['ratio_p99']:.2f}x p99"),
        Row("watch delivery after commit (API watch - raw KV watch)", _ms(r["delivery_after_commit_p50_ms"]),
            _ms(r["delivery_after_commit_p99_ms"]), f"{r['writes_per_s']:.0f} writes/s", "", "",
            "p99 <= 10 ms", _met(r["delivery_after_commit_p99_ms"] <= 10)),
    ]


def rows_abuse(r: dict[str, Any]) -> list[Row]:
    a, c = r["attack"], r["cost"]
    return [
        Row(f"API actor RSS under {a['watches']:,} unread watches ({a['objects']} objects, writes going on)",
            "", "", f"peak {a['peak_rss_mib']:.0f} MiB", f"idle {a['idle_rss_mib']:.0f} MiB", f"{a['ratio']:.2f}x",
            "<= 2x idle", _met(a["ratio"] <= 2.0 and a["api_alive"])),
        Row("create ConfigMap, audited (SHOAL_AUDIT)", _ms(c["configmap_audit_enc_p50_ms"]),
            _ms(c["configmap_audit_enc_p99_ms"]), "",
            f"not audited: p50 {_ms(c['configmap_enc_p50_ms'])}", f"{c['audit_ratio_p50']:.2f}x p50"),
        Row("create Secret, encrypted at rest (AES-GCM)", _ms(c["secret_enc_p50_ms"]), _ms(c["secret_enc_p99_ms"]),
            "", f"plaintext: p50 {_ms(c['secret_plain_p50_ms'])}", f"{c['encryption_ratio_p50']:.2f}x p50"),
    ]


def rows_auth(r: dict[str, Any]) -> list[Row]:
    return [
        Row(f"API {verb} ConfigMap, NATS authentication on (shoal up's users and permissions)",
            _ms(r[f"{verb}_auth_p50_ms"]), _ms(r[f"{verb}_auth_p99_ms"]), "",
            f"open NATS: p50 {_ms(r[f'{verb}_open_p50_ms'])}", f"{r[f'{verb}_ratio_p50']:.2f}x p50", "<= 1.1x",
            _met(r[f"{verb}_ratio_p50"] <= 1.1))
        for verb in ("get", "create")
    ]


def rows_rbac(r: dict[str, Any]) -> list[Row]:
    return [
        Row(f"API {verb} ConfigMap as an impersonated ServiceAccount (RBAC, {r['bindings']} other bindings)",
            _ms(r[f"{verb}_rbac_p50_ms"]), _ms(r[f"{verb}_rbac_p99_ms"]), "",
            f"trusted caller: p50 {_ms(r[f'{verb}_trusted_p50_ms'])}", f"{r[f'{verb}_ratio_p50']:.2f}x p50",
            "<= 1.1x", _met(r[f"{verb}_ratio_p50"] <= 1.1))
        for verb in ("get", "create")
    ] + [
        Row("API create RoleBinding as a ServiceAccount (escalation checked)", _ms(r["binding_checked_p50_ms"]), "",
            "", f"trusted caller (not checked): p50 {_ms(r['binding_trusted_p50_ms'])}",
            f"{r['binding_ratio_p50']:.2f}x p50"),
    ]


def rows_proxy(r: dict[str, Any]) -> list[Row]:
    return [
        Row("proxy: request/response on one connection", f"{r['proxied_rr_p50_us'] / 1000:.2f} ms",
            f"{r['proxied_rr_p99_us'] / 1000:.2f} ms", f"{r['proxied_rr_per_s']:.0f}/s",
            f"direct: p50 {r['direct_rr_p50_us'] / 1000:.2f} ms, {r['direct_rr_per_s']:.0f}/s",
            f"{r['proxied_rr_p50_us'] / r['direct_rr_p50_us']:.2f}x p50"),
        Row("proxy: new connection", f"{r['proxied_conn_p50_us'] / 1000:.2f} ms",
            f"{r['proxied_conn_p99_us'] / 1000:.2f} ms", "",
            f"direct: p50 {r['direct_conn_p50_us'] / 1000:.2f} ms",
            f"{r['proxied_conn_p50_us'] / r['direct_conn_p50_us']:.2f}x p50"),
        Row("proxy: bulk transfer", "", "", f"{r['proxied_bulk_MBps']:.0f} MB/s",
            f"direct: {r['direct_bulk_MBps']:.0f} MB/s", f"{r['proxied_bulk_MBps'] / r['direct_bulk_MBps']:.2f}x"),
        *rows_nftables(r),
        *rows_dns(r),
    ]


def rows_nftables(r: dict[str, Any]) -> list[Row]:
    if "nft_rr_p50_us" not in r:
        return []
    return [
        Row("nftables: request/response on one connection", f"{r['nft_rr_p50_us'] / 1000:.2f} ms",
            f"{r['nft_rr_p99_us'] / 1000:.2f} ms", f"{r['nft_rr_per_s']:.0f}/s",
            f"direct: p50 {r['direct_rr_p50_us'] / 1000:.2f} ms",
            f"{r['nft_rr_p50_us'] / r['direct_rr_p50_us']:.2f}x p50",
            "<= 1.1x direct", _met(r["nft_rr_p50_us"] <= 1.1 * r["direct_rr_p50_us"])),
        Row("nftables: new connection", f"{r['nft_conn_p50_us'] / 1000:.2f} ms",
            f"{r['nft_conn_p99_us'] / 1000:.2f} ms", "", f"direct: p50 {r['direct_conn_p50_us'] / 1000:.2f} ms",
            f"{r['nft_conn_p50_us'] / r['direct_conn_p50_us']:.2f}x p50"),
        Row("nftables: bulk transfer (median of 3)", "", "", f"{r['nft_bulk_MBps']:.0f} MB/s",
            f"direct: {r['direct_bulk_MBps']:.0f} MB/s", f"{r['nft_bulk_MBps'] / r['direct_bulk_MBps']:.2f}x",
            ">= 0.95x direct", _met(r["nft_bulk_MBps"] >= 0.95 * r["direct_bulk_MBps"])),
        Row("nftables: table rebuild, 1,000 Services x 10 endpoints", _ms(r["nft_rebuild_1000x10_ms"]), "", "",
            "", "", "<= 1 s", _met(r["nft_rebuild_1000x10_ms"] <= 1000)),
    ]


def rows_dns(r: dict[str, Any]) -> list[Row]:
    if "dns_p50_us" not in r:
        return []
    return [Row("cluster DNS: A lookup, 1,000 Services", f"{r['dns_p50_us'] / 1000:.2f} ms",
                f"{r['dns_p99_us'] / 1000:.2f} ms", f"{r['dns_per_s']:.0f}/s",
                f"canned answer, same server: p99 {r['dns_direct_p99_us'] / 1000:.2f} ms, "
                f"{r['dns_direct_per_s']:.0f}/s",
                f"{r['dns_p99_us'] / r['dns_direct_p99_us']:.2f}x p99")]


def rows_pod_startup(r: list[dict[str, Any]]) -> list[Row]:
    pod, bare, ratio = _by_name(r, "pod create"), _by_name(r, "podman run"), _by_name(r, "ratio")
    ok = pod["p99_ms"] <= 1000 and ratio["p99"] <= 1.2
    rows = [Row(f"pod startup, real Podman (create -> Running, n={pod['n']})", _ms(pod["p50_ms"]),
                _ms(pod["p99_ms"]), "", f"bare podman run: p50 {_ms(bare['p50_ms'])}, p99 {_ms(bare['p99_ms'])}",
                f"{ratio['p99']:.2f}x p99", "p99 <= 1 s and <= 1.2x bare", _met(ok))]
    vol, vratio = _by_name(r, "volumes pod"), _by_name(r, "volumes ratio")
    if vol:
        rows.append(Row(f"pod startup with configMap + secret + emptyDir volumes (n={vol['n']})",
                        _ms(vol["p50_ms"]), _ms(vol["p99_ms"]), "",
                        f"plain pod (same run): p50 {_ms(pod['p50_ms'])}, p99 {_ms(pod['p99_ms'])}",
                        f"{vratio['p99']:.2f}x p99", "p99 <= 1.3x the plain pod's", _met(vratio["p99"] <= 1.3)))
    return rows


def rows_claims(r: list[dict[str, Any]]) -> list[Row]:
    empty, claim, ratio = _by_name(r, "emptyDir"), _by_name(r, "WaitForFirstConsumer"), _by_name(r, "claims ratio")
    return [Row(f"claim + pod -> Running, WaitForFirstConsumer, hollow kubelets (n={claim['n']})",
                _ms(claim["p50_ms"]), _ms(claim["p99_ms"]), "",
                f"emptyDir pod (same run): p50 {_ms(empty['p50_ms'])}, p99 {_ms(empty['p99_ms'])}",
                f"{ratio['p99']:.2f}x p99")]


def rows_scale(name: str, r: dict[str, Any]) -> list[Row]:
    size = f"{r['nodes']:,} nodes / {r['pods']:,} pods"
    if r.get("backlog"):
        return [Row(f"scheduler throughput, {size} pending", "", "", f"{r['scheduled_per_s']:.0f} pods/s",
                    f"API create rate: {r['create_per_s']:.0f}/s",
                    f"{r['scheduled_per_s'] / max(r['create_per_s'], 1e-9):.2f}x",
                    ">= 1,000 pods/s at 5,000 nodes" if r["nodes"] >= 5000 else "",
                    _met(r["scheduled_per_s"] >= 1000) if r["nodes"] >= 5000 else "")]
    lease_ok = r["nodes_lease_stale"] == 0
    rows = [
        Row(f"{name}: {size}: all Running", "", "", f"{r['all_running_s']:.0f} s "
            f"({r['pods'] / max(r['all_running_s'], 1e-9):.0f} pods/s)", f"all bound after {r['all_bound_s']:.0f} s",
            "", "all bound and Running" + (", correct" if "correct" in r else ""),
            _met(bool(r.get("correct", True)))),
        Row(f"{name}: API create while scaling", _ms(r["create_p50_ms"]), _ms(r["create_p99_ms"]),
            f"{r.get('create_per_s', 0):.0f}/s"),
        Row(f"{name}: a person's write while pods schedule (paced probe)",
            _ms(r.get("probe_write_p50_ms")), _ms(r.get("probe_write_p99_ms")), "20/s",
            f"before the load: p99 {_ms(r.get('probe_write_idle_p99_ms'))}", "", "p99 <= 50 ms",
            _met(r.get("probe_write_p99_ms", float("inf")) <= 50)),
        Row(f"{name}: heartbeats", "", "", "", f"oldest lease {r['oldest_lease_s']:.0f} s (stale at 40 s)",
            "", "no node falsely NotReady", _met(lease_ok)),
        Row(f"{name}: resident memory", "", "", f"{r['rss_control_plane_mib']:.0f} MiB control plane",
            ", ".join(f"{k} {v:.0f}" for k, v in r["rss_mib"].items()), "",
            "<= 2 GiB" if r["pods"] >= 150_000 else "",
            _met(r["rss_control_plane_mib"] <= 2048) if r["pods"] >= 150_000 else ""),
    ]
    return rows


def rows_events(name: str, r: dict[str, Any]) -> list[Row]:
    """``--compare-events``: the same run with every Event recorded next to none."""
    size = f"{r['nodes']:,} nodes / {r['pods']:,} pods"
    writes_same = r["pod_writes_per_pod_on"] <= r["pod_writes_per_pod_off"] * 1.05
    return [
        Row(f"{name}: {size}: all Running, events on", "", "", f"{r['all_running_s_on']:.0f} s",
            f"events off: {r['all_running_s_off']:.0f} s", f"{r['time_ratio']:.2f}x", "<= 1.1x",
            _met(r["time_ratio"] <= 1.1)),
        Row(f"{name}: CPU of every process, events on", "", "", f"{r['cpu_total_s_on']:.0f} s",
            f"events off: {r['cpu_total_s_off']:.0f} s", f"{r['cpu_ratio']:.2f}x", "<= 1.1x",
            _met(r["cpu_ratio"] <= 1.1)),
        Row(f"{name}: pod writes per pod, events on", "", "", f"{r['pod_writes_per_pod_on']:.2f}",
            f"events off: {r['pod_writes_per_pod_off']:.2f}",
            f"{r['event_messages_per_pod_on']:.2f} event messages/pod", "unchanged", _met(writes_same)),
        Row(f"{name}: all datastore writes per pod (with heartbeats)", "", "",
            f"{r['datastore_writes_per_pod_on']:.2f}", f"events off: {r['datastore_writes_per_pod_off']:.2f}"),
    ]


def rows_api_actors(name: str, r: dict[str, Any]) -> list[Row]:
    """``--compare-api-actors``: the same run with two API actors (one queue group) next to one."""
    size = f"{r['nodes']:,} nodes / {r['pods']:,} pods"
    return [
        Row(f"{name}: {size}: all Running, 2 API actors", "", "", f"{r['all_running_s_2']:.0f} s",
            f"1 API actor: {r['all_running_s_1']:.0f} s", f"{r['time_ratio']:.2f}x"),
        Row(f"{name}: CPU of every process, 2 API actors", "", "", f"{r['cpu_total_s_2']:.0f} s",
            f"1 API actor: {r['cpu_total_s_1']:.0f} s", f"{r['cpu_ratio']:.2f}x"),
        Row(f"{name}: API actors' CPU, 2 API actors", "", "", f"{r['api_cpu_s_2']:.0f} s",
            f"1 API actor: {r['api_cpu_s_1']:.0f} s"),
        Row(f"{name}: paced probe write, 2 API actors", _ms(r["probe_write_p50_ms_2"]), _ms(r["probe_write_p99_ms_2"]),
            "", f"1 API actor: p99 {_ms(r['probe_write_p99_ms_1'])}"),
        Row(f"{name}: control-plane RSS, 2 API actors", "", "", f"{r['rss_control_plane_mib_2']:.0f} MiB",
            f"1 API actor: {r['rss_control_plane_mib_1']:.0f} MiB"),
    ]


def rows_scheduler_perf(r: dict[str, Any]) -> list[Row]:
    at_5k = r["nodes"] >= 5000
    return [Row(f"scheduler alone, no kubelets: {r['nodes']:,} nodes / {r['pods']:,} pending",
                "", "", f"{r['scheduled_per_s']:.0f} pods/s", f"API create rate: {r['baseline_create_per_s']:.0f}/s",
                f"{r['ratio']:.2f}x", ">= 1,000 pods/s at 5,000 nodes" if at_5k else "",
                _met(r["scheduled_per_s"] >= 1000) if at_5k else "")]


def rows_decide(r: dict[str, Any]) -> list[Row]:
    return [Row(f"scheduler decide + assume alone, in process: {r['nodes']:,} nodes / {r['pods']:,} pods", "", "",
                f"{r['decide_us_per_pod']:.0f} µs/pod CPU ({1e6 / max(r['decide_us_per_pod'], 1e-9):,.0f} pods/s)",
                f"decisions digest {r['digest']}")]


def rows_memory(r: dict[str, Any]) -> list[Row]:
    base = r["components"].get("baseline") or {}
    rows = []
    for name, c in r["components"].items():
        if name == "baseline":
            continue
        heap = f"; heap {c['heap_mib']:.0f} MiB" if "heap_mib" in c else ""
        rows.append(Row(f"memory in process: {name} keeping {r['pods']:,} Running pods ({r['nodes']:,} nodes)", "", "",
                        f"RSS +{c['rss_mib']:.0f} MiB ({c['rss_bytes_per_pod']:,} B/pod){heap}",
                        f"same pods as decoded dicts: RSS +{base.get('rss_mib', 0):.0f} MiB "
                        f"({base.get('rss_bytes_per_pod', 0):,} B/pod)" if base else "",
                        f"{c['rss_vs_baseline']:.2f}x" if "rss_vs_baseline" in c else ""))
    return rows


def rows_jobs(r: dict[str, Any]) -> list[Row]:
    return [Row(f"Job: {r['completions']:,} completions, parallelism {r['parallelism']:,}, "
                f"{r['nodes']:,} hollow nodes (pods run {r['run_seconds']} s)", "", "",
                f"{r['job_s']:.1f} s ({r['job_completions_per_s']:.0f} completions/s)",
                f"ReplicaSet of {r['completions']:,} to Ready: {r['replicaset_ready_s']:.1f} s "
                f"({r['replicaset_pods_per_s']:.0f} pods/s)",
                f"{r['job_completions_per_s'] / max(r['replicaset_pods_per_s'], 1e-9):.2f}x rate",
                "Complete, exactly N succeeded",
                _met(bool(r["job_complete"]) and r["job_succeeded"] == r["completions"]))]

def rows_daemonset(r: dict[str, Any]) -> list[Row]:
    nodes = r["nodes"]
    baseline = f"Deployment of {nodes}: {r['deployment_available_s']:.1f} s"
    return [
        Row(f"DaemonSet on {nodes} hollow nodes: all available", f"{r['daemonset_available_s']:.1f} s", "",
            f"{r['daemonset_pods_per_s']:.0f} pods/s", baseline, f"{r['daemonset_vs_deployment']:.2f}x"),
        Row(f"DaemonSet rolled across {nodes} nodes (maxUnavailable {r['max_unavailable']})",
            f"{r['daemonset_rollout_s']:.1f} s", "", f"{nodes / max(r['daemonset_rollout_s'], 1e-9):.0f} pods/s",
            baseline),
        *(Row(f"DaemonSet controller pass while rolling, {nodes} nodes: planning CPU (mean)",
              f"{passes['mean_cpu_ms']:.1f} ms", "", f"{passes['passes']} passes")
          for passes in [r.get("controller_passes_rollout") or {}] if "mean_cpu_ms" in passes),
    ]


def rows_statefulset(r: dict[str, Any]) -> list[Row]:
    n = r["replicas"]
    baseline = f"Deployment of {n}: {r['deployment_available_s']:.1f} s"
    return [
        Row(f"StatefulSet of {n} (Parallel) on {r['nodes']} hollow nodes: all ready", f"{r['parallel_ready_s']:.1f} s",
            "", f"{r['parallel_pods_per_s']:.0f} pods/s", baseline, f"{r['parallel_vs_deployment']:.2f}x"),
        Row(f"StatefulSet of {n} (OrderedReady): all ready, one at a time", f"{r['ordered_ready_s']:.1f} s", "",
            f"{r['ordered_s_per_pod'] * 1000:.0f} ms/pod", baseline, f"{r['ordered_vs_deployment']:.2f}x"),
    ]


def rows_gateway(r: dict[str, Any]) -> list[Row]:
    ratio = r["gateway_list_p50_ms"] / r["nats_list_p50_ms"]
    rows = [
        Row(f"gateway: list {r['pods']:,} pods (JSON, HTTPS)", _ms(r["gateway_list_p50_ms"]),
            _ms(r["gateway_list_p99_ms"]), "", f"over NATS: p50 {_ms(r['nats_list_p50_ms'])}", f"{ratio:.2f}x p50",
            "<= 1.5x NATS", _met(ratio <= 1.5)),
        Row(f"gateway: list {r['pods']:,} pods as kubectl asks (Table, limit=500)",
            _ms(r["gateway_table_list_p50_ms"]), _ms(r["gateway_table_list_p99_ms"]), "",
            f"over NATS: p50 {_ms(r['nats_list_p50_ms'])}",
            f"{r['gateway_table_list_p50_ms'] / r['nats_list_p50_ms']:.2f}x p50"),
        Row("gateway: watch write -> event", _ms(r["gateway_watch_p50_ms"]), _ms(r["gateway_watch_p99_ms"]),
            f"{r['writes_per_s']:.0f} writes/s", f"NATS watch: p50 {_ms(r['nats_watch_p50_ms'])}, "
            f"p99 {_ms(r['nats_watch_p99_ms'])}", f"{r['gateway_watch_p99_ms'] / r['nats_watch_p99_ms']:.2f}x p99"),
        Row("gateway: watch delivery after the NATS watch", _ms(r["gateway_after_nats_p50_ms"]),
            _ms(r["gateway_after_nats_p99_ms"]), f"{r['writes_per_s']:.0f} writes/s", "", "",
            "p99 <= 10 ms", _met(r["gateway_after_nats_p99_ms"] <= 10)),
    ]
    if "gateway_list_received_p50_ms" in r:
        rows.insert(2, Row(f"gateway: list {r['pods']:,} pods, JSON received (before the client decodes it)",
                           _ms(r["gateway_list_received_p50_ms"]), _ms(r["gateway_list_received_p99_ms"]), "",
                           f"over NATS: p50 {_ms(r['nats_list_p50_ms'])}",
                           f"{r['gateway_list_received_p50_ms'] / r['nats_list_p50_ms']:.2f}x p50"))
    if "kubectl_get_pods_s" in r:
        rows.append(Row(f"kubectl get pods ({r['pods']:,} pods, wall)", "", "", f"{r['kubectl_get_pods_s']:.2f} s",
                        f"shoal get pods: {r['shoal_get_pods_s']:.2f} s",
                        f"{r['kubectl_get_pods_s'] / r['shoal_get_pods_s']:.2f}x"))
    if "kubectl_get_pods_one_request_s" in r:
        rows.append(Row(f"kubectl get pods --chunk-size=0 ({r['pods']:,} pods, one request, wall)", "", "",
                        f"{r['kubectl_get_pods_one_request_s']:.2f} s",
                        f"shoal get pods: {r['shoal_get_pods_s']:.2f} s",
                        f"{r['kubectl_get_pods_one_request_s'] / r['shoal_get_pods_s']:.2f}x"))
    return rows


def rows_exec(r: dict[str, Any]) -> list[Row]:
    base = r["podman_exec_cli"]
    rows = [Row("exec round trip: podman exec (CLI)", _ms(base["p50_ms"]), _ms(base["p99_ms"]))]
    for key, label in (("nats_exec", "exec round trip over NATS (shoal exec's path)"),
                       ("gateway_websocket_exec", "exec round trip through the gateway (websocket v5)"),
                       ("kubectl_exec_process", "kubectl exec (whole process)")):
        if key in r:
            rows.append(Row(label, _ms(r[key]["p50_ms"]), _ms(r[key]["p99_ms"]), "",
                            f"podman exec: p50 {_ms(base['p50_ms'])}", f"{r[key]['p50_ms'] / base['p50_ms']:.2f}x p50"))
    return rows


def rows_console(r: dict[str, Any]) -> list[Row]:
    size = f"{r['nodes']:,} nodes, {r['pods']:,} pods"
    return [
        Row(f"console: cluster view first render ({size})", _ms(r["first_render_best_ms"]), "",
            f"JS heap {r['js_heap_mib']} MiB, {r['dom_nodes']:,} DOM nodes",
            f"raw lists via gateway: p50 {_ms(r['raw_list_p50_ms'])}",
            f"{r['first_render_best_ms'] / r['raw_list_p50_ms']:.2f}x", "<= 2 s",
            _met(r["first_render_best_ms"] <= 2000)),
        *([Row(f"console: complete pod counts, gateway's sums cold / warm ({size})",
               f"{_ms(r['first_render_cold_ms'])} / {_ms(r['first_render_best_ms'])}", "",
               f"gateway sums {r['gateway_sums_mib']} MiB",
               f"pods summed in the browser: {_ms(min(r['browser_summed_first_render_ms']))}",
               f"{r['first_render_best_ms'] / min(r['browser_summed_first_render_ms']):.2f}x warm", "", "")]
          if "browser_summed_first_render_ms" in r else []),
        Row(f"console: pods created with the view open ({size})", "", _ms(r["longest_task_ms"]),
            f"{r['events_per_s']:.0f} events/s", f"{r['long_tasks']} long tasks (> 50 ms); the view's longest draw "
            f"{_ms(r.get('longest_draw_ms'))}", "",
            "no frame > 100 ms", _met(r["longest_task_ms"] <= 100)),
    ]


def table_rows(name: str, figures: Any) -> list[Row]:
    builders: dict[str, Callable[[Any], list[Row]]] = {
        "api": rows_api, "watch": rows_watch, "proxy": rows_proxy, "pod_startup": rows_pod_startup,
        "gateway": rows_gateway,
        "abuse": rows_abuse,
        "auth": rows_auth,
        "rbac": rows_rbac,
        "claims": rows_claims,
        "exec": rows_exec,
        "console": rows_console,
    }
    if name in builders:
        return builders[name](figures)
    if name.startswith("scheduler_perf"):
        return rows_scheduler_perf(figures)
    if name.startswith("decide"):
        return rows_decide(figures)
    if name.startswith("memory"):
        return rows_memory(figures)
    if name.startswith("daemonset"):
        return rows_daemonset(figures)
    if name.startswith("statefulset"):
        return rows_statefulset(figures)
    if name.startswith("api_actors"):
        return rows_api_actors(name, figures)
    if name.startswith("events"):
        return rows_events(name, figures)
    if name.startswith("jobs"):
        return rows_jobs(figures)
    if name.startswith(("scale", "scheduler")):
        return rows_scale(name, figures)
    return [Row(name, "", "", json.dumps(figures)[:80])]


def print_table(rows: list[Row]) -> None:
    headers = Row("figure", "p50", "p99", "rate", "baseline (same run)", "ratio", "target", "met")
    cols = list(asdict(headers).keys())
    data = [asdict(headers)] + [asdict(r) for r in rows]
    widths = {c: min(60, max(len(str(d[c])) for d in data)) for c in cols}
    for i, d in enumerate(data):
        print("  ".join(str(d[c])[:widths[c]].ljust(widths[c]) for c in cols).rstrip())
        if i == 0:
            print("  ".join("-" * widths[c] for c in cols))


def run_one(module: str, args: list[str], out: Path, limit: float | None) -> tuple[int, list[str]]:
    """Run one benchmark in its own process group, echoing its progress lines; the tail of its output is
    kept for a failure report. Past ``limit`` seconds the whole group is stopped (INT, TERM, then KILL) and the
    benchmark fails with that said: a hang costs minutes, never the whole CI run. A suite stopped itself (SIGINT,
    SIGTERM) stops the running benchmark's group the same way first: it leaves no servers behind."""
    tail: deque[str] = deque(maxlen=60)
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    with subprocess.Popen([sys.executable, "-m", module, *args, "--json", str(out)], stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, env=env, start_new_session=True) as proc:
        fired = threading.Event()
        stopper = threading.Timer(limit, _timed_out, (proc, fired, limit)) if limit else None
        if stopper is not None:
            stopper.daemon = True
            stopper.start()
        try:
            assert proc.stdout is not None
            for line in proc.stdout:
                tail.append(line.rstrip())
                stripped = line.strip()
                if stripped.startswith("..") or stripped.startswith("CORRECTNESS"):
                    print(f"    {stripped}", flush=True)
            code = proc.wait()
            if fired.is_set():
                tail.append(f"TIMED OUT after {limit:.0f}s (the suite stopped the benchmark's process group)")
            return code, list(tail)
        except BaseException:  # the suite is stopped (SystemExit from SIGTERM, KeyboardInterrupt)
            _stop_group(proc, "the suite was stopped: stopping the running benchmark")
            raise
        finally:
            if stopper is not None:
                stopper.cancel()


def _timed_out(proc: subprocess.Popen[str], fired: threading.Event, limit: float) -> None:
    fired.set()
    _stop_group(proc, f"still running after {limit:.0f}s: stopping it (raise the limit with --limit)")


def _terminated(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


def _stop_group(proc: subprocess.Popen[str], why: str) -> None:
    print(f"    .. {why}", flush=True)
    # SIGINT first: the benchmark's cleanup runs (servers it started in their own sessions stop too)
    for sig, wait in ((signal.SIGINT, 20.0), (signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(wait)
            return
        except subprocess.TimeoutExpired:
            continue


def save(path: Path, results: dict[str, Any], rows: list[Row], started: float, *, finished: bool) -> None:
    """Write the figures so far: after each benchmark (``partial``: a long full run stopped midway keeps what
    it measured) and once at the end, through a temporary file so a reader never sees half a file."""
    results["table"] = [asdict(r) for r in rows]
    results["seconds"] = round(time.monotonic() - started, 1)
    results["partial"] = not finished
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(results, indent=2))
    tmp.replace(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes, under two minutes")
    parser.add_argument("--only", default="", help="comma-separated benchmarks to run (names as in the table)")
    parser.add_argument("--skip", default="", help="comma-separated benchmarks to leave out")
    parser.add_argument("--json", default="bench-results.json")
    parser.add_argument("--limit", type=float, default=None,
                        help="seconds one benchmark may run before it is stopped and counted failed "
                             f"(default {QUICK_LIMIT:.0f} with --quick, none otherwise; 0: none)")
    args = parser.parse_args()
    limit = (QUICK_LIMIT if args.quick else 0.0) if args.limit is None else args.limit
    signal.signal(signal.SIGTERM, _terminated)
    # started in the background by a shell, SIGINT is ignored, and the benchmarks would inherit that: then the
    # SIGINT that stops a benchmark with its cleanup would do nothing. Handled here, it is default in them.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    plan = QUICK if args.quick else FULL
    only = [n for n in args.only.split(",") if n]
    skip = set(args.skip.split(","))
    chosen = [n for n in plan if (not only or n in only) and n not in skip]
    results: dict[str, Any] = {
        "mode": "quick" if args.quick else "full", "started": time.time(),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
                    "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
                    **fingerprint()},
    }
    print(f"CPU: {results['machine']['cpu_model']}; calibration at start: "
          f"{results['machine']['msgpack_round_trips_per_s']:,} msgpack pod round trips/s", flush=True)
    failures = 0
    suite_started = time.monotonic()
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="shoal-suite-") as tmp:
        for index, name in enumerate(chosen, 1):
            module, *rest = plan[name]
            if name == "pod_startup" and shutil.which("podman") is None:
                print(f"[{index}/{len(chosen)}] {name}: skipped (podman is not installed)", flush=True)
                results[name] = {"skipped": "podman is not installed"}
                continue
            if name == "console" and (shutil.which("chromium") is None or shutil.which("chromedriver") is None):
                print(f"[{index}/{len(chosen)}] {name}: skipped (chromium is not installed)", flush=True)
                results[name] = {"skipped": "chromium and chromium-driver are not installed"}
                continue
            out = Path(tmp) / f"{name}.json"
            calibration = results[name + "_calibration"] = per_cpu()
            print(f"[{index}/{len(chosen)}] {name}: python -m {module} {' '.join(rest)} "
                  f"(calibration per CPU: {' / '.join(f'{c:,}' for c in calibration)})", flush=True)
            started = time.monotonic()
            code, tail = run_one(module, rest, out, limit or None)
            took = time.monotonic() - started
            if code != 0 or not out.exists():
                failures += 1
                print(f"    failed after {took:.0f}s (exit {code}):\n      " + "\n      ".join(tail[-25:]), flush=True)
                results[name] = {"failed": code, "output": tail[-25:]}
                if out.exists():
                    results[name]["figures"] = json.loads(out.read_text())
                save(Path(args.json), results, rows, suite_started, finished=False)
                continue
            results[name] = json.loads(out.read_text())
            results[name + "_seconds"] = round(took, 1)
            try:
                rows += table_rows(name, results[name])
            except (KeyError, TypeError, ZeroDivisionError) as exc:
                rows.append(Row(name, "", "", f"(no table row: {exc!r})"))
            print(f"    done in {took:.0f}s (suite {time.monotonic() - suite_started:.0f}s)", flush=True)
            save(Path(args.json), results, rows, suite_started, finished=False)
    results["machine"]["msgpack_round_trips_per_s_at_end"] = end_calibration = round(round_trips_per_second())
    print(f"\nShoal benchmark suite ({results['mode']}), {results['machine']['cpus']} CPUs "
          f"({results['machine']['cpu_model']}), {results['machine']['memory_gib']} GiB, "
          f"{time.monotonic() - suite_started:.0f}s; calibration {results['machine']['msgpack_round_trips_per_s']:,} "
          f"msgpack pod round trips/s at start, {end_calibration:,} at end\n")
    print_table(rows)
    for name in chosen:
        entry = results.get(name)
        if isinstance(entry, dict) and ("skipped" in entry or "failed" in entry):
            what = f"skipped ({entry['skipped']})" if "skipped" in entry else f"FAILED (exit {entry['failed']})"
            print(f"{name}: {what}")
    save(Path(args.json), results, rows, suite_started, finished=True)
    print(f"\nwritten to {args.json}")
    raise SystemExit(1 if failures else 0)


if __name__ == "__main__":
    main()
