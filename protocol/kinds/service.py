"""Service (v1): a stable address for a set of pods. Its clusterIP and node ports are allocated API-side
(``actors/api/kindhooks.py``); here: defaults, validation, keeping allocated addresses on update, columns."""

from __future__ import annotations

from typing import Any

from protocol.fielderrors import IANA_SVC_NAME, Errors
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
    string_map,
    undescribed,
)
from protocol.kinds.workload import match_labels_selector, selector_column
from protocol.objects import Obj

INFO = KindInfo("Service", "v1", "services", "service", ("svc",), subresources=frozenset({"status"}),
                categories=("all",))
TYPES = ("ClusterIP", "NodePort", "LoadBalancer", "ExternalName")


def _default(obj: Obj) -> None:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return
    spec.setdefault("type", "ClusterIP")
    spec.setdefault("sessionAffinity", "None")
    for port in spec.get("ports") or []:
        if isinstance(port, dict):
            port.setdefault("protocol", "TCP")
            port.setdefault("targetPort", port.get("port"))


def _validate(e: Errors, obj: Obj) -> None:
    spec: Any = obj.get("spec")
    if not e.check(spec, "spec", dict, required=True):
        return
    e.enum(spec, "type", "spec.type", TYPES)
    e.string_map(spec.get("selector"), "spec.selector")
    e.enum(spec, "sessionAffinity", "spec.sessionAffinity", ("None", "ClientIP"))
    e.check(spec.get("clusterIP"), "spec.clusterIP", str)
    for ppath, port in e.items(spec.get("ports"), "spec.ports"):
        e.integer(port, "port", f"{ppath}.port", 1, 65535, required=True)
        e.integer(port, "nodePort", f"{ppath}.nodePort", 0, 65535)
        e.enum(port, "protocol", f"{ppath}.protocol", ("TCP", "UDP", "SCTP"))
        tp = port.get("targetPort")
        if e.check(tp, f"{ppath}.targetPort", (int, str)) and isinstance(tp, int) and not 0 < tp < 65536:
            e.add(f"{ppath}.targetPort", "must be between 1 and 65535, inclusive")
        name = port.get("name")
        if e.check(name, f"{ppath}.name", str) and not IANA_SVC_NAME.match(name):
            e.add(f"{ppath}.name", "must be a DNS label")


def keep_addresses(current: Obj, merged: Obj) -> None:
    """clusterIP and node ports are allocated once: an update that omits them keeps them."""
    old, new = current.get("spec") or {}, merged.get("spec") or {}
    for field in ("clusterIP", "clusterIPs"):
        if field in old and not new.get(field):
            new[field] = old[field]
    old_ports = {(p.get("name"), p.get("port")): p for p in old.get("ports") or []}
    for port in new.get("ports") or []:
        previous = old_ports.get((port.get("name"), port.get("port")))
        if previous and previous.get("nodePort") and not port.get("nodePort"):
            port["nodePort"] = previous["nodePort"]
        if previous and "targetPort" not in port and "targetPort" in previous:
            port["targetPort"] = previous["targetPort"]
        port.setdefault("protocol", "TCP")


def service_ports(svc: Obj) -> str:
    parts = []
    for port in as_list(get_path(svc, "spec", "ports")):
        node_port = f":{port['nodePort']}" if port.get("nodePort") else ""
        parts.append(f"{port.get('port')}{node_port}/{port.get('protocol') or 'TCP'}")
    return ",".join(parts) or NONE


def service_external_ip(svc: Obj) -> str:
    spec = as_dict(svc.get("spec"))
    if spec.get("type") == "ExternalName":
        return str(spec.get("externalName") or NONE)
    ips = [str(ip) for ip in as_list(spec.get("externalIPs"))]
    if spec.get("type") == "LoadBalancer":
        ingress = as_list(get_path(svc, "status", "loadBalancer", "ingress"))
        ips += [str(i.get("ip") or i.get("hostname")) for i in ingress]
        if not ips:
            return "<pending>"
    return ",".join(ips) or NONE


COLUMNS = (
    NAME,
    Column("TYPE", lambda o, now: str(get_path(o, "spec", "type") or "ClusterIP"), description="The service type."),
    Column("CLUSTER-IP", lambda o, now: str(get_path(o, "spec", "clusterIP") or NONE),
           description="The virtual IP inside the cluster."),
    Column("EXTERNAL-IP", lambda o, now: service_external_ip(o), description="Addresses reachable from outside."),
    Column("PORT(S)", lambda o, now: service_ports(o), description="port[:nodePort]/protocol."),
    AGE, selector_column(match_labels_selector),
)

SCHEMA = (
    Field("spec", "object", "How the service is reached and which pods serve it.", required=True, fields=(
        Field("type", "string", "How the service is exposed (default ClusterIP).", enum=TYPES),
        string_map("selector", "Labels of the pods that serve it."),
        Field("clusterIP", "string", "The virtual IP (allocated when absent)."),
        Field("sessionAffinity", "string", "", enum=("None", "ClientIP")),
        Field("externalName", "string", "The DNS name an ExternalName service aliases."),
        Field("externalIPs", "array", items=Field("", "string")),
        Field("ports", "array", "The ports it exposes.", items=Field("", "object", fields=(
            Field("name", "string", "A DNS label; required when there are several ports."),
            Field("port", "integer", "The service's port.", required=True),
            Field("targetPort", "integer", "The pods' port, a number or a name (default: port)."),
            Field("nodePort", "integer", "The port on every node (NodePort, LoadBalancer)."),
            Field("protocol", "string", enum=("TCP", "UDP", "SCTP")), *undescribed("appProtocol:string")))),
        *undescribed("allocateLoadBalancerNodePorts:boolean", "clusterIPs:array", "externalTrafficPolicy:string",
                     "healthCheckNodePort:integer", "internalTrafficPolicy:string", "ipFamilies:array",
                     "ipFamilyPolicy:string", "loadBalancerClass:string", "loadBalancerIP:string",
                     "loadBalancerSourceRanges:array", "publishNotReadyAddresses:boolean", "sessionAffinityConfig",
                     "trafficDistribution:string"),
    )),
    Field("status", "object", "", fields=(
        Field("loadBalancer", "object", "The load balancer's ingress points."),)),
)

STRATEGY = Strategy(
    INFO, description="A stable virtual IP and ports in front of the pods a selector picks.", schema=SCHEMA,
    columns=COLUMNS, name_rule="label", default=_default, validate=_validate, prepare_update=keep_addresses,
    pod_selector=match_labels_selector,
)
