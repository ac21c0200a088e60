"""Control-plane memory per pod, in process (a script, not a test): issue #20 item 5.

Feeds one component ``--pods`` bound, Running pods of a few templates (``--replicasets`` ReplicaSets over five
pod templates, defaulted and admitted as the API actor stores them, with the status a kubelet reports) spread
over ``--nodes`` nodes, as the real watch delivers them: watch messages of ``--batch`` events, msgpack-encoded
and decoded the way ``runtime.watch`` decodes them, each event applied the way the component's informer does.
Each component runs in its own child process and reports the Python heap it keeps afterwards (tracemalloc,
after a collection) and the growth of its resident memory (``VmRSS``), per pod, and the CPU per event:

- ``baseline``: the same pods kept as plain decoded dicts by key (what a plain informer keeps);
- ``scheduler``: the scheduler actor's informers and cache (``actors.scheduler``): nodes, then the pods
  through its bound-pods informer;
- ``api``: the API actor's watch cache (``actors.api.cache``), ready, fed each pod's stored bytes as its
  KV feed does (one change per pod: the window of recent events fills), with one watcher of every bound pod
  (the scheduler's) whose messages are taken as the flusher does.

    .venv/bin/python -m bench.bench_memory --nodes 5000 --pods 150000
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import subprocess
import sys
import time
import tracemalloc
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from protocol import codec
from protocol.kinds import pod as pod_kind
from protocol.objects import Obj, meta, ref
from tests.scheduler.helpers import make_node

COMPONENTS = ("baseline", "scheduler", "api")


def _container(name: str, image: str, cpu: str, memory: str, *, port: int | None = None,
               env: int = 0, probe: bool = False) -> Obj:
    c: Obj = {"name": name, "image": image,
              "resources": {"requests": {"cpu": cpu, "memory": memory},
                            "limits": {"cpu": cpu, "memory": memory}},
              "env": [{"name": f"SETTING_{i}", "value": f"value-{i}"} for i in range(env)],
              "volumeMounts": [{"name": "config", "mountPath": "/etc/app", "readOnly": True}]}
    if port is not None:
        c["ports"] = [{"name": "http", "containerPort": port}]
    if probe:
        c["readinessProbe"] = {"httpGet": {"path": "/healthz", "port": port or 8080}}
    return c


def templates() -> list[Obj]:
    """Five pod specs: a web server, a worker with a sidecar, a cache on ssd nodes, a zone-pinned service with
    preferences, a tolerant batch worker with a priority."""
    config = [{"name": "config", "configMap": {"name": "app-config"}}]
    web: Obj = {"containers": [_container("web", "nginx:1.25", "100m", "128Mi", port=80, env=4, probe=True)],
                "volumes": config}
    worker: Obj = {"containers": [_container("worker", "registry.local/worker:2.1", "250m", "256Mi", env=6),
                                  _container("log-shipper", "fluent-bit:3.0", "50m", "64Mi")], "volumes": config}
    cache: Obj = {"containers": [_container("redis", "redis:7", "200m", "512Mi", port=6379)],
                  "nodeSelector": {"disk": "ssd"}, "volumes": config}
    pinned: Obj = {"containers": [_container("api", "registry.local/api:5.4", "300m", "384Mi", port=8080, env=8,
                                             probe=True)],
                   "affinity": {"nodeAffinity": {
                       "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{
                           "matchExpressions": [{"key": "zone", "operator": "In", "values": ["z0", "z1"]}]}]},
                       "preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 10, "preference": {
                           "matchExpressions": [{"key": "zone", "operator": "In", "values": ["z0"]}]}}]}},
                   "volumes": config}
    batch: Obj = {"containers": [_container("job", "registry.local/batch:1.0", "500m", "1Gi", env=2)],
                  "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "batch",
                                   "effect": "NoSchedule"}],
                  "priority": 1000, "priorityClassName": "batch", "volumes": config}
    return [web, worker, cache, pinned, batch]


def running_status(spec: Obj, node_ip: str, pod_ip: str, now: str) -> Obj:
    """What a kubelet reports for a Running pod (``agents.kubelet.status`` shape)."""
    conditions = [{"type": t, "status": "True", "lastProbeTime": None, "lastTransitionTime": now}
                  for t in ("Initialized", "Ready", "ContainersReady", "PodScheduled")]
    statuses = [{"name": c["name"], "image": c["image"],
                 "imageID": f"docker.io/library/{c['image']}@sha256:" + "ab" * 32,
                 "containerID": "podman://" + uuid.uuid4().hex * 2, "ready": True, "started": True,
                 "restartCount": 0, "state": {"running": {"startedAt": now}}, "lastState": {}}
                for c in spec["containers"]]
    return {"phase": "Running", "conditions": conditions, "hostIP": node_ip, "hostIPs": [{"ip": node_ip}],
            "podIP": pod_ip, "podIPs": [{"ip": pod_ip}], "startTime": now, "qosClass": "Guaranteed",
            "containerStatuses": statuses}


class Workload:
    """One ReplicaSet: its template (defaulted once, as every pod of it is), labels and owner reference."""

    def __init__(self, index: int, spec: Obj, *, owned: bool = True) -> None:
        self.owned = owned
        self.name = f"app{index}-{uuid.uuid4().hex[:10]}"
        self.uid = str(uuid.uuid4())
        template: Obj = {"apiVersion": "v1", "kind": "Pod", "metadata": {}, "spec": json.loads(json.dumps(spec))}
        pod_kind.pod_spec_defaults(template["spec"])
        pod_kind._admit_new(template)
        self.spec: Obj = template["spec"]
        self.labels = {"app": f"app{index}", "tier": ["web", "worker", "cache", "api", "batch"][index % 5],
                       "pod-template-hash": self.name.rsplit("-", 1)[1]} if owned else {"app": f"a{index}"}
        self.owner = [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": self.name, "uid": self.uid,
                       "controller": True, "blockOwnerDeletion": True}]

    def pod(self, i: int, node: str, node_ip: str, rv: int) -> Obj:
        now = "2026-12-02T00:00:00Z"
        spec = dict(self.spec, nodeName=node)
        if not self.owned:  # bench_scale's pods: named, labelled, no owner
            return {"apiVersion": "v1", "kind": "Pod",
                    "metadata": {"name": f"s-{i}", "namespace": "default", "uid": str(uuid.uuid4()),
                                 "resourceVersion": str(rv), "generation": 1, "creationTimestamp": now,
                                 "labels": self.labels},
                    "spec": spec, "status": running_status(spec, node_ip, f"10.{(i >> 16) & 255}.{(i >> 8) & 255}."
                                                                        f"{i & 255}", now)}
        return {"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": f"{self.name}-{i:06x}", "generateName": f"{self.name}-", "namespace": "shop",
                             "uid": str(uuid.uuid4()), "resourceVersion": str(rv), "generation": 1,
                             "creationTimestamp": now, "labels": self.labels, "ownerReferences": self.owner},
                "spec": spec,
                "status": running_status(spec, node_ip, f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}", now)}


NOW = "2026-12-02T00:00:00Z"
NODE_CONDITIONS = (
    ("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
    ("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
    ("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
    ("Ready", "True", "KubeletReady", "kubelet is posting ready status"))


def node_objects(nodes: int) -> list[Obj]:
    out = []
    for i in range(nodes):
        labels = {"zone": f"z{i % 3}", "kubernetes.io/hostname": f"hollow-{i:05d}"}
        if i % 4 == 0:
            labels["disk"] = "ssd"
        node = make_node(f"hollow-{i:05d}", cpu="64", memory="256Gi", pods="110", labels=labels)
        node["metadata"].update(uid=str(uuid.uuid4()), resourceVersion=str(1 + i), creationTimestamp=NOW)
        node["spec"] = {"podCIDR": f"10.{i >> 8}.{i & 255}.0/24", "podCIDRs": [f"10.{i >> 8}.{i & 255}.0/24"]}
        node["status"].update(  # as a kubelet reports it (``agents.kubelet.node``)
            conditions=[{"type": kind, "status": status, "reason": reason, "message": message,
                         "lastHeartbeatTime": NOW, "lastTransitionTime": NOW}
                        for kind, status, reason, message in NODE_CONDITIONS],
            addresses=[{"type": "InternalIP", "address": f"192.168.{i >> 8}.{i & 255}"},
                       {"type": "Hostname", "address": f"hollow-{i:05d}"}],
            nodeInfo={"kubeletVersion": "v1.31.0-shoal", "containerRuntimeVersion": "podman://5.2.0",
                      "operatingSystem": "linux", "architecture": "amd64", "kernelVersion": "6.8.0-49-generic",
                      "osImage": "Linux-6.8.0-49-generic-x86_64-with-glibc2.39", "hostname": "bench"},
            daemonEndpoints={"kubeletEndpoint": {"subject": f"shoal.node.hollow-{i:05d}"}})
        out.append(node)
    return out


SCALE_SPEC: Obj = {"containers": [{"name": "c", "image": "busybox",
                                   "resources": {"requests": {"cpu": "10m", "memory": "8Mi"}}}]}
"""``bench_scale``'s pod (``--shape scale``): one small container, no owner, 50 label groups."""


def watch_messages(nodes: int, pods: int, replicasets: int, batch: int, shape: str = "deployment") -> Iterator[bytes]:
    """The pods as the API actor sends them to a watch: encoded messages of ``batch`` events."""
    specs = templates()
    workloads = [Workload(i, specs[i % len(specs)]) for i in range(replicasets)] if shape == "deployment" else \
        [Workload(i, SCALE_SPEC, owned=False) for i in range(replicasets)]
    events: list[Obj] = []
    seq = 0
    for i in range(pods):
        rv = 1000 + i
        n = i % nodes
        pod = workloads[i % replicasets].pod(i, f"hollow-{n:05d}", f"192.168.{n >> 8}.{n & 255}", rv)
        events.append({"type": "ADDED", "object": pod, "rv": rv})
        if len(events) == batch or i == pods - 1:
            seq += 1
            yield codec.encode({"watch": "w1", "seq": seq, "ok": True, "events": events,
                                "resourceVersion": rv})
            events = []


def decoded_events(data: bytes) -> Iterator[tuple[str, Obj]]:
    """As ``runtime.watch.Watch`` decodes a message (objects not checked for nesting, the version set)."""
    message = codec.decode(data, check_nesting=False)
    for item in message.get("events") or []:
        obj = item["object"]
        meta(obj)["resourceVersion"] = str(int(item["rv"]))
        yield item["type"], obj


def rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


class _NoNats:
    """Enough of a NATS client for actors that are built but never started talking."""

    def jetstream(self, **_: Any) -> None:
        return None


class _NoSupervisor:
    def spawn(self, *_: Any, **__: Any) -> None:
        return None


def _baseline() -> tuple[Callable[[str, Obj], None], Callable[[], int], Any]:
    store: dict[str, Obj] = {}

    def apply(event: str, obj: Obj) -> None:
        store[ref(obj)] = obj

    return apply, lambda: len(store), store


def _scheduler(nodes: list[Obj]) -> tuple[Callable[[str, Obj], None], Callable[[], int], Any]:
    from actors.scheduler.actor import SchedulerActor, SchedulerSettings
    from runtime.actor import ActorContext

    actor = SchedulerActor(SchedulerSettings(leader_elect=False))
    ctx = ActorContext(nc=_NoNats(), name="scheduler", instance="bench",  # type: ignore[arg-type]
                       supervisor=_NoSupervisor(), log=None)  # type: ignore[arg-type]
    asyncio.run(actor.start(ctx))
    assert actor.nodes is not None and actor.bound is not None
    for node in nodes:
        actor.nodes.apply("ADDED", codec.unpackb(codec.packb(node)))  # a decoded copy, as the watch gives it
    return actor.bound.apply, lambda: len(actor.cache.pods), actor


def _api() -> tuple[Callable[[str, Obj], None], Callable[[], int], Any]:
    from actors.api.cache import WatchCache, Watcher
    from actors.api.server import ApiSettings
    from protocol import keys
    from protocol.kinds import by_kind
    from protocol.selectors import parse_field_selector, parse_label_selector

    cache = WatchCache(window=ApiSettings().window)
    cache.mark_ready(999)
    info = by_kind("Pod")
    watcher = Watcher("w1", info.plural, None, parse_label_selector(None), parse_field_selector("spec.nodeName!="),
                      "_INBOX.bench", 0)
    cache.add_watcher(watcher, resume=False)  # the scheduler's bound pods: every change is delivered once

    def apply(event: str, obj: Obj) -> None:
        m = meta(obj)
        rev = int(m.pop("resourceVersion"))  # the datastore's revision, not stored in the object
        cache.apply(keys.object_key(info, m.get("namespace"), m["name"]), rev, codec.packb(obj), False)
        if len(watcher.pending) >= 64:
            for _ in cache.messages(watcher):  # as the flusher sends them
                pass

    return apply, lambda: cache.count(info.plural), cache


def measure(component: str, nodes: int, pods: int, replicasets: int, batch: int, *, trace: bool,
            shape: str = "deployment") -> dict[str, Any]:
    """In this process: build the component, feed it every pod, report what it keeps. ``trace``: the Python
    heap by tracemalloc (which slows the run and takes memory of its own); else the resident memory and the
    CPU per event (the collector tuned as in an actor: ``runtime.gc_tuning``)."""
    from runtime import gc_tuning

    gc_tuning.tune()
    import actors.api.server
    import actors.scheduler.actor  # noqa: F401  (imported before the first figure: not counted as the component's)

    node_objs = node_objects(nodes)
    gc.collect()
    if trace:
        tracemalloc.start()
    rss0, heap0 = rss_bytes(), tracemalloc.get_traced_memory()[0]
    apply, count, keep = _baseline() if component == "baseline" else _api() if component == "api" else \
        _scheduler(node_objs)
    gc.collect()
    rss1, heap1 = rss_bytes(), tracemalloc.get_traced_memory()[0]
    cpu = 0.0
    for data in watch_messages(nodes, pods, replicasets, batch, shape):
        events = list(decoded_events(data))
        started = time.process_time()
        for event, obj in events:
            apply(event, obj)
        cpu += time.process_time() - started
        del events
    gc.collect()
    heap2, peak = tracemalloc.get_traced_memory()
    rss2 = rss_bytes()
    kept = count()
    del keep
    if trace:
        return {"kept": kept, "setup_heap_mib": round((heap1 - heap0) / 2**20, 1),
                "heap_mib": round((heap2 - heap1) / 2**20, 1),
                "heap_bytes_per_pod": round((heap2 - heap1) / max(pods, 1)),
                "peak_heap_mib": round((peak - heap0) / 2**20, 1)}
    return {"kept": kept, "setup_rss_mib": round((rss1 - rss0) / 2**20, 1),
            "rss_mib": round((rss2 - rss1) / 2**20, 1), "rss_bytes_per_pod": round((rss2 - rss1) / max(pods, 1)),
            "apply_us_per_pod": round(cpu / max(pods, 1) * 1e6, 1)}


def run_child(component: str, args: argparse.Namespace, *, trace: bool) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "bench.bench_memory", "--child", component, "--nodes", str(args.nodes),
           "--pods", str(args.pods), "--replicasets", str(args.replicasets), "--batch", str(args.batch),
           "--shape", args.shape]
    if trace:
        cmd.append("--trace")
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=args.timeout)
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nodes", type=int, default=5000)
    parser.add_argument("--pods", type=int, default=150000)
    parser.add_argument("--replicasets", type=int, default=50)
    parser.add_argument("--batch", type=int, default=64, help="events per watch message")
    parser.add_argument("--components", default=",".join(COMPONENTS))
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument("--shape", choices=("deployment", "scale"), default="deployment",
                        help="deployment: 50 ReplicaSets of 5 templates; scale: bench_scale's small standalone pods")
    parser.add_argument("--no-heap", action="store_true", help="resident memory only (no tracemalloc run)")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--trace", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.child, args.nodes, args.pods, args.replicasets, args.batch, trace=args.trace,
                                 shape=args.shape)))
        return
    results: dict[str, dict[str, Any]] = {}
    for component in args.components.split(","):
        r = results[component] = run_child(component, args, trace=False)
        line = (f"{component:>10}: {r['kept']:,} pods kept: RSS +{r['rss_mib']:.1f} MiB "
                f"({r['rss_bytes_per_pod']:,} B/pod), apply {r['apply_us_per_pod']:.1f} µs/pod")
        if not args.no_heap:
            r.update(run_child(component, args, trace=True))
            line += (f"; heap {r['heap_mib']:.1f} MiB ({r['heap_bytes_per_pod']:,} B/pod), "
                     f"peak {r['peak_heap_mib']:.1f} MiB")
        print(line + f" (nodes, before the pods: RSS +{r['setup_rss_mib']:.1f} MiB)", flush=True)
    base = results.get("baseline")
    for component, r in results.items():
        if base is not None and component != "baseline":
            r["rss_vs_baseline"] = round(r["rss_mib"] / max(base["rss_mib"], 1e-9), 3)
            print(f"{component:>10}: {r['rss_vs_baseline']:.2f}x the baseline's resident memory", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps({"nodes": args.nodes, "pods": args.pods, "shape": args.shape,
                                               "replicasets": args.replicasets, "components": results}))


if __name__ == "__main__":
    main()
