"""Table tests of the cloud controllers' pure plans: node, route, service (load balancer), volume."""

from __future__ import annotations

import pytest

from actors.cloud.node_plan import DeleteNode
from actors.cloud.node_plan import plan as node_plan
from actors.cloud.provider import LoadBalancer, Route
from actors.cloud.route_plan import RoutePlan
from actors.cloud.route_plan import plan as route_plan
from actors.cloud.service_plan import LB_FINALIZER, DeleteLoadBalancer, EnsureLoadBalancer, ingress_status
from actors.cloud.service_plan import plan as service_plan
from actors.cloud.volume_plan import EnsureVolume
from actors.cloud.volume_plan import plan as volume_plan
from protocol.objects import Obj


# -- node ---------------------------------------------------------------------------------------------
def test_node_is_deleted_only_when_its_machine_is_gone() -> None:
    node = {"kind": "Node", "metadata": {"name": "m2"}}
    assert node_plan(node, instance_exists=True) is None
    assert node_plan(node, instance_exists=False) == DeleteNode(
        "m2", "Deleting node m2 because it does not exist in the cloud provider")


# -- routes -------------------------------------------------------------------------------------------
def node(name: str, cidr: str | None) -> Obj:
    return {"kind": "Node", "metadata": {"name": name}, "spec": {"podCIDR": cidr} if cidr else {}}


@pytest.mark.parametrize(("nodes", "existing", "expected"), [
    pytest.param([], [], RoutePlan(), id="nothing"),
    pytest.param([node("a", "10.1.0.0/24"), node("b", None)], [],
                 RoutePlan(create=[Route("a", "10.1.0.0/24")]), id="a node without a CIDR wants no route"),
    pytest.param([node("a", "10.1.0.0/24")], [Route("a", "10.1.0.0/24")], RoutePlan(), id="in place"),
    pytest.param([], [Route("gone", "10.9.0.0/24")], RoutePlan(delete=[Route("gone", "10.9.0.0/24")]),
                 id="a route no node wants is deleted"),
    pytest.param([node("a", "10.2.0.0/24")], [Route("a", "10.1.0.0/24")],
                 RoutePlan(create=[Route("a", "10.2.0.0/24")], delete=[Route("a", "10.1.0.0/24")]),
                 id="a changed CIDR replaces the route"),
    pytest.param([node("b", "10.2.0.0/24"), node("a", "10.1.0.0/24")], [],
                 RoutePlan(create=[Route("a", "10.1.0.0/24"), Route("b", "10.2.0.0/24")]), id="sorted"),
])
def test_route_plan(nodes: list[Obj], existing: list[Route], expected: RoutePlan) -> None:
    assert route_plan(nodes, existing) == expected


# -- load balancers -----------------------------------------------------------------------------------
def service(*, type_: str = "LoadBalancer", finalizers: list[str] | None = None, deleting: bool = False,
            ingress: list[Obj] | None = None) -> Obj:
    m: Obj = {"name": "lb", "namespace": "default", "resourceVersion": "12"}
    if finalizers is not None:
        m["finalizers"] = finalizers
    if deleting:
        m["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    status: Obj = {"loadBalancer": {"ingress": ingress}} if ingress is not None else {}
    return {"kind": "Service", "metadata": m, "spec": {"type": type_}, "status": status}


@pytest.mark.parametrize(("svc", "expected"), [
    pytest.param(service(), EnsureLoadBalancer((LB_FINALIZER,)), id="new: finalizer first"),
    pytest.param(service(finalizers=["other"]), EnsureLoadBalancer(("other", LB_FINALIZER)),
                 id="finalizer added to the others"),
    pytest.param(service(finalizers=[LB_FINALIZER]), EnsureLoadBalancer(None), id="has it: ensure only"),
    pytest.param(service(type_="ClusterIP"), None, id="not a load balancer"),
    pytest.param(service(type_="ClusterIP", finalizers=[LB_FINALIZER, "other"]),
                 DeleteLoadBalancer(("other",), "12", clear_status=True), id="type changed: delete, clear"),
    pytest.param(service(finalizers=[LB_FINALIZER], deleting=True),
                 DeleteLoadBalancer((), "12", clear_status=False), id="being deleted: delete, let it go"),
    pytest.param(service(finalizers=["other"], deleting=True), None, id="being deleted, ours already gone"),
])
def test_service_plan(svc: Obj, expected: object) -> None:
    assert service_plan(svc) == expected


@pytest.mark.parametrize(("ingress", "lb", "expected"), [
    pytest.param(None, LoadBalancer(("127.78.0.5",)),
                 {"status": {"loadBalancer": {"ingress": [{"ip": "127.78.0.5"}]}}}, id="first address"),
    pytest.param([{"ip": "127.78.0.5"}], LoadBalancer(("127.78.0.5",)), None, id="already shown"),
    pytest.param([{"ip": "127.78.0.5"}], LoadBalancer(("127.78.0.6",)),
                 {"status": {"loadBalancer": {"ingress": [{"ip": "127.78.0.6"}]}}}, id="moved"),
])
def test_ingress_status(ingress: list[Obj] | None, lb: LoadBalancer, expected: Obj | None) -> None:
    assert ingress_status(service(ingress=ingress), lb) == expected


# -- volumes ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("volumes", "namespace", "expected"), [
    pytest.param([], "team", [], id="no volumes"),
    pytest.param([{"name": "tmp", "emptyDir": {}}], "team", [], id="no claims"),
    pytest.param([{"name": "d", "persistentVolumeClaim": {"claimName": "data"}}, {"name": "e", "emptyDir": {}},
                  {"name": "l", "persistentVolumeClaim": {"claimName": "logs"}}], "team",
                 [EnsureVolume("shoal-team-data", (("io.shoal.namespace", "team"), ("io.shoal.claim", "data"))),
                  EnsureVolume("shoal-team-logs", (("io.shoal.namespace", "team"), ("io.shoal.claim", "logs")))],
                 id="one volume per claim, in order"),
    pytest.param([{"name": "d", "persistentVolumeClaim": {"claimName": "data"}}], None,
                 [EnsureVolume("shoal-default-data",
                               (("io.shoal.namespace", "default"), ("io.shoal.claim", "data")))],
                 id="namespace defaults"),
])
def test_volume_plan(volumes: list[Obj], namespace: str | None, expected: list[EnsureVolume]) -> None:
    pod: Obj = {"kind": "Pod", "metadata": {"name": "p", **({"namespace": namespace} if namespace else {})},
                "spec": {"volumes": volumes}}
    assert volume_plan(pod) == expected
