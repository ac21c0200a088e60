"""Endpoints (v1): the ready and not-ready addresses behind a Service, written by the endpoints controller."""

from __future__ import annotations

from protocol.fielderrors import Errors
from protocol.kinds.strategy import AGE, NAME, NONE, Column, Field, KindInfo, Strategy, as_list, undescribed
from protocol.objects import Obj

INFO = KindInfo("Endpoints", "v1", "endpoints", "endpoints", ("ep",))


def _validate(e: Errors, obj: Obj) -> None:
    if obj.get("spec") is not None:
        e.check(obj.get("spec"), "spec", dict)
    for spath, subset in e.items(obj.get("subsets"), "subsets"):
        for field in ("addresses", "notReadyAddresses"):
            for apath, addr in e.items(subset.get(field), f"{spath}.{field}"):
                e.check(addr.get("ip"), f"{apath}.ip", str, required=True)
        for ppath, port in e.items(subset.get("ports"), f"{spath}.ports"):
            e.integer(port, "port", f"{ppath}.port", 1, 65535, required=True)


def endpoints_summary(ep: Obj, limit: int = 3) -> str:
    found: list[str] = []
    for subset in as_list(ep.get("subsets")):
        ports = as_list(subset.get("ports"))
        for addr in as_list(subset.get("addresses")):
            if ports:
                found += [f"{addr.get('ip')}:{p.get('port')}" for p in ports]
            else:
                found.append(str(addr.get("ip")))
    if not found:
        return NONE
    more = f" + {len(found) - limit} more..." if len(found) > limit else ""
    return ",".join(found[:limit]) + more


_ADDRESS = Field("", "object", fields=(Field("ip", "string", required=True), Field("nodeName", "string"),
                                       Field("targetRef", "object"), *undescribed("hostname:string")))
STRATEGY = Strategy(
    INFO, description="The addresses that implement a Service.",
    schema=(Field("subsets", "array", "Groups of addresses sharing ports.", items=Field("", "object", fields=(
        Field("addresses", "array", "Ready addresses.", items=_ADDRESS),
        Field("notReadyAddresses", "array", "Addresses not ready yet.", items=_ADDRESS),
        Field("ports", "array", items=Field("", "object", fields=(
            Field("name", "string"), Field("port", "integer", required=True), Field("protocol", "string"),
            *undescribed("appProtocol:string"))))))),),
    columns=(NAME, Column("ENDPOINTS", lambda o, now: endpoints_summary(o), description="Up to 3 ip:port."), AGE),
    validate=_validate,
)
