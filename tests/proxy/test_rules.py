"""Pure tables: rules from Services and Endpoints, and backend choice."""

from __future__ import annotations

from typing import Any

from agents.proxy.balancer import Balancer
from agents.proxy.rules import Backend, compute_rules


def service(name: str, ports: list[dict], type_: str = "ClusterIP", ip: str = "127.77.0.1", **spec: object) -> dict:
    return {"kind": "Service", "metadata": {"name": name, "namespace": "default"},
            "spec": {"type": type_, "clusterIP": ip, "ports": ports, **spec}}


def endpoints(name: str, subsets: list[dict]) -> dict:
    return {"kind": "Endpoints", "metadata": {"name": name, "namespace": "default"}, "subsets": subsets}


def test_single_port_cluster_ip_with_ready_backends_only() -> None:
    svc = service("web", [{"port": 80, "targetPort": 8080, "protocol": "TCP"}])
    ep = endpoints("web", [{"addresses": [{"ip": "127.88.0.2"}, {"ip": "127.88.0.1"}],
                            "notReadyAddresses": [{"ip": "127.88.0.3"}],
                            "ports": [{"port": 8080, "protocol": "TCP"}]}])
    [rule] = compute_rules([svc], {"default/web": ep}, ["0.0.0.0"])
    assert rule.listen == (("127.77.0.1", 80),)
    assert rule.backends == (Backend("127.88.0.1", 8080), Backend("127.88.0.2", 8080))
    assert rule.affinity_timeout is None


def test_named_ports_node_ports_udp_and_affinity() -> None:
    svc = service("dns", [{"name": "dns", "port": 53, "protocol": "UDP", "nodePort": 30053},
                          {"name": "metrics", "port": 9100, "protocol": "TCP", "nodePort": 30100}],
                  type_="NodePort", sessionAffinity="ClientIP",
                  sessionAffinityConfig={"clientIP": {"timeoutSeconds": 60}})
    ep = endpoints("dns", [{"addresses": [{"ip": "127.0.0.1"}],
                            "ports": [{"name": "metrics", "port": 19100, "protocol": "TCP"},
                                      {"name": "dns", "port": 1053, "protocol": "UDP"}]}])
    rules = {r.service: r for r in compute_rules([svc], {"default/dns": ep}, ["127.0.0.1", "192.0.2.1"])}
    dns = rules["default/dns:dns"]
    assert dns.protocol == "UDP" and dns.backends == (Backend("127.0.0.1", 1053),)
    assert dns.listen == (("127.77.0.1", 53), ("127.0.0.1", 30053), ("192.0.2.1", 30053))
    assert rules["default/dns:metrics"].backends == (Backend("127.0.0.1", 19100),)
    assert dns.affinity_timeout == 60


def test_headless_external_and_missing_endpoints() -> None:
    rules = compute_rules([service("h", [{"port": 80}], ip="None"),
                           service("x", [{"port": 80}], type_="ExternalName"),
                           service("lonely", [{"port": 81}])], {}, ["0.0.0.0"])
    assert [(r.service, r.backends) for r in rules] == [("default/lonely:81", ())]


def test_round_robin_and_client_ip_affinity() -> None:
    a, b, c = Backend("127.0.0.1", 1), Backend("127.0.0.1", 2), Backend("127.0.0.1", 3)
    rr = Balancer((a, b, c))
    assert [rr.pick("x") for _ in range(6)] == [a, b, c, a, b, c]
    assert rr.pick("x", exclude=frozenset({a, b, c})) is None
    now = [0.0]
    sticky = Balancer((a, b, c), 10, clock=lambda: now[0])
    first = sticky.pick("10.0.0.1")
    assert all(sticky.pick("10.0.0.1") == first for _ in range(5))
    assert sticky.pick("10.0.0.2") != first
    now[0] = 100.0
    sticky.update((a, b, c), 10)
    assert sticky.pick("10.0.0.1") is not None
    sticky.update((b,), 10)  # the sticky backend went away: the client moves
    assert sticky.pick("10.0.0.1") == b


def test_external_traffic_policy_local_splits_node_ports_to_local_endpoints() -> None:
    svc: dict[str, Any] = {"metadata": {"name": "web", "namespace": "prod"},
           "spec": {"type": "NodePort", "clusterIP": "198.19.0.5", "externalTrafficPolicy": "Local",
                    "ports": [{"port": 80, "nodePort": 30080}]}}
    eps = {"prod/web": {"subsets": [{"addresses": [{"ip": "198.18.1.2", "nodeName": "n1"},
                                                   {"ip": "198.18.2.2", "nodeName": "n2"}],
                                     "ports": [{"port": 8080}]}]}}
    cluster, external = compute_rules([svc], eps, ["0.0.0.0"], "n1")
    assert cluster.listen == (("198.19.0.5", 80),) and len(cluster.backends) == 2 and cluster.masquerade
    assert external.listen == (("0.0.0.0", 30080),) and external.backends == (Backend("198.18.1.2", 8080),)
    assert not external.masquerade and external.service == "prod/web:80/local"
    (merged,) = compute_rules([svc], eps, ["0.0.0.0"])  # no node name: one rule, as before
    assert len(merged.backends) == 2 and merged.masquerade
    svc["spec"]["externalTrafficPolicy"] = "Cluster"
    assert len(compute_rules([svc], eps, ["0.0.0.0"], "n1")) == 1
