"""The cluster.local zone, table-tested: Services, headless Services, SRV, pods, NXDOMAIN, NODATA."""

from __future__ import annotations

import pytest

from agents.dns.agent import allowed_upstreams, resolv_conf_nameservers
from agents.dns.records import NXDOMAIN, Record, Result, resolve

SERVICES = {
    "prod/web": {"spec": {"clusterIP": "198.19.0.10", "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}},
    "prod/db": {"spec": {"clusterIP": "None", "ports": [{"name": "pg", "port": 5432}]}},
    "prod/ext": {"spec": {"type": "ExternalName", "externalName": "example.org"}},
}
ENDPOINTS = {
    "prod/db": {"subsets": [{"addresses": [{"ip": "198.18.1.9"}, {"ip": "198.18.1.10", "hostname": "db-0"}],
                             "notReadyAddresses": [{"ip": "198.18.1.11"}],
                             "ports": [{"name": "pg", "port": 5433}]}]},
}


def ask(name: str, qtype: str = "A") -> Result | None:
    return resolve(name, qtype, domain="cluster.local", services=SERVICES.get, endpoints=ENDPOINTS.get)


def a(name: str, *ips: str) -> Result:
    return Result("NOERROR", tuple(Record(name, "A", ip) for ip in ips))


@pytest.mark.parametrize(("name", "qtype", "expected"), [
    ("web.prod.svc.cluster.local.", "A", a("web.prod.svc.cluster.local.", "198.19.0.10")),
    ("WEB.Prod.svc.cluster.local", "A", a("web.prod.svc.cluster.local.", "198.19.0.10")),  # any case
    ("web.prod.svc.cluster.local.", "AAAA", Result("NOERROR")),  # NODATA
    ("db.prod.svc.cluster.local.", "A", a("db.prod.svc.cluster.local.", "198.18.1.9", "198.18.1.10")),  # ready only
    ("db-0.db.prod.svc.cluster.local.", "A", a("db-0.db.prod.svc.cluster.local.", "198.18.1.10")),
    ("198-18-1-9.db.prod.svc.cluster.local.", "A", a("198-18-1-9.db.prod.svc.cluster.local.", "198.18.1.9")),
    ("198-18-1-11.db.prod.svc.cluster.local.", "A", NXDOMAIN),  # not ready
    ("_http._tcp.web.prod.svc.cluster.local.", "SRV", Result("NOERROR", (Record(
        "_http._tcp.web.prod.svc.cluster.local.", "SRV", "0 100 80 web.prod.svc.cluster.local."),))),
    ("_pg._tcp.db.prod.svc.cluster.local.", "SRV", Result("NOERROR", (
        Record("_pg._tcp.db.prod.svc.cluster.local.", "SRV", "0 100 5433 198-18-1-9.db.prod.svc.cluster.local."),
        Record("_pg._tcp.db.prod.svc.cluster.local.", "SRV", "0 100 5433 db-0.db.prod.svc.cluster.local.")))),
    ("_http._udp.web.prod.svc.cluster.local.", "SRV", NXDOMAIN),
    ("_nope._tcp.web.prod.svc.cluster.local.", "SRV", NXDOMAIN),
    ("ext.prod.svc.cluster.local.", "A", Result("NOERROR", (Record("ext.prod.svc.cluster.local.", "CNAME",
                                                                     "example.org."),))),
    ("198-18-3-4.prod.pod.cluster.local.", "A", a("198-18-3-4.prod.pod.cluster.local.", "198.18.3.4")),
    ("nonsense.prod.pod.cluster.local.", "A", NXDOMAIN),
    ("missing.prod.svc.cluster.local.", "A", NXDOMAIN),
    ("web.other.svc.cluster.local.", "A", NXDOMAIN),
    ("something.cluster.local.", "A", NXDOMAIN),
    ("cluster.local.", "A", NXDOMAIN),
    ("example.org.", "A", None),  # not ours: forwarded
    ("notcluster.local.", "A", None),
])
def test_resolve(name: str, qtype: str, expected: Result | None) -> None:
    assert ask(name, qtype) == expected


def test_upstreams_from_resolv_conf_skip_forbidden_and_own() -> None:
    text = ("# comment\nnameserver 10.255.255.53\nnameserver 192.0.2.53\nnameserver bogus\nsearch x\n"
            "nameserver 127.0.0.1\n")
    found = resolv_conf_nameservers(text)
    assert found == ["10.255.255.53", "192.0.2.53", "127.0.0.1"]
    assert allowed_upstreams(found, ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"], ["127.0.0.1"]) == \
        ["192.0.2.53"]
