"""Node (v1): a machine with a kubelet; registered by the kubelet with its status."""

from __future__ import annotations

from collections.abc import Callable

from protocol.fielderrors import Errors
from protocol.kinds.strategy import (
    AGE,
    NAME,
    NONE,
    Column,
    Field,
    KindInfo,
    Strategy,
    as_dict,
    as_list,
    get_path,
    undescribed,
)
from protocol.objects import Obj, condition, meta

INFO = KindInfo("Node", "v1", "nodes", "node", ("no",), namespaced=False, subresources=frozenset({"status"}))
EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")


def _default(obj: Obj) -> None:
    obj.setdefault("spec", {})


def _create_status(obj: Obj) -> None:
    obj.setdefault("status", {})  # kubelets register with their status


def _validate(e: Errors, obj: Obj) -> None:
    spec = obj.get("spec")
    if spec is None or not e.check(spec, "spec", dict):
        return
    e.check(spec.get("unschedulable"), "spec.unschedulable", bool)
    for tpath, t in e.items(spec.get("taints"), "spec.taints"):
        e.check(t.get("key"), f"{tpath}.key", str, required=True)
        e.check(t.get("value"), f"{tpath}.value", str)
        if t.get("effect") is None:
            e.add(f"{tpath}.effect", "Required value")
        e.enum(t, "effect", f"{tpath}.effect", EFFECTS)


def node_status(node: Obj) -> str:
    ready = condition(node, "Ready")
    text = "Ready" if ready and ready.get("status") == "True" else ("NotReady" if ready else "Unknown")
    if get_path(node, "spec", "unschedulable"):
        text += ",SchedulingDisabled"
    return text


def node_roles(node: Obj) -> str:
    roles = sorted(key.split("/", 1)[1] for key in as_dict(meta(node).get("labels"))
                   if key.startswith("node-role.kubernetes.io/") and "/" in key)
    return ",".join(r for r in roles if r) or NONE


def _address(node: Obj, kind: str) -> str:
    for addr in as_list(get_path(node, "status", "addresses")):
        if addr.get("type") == kind:
            return str(addr.get("address"))
    return NONE


def _node_info(field: str) -> Callable[[Obj, float], str]:
    return lambda o, now: str(get_path(o, "status", "nodeInfo", field) or "<unknown>")


COLUMNS = (
    NAME,
    Column("STATUS", lambda o, now: node_status(o), description="Ready, NotReady or Unknown; SchedulingDisabled."),
    Column("ROLES", lambda o, now: node_roles(o), description="From node-role.kubernetes.io/* labels."),
    AGE,
    Column("VERSION", lambda o, now: str(get_path(o, "status", "nodeInfo", "kubeletVersion") or ""),
           description="The kubelet's version."),
    Column("INTERNAL-IP", lambda o, now: _address(o, "InternalIP"), priority=1),
    Column("EXTERNAL-IP", lambda o, now: _address(o, "ExternalIP"), priority=1),
    Column("OS-IMAGE", _node_info("osImage"), priority=1),
    Column("KERNEL-VERSION", _node_info("kernelVersion"), priority=1),
    Column("CONTAINER-RUNTIME", _node_info("containerRuntimeVersion"), priority=1),
)

SCHEMA = (
    Field("spec", "object", "Scheduling properties of the node.", fields=(
        Field("unschedulable", "boolean", "No new pods are placed on it (cordoned)."),
        Field("taints", "array", "Repel pods that do not tolerate them.", items=Field("", "object", fields=(
            Field("key", "string", required=True), Field("value", "string"),
            Field("effect", "string", required=True, enum=EFFECTS), Field("timeAdded", "string")))),
        Field("podCIDR", "string", "The pod addresses of this node."),
        *undescribed("configSource", "externalID:string", "podCIDRs:array", "providerID:string"),
    )),
    Field("status", "object", "What the kubelet last reported.", fields=(
        Field("conditions", "array", items=Field("", "object")),
        Field("addresses", "array", items=Field("", "object")),
        Field("capacity", "object", values=Field("", "string")),
        Field("allocatable", "object", values=Field("", "string")),
        Field("nodeInfo", "object"))),
)

STRATEGY = Strategy(INFO, description="A machine that runs pods.", schema=SCHEMA, columns=COLUMNS,
                    default=_default, create_status=_create_status, validate=_validate)
