"""Table tests of the cloud controllers' pure plans: node, route, service (load balancer), volume."""

from __future__ import annotations

import pytest

from actors.cloud.node_plan import DeleteNode
from actors.cloud.node_plan import plan as node_plan
from actors.cloud.provider import LoadBalancer, Route, VolumeRequest
from actors.cloud.route_plan import RoutePlan
from actors.cloud.route_plan import plan as route_plan
from actors.cloud.service_plan import LB_FINALIZER, DeleteLoadBalancer, EnsureLoadBalancer, ingress_status
from actors.cloud.service_plan import plan as service_plan
from actors.cloud.volume_plan import Delete, plan_claim, plan_volume
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
PROVISIONER = "shoal.io/local-path"


def _claim(annotations: dict[str, str] | None = None, **spec: object) -> Obj:
    return {"kind": "PersistentVolumeClaim", "metadata": {"name": "data", "namespace": "team", "uid": "u1",
                                                          "annotations": annotations or {}},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "2Gi"}},
                     "storageClassName": "local-path", **spec}}


def _class(mode: str = "WaitForFirstConsumer", provisioner: str = PROVISIONER) -> Obj:
    return {"kind": "StorageClass", "metadata": {"name": "local-path"}, "provisioner": provisioner,
            "reclaimPolicy": "Delete", "volumeBindingMode": mode, "parameters": {"a": "b"}}


SELECTED = {"volume.kubernetes.io/selected-node": "n1"}


@pytest.mark.parametrize(("claim", "klass", "exists", "provisions"), [
    pytest.param(_claim(), _class(), False, False, id="waits for the scheduler's node"),
    pytest.param(_claim(SELECTED), _class(), False, True, id="provisions on the selected node"),
    pytest.param(_claim(), _class("Immediate"), False, True, id="immediate classes at once"),
    pytest.param(_claim(SELECTED), _class(), True, False, id="already provisioned"),
    pytest.param(_claim(SELECTED, volumeName="pv9"), _class(), False, False, id="already bound"),
    pytest.param(_claim(SELECTED), _class(provisioner="other.io/x"), False, False, id="another provisioner's"),
    pytest.param(_claim(SELECTED), None, False, False, id="no such class"),
    pytest.param(None, _class(), False, False, id="claim gone"),
])
def test_volume_provisioning_plan(claim: Obj | None, klass: Obj | None, exists: bool, provisions: bool) -> None:
    actions = plan_claim(claim, klass, PROVISIONER, exists)
    assert bool(actions) is provisions
    if provisions:
        (action,) = actions
        assert action.request == VolumeRequest("pvc-u1", "team", "data", 2 * 2**30, (("a", "b"),),
                                               "n1" if claim and claim["metadata"]["annotations"] else None)
        assert action.volume["metadata"] == {"name": "pvc-u1", "annotations": {
            "pv.kubernetes.io/provisioned-by": PROVISIONER}}
        assert action.volume["spec"] == {
            "capacity": {"storage": "2Gi"}, "accessModes": ["ReadWriteOnce"], "persistentVolumeReclaimPolicy": "Delete",
            "storageClassName": "local-path", "volumeMode": "Filesystem",
            "claimRef": {"kind": "PersistentVolumeClaim", "namespace": "team", "name": "data", "uid": "u1",
                         "apiVersion": "v1"}}


def _volume(phase: str, policy: str = "Delete", provisioner: str | None = PROVISIONER) -> Obj:
    annotations = {"pv.kubernetes.io/provisioned-by": provisioner} if provisioner else {}
    return {"kind": "PersistentVolume", "metadata": {"name": "pvc-u1", "annotations": annotations},
            "spec": {"persistentVolumeReclaimPolicy": policy}, "status": {"phase": phase}}


@pytest.mark.parametrize(("volume", "deletes"), [
    (_volume("Released"), True),
    (_volume("Bound"), False),
    (_volume("Released", "Retain"), False),
    (_volume("Released", provisioner=None), False),
    (_volume("Released", provisioner="other.io/x"), False),
    (None, False),
])
def test_volume_deletion_plan(volume: Obj | None, deletes: bool) -> None:
    assert plan_volume(volume, PROVISIONER) == ([Delete(volume)] if deletes and volume else [])
