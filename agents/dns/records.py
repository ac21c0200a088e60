"""The ``cluster.local`` zone as a pure function: (name, type) and the cluster's Services and Endpoints
in, records out. No wire format here (``server`` does that with dnspython), no I/O.

Names answered (Kubernetes' DNS specification for Services and Pods):
- ``<svc>.<ns>.svc.<domain>`` A: the cluster IP; for a headless Service one A per ready endpoint address;
  an ExternalName Service is a CNAME to its external name;
- ``<host>.<svc>.<ns>.svc.<domain>`` A for a headless Service's endpoint, ``<host>`` its ``hostname`` or its
  dashed address;
- ``_<port>._<proto>.<svc>.<ns>.svc.<domain>`` SRV for each named port: the Service name (cluster IP
  Services) or one target per ready endpoint (headless);
- ``<a-b-c-d>.<ns>.pod.<domain>`` A: a.b.c.d (CoreDNS' ``pods insecure``: no check that the pod exists).

A name under the domain that matches none of these is NXDOMAIN; a name that exists with no record of the
asked type is NODATA (NOERROR, empty answer). Names outside the domain return None: forward them.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass, field

from protocol.objects import Obj

TTL = 5
Lookup = Callable[[str], Obj | None]
"""``"ns/name"`` -> the object, or None."""


@dataclass(frozen=True, slots=True)
class Record:
    name: str  # absolute, with the trailing dot
    rtype: str  # A, SRV, CNAME
    data: str  # the record's text form (dnspython parses it)
    ttl: int = TTL


@dataclass(frozen=True, slots=True)
class Result:
    rcode: str  # NOERROR or NXDOMAIN
    records: tuple[Record, ...] = field(default=())


NXDOMAIN = Result("NXDOMAIN")


def _ready_addresses(endpoints: Obj | None) -> list[Obj]:
    found: dict[str, Obj] = {}
    for subset in (endpoints or {}).get("subsets") or []:
        for address in subset.get("addresses") or []:
            if address.get("ip"):
                found.setdefault(str(address["ip"]), address)
    return [found[ip] for ip in sorted(found, key=lambda a: ipaddress.ip_address(a))]


def _endpoint_ports(endpoints: Obj | None) -> list[Obj]:
    return [p for subset in (endpoints or {}).get("subsets") or [] for p in subset.get("ports") or []]


def _host_label(address: Obj) -> str:
    return str(address.get("hostname") or str(address["ip"]).replace(".", "-"))


def _is_headless(service: Obj) -> bool:
    return (service.get("spec") or {}).get("clusterIP") in ("None", None, "")


def _service_records(fqdn: str, qtype: str, service: Obj, endpoints: Obj | None) -> Result:
    spec = service.get("spec") or {}
    if spec.get("type") == "ExternalName" and spec.get("externalName"):
        target = str(spec["externalName"]).rstrip(".") + "."
        return Result("NOERROR", (Record(fqdn, "CNAME", target),))  # a CNAME answers every type
    if qtype not in ("A", "ANY"):
        return Result("NOERROR")
    if _is_headless(service):
        return Result("NOERROR", tuple(Record(fqdn, "A", str(a["ip"])) for a in _ready_addresses(endpoints)))
    return Result("NOERROR", (Record(fqdn, "A", str(spec["clusterIP"])),))


def _srv_records(fqdn: str, port_name: str, proto: str, svc_fqdn: str, service: Obj,
                 endpoints: Obj | None) -> Result | None:
    ports = [p for p in (service.get("spec") or {}).get("ports") or []
             if p.get("name") == port_name and str(p.get("protocol", "TCP")).lower() == proto]
    if not ports:
        return None
    if not _is_headless(service):
        return Result("NOERROR", (Record(fqdn, "SRV", f"0 100 {int(ports[0]['port'])} {svc_fqdn}"),))
    ep_port = next((int(p["port"]) for p in _endpoint_ports(endpoints) if p.get("name") == port_name), None)
    if ep_port is None:
        return Result("NOERROR")
    return Result("NOERROR", tuple(Record(fqdn, "SRV", f"0 100 {ep_port} {_host_label(a)}.{svc_fqdn}")
                                   for a in _ready_addresses(endpoints)))


def resolve(qname: str, qtype: str, *, domain: str, services: Lookup, endpoints: Lookup) -> Result | None:
    """Answer ``qname`` (any case, with or without the trailing dot); None: not in ``domain``."""
    name = qname.lower().rstrip(".")
    suffix = "." + domain.lower().strip(".")
    if not (name + ".").endswith(suffix + ".") and name != suffix[1:]:
        return None
    labels = name[: -len(suffix)].split(".") if name != suffix[1:] else []
    fqdn = name + "."
    if len(labels) >= 3 and labels[-1] == "svc":
        ns, svc_name, rest = labels[-2], labels[-3], labels[:-3]
        service = services(f"{ns}/{svc_name}")
        if service is None:
            return NXDOMAIN
        svc_fqdn = ".".join([svc_name, ns, "svc", domain.strip(".")]) + "."
        eps = endpoints(f"{ns}/{svc_name}")
        if not rest:
            return _service_records(fqdn, qtype, service, eps)
        if len(rest) == 2 and rest[0].startswith("_") and rest[1] in ("_tcp", "_udp"):
            found = _srv_records(fqdn, rest[0][1:], rest[1][1:], svc_fqdn, service, eps)
            if found is None:
                return NXDOMAIN
            return found if qtype in ("SRV", "ANY") else Result("NOERROR")
        if len(rest) == 1 and _is_headless(service):
            hits = [a for a in _ready_addresses(eps) if _host_label(a) == rest[0]]
            if not hits:
                return NXDOMAIN
            records = tuple(Record(fqdn, "A", str(a["ip"])) for a in hits)
            return Result("NOERROR", records if qtype in ("A", "ANY") else ())
        return NXDOMAIN
    if len(labels) == 3 and labels[-1] == "pod":
        try:
            ip = ipaddress.IPv4Address(labels[0].replace("-", "."))
        except ValueError:
            return NXDOMAIN
        return Result("NOERROR", (Record(fqdn, "A", str(ip)),) if qtype in ("A", "ANY") else ())
    return NXDOMAIN
