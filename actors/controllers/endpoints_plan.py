"""Pure decisions of the endpoints controller: the Endpoints a Service with a selector should have.

Address choice (how a proxy on any node reaches the pod):
- the service port's ``targetPort`` is resolved against the pod's container ports: an integer is the
  port itself, a name is looked up among the containers' named ports (a pod without that name is left
  out of that port, as in Kubernetes);
- the address is ``status.podIP`` and the port the resolved target port, as in Kubernetes (pod addresses on
  the node bridge networks are routed between nodes); only a pod whose address is not reachable from other
  nodes (none yet, or a node loopback address of the loopback pod network) is reached on its node's address
  ``status.hostIP`` and ``hostPort`` when the container port it lands on has one (a proxy DNAT'ing to a
  hostPort on its own node would meet no second DNAT to the pod); a host-network pod
  (``spec.hostNetwork``) uses ``status.hostIP`` when it has no podIP. (Falling back to hostIP for other
  pods would point at a node port nothing publishes.)
- an address carries the pod's ``spec.hostname`` when the pod's ``spec.subdomain`` is the Service's name
  (a StatefulSet's pods and their headless Service): DNS names ``web-0.web.<ns>.svc`` come from it.
A pod without an address yet is left out. Ready pods go to ``addresses``, others (and all, when the
Service sets ``publishNotReadyAddresses``) to ``notReadyAddresses``; pods that are finished or being
deleted leave at once. Addresses with the same resolved ports share a subset; everything is sorted so
equal inputs give equal objects and the controller writes only on change.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any

from protocol.objects import (
    Obj,
    is_deleting,
    labels_of,
    meta,
    name_of,
    namespace_of,
    pod_is_ready,
    pod_is_terminal,
    uid_of,
)
from protocol.selectors import from_match_labels

PortKey = tuple[str, int, str]
"""(name, port, protocol) of one Endpoints port."""


@dataclass(frozen=True, slots=True)
class CreateEndpoints:
    endpoints: Obj


@dataclass(frozen=True, slots=True)
class UpdateEndpoints:
    endpoints: Obj


Action = CreateEndpoints | UpdateEndpoints


def manages(service: Obj) -> bool:
    """Endpoints of services without a selector (and ExternalName services) belong to their users."""
    spec = service.get("spec") or {}
    return bool(spec.get("selector")) and spec.get("type") != "ExternalName"


def selects(service: Obj, pod: Obj) -> bool:
    return (namespace_of(pod) == namespace_of(service)
            and from_match_labels((service.get("spec") or {}).get("selector")).matches(labels_of(pod)))


def _container_port(pod: Obj, target: Any, protocol: str) -> Obj | None:
    for container in (pod.get("spec") or {}).get("containers") or []:
        for port in container.get("ports") or []:
            if (port.get("protocol") or "TCP") != protocol:
                continue
            if isinstance(target, str) and port.get("name") == target:
                return port  # type: ignore[no-any-return]
            if isinstance(target, int) and port.get("containerPort") == target:
                return port  # type: ignore[no-any-return]
    return None


def _routable(ip: Any) -> bool:
    try:
        return bool(ip) and not ipaddress.ip_address(str(ip)).is_loopback
    except ValueError:
        return False


def resolve(pod: Obj, service_port: Obj) -> tuple[str, int] | None:
    """(ip, port) where ``service_port`` reaches ``pod``, or None when it cannot."""
    protocol = str(service_port.get("protocol") or "TCP")
    target = service_port.get("targetPort", service_port.get("port"))
    if isinstance(target, str) and target.isdigit():
        target = int(target)
    status = pod.get("status") or {}
    container_port = _container_port(pod, target, protocol)
    if container_port is not None and container_port.get("hostPort") and not _routable(status.get("podIP")):
        host_ip = status.get("hostIP")
        return (str(host_ip), int(container_port["hostPort"])) if host_ip else None
    if isinstance(target, str):
        if container_port is None:
            return None
        target = int(container_port["containerPort"])
    ip = status.get("podIP") or (status.get("hostIP") if (pod.get("spec") or {}).get("hostNetwork") else None)
    return (str(ip), int(target)) if ip and isinstance(target, int) else None


def serves(pod: Obj) -> bool:
    return not pod_is_terminal(pod) and not is_deleting(pod)


def address_of(service: Obj, pod: Obj, ip: str) -> Obj:
    """The address of ``pod``; with the pod's ``hostname`` when its ``subdomain`` names this Service (as
    Kubernetes' endpoints controller: cluster DNS then serves ``<hostname>.<service>.<ns>.svc``, the stable
    name of a StatefulSet's pod)."""
    target = {"kind": "Pod", "name": name_of(pod), "namespace": namespace_of(pod), "uid": uid_of(pod)}
    address: Obj = {"ip": ip, "targetRef": target}
    spec = pod.get("spec") or {}
    if spec.get("hostname") and spec.get("subdomain") == name_of(service) \
            and namespace_of(pod) == namespace_of(service):
        address["hostname"] = spec["hostname"]
    node = spec.get("nodeName")
    if node:
        address["nodeName"] = node
    return address


def subsets_for(service: Obj, pods: list[Obj]) -> list[Obj]:
    """The Endpoints subsets for the service's selected pods."""
    spec = service.get("spec") or {}
    publish_all = bool(spec.get("publishNotReadyAddresses"))
    groups: dict[tuple[PortKey, ...], tuple[list[Obj], list[Obj]]] = {}
    for pod in pods:
        if not serves(pod) or not selects(service, pod):
            continue
        by_ip: dict[str, list[PortKey]] = {}
        for sp in spec.get("ports") or []:
            found = resolve(pod, sp)
            if found is not None:
                ip, port = found
                key = (str(sp.get("name") or ""), port, str(sp.get("protocol") or "TCP"))
                by_ip.setdefault(ip, []).append(key)
        ready = publish_all or pod_is_ready(pod)
        for ip, ports in by_ip.items():
            ready_list, not_ready_list = groups.setdefault(tuple(sorted(ports)), ([], []))
            (ready_list if ready else not_ready_list).append(address_of(service, pod, ip))
    subsets = []
    for port_keys, (ready_list, not_ready_list) in sorted(groups.items()):
        subset: Obj = {}
        if ready_list:
            subset["addresses"] = sorted(ready_list, key=_address_order)
        if not_ready_list:
            subset["notReadyAddresses"] = sorted(not_ready_list, key=_address_order)
        subset["ports"] = [{**({"name": n} if n else {}), "port": p, "protocol": proto}
                           for n, p, proto in port_keys]
        subsets.append(subset)
    return subsets


def _address_order(address: Obj) -> tuple[str, str]:
    return str(address.get("ip")), str((address.get("targetRef") or {}).get("name"))


def desired_endpoints(service: Obj, pods: list[Obj]) -> Obj:
    m: Obj = {"name": name_of(service), "namespace": namespace_of(service)}
    labels = labels_of(service)
    if labels:
        m["labels"] = dict(labels)
    return {"apiVersion": "v1", "kind": "Endpoints", "metadata": m, "subsets": subsets_for(service, pods)}


def plan(service: Obj, pods: list[Obj], current: Obj | None) -> Action | None:
    """Create or update the service's Endpoints; None when they are right or not ours to manage."""
    if not manages(service):
        return None
    desired = desired_endpoints(service, pods)
    if current is None:
        return CreateEndpoints(desired)
    if (current.get("subsets") or []) == desired["subsets"] and labels_of(current) == labels_of(desired):
        return None
    updated = {**current, "subsets": desired["subsets"]}
    updated["metadata"] = {**meta(current), "labels": dict(labels_of(desired))}
    if not labels_of(desired):
        updated["metadata"].pop("labels", None)
    return UpdateEndpoints(updated)


def pod_signature(pod: Obj | None) -> Any:
    """What of a pod the Endpoints depend on: a change elsewhere (most status updates) is ignored."""
    if pod is None:
        return None
    spec, status = pod.get("spec") or {}, pod.get("status") or {}
    ports = [(c.get("ports") or []) for c in spec.get("containers") or []]
    return (labels_of(pod), status.get("podIP"), status.get("hostIP"), pod_is_ready(pod), serves(pod),
            spec.get("nodeName"), ports, uid_of(pod), spec.get("hostname"), spec.get("subdomain"))
