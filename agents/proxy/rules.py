"""From Services and Endpoints to forwarding rules: pure, so every case is a table test.

A rule says: traffic for (protocol, listen address, port) goes to these backends. Each Service port
gets its cluster IP listener and, for NodePort/LoadBalancer Services, a node port listener on every
node address. With ``externalTrafficPolicy: Local`` (and the proxy's node name given), node ports and
LoadBalancer addresses get a rule of their own whose backends are only this node's endpoints and whose
traffic is not masqueraded (the client's address is kept), as in Kubernetes. Backends are the ready
addresses of the Endpoints subset whose port matches the Service port by name (or the only port when
there is one).
"""

from __future__ import annotations

from dataclasses import dataclass

from protocol.objects import Obj, name_of, namespace_of

DEFAULT_AFFINITY_TIMEOUT = 10800


@dataclass(frozen=True, slots=True)
class Backend:
    ip: str
    port: int


@dataclass(frozen=True, slots=True)
class Rule:
    service: str  # ns/name:port-name
    protocol: str  # TCP or UDP
    listen: tuple[tuple[str, int], ...]
    backends: tuple[Backend, ...]
    affinity_timeout: int | None  # seconds when sessionAffinity is ClientIP
    masquerade: bool = True  # False: keep the client's source address (externalTrafficPolicy: Local)


def _backends(endpoints: Obj | None, port: Obj, single_port: bool, node: str | None = None) -> tuple[Backend, ...]:
    if endpoints is None:
        return ()
    wanted_name = port.get("name")
    protocol = port.get("protocol", "TCP")
    found: list[Backend] = []
    for subset in endpoints.get("subsets") or []:
        ports = [p for p in subset.get("ports") or [] if p.get("protocol", "TCP") == protocol]
        match = next((p for p in ports if p.get("name") == wanted_name), None)
        if match is None and single_port and len(ports) == 1:
            match = ports[0]
        if match is None:
            continue
        for address in subset.get("addresses") or []:
            if address.get("ip") and (node is None or address.get("nodeName") == node):
                found.append(Backend(str(address["ip"]), int(match["port"])))
    return tuple(sorted(set(found), key=lambda b: (b.ip, b.port)))


def compute_rules(services: list[Obj], endpoints: dict[str, Obj], node_addresses: list[str],
                  node_name: str | None = None) -> list[Rule]:
    """``endpoints`` is keyed ``ns/name``; ``node_addresses`` are where node ports listen; ``node_name``
    (this proxy's node) enables ``externalTrafficPolicy: Local``."""
    rules: list[Rule] = []
    for service in services:
        spec = service.get("spec") or {}
        if spec.get("type") == "ExternalName":
            continue
        key = f"{namespace_of(service)}/{name_of(service)}"
        cluster_ip = spec.get("clusterIP")
        ports = spec.get("ports") or []
        affinity = None
        if spec.get("sessionAffinity") == "ClientIP":
            config = ((spec.get("sessionAffinityConfig") or {}).get("clientIP") or {})
            affinity = int(config.get("timeoutSeconds") or DEFAULT_AFFINITY_TIMEOUT)
        local = node_name is not None and spec.get("externalTrafficPolicy") == "Local"
        for port in ports:
            listen: list[tuple[str, int]] = []
            external: list[tuple[str, int]] = []
            if cluster_ip and cluster_ip != "None":
                listen.append((str(cluster_ip), int(port["port"])))
            if spec.get("type") in ("NodePort", "LoadBalancer") and port.get("nodePort"):
                external += [(address, int(port["nodePort"])) for address in node_addresses]
            if spec.get("type") == "LoadBalancer":
                ingress = ((service.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
                external += [(str(i["ip"]), int(port["port"])) for i in ingress if i.get("ip")]
            name = f"{key}:{port.get('name') or port['port']}"
            protocol = str(port.get("protocol", "TCP"))
            if not local:
                listen += external
                external = []
            if listen:
                rules.append(Rule(service=name, protocol=protocol, listen=tuple(listen),
                                  backends=_backends(endpoints.get(key), port, len(ports) == 1),
                                  affinity_timeout=affinity))
            if external:
                rules.append(Rule(service=f"{name}/local", protocol=protocol, listen=tuple(external),
                                  backends=_backends(endpoints.get(key), port, len(ports) == 1, node_name),
                                  affinity_timeout=affinity, masquerade=False))
    return rules
