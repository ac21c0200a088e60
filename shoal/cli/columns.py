"""The table columns of ``shoal get`` for each kind, as kubectl prints them (``-o wide`` adds some).

Each column is a header and a pure function of (object, now). Kinds without an entry get NAME, AGE.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from protocol.errors import BadRequest
from protocol.objects import Obj, condition, meta, name_of, parse_time
from protocol.selectors import from_label_selector, from_match_labels
from shoal.cli.humanize import age, duration, since

NONE = "<none>"


@dataclass(frozen=True)
class Column:
    header: str
    value: Callable[[Obj, float], str]
    wide: bool = False


def _get(obj: Any, *path: str) -> Any:
    for part in path:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(part)
    return obj


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


NAME = Column("NAME", lambda o, now: name_of(o))
AGE = Column("AGE", lambda o, now: age(o, now))


# -- pods ------------------------------------------------------------------------------------------
def pod_status(pod: Obj) -> str:
    """The STATUS kubectl shows: a waiting/terminated reason, Init:x/y, Terminating, else the phase."""
    spec, status = _dict(pod.get("spec")), _dict(pod.get("status"))
    reason = str(status.get("reason") or status.get("phase") or "Pending")
    initializing = False
    init_specs = _list(spec.get("initContainers"))
    for i, cs in enumerate(_list(status.get("initContainerStatuses"))):
        state = _dict(cs.get("state"))
        terminated, waiting = _dict(state.get("terminated")), _dict(state.get("waiting"))
        if terminated and terminated.get("exitCode") == 0:
            continue
        if terminated:
            if terminated.get("reason"):
                reason = f"Init:{terminated['reason']}"
            elif terminated.get("signal"):
                reason = f"Init:Signal:{terminated['signal']}"
            else:
                reason = f"Init:ExitCode:{terminated.get('exitCode')}"
        elif waiting.get("reason") and waiting.get("reason") != "PodInitializing":
            reason = f"Init:{waiting['reason']}"
        else:
            reason = f"Init:{i}/{len(init_specs)}"
        initializing = True
        break
    if not initializing or (condition(pod, "Initialized") or {}).get("status") == "True":
        has_running = False
        for cs in reversed(_list(status.get("containerStatuses"))):
            state = _dict(cs.get("state"))
            terminated, waiting = _dict(state.get("terminated")), _dict(state.get("waiting"))
            if waiting.get("reason"):
                reason = str(waiting["reason"])
            elif terminated.get("reason"):
                reason = str(terminated["reason"])
            elif terminated:
                reason = (f"Signal:{terminated['signal']}" if terminated.get("signal")
                          else f"ExitCode:{terminated.get('exitCode')}")
            elif cs.get("ready") and state.get("running") is not None:
                has_running = True
        if reason == "Completed" and has_running:
            reason = "Running" if (condition(pod, "Ready") or {}).get("status") == "True" else "NotReady"
    if meta(pod).get("deletionTimestamp"):
        reason = "Unknown" if status.get("reason") == "NodeLost" else "Terminating"
    return reason


def pod_ready(pod: Obj) -> str:
    total = len(_list(_get(pod, "spec", "containers")))
    ready = sum(1 for cs in _list(_get(pod, "status", "containerStatuses")) if cs.get("ready"))
    return f"{ready}/{total}"


def pod_restarts(pod: Obj, now: float) -> str:
    status = pod.get("status")
    statuses = _list(_get(status, "containerStatuses")) + _list(_get(status, "initContainerStatuses"))
    restarts = sum(int(cs.get("restartCount") or 0) for cs in statuses)
    last: float | None = None
    for cs in statuses:
        finished = parse_time(_get(cs, "lastState", "terminated", "finishedAt"))
        if finished is not None and (last is None or finished > last):
            last = finished
    return f"{restarts} ({duration(now - last)} ago)" if restarts and last is not None else str(restarts)


# -- workloads -------------------------------------------------------------------------------------
def _containers(obj: Obj) -> list[Any]:
    return _list(_get(obj, "spec", "template", "spec", "containers"))


def _selector(obj: Obj) -> str:
    raw = _get(obj, "spec", "selector")
    try:
        if obj.get("kind") in ("ReplicationController", "Service"):
            text = str(from_match_labels(raw)) if raw else ""
        else:
            text = str(from_label_selector(raw))
    except BadRequest:
        text = str(raw)
    return text or NONE


def _container_field(field: str) -> Callable[[Obj, float], str]:
    return lambda o, now: ",".join(str(c.get(field)) for c in _containers(o)) or NONE


CONTAINERS = Column("CONTAINERS", _container_field("name"), wide=True)
IMAGES = Column("IMAGES", _container_field("image"), wide=True)
SELECTOR = Column("SELECTOR", lambda o, now: _selector(o), wide=True)


def _num(obj: Obj, *path: str) -> str:
    return str(_get(obj, *path) or 0)


REPLICA_COLUMNS = (
    NAME,
    Column("DESIRED", lambda o, now: _num(o, "spec", "replicas")),
    Column("CURRENT", lambda o, now: _num(o, "status", "replicas")),
    Column("READY", lambda o, now: _num(o, "status", "readyReplicas")),
    AGE, CONTAINERS, IMAGES, SELECTOR,
)


# -- nodes -----------------------------------------------------------------------------------------
def node_status(node: Obj) -> str:
    ready = condition(node, "Ready")
    text = "Ready" if ready and ready.get("status") == "True" else ("NotReady" if ready else "Unknown")
    if _get(node, "spec", "unschedulable"):
        text += ",SchedulingDisabled"
    return text


def node_roles(node: Obj) -> str:
    roles = sorted(key.split("/", 1)[1] for key in _dict(meta(node).get("labels"))
                   if key.startswith("node-role.kubernetes.io/") and "/" in key)
    return ",".join(r for r in roles if r) or NONE


def _address(node: Obj, kind: str) -> str:
    for addr in _list(_get(node, "status", "addresses")):
        if addr.get("type") == kind:
            return str(addr.get("address"))
    return NONE


def _node_info(field: str) -> Callable[[Obj, float], str]:
    return lambda o, now: str(_get(o, "status", "nodeInfo", field) or "<unknown>")


# -- services and endpoints ------------------------------------------------------------------------
def service_ports(svc: Obj) -> str:
    parts = []
    for port in _list(_get(svc, "spec", "ports")):
        node_port = f":{port['nodePort']}" if port.get("nodePort") else ""
        parts.append(f"{port.get('port')}{node_port}/{port.get('protocol') or 'TCP'}")
    return ",".join(parts) or NONE


def service_external_ip(svc: Obj) -> str:
    spec = _dict(svc.get("spec"))
    if spec.get("type") == "ExternalName":
        return str(spec.get("externalName") or NONE)
    ips = [str(ip) for ip in _list(spec.get("externalIPs"))]
    if spec.get("type") == "LoadBalancer":
        ingress = _list(_get(svc, "status", "loadBalancer", "ingress"))
        ips += [str(i.get("ip") or i.get("hostname")) for i in ingress]
        if not ips:
            return "<pending>"
    return ",".join(ips) or NONE


def endpoints_summary(ep: Obj, limit: int = 3) -> str:
    found: list[str] = []
    for subset in _list(ep.get("subsets")):
        ports = _list(subset.get("ports"))
        for addr in _list(subset.get("addresses")):
            if ports:
                found += [f"{addr.get('ip')}:{p.get('port')}" for p in ports]
            else:
                found.append(str(addr.get("ip")))
    if not found:
        return NONE
    more = f" + {len(found) - limit} more..." if len(found) > limit else ""
    return ",".join(found[:limit]) + more


# -- events ----------------------------------------------------------------------------------------
def event_time(ev: Obj) -> str | None:
    value = ev.get("lastTimestamp") or ev.get("eventTime") or ev.get("firstTimestamp")
    return str(value) if value else meta(ev).get("creationTimestamp")


def event_object(ev: Obj) -> str:
    involved = _dict(ev.get("involvedObject"))
    return f"{str(involved.get('kind') or '').lower()}/{involved.get('name')}"


COLUMNS: dict[str, tuple[Column, ...]] = {
    "Pod": (
        NAME,
        Column("READY", lambda o, now: pod_ready(o)),
        Column("STATUS", lambda o, now: pod_status(o)),
        Column("RESTARTS", pod_restarts),
        AGE,
        Column("IP", lambda o, now: str(_get(o, "status", "podIP") or NONE), wide=True),
        Column("NODE", lambda o, now: str(_get(o, "spec", "nodeName") or NONE), wide=True),
    ),
    "Node": (
        NAME,
        Column("STATUS", lambda o, now: node_status(o)),
        Column("ROLES", lambda o, now: node_roles(o)),
        AGE,
        Column("VERSION", lambda o, now: str(_get(o, "status", "nodeInfo", "kubeletVersion") or "")),
        Column("INTERNAL-IP", lambda o, now: _address(o, "InternalIP"), wide=True),
        Column("EXTERNAL-IP", lambda o, now: _address(o, "ExternalIP"), wide=True),
        Column("OS-IMAGE", _node_info("osImage"), wide=True),
        Column("KERNEL-VERSION", _node_info("kernelVersion"), wide=True),
        Column("CONTAINER-RUNTIME", _node_info("containerRuntimeVersion"), wide=True),
    ),
    "Deployment": (
        NAME,
        Column("READY", lambda o, now: f"{_num(o, 'status', 'readyReplicas')}/{_num(o, 'spec', 'replicas')}"),
        Column("UP-TO-DATE", lambda o, now: _num(o, "status", "updatedReplicas")),
        Column("AVAILABLE", lambda o, now: _num(o, "status", "availableReplicas")),
        AGE, CONTAINERS, IMAGES, SELECTOR,
    ),
    "ReplicaSet": REPLICA_COLUMNS,
    "ReplicationController": REPLICA_COLUMNS,
    "Service": (
        NAME,
        Column("TYPE", lambda o, now: str(_get(o, "spec", "type") or "ClusterIP")),
        Column("CLUSTER-IP", lambda o, now: str(_get(o, "spec", "clusterIP") or NONE)),
        Column("EXTERNAL-IP", lambda o, now: service_external_ip(o)),
        Column("PORT(S)", lambda o, now: service_ports(o)),
        AGE, SELECTOR,
    ),
    "Endpoints": (NAME, Column("ENDPOINTS", lambda o, now: endpoints_summary(o)), AGE),
    "Namespace": (NAME, Column("STATUS", lambda o, now: str(_get(o, "status", "phase") or "Active")), AGE),
    "ConfigMap": (NAME, Column("DATA", lambda o, now: str(len(_dict(o.get("data")))
                                                         + len(_dict(o.get("binaryData"))))), AGE),
    "Secret": (NAME, Column("TYPE", lambda o, now: str(o.get("type") or "Opaque")),
               Column("DATA", lambda o, now: str(len(_dict(o.get("data"))))), AGE),
    "ServiceAccount": (NAME, Column("SECRETS", lambda o, now: str(len(_list(o.get("secrets"))))), AGE),
    "Lease": (NAME, Column("HOLDER", lambda o, now: str(_get(o, "spec", "holderIdentity") or "")), AGE),
    "Event": (
        Column("LAST SEEN", lambda o, now: since(event_time(o), now)),
        Column("TYPE", lambda o, now: str(o.get("type") or "")),
        Column("REASON", lambda o, now: str(o.get("reason") or "")),
        Column("OBJECT", lambda o, now: event_object(o)),
        Column("MESSAGE", lambda o, now: str(o.get("message") or "").replace("\n", " ")),
    ),
}


def columns_for(kind: str, *, wide: bool = False) -> list[Column]:
    return [c for c in COLUMNS.get(kind, (NAME, AGE)) if wide or not c.wide]


def sort_key(kind: str) -> Callable[[Obj], Any]:
    """Events by when they last happened; everything else by namespace, then name."""
    if kind == "Event":
        return lambda o: (parse_time(event_time(o)) or 0.0, name_of(o))
    return lambda o: (meta(o).get("namespace") or "", name_of(o))
