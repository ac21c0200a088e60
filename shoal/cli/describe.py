"""``describe`` text for an object, pure: metadata, then a per-kind summary of spec and status, then the
related Events. ``DescribeWriter`` aligns ``Label: value`` runs as kubectl's tab writer does."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from protocol.humanize import duration, since
from protocol.kinds.endpoints import endpoints_summary
from protocol.kinds.event import event_time
from protocol.kinds.job import job_duration, job_selector
from protocol.kinds.node import node_roles, node_status
from protocol.kinds.pod import pod_ready, pod_status
from protocol.kinds.service import service_external_ip
from protocol.kinds.storage import access_modes_text, is_default_class
from protocol.kinds.strategy import NONE
from protocol.objects import Obj, controller_of, meta, parse_time
from shoal.cli.printers import to_yaml

INDENT = "  "


@dataclass
class DescribeWriter:
    lines: list[tuple[int, str | None, str]] = field(default_factory=list)
    """(indent level, label or None for free text, value)."""

    def kv(self, label: str, value: Any, level: int = 0) -> None:
        self.lines.append((level, label, NONE if value in (None, "", [], {}) else str(value)))

    def text(self, text: str, level: int = 0) -> None:
        self.lines.append((level, None, text))

    def mapping(self, label: str, values: dict[str, Any] | None, level: int = 0, sep: str = "=") -> None:
        """``Labels: a=b`` then one more line per entry, aligned under the first."""
        items = sorted((values or {}).items())
        if not items:
            self.kv(label, NONE, level)
            return
        for i, (k, v) in enumerate(items):
            self.kv(label if i == 0 else "", f"{k}{sep}{v}", level)

    def table(self, headers: list[str], rows: list[list[str]], level: int = 1) -> None:
        widths = [max(len(str(r[i])) for r in [headers, [("-" * len(h)) for h in headers], *rows])
                  for i in range(len(headers))]
        for row in [headers, ["-" * len(h) for h in headers], *rows]:
            self.text("  ".join(str(c).ljust(widths[i]) for i, c in enumerate(row)).rstrip(), level)

    def render(self) -> str:
        widths: dict[int, int] = {}  # labels at one indentation level share one width, as a tab writer
        for level, label, _ in self.lines:
            if label is not None:
                widths[level] = max(widths.get(level, 0), len(label) + 1)
        out = []
        for level, label, value in self.lines:
            if label is None:
                out.append(f"{INDENT * level}{value}")
            else:
                head = f"{label}:" if label else ""
                out.append(f"{INDENT * level}{head.ljust(widths[level])}  {value}".rstrip())
        return "\n".join(out) + "\n"


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _timestamp(value: Any, now: float) -> str:
    if not value:
        return NONE
    return f"{value} ({since(str(value), now)} ago)"


def describe_metadata(w: DescribeWriter, obj: Obj, now: float) -> None:
    m = meta(obj)
    w.kv("Name", m.get("name"))
    if m.get("namespace"):
        w.kv("Namespace", m.get("namespace"))
    w.mapping("Labels", m.get("labels"))
    w.mapping("Annotations", {k: v if len(str(v)) <= 80 else str(v)[:77] + "..."
                              for k, v in _dict(m.get("annotations")).items()}, sep=": ")
    w.kv("CreationTimestamp", _timestamp(m.get("creationTimestamp"), now))
    if m.get("deletionTimestamp"):
        grace = m.get("deletionGracePeriodSeconds")
        w.kv("DeletionTimestamp", _timestamp(m.get("deletionTimestamp"), now)
             + (f", grace period {grace}s" if grace is not None else ""))
    owner = controller_of(obj)
    if owner:
        w.kv("Controlled By", f"{owner.get('kind')}/{owner.get('name')}")
    if m.get("finalizers"):
        w.kv("Finalizers", ", ".join(str(f) for f in m["finalizers"]))
    w.kv("UID", m.get("uid"))
    w.kv("ResourceVersion", m.get("resourceVersion"))
    if m.get("generation"):
        w.kv("Generation", m.get("generation"))


def describe_conditions(w: DescribeWriter, obj: Obj, *, detailed: bool = False) -> None:
    conditions = _list(_dict(obj.get("status")).get("conditions"))
    if not conditions:
        w.kv("Conditions", NONE)
        return
    w.text("Conditions:")
    if detailed:
        w.table(["Type", "Status", "LastTransitionTime", "Reason", "Message"],
                [[str(c.get("type")), str(c.get("status")), str(c.get("lastTransitionTime") or ""),
                  str(c.get("reason") or ""), str(c.get("message") or "")] for c in conditions])
    else:
        w.table(["Type", "Status", "Reason"],
                [[str(c.get("type")), str(c.get("status")), str(c.get("reason") or "")] for c in conditions])


def _state(w: DescribeWriter, label: str, state: dict[str, Any], level: int, now: float) -> None:
    if not state:
        w.kv(label, "Waiting" if label == "State" else NONE, level)
        return
    name, details = next(iter(state.items()))
    details = _dict(details)
    w.kv(label, name.capitalize(), level)
    for key in ("reason", "message", "exitCode", "signal", "startedAt", "finishedAt"):
        if details.get(key) not in (None, ""):
            value = _timestamp(details[key], now) if key.endswith("At") else details[key]
            w.kv(f"  {key[0].upper()}{key[1:]}", value, level)


def _env_value(env: dict[str, Any]) -> str:
    if "value" in env:
        return str(env["value"])
    source = next(iter(_dict(env.get("valueFrom"))), "?")
    return f"(from {source})"


FILE_VOLUMES = ("configMap", "secret", "downwardAPI", "projected")
"""Volumes the kubelet always mounts read-only (Kubernetes does the same)."""


def _mount_text(m: dict[str, Any], volumes: dict[str, Any]) -> str:
    """kubectl's ``/data from data (rw,path="sub")``, with ro where the kubelet really mounts read-only."""
    volume = _dict(volumes.get(str(m.get("name"))))
    claim = _dict(volume.get("persistentVolumeClaim"))
    read_only = bool(m.get("readOnly")) or any(k in volume for k in FILE_VOLUMES) or bool(claim.get("readOnly"))
    flags = ["ro" if read_only else "rw"]
    if m.get("subPath"):
        flags.append(f'path="{m["subPath"]}"')
    elif m.get("subPathExpr"):
        flags.append(f'path="{m["subPathExpr"]}"')
    return f"{m.get('mountPath')} from {m.get('name')} ({','.join(flags)})"


_VOLUME_TYPES: dict[str, tuple[str, tuple[tuple[str, str], ...]]] = {
    "emptyDir": ("EmptyDir (a temporary directory that shares a pod's lifetime)",
                 (("Medium", "medium"), ("SizeLimit", "sizeLimit"))),
    "hostPath": ("HostPath (bare host directory volume)", (("Path", "path"), ("HostPathType", "type"))),
    "configMap": ("ConfigMap (a volume populated by a ConfigMap)", (("Name", "name"), ("Optional", "optional"))),
    "secret": ("Secret (a volume populated by a Secret)", (("SecretName", "secretName"), ("Optional", "optional"))),
    "downwardAPI": ("DownwardAPI (a volume populated by information about the pod)", ()),
    "projected": ("Projected (a volume that contains injected data from multiple sources)", ()),
    "persistentVolumeClaim": ("PersistentVolumeClaim (a reference to a PersistentVolumeClaim in the same "
                              "namespace)", (("ClaimName", "claimName"), ("ReadOnly", "readOnly"))),
}


def describe_volumes(w: DescribeWriter, volumes: list[Any]) -> None:
    """Each volume with its type and source, as kubectl; a type the kubelet does not mount says so."""
    if not volumes:
        w.kv("Volumes", NONE)
        return
    w.text("Volumes:")
    for v in volumes:
        if not isinstance(v, dict):
            continue
        w.text(f"{v.get('name')}:", 1)
        kind = next((k for k in v if k != "name"), "")
        known = _VOLUME_TYPES.get(kind)
        if known is None:
            w.kv("Type", f"{kind or '<none>'} (not mounted: Shoal's kubelet does not support this volume type)", 2)
            continue
        description, fields = known
        w.kv("Type", description, 2)
        source = _dict(v.get(kind))
        for label, key in fields:
            value = source.get(key)
            if key in ("optional", "readOnly"):
                value = "true" if value else "false"
            elif key == "sizeLimit" and value is None:
                value = "<unset>"
            w.kv(label, value if value not in (None, "") else "", 2)
        if kind == "projected":
            for item in _list(source.get("sources")):
                for part, label in (("configMap", "ConfigMapName"), ("secret", "SecretName")):
                    if isinstance(_dict(item).get(part), dict):
                        w.kv(label, _dict(item[part]).get("name"), 2)
                if isinstance(_dict(item).get("serviceAccountToken"), dict):
                    token = _dict(item["serviceAccountToken"])
                    w.kv("TokenExpirationSeconds", token.get("expirationSeconds", 3607), 2)


def describe_containers(w: DescribeWriter, title: str, containers: list[Any], statuses: list[Any],
                        now: float, level: int = 0, volumes: dict[str, Any] | None = None) -> None:
    if not containers:
        return
    w.text(f"{title}:", level)
    by_name = {s.get("name"): s for s in statuses if isinstance(s, dict)}
    for c in containers:
        if not isinstance(c, dict):
            continue
        w.text(f"{c.get('name')}:", level + 1)
        lvl = level + 2
        w.kv("Image", c.get("image"), lvl)
        ports = [f"{p.get('containerPort')}/{p.get('protocol') or 'TCP'}" for p in _list(c.get("ports"))]
        w.kv("Port", ", ".join(ports), lvl)
        if c.get("command"):
            w.kv("Command", " ".join(str(x) for x in c["command"]), lvl)
        if c.get("args"):
            w.kv("Args", " ".join(str(x) for x in c["args"]), lvl)
        status = _dict(by_name.get(c.get("name")))
        if status:
            _state(w, "State", _dict(status.get("state")), lvl, now)
            if status.get("lastState"):
                _state(w, "Last State", _dict(status.get("lastState")), lvl, now)
            w.kv("Ready", status.get("ready", False), lvl)
            w.kv("Restart Count", status.get("restartCount", 0), lvl)
        resources = _dict(c.get("resources"))
        for part in ("limits", "requests"):
            if resources.get(part):
                w.mapping(part.capitalize(), resources[part], lvl, sep=": ")
        env = [f"{e.get('name')}={_env_value(e)}" for e in _list(c.get("env"))]
        w.kv("Environment", ", ".join(env), lvl)
        mounts = [_mount_text(m, volumes or {}) for m in _list(c.get("volumeMounts")) if isinstance(m, dict)]
        for i, mount in enumerate(mounts or [NONE]):  # one per line, as kubectl
            w.kv("" if i else "Mounts", mount, lvl)


def describe_pod(w: DescribeWriter, pod: Obj, extras: dict[str, Any], now: float) -> None:
    spec, status = _dict(pod.get("spec")), _dict(pod.get("status"))
    w.kv("Node", spec.get("nodeName") or NONE)
    w.kv("Status", pod_status(pod))
    if status.get("reason"):
        w.kv("Reason", status.get("reason"))
    if status.get("message"):
        w.kv("Message", status.get("message"))
    w.kv("Ready", pod_ready(pod))
    w.kv("IP", status.get("podIP"))
    w.kv("Start Time", _timestamp(status.get("startTime"), now))
    w.kv("QoS Class", status.get("qosClass"))
    w.kv("Restart Policy", spec.get("restartPolicy"))
    volumes = {str(v.get("name")): v for v in _list(spec.get("volumes")) if isinstance(v, dict)}
    describe_containers(w, "Init Containers", _list(spec.get("initContainers")),
                        _list(status.get("initContainerStatuses")), now, volumes=volumes)
    describe_containers(w, "Containers", _list(spec.get("containers")),
                        _list(status.get("containerStatuses")), now, volumes=volumes)
    describe_conditions(w, pod)
    describe_volumes(w, _list(spec.get("volumes")))
    w.mapping("Node-Selectors", spec.get("nodeSelector"))
    tolerations = [f"{t.get('key', '')}:{t.get('effect', '')} op={t.get('operator', 'Equal')}"
                   + (f" for {t['tolerationSeconds']}s" if t.get("tolerationSeconds") is not None else "")
                   for t in _list(spec.get("tolerations"))]
    w.kv("Tolerations", tolerations[0] if tolerations else NONE)
    for extra in tolerations[1:]:
        w.kv("", extra)


def describe_node(w: DescribeWriter, node: Obj, extras: dict[str, Any], now: float) -> None:
    spec, status = _dict(node.get("spec")), _dict(node.get("status"))
    w.kv("Roles", node_roles(node))
    w.kv("Status", node_status(node))
    taints = [f"{t.get('key')}{'=' + str(t['value']) if t.get('value') else ''}:{t.get('effect')}"
              for t in _list(spec.get("taints"))]
    w.kv("Taints", taints[0] if taints else NONE)
    for extra in taints[1:]:
        w.kv("", extra)
    w.kv("Unschedulable", bool(spec.get("unschedulable")))
    describe_conditions(w, node, detailed=True)
    addresses = {str(a.get("type")): a.get("address") for a in _list(status.get("addresses"))}
    w.mapping("Addresses", addresses, sep=": ")
    w.mapping("Capacity", status.get("capacity"), sep=": ")
    w.mapping("Allocatable", status.get("allocatable"), sep=": ")
    info = _dict(status.get("nodeInfo"))
    if info:
        w.text("System Info:")
        for key, value in info.items():
            w.kv(key[0].upper() + key[1:], value, 1)
    pods = extras.get("pods")
    if pods is not None:
        running = [p for p in pods if _dict(p.get("status")).get("phase") not in ("Succeeded", "Failed")]
        w.text(f"Non-terminated Pods: ({len(running)} in total)")
        if running:
            w.table(["Namespace", "Name", "Status", "Age"],
                    [[str(meta(p).get("namespace")), str(meta(p).get("name")), pod_status(p),
                      since(meta(p).get("creationTimestamp"), now)] for p in running])


def _selector_text(spec: dict[str, Any]) -> str:
    selector = _dict(spec.get("selector"))
    structured = "matchLabels" in selector or "matchExpressions" in selector
    labels = _dict(selector.get("matchLabels")) if structured else selector
    text = ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
    exprs = [f"{e.get('key')} {e.get('operator')} ({','.join(e.get('values') or [])})"
             for e in _list(selector.get("matchExpressions"))]
    return ",".join(x for x in [text, *exprs] if x) or NONE


def _pod_template(w: DescribeWriter, spec: dict[str, Any], now: float) -> None:
    template = _dict(spec.get("template"))
    w.text("Pod Template:")
    w.mapping("Labels", _dict(template.get("metadata")).get("labels"), 1)
    containers = _list(_dict(template.get("spec")).get("containers"))
    describe_containers(w, "Containers", containers, [], now, level=1)


def describe_deployment(w: DescribeWriter, obj: Obj, extras: dict[str, Any], now: float) -> None:
    spec, status = _dict(obj.get("spec")), _dict(obj.get("status"))
    w.kv("Selector", _selector_text(spec))
    available = int(status.get("availableReplicas") or 0)
    w.kv("Replicas", f"{spec.get('replicas', 1)} desired | {status.get('updatedReplicas') or 0} updated | "
                     f"{status.get('replicas') or 0} total | {available} available | "
                     f"{status.get('unavailableReplicas') or 0} unavailable")
    strategy = _dict(spec.get("strategy"))
    w.kv("StrategyType", strategy.get("type"))
    w.kv("MinReadySeconds", spec.get("minReadySeconds", 0))
    rolling = _dict(strategy.get("rollingUpdate"))
    if rolling:
        w.kv("RollingUpdateStrategy", f"{rolling.get('maxUnavailable')} max unavailable, "
                                      f"{rolling.get('maxSurge')} max surge")
    _pod_template(w, spec, now)
    describe_conditions(w, obj, detailed=True)


def describe_replicated(w: DescribeWriter, obj: Obj, extras: dict[str, Any], now: float) -> None:
    """ReplicaSets and ReplicationControllers."""
    spec, status = _dict(obj.get("spec")), _dict(obj.get("status"))
    w.kv("Selector", _selector_text(spec))
    w.kv("Replicas", f"{status.get('replicas') or 0} current / {spec.get('replicas', 1)} desired")
    w.kv("Pods Status", f"{status.get('readyReplicas') or 0} Ready / "
                        f"{status.get('availableReplicas') or 0} Available")
    _pod_template(w, spec, now)
    describe_conditions(w, obj, detailed=True)


def describe_job(w: DescribeWriter, obj: Obj, extras: dict[str, Any], now: float) -> None:
    """As kubectl: counts, mode, times, pod statuses, the template, conditions."""
    spec, status = _dict(obj.get("spec")), _dict(obj.get("status"))
    w.kv("Selector", str(job_selector(obj)) or NONE)
    w.kv("Parallelism", spec.get("parallelism", 1))
    w.kv("Completions", spec.get("completions", "<unset>"))
    w.kv("Completion Mode", spec.get("completionMode", "NonIndexed"))
    w.kv("Suspend", bool(spec.get("suspend")))
    w.kv("Backoff Limit", spec.get("backoffLimit", 6))
    if spec.get("activeDeadlineSeconds") is not None:
        w.kv("Active Deadline Seconds", f"{spec['activeDeadlineSeconds']}s")
    if spec.get("ttlSecondsAfterFinished") is not None:
        w.kv("TTL Seconds After Finished", spec["ttlSecondsAfterFinished"])
    w.kv("Start Time", _timestamp(status.get("startTime"), now))
    if status.get("completionTime"):
        w.kv("Completed At", _timestamp(status.get("completionTime"), now))
    if status.get("startTime"):
        w.kv("Duration", job_duration(obj, now))
    w.kv("Pods Statuses", f"{status.get('active') or 0} Active ({status.get('ready') or 0} Ready) / "
                          f"{status.get('succeeded') or 0} Succeeded / {status.get('failed') or 0} Failed")
    if spec.get("completionMode") == "Indexed":
        w.kv("Completed Indexes", status.get("completedIndexes") or NONE)
    _pod_template(w, spec, now)
    describe_conditions(w, obj, detailed=True)


def describe_cronjob(w: DescribeWriter, obj: Obj, extras: dict[str, Any], now: float) -> None:
    spec, status = _dict(obj.get("spec")), _dict(obj.get("status"))
    w.kv("Schedule", spec.get("schedule"))
    w.kv("Time Zone", spec.get("timeZone") or "<unset> (UTC)")
    w.kv("Concurrency Policy", spec.get("concurrencyPolicy", "Allow"))
    w.kv("Suspend", bool(spec.get("suspend")))
    w.kv("Successful Job History Limit", spec.get("successfulJobsHistoryLimit", 3))
    w.kv("Failed Job History Limit", spec.get("failedJobsHistoryLimit", 1))
    w.kv("Starting Deadline Seconds", spec.get("startingDeadlineSeconds", "<unset>"))
    job_spec = _dict(_dict(spec.get("jobTemplate")).get("spec"))
    w.kv("Parallelism", job_spec.get("parallelism", "<unset>"))
    w.kv("Completions", job_spec.get("completions", "<unset>"))
    _pod_template(w, job_spec, now)
    w.kv("Last Schedule Time", _timestamp(status.get("lastScheduleTime"), now))
    w.kv("Last Successful Time", _timestamp(status.get("lastSuccessfulTime"), now))
    active = [str(r.get("name")) for r in _list(status.get("active"))]
    w.kv("Active Jobs", ", ".join(active) or NONE)


def describe_daemonset(w: DescribeWriter, obj: Obj, extras: dict[str, Any], now: float) -> None:
    """kubectl's DaemonSet description: the node counts of the status, the update strategy, the template."""
    spec, status = _dict(obj.get("spec")), _dict(obj.get("status"))
    w.kv("Selector", _selector_text(spec))
    node_selector = _dict(_dict(_dict(spec.get("template")).get("spec")).get("nodeSelector"))
    w.kv("Node-Selector", ",".join(f"{k}={v}" for k, v in sorted(node_selector.items())) or NONE)
    w.kv("Desired Number of Nodes Scheduled", status.get("desiredNumberScheduled") or 0)
    w.kv("Current Number of Nodes Scheduled", status.get("currentNumberScheduled") or 0)
    w.kv("Number of Nodes Scheduled with Up-to-date Pods", status.get("updatedNumberScheduled") or 0)
    w.kv("Number of Nodes Scheduled with Available Pods", status.get("numberAvailable") or 0)
    w.kv("Number of Nodes Misscheduled", status.get("numberMisscheduled") or 0)
    w.kv("Pods Status", f"{status.get('numberReady') or 0} Ready / {status.get('numberAvailable') or 0} Available")
    strategy = _dict(spec.get("updateStrategy"))
    w.kv("StrategyType", strategy.get("type"))
    rolling = _dict(strategy.get("rollingUpdate"))
    if rolling:
        w.kv("RollingUpdateStrategy", f"{rolling.get('maxUnavailable')} max unavailable, "
                                      f"{rolling.get('maxSurge')} max surge")
    _pod_template(w, spec, now)


def describe_budget(w: DescribeWriter, obj: Obj, extras: dict[str, Any], now: float) -> None:
    """kubectl's PodDisruptionBudget description: the bound, the selector and what the status allows."""
    spec, status = _dict(obj.get("spec")), _dict(obj.get("status"))
    if spec.get("minAvailable") is not None:
        w.kv("Min available", spec.get("minAvailable"))
    if spec.get("maxUnavailable") is not None:
        w.kv("Max unavailable", spec.get("maxUnavailable"))
    w.kv("Selector", _selector_text(spec) if spec.get("selector") is not None else NONE)
    w.text("Status:")
    w.kv("Allowed disruptions", status.get("disruptionsAllowed") or 0, 1)
    w.kv("Current", status.get("currentHealthy") or 0, 1)
    w.kv("Desired", status.get("desiredHealthy") or 0, 1)
    w.kv("Total", status.get("expectedPods") or 0, 1)
    describe_conditions(w, obj, detailed=True)


def describe_service(w: DescribeWriter, svc: Obj, extras: dict[str, Any], now: float) -> None:
    spec = _dict(svc.get("spec"))
    w.kv("Selector", ",".join(f"{k}={v}" for k, v in sorted(_dict(spec.get("selector")).items())))
    w.kv("Type", spec.get("type", "ClusterIP"))
    w.kv("IP", spec.get("clusterIP"))
    if spec.get("type") in ("LoadBalancer", "ExternalName") or spec.get("externalIPs"):
        w.kv("External IP", service_external_ip(svc))
    for port in _list(spec.get("ports")):
        name = port.get("name") or "<unset>"
        w.kv("Port", f"{name}  {port.get('port')}/{port.get('protocol', 'TCP')}")
        w.kv("TargetPort", f"{port.get('targetPort', port.get('port'))}/{port.get('protocol', 'TCP')}")
        if port.get("nodePort"):
            w.kv("NodePort", f"{name}  {port['nodePort']}/{port.get('protocol', 'TCP')}")
    endpoints = extras.get("endpoints")
    w.kv("Endpoints", endpoints_summary(endpoints) if isinstance(endpoints, dict) else NONE)
    w.kv("Session Affinity", spec.get("sessionAffinity", "None"))


def describe_namespace(w: DescribeWriter, ns: Obj, extras: dict[str, Any], now: float) -> None:
    w.kv("Status", _dict(ns.get("status")).get("phase", "Active"))
    finalizers = _list(_dict(ns.get("spec")).get("finalizers"))
    if finalizers:
        w.kv("Spec Finalizers", ", ".join(str(f) for f in finalizers))


def describe_secret(w: DescribeWriter, obj: Obj, extras: dict[str, Any], now: float) -> None:
    """Sizes only: a Secret's values are not printed."""
    data = _dict(obj.get("data"))
    w.kv("Type", obj.get("type", "Opaque"))
    w.text("Data")
    w.text("====")
    for key in sorted(data):
        w.kv(key, f"{len(str(data[key])) * 3 // 4} bytes")


def describe_data(w: DescribeWriter, obj: Obj, extras: dict[str, Any], now: float) -> None:
    data = _dict(obj.get("data"))
    w.text("Data")
    w.text("====")
    for key in sorted(data):
        w.text(f"{key}:")
        w.text("----")
        w.text(str(data[key]).rstrip("\n"))
        w.text("")


def describe_event(w: DescribeWriter, ev: Obj, extras: dict[str, Any], now: float) -> None:
    involved = _dict(ev.get("involvedObject"))
    w.kv("Involved Object", f"{involved.get('kind')}/{involved.get('name')}")
    w.kv("Type", ev.get("type"))
    w.kv("Reason", ev.get("reason"))
    w.kv("Message", ev.get("message"))
    w.kv("Source", _dict(ev.get("source")).get("component"))
    w.kv("Count", ev.get("count", 1))
    w.kv("First Seen", _timestamp(ev.get("firstTimestamp"), now))
    w.kv("Last Seen", _timestamp(ev.get("lastTimestamp"), now))


def describe_claim(w: DescribeWriter, pvc: Obj, extras: dict[str, Any], now: float) -> None:
    spec, status = _dict(pvc.get("spec")), _dict(pvc.get("status"))
    w.kv("StorageClass", spec.get("storageClassName"))
    w.kv("Status", "Terminating" if meta(pvc).get("deletionTimestamp") else status.get("phase"))
    w.kv("Volume", spec.get("volumeName"))
    bound = bool(spec.get("volumeName"))
    w.kv("Capacity", _dict(status.get("capacity")).get("storage") if bound else "")
    w.kv("Access Modes", access_modes_text(status.get("accessModes")) if bound else "")
    w.kv("VolumeMode", spec.get("volumeMode"))


def describe_volume(w: DescribeWriter, pv: Obj, extras: dict[str, Any], now: float) -> None:
    spec, status = _dict(pv.get("spec")), _dict(pv.get("status"))
    w.kv("StorageClass", spec.get("storageClassName"))
    w.kv("Status", "Terminating" if meta(pv).get("deletionTimestamp") else status.get("phase"))
    ref = _dict(spec.get("claimRef"))
    w.kv("Claim", f"{ref.get('namespace')}/{ref.get('name')}" if ref.get("name") else "")
    w.kv("Reclaim Policy", spec.get("persistentVolumeReclaimPolicy"))
    w.kv("Access Modes", access_modes_text(spec.get("accessModes")))
    w.kv("VolumeMode", spec.get("volumeMode"))
    w.kv("Capacity", _dict(spec.get("capacity")).get("storage"))
    terms = _list(_dict(_dict(spec.get("nodeAffinity")).get("required")).get("nodeSelectorTerms"))
    if terms:
        w.text("Node Affinity:")
        w.text("Required Terms:", 1)
        for term in terms:
            for expr in _list(_dict(term).get("matchExpressions")):
                e = _dict(expr)
                w.text(f"Term 0: {e.get('key')} {e.get('operator')} [{', '.join(_list(e.get('values')))}]", 2)
    else:
        w.kv("Node Affinity", NONE)
    w.kv("Message", status.get("message"))
    w.text("Source:")
    for source, label in (("hostPath", "HostPath (bare host directory volume)"),
                          ("local", "LocalVolume (a persistent volume backed by local storage on a node)")):
        if isinstance(spec.get(source), dict):
            w.kv("Type", label, 1)
            w.kv("Path", spec[source].get("path"), 1)
            if source == "hostPath":
                w.kv("HostPathType", spec[source].get("type") or "", 1)


def describe_storage_class(w: DescribeWriter, sc: Obj, extras: dict[str, Any], now: float) -> None:
    w.kv("IsDefaultClass", "Yes" if is_default_class(sc) else "No")
    w.kv("Provisioner", sc.get("provisioner"))
    w.mapping("Parameters", _dict(sc.get("parameters")))
    w.kv("AllowVolumeExpansion", "True" if sc.get("allowVolumeExpansion") else "<unset>")
    w.kv("ReclaimPolicy", sc.get("reclaimPolicy"))
    w.kv("VolumeBindingMode", sc.get("volumeBindingMode"))


def describe_generic(w: DescribeWriter, obj: Obj, extras: dict[str, Any], now: float) -> None:
    for part in ("spec", "status"):
        value = obj.get(part)
        if value:
            w.text(f"{part.capitalize()}:")
            for line in to_yaml(value).rstrip("\n").splitlines():
                w.text(line, 1)


Describer = Callable[[DescribeWriter, Obj, dict[str, Any], float], None]
DESCRIBERS: dict[str, Describer] = {
    "Pod": describe_pod,
    "Node": describe_node,
    "Deployment": describe_deployment,
    "ReplicaSet": describe_replicated,
    "ReplicationController": describe_replicated,
    "Job": describe_job,
    "CronJob": describe_cronjob,
    "DaemonSet": describe_daemonset,
    "PodDisruptionBudget": describe_budget,
    "Service": describe_service,
    "Namespace": describe_namespace,
    "ConfigMap": describe_data,
    "Secret": describe_secret,
    "Event": describe_event,
    "PersistentVolumeClaim": describe_claim,
    "PersistentVolume": describe_volume,
    "StorageClass": describe_storage_class,
}


def describe_events(w: DescribeWriter, events: list[Obj] | None, now: float) -> None:
    if events is None:
        return
    if not events:
        w.kv("Events", NONE)
        return
    w.text("Events:")
    rows = []
    for ev in sorted(events, key=lambda e: parse_time(event_time(e)) or 0.0):
        count = int(ev.get("count") or 1)
        first = parse_time(ev.get("firstTimestamp"))
        age = since(event_time(ev), now)
        if count > 1 and first is not None:
            age = f"{age} (x{count} over {duration(now - first)})"
        source = _dict(ev.get("source"))
        origin = str(source.get("component") or ev.get("reportingComponent") or "")
        rows.append([str(ev.get("type") or ""), str(ev.get("reason") or ""), age, origin,
                     str(ev.get("message") or "").replace("\n", " ")])
    w.table(["Type", "Reason", "Age", "From", "Message"], rows)


def describe(obj: Obj, *, events: list[Obj] | None, extras: dict[str, Any] | None = None,
             now: float | None = None) -> str:
    """The whole description; ``events`` None leaves the Events section out (for Events themselves)."""
    now = time.time() if now is None else now
    w = DescribeWriter()
    describe_metadata(w, obj, now)
    DESCRIBERS.get(str(obj.get("kind")), describe_generic)(w, obj, extras or {}, now)
    describe_events(w, events, now)
    return w.render()
