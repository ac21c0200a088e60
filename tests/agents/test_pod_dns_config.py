"""A pod's resolv.conf per dnsPolicy and dnsConfig, table-tested, and its way from the pod spec."""

from __future__ import annotations

import pytest

from agents.kubelet.dns import HostResolv, Resolv, parse_resolv_conf, pod_resolv
from agents.kubelet.podspec import sandbox_config

HOST = HostResolv(("192.0.2.53",), ("corp.example",), ("edns0",))
CLUSTER = Resolv(("198.18.4.1",), ("prod.svc.cluster.local", "svc.cluster.local", "cluster.local"), ("ndots:5",))


@pytest.mark.parametrize(("policy", "dns", "extra", "expected"), [
    ("ClusterFirst", "198.18.4.1", {}, CLUSTER),
    ("", "198.18.4.1", {}, CLUSTER),  # the default policy
    ("ClusterFirstWithHostNet", "198.18.4.1", {}, CLUSTER),
    ("ClusterFirst", None, {}, None),  # no cluster DNS: the node's, as Default
    ("Default", "198.18.4.1", {}, None),
    ("Default", "198.18.4.1", {"searches": ["x.example"]},
     Resolv(("192.0.2.53",), ("corp.example", "x.example"), ("edns0",))),
    ("None", "198.18.4.1", {"nameservers": ["192.0.2.1"], "searches": ["a.example"], "options": ["ndots:2"]},
     Resolv(("192.0.2.1",), ("a.example",), ("ndots:2",))),
    ("ClusterFirst", "198.18.4.1", {"nameservers": ["198.18.4.1", "192.0.2.1"], "options": ["ndots:2", "edns0"]},
     Resolv(("198.18.4.1", "192.0.2.1"), CLUSTER.searches, ("ndots:2", "edns0"))),
])
def test_pod_resolv(policy: str, dns: str | None, extra: dict, expected: Resolv | None) -> None:
    assert pod_resolv(policy, "prod", cluster_dns=dns, host=HOST, **extra) == expected


def test_parse_resolv_conf() -> None:
    text = ("# generated\nnameserver 192.0.2.53\nsearch a.example b.example\noptions ndots:2 edns0 # x\n"
            "nameserver 192.0.2.54")
    assert parse_resolv_conf(text) == HostResolv(("192.0.2.53", "192.0.2.54"), ("a.example", "b.example"),
                                                 ("ndots:2", "edns0"))


def test_sandbox_config_carries_policy_and_dns_config() -> None:
    pod = {"metadata": {"name": "p", "namespace": "prod", "uid": "u"},
           "spec": {"dnsPolicy": "None", "containers": [],
                    "dnsConfig": {"nameservers": ["192.0.2.1"], "searches": ["s.example"],
                                  "options": [{"name": "ndots", "value": "1"}, {"name": "edns0"}]}}}
    config = sandbox_config(pod, "n1", "127.0.0.1")
    assert (config.dns_policy, config.dns_nameservers, config.dns_searches, config.dns_options) == \
        ("None", ("192.0.2.1",), ("s.example",), ("ndots:1", "edns0"))
    assert sandbox_config({"metadata": {"name": "q"}, "spec": {}}, "n1", "127.0.0.1").dns_policy == "ClusterFirst"
