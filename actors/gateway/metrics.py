"""``metrics.k8s.io/v1beta1`` PodMetrics and NodeMetrics, as metrics-server serves them (``kubectl top
pods|nodes``), read from the kubelets on ``shoal.node.<N>.metrics`` (``runtime.node_metrics``) when asked:
nothing is stored.

``GET /apis/metrics.k8s.io/v1beta1/[namespaces/<ns>/]pods[/<name>]`` (``labelSelector`` honoured): one
PodMetrics per pod some kubelet has a sample for (a pod without one is left out, as metrics-server does;
a named pod without one is NotFound). ``GET …/nodes[/<name>]``: one NodeMetrics per node whose kubelet
answers, its usage being its pods' summed (metrics-server's also counts what runs outside pods).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from protocol.errors import NotFound, ShoalError
from protocol.objects import Obj, format_time, meta, name_of, namespace_of
from runtime.client import ApiClient
from runtime.node_metrics import PodUsage, node_pod_usage, node_total, usage_by_node

GROUP_VERSION = "metrics.k8s.io/v1beta1"


def _memory(value: int) -> str:
    return f"{value // 1024}Ki"


def pod_metrics(pod: Obj, sample: PodUsage) -> Obj:
    m = meta(pod)
    return {"metadata": {"name": name_of(pod), "namespace": namespace_of(pod),
                         "creationTimestamp": format_time(sample.timestamp), "labels": m.get("labels") or {}},
            "timestamp": format_time(sample.timestamp), "window": f"{max(1, round(sample.window))}s",
            "containers": [{"name": c, "usage": {"cpu": f"{cpu}m", "memory": _memory(mem)}}
                           for c, cpu, mem in sample.containers]}


async def list_pod_metrics(client: ApiClient, namespace: str | None, name: str | None,
                           label_selector: str | None) -> Obj:
    pods = [p for p in (await client.list("Pod", namespace, label_selector=label_selector)).items
            if name is None or name_of(p) == name]
    nodes = sorted({str(p["spec"]["nodeName"]) for p in pods if (p.get("spec") or {}).get("nodeName")})
    answers: list[Any] = await asyncio.gather(*(node_pod_usage(client, n) for n in nodes), return_exceptions=True)
    samples: dict[tuple[str, str], PodUsage] = {}
    for answer in answers:
        if isinstance(answer, ShoalError):
            continue  # that node's pods have no sample, as with a kubelet metrics-server cannot scrape
        if isinstance(answer, BaseException):
            raise answer
        samples.update({(u.namespace, u.name): u for u in answer})
    items = [pod_metrics(p, samples[(namespace_of(p) or "", name_of(p))]) for p in pods
             if (namespace_of(p) or "", name_of(p)) in samples]
    if name is not None:
        if not items:
            raise NotFound(f'podmetrics.metrics.k8s.io "{name}" not found',
                           {"kind": "pods", "group": "metrics.k8s.io", "name": name})
        return {"kind": "PodMetrics", "apiVersion": GROUP_VERSION, **items[0]}
    return {"kind": "PodMetricsList", "apiVersion": GROUP_VERSION, "metadata": {}, "items": items}


def node_metrics(node: Obj, pods: list[PodUsage], now: float) -> Obj:
    cpu, memory = node_total(pods)
    stamp = max((p.timestamp for p in pods), default=now)
    window = max((p.window for p in pods), default=1.0)
    return {"metadata": {"name": name_of(node), "creationTimestamp": format_time(stamp),
                         "labels": meta(node).get("labels") or {}},
            "timestamp": format_time(stamp), "window": f"{max(1, round(window))}s",
            "usage": {"cpu": f"{cpu}m", "memory": _memory(memory)}}


async def list_node_metrics(client: ApiClient, name: str | None, label_selector: str | None) -> Obj:
    nodes = [await client.get("Node", name)] if name else \
        list((await client.list("Node", None, label_selector=label_selector)).items)
    answers = await usage_by_node(client, [name_of(n) for n in nodes])
    now = time.time()
    items = [node_metrics(n, answer, now) for n in nodes
             if not isinstance(answer := answers[name_of(n)], ShoalError)]
    if name is not None:
        if not items:
            raise NotFound(f'nodemetrics.metrics.k8s.io "{name}" not found',
                           {"kind": "nodes", "group": "metrics.k8s.io", "name": name})
        return {"kind": "NodeMetrics", "apiVersion": GROUP_VERSION, **items[0]}
    return {"kind": "NodeMetricsList", "apiVersion": GROUP_VERSION, "metadata": {}, "items": items}
