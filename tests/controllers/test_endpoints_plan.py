"""Endpoints decisions: which pods, which addresses and ports, written only on change."""

from __future__ import annotations

from typing import Any

from actors.controllers.endpoints_plan import (
    CreateEndpoints,
    UpdateEndpoints,
    plan,
    pod_signature,
    resolve,
    subsets_for,
)
from protocol.objects import Obj


def service(selector: dict[str, str] | None = None, ports: list[Obj] | None = None, **spec: Any) -> Obj:
    s: Obj = {"kind": "Service", "metadata": {"name": "web", "namespace": "ns", "labels": {"tier": "front"}},
              "spec": {"ports": ports if ports is not None else [{"name": "http", "port": 80, "targetPort": 8080,
                                                                   "protocol": "TCP"}], **spec}}
    if selector is not None:
        s["spec"]["selector"] = selector
    return s


def pod(name: str, ip: str | None = "10.0.0.1", *, ready: bool = True, labels: dict[str, str] | None = None,
        ports: list[Obj] | None = None, host_ip: str = "192.168.1.5", deleting: bool = False,
        phase: str = "Running", namespace: str = "ns") -> Obj:
    status: Obj = {"phase": phase, "hostIP": host_ip,
                   "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}
    if ip:
        status["podIP"] = ip
    m: Obj = {"name": name, "namespace": namespace, "uid": f"uid-{name}", "labels": labels or {"app": "web"}}
    if deleting:
        m["deletionTimestamp"] = "2024-01-01T00:00:00Z"
    return {"kind": "Pod", "metadata": m, "status": status,
            "spec": {"nodeName": "n1", "containers": [{"name": "c", "ports": ports or [
                {"name": "web", "containerPort": 8080, "protocol": "TCP"}]}]}}


SEL = {"app": "web"}


def test_ready_and_not_ready_addresses() -> None:
    subsets = subsets_for(service(SEL), [pod("b", "10.0.0.2"), pod("a", "10.0.0.1"),
                                         pod("c", "10.0.0.3", ready=False)])
    assert len(subsets) == 1
    s = subsets[0]
    assert [a["ip"] for a in s["addresses"]] == ["10.0.0.1", "10.0.0.2"]
    assert s["addresses"][0] == {"ip": "10.0.0.1", "nodeName": "n1",
                                 "targetRef": {"kind": "Pod", "name": "a", "namespace": "ns", "uid": "uid-a"}}
    assert [a["ip"] for a in s["notReadyAddresses"]] == ["10.0.0.3"]
    assert s["ports"] == [{"name": "http", "port": 8080, "protocol": "TCP"}]


def test_excluded_pods() -> None:
    pods = [pod("other", labels={"app": "db"}), pod("gone", deleting=True), pod("done", phase="Succeeded"),
            pod("noip", None), pod("elsewhere", namespace="other")]
    assert subsets_for(service(SEL), pods) == []


def test_named_target_port_and_host_port() -> None:
    svc = service(SEL, ports=[{"name": "http", "port": 80, "targetPort": "web", "protocol": "TCP"}])
    plain = pod("a", "10.0.0.1", ports=[{"name": "web", "containerPort": 9000, "protocol": "TCP"}])
    hosted = pod("b", "10.0.0.2", ports=[{"name": "web", "containerPort": 9000, "hostPort": 30080,
                                          "protocol": "TCP"}])
    on_loopback = pod("d", "127.88.0.4", ports=[{"name": "web", "containerPort": 9000, "hostPort": 30081,
                                                 "protocol": "TCP"}])
    unnamed = pod("c", "10.0.0.3", ports=[{"containerPort": 9000, "protocol": "TCP"}])
    assert resolve(plain, svc["spec"]["ports"][0]) == ("10.0.0.1", 9000)
    # a routed pod address is used as in Kubernetes, hostPort or not
    assert resolve(hosted, svc["spec"]["ports"][0]) == ("10.0.0.2", 9000)
    # a pod of the loopback pod network is reached on its node's address and hostPort
    assert resolve(on_loopback, svc["spec"]["ports"][0]) == ("192.168.1.5", 30081)
    assert resolve(unnamed, svc["spec"]["ports"][0]) is None
    subsets = subsets_for(svc, [plain, hosted, on_loopback, unnamed])
    assert sorted((a["ip"], s["ports"][0]["port"]) for s in subsets for a in s["addresses"]) == [
        ("10.0.0.1", 9000), ("10.0.0.2", 9000), ("192.168.1.5", 30081)]


def test_integer_target_port_without_declared_container_port_and_host_network() -> None:
    svc = service(SEL, ports=[{"port": 80, "targetPort": 7000, "protocol": "UDP"}])
    p = pod("a", None)
    assert resolve(p, svc["spec"]["ports"][0]) is None  # no address yet
    p["spec"]["hostNetwork"] = True
    assert resolve(p, svc["spec"]["ports"][0]) == ("192.168.1.5", 7000)  # host network: the host's address
    assert subsets_for(svc, [p])[0]["ports"] == [{"port": 7000, "protocol": "UDP"}]


def test_publish_not_ready_addresses() -> None:
    subsets = subsets_for(service(SEL, publishNotReadyAddresses=True), [pod("a", ready=False)])
    assert "notReadyAddresses" not in subsets[0] and subsets[0]["addresses"][0]["ip"] == "10.0.0.1"


def test_plan_creates_updates_and_leaves_alone() -> None:
    svc = service(SEL)
    pods = [pod("a")]
    action = plan(svc, pods, None)
    assert isinstance(action, CreateEndpoints)
    ep = action.endpoints
    assert ep["metadata"] == {"name": "web", "namespace": "ns", "labels": {"tier": "front"}}
    current = {**ep, "metadata": {**ep["metadata"], "resourceVersion": "7", "uid": "u"}}
    assert plan(svc, pods, current) is None
    update = plan(svc, [], current)
    assert isinstance(update, UpdateEndpoints)
    assert update.endpoints["subsets"] == [] and update.endpoints["metadata"]["resourceVersion"] == "7"
    assert plan(service(None), pods, None) is None  # no selector: the user's Endpoints
    assert plan(service(SEL, type="ExternalName"), pods, None) is None


def test_pod_signature_ignores_unrelated_status() -> None:
    a = pod("a")
    b = {**a, "status": {**a["status"], "containerStatuses": [{"restartCount": 3}]}}
    assert pod_signature(a) == pod_signature(b)
    assert pod_signature(a) != pod_signature(pod("a", ready=False))


def test_hostname_when_the_pods_subdomain_is_this_service() -> None:
    """As a StatefulSet's pods (hostname web-0, subdomain = the headless Service): DNS names them by it."""
    def named(name: str, ip: str, subdomain: str, namespace: str = "ns") -> Obj:
        p = pod(name, ip, namespace=namespace)
        p["spec"].update(hostname=name, subdomain=subdomain)
        return p

    headless = service(SEL, clusterIP="None")
    subsets = subsets_for(headless, [named("web-0", "10.0.0.1", "web"), named("db-0", "10.0.0.2", "db")])
    addresses = {a["targetRef"]["name"]: a for a in subsets[0]["addresses"]}
    assert addresses["web-0"]["hostname"] == "web-0"
    assert "hostname" not in addresses["db-0"]  # its subdomain is another Service
    plain = pod("plain", "10.0.0.3")
    plain["spec"]["hostname"] = "plain"  # a hostname without a subdomain names no DNS record
    assert "hostname" not in subsets_for(headless, [plain])[0]["addresses"][0]
    assert pod_signature(named("web-0", "10.0.0.1", "web")) != pod_signature(named("web-0", "10.0.0.1", "db"))
