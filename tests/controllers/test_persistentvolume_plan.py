"""Table tests of the PV controller's pure decisions: binding, phases, release and reclaim."""

from __future__ import annotations

from typing import Any

import pytest

from actors.controllers.persistentvolume_plan import (
    BindVolume,
    ClaimStatus,
    Event,
    RemoveFinalizer,
    UpdateClaim,
    VolumeStatus,
    find_volume,
    node_reaches,
    plan_claim,
    plan_volume,
)
from protocol.kinds.storage import node_affinity_to
from protocol.objects import Obj


def pv(name: str, size: str = "10Gi", phase: str = "Available", claim: Obj | None = None, **spec: Any) -> Obj:
    annotations = spec.pop("annotations", {})
    return {"kind": "PersistentVolume", "metadata": {"name": name, "annotations": annotations},
            "spec": {"capacity": {"storage": size}, "accessModes": ["ReadWriteOnce"], "hostPath": {"path": "/x"},
                     **({"claimRef": claim} if claim else {}), **spec},
            "status": {"phase": phase}}


def pvc(name: str = "data", phase: str = "Pending", annotations: dict[str, str] | None = None, uid: str = "u1",
        **spec: Any) -> Obj:
    return {"kind": "PersistentVolumeClaim",
            "metadata": {"name": name, "namespace": "ns", "uid": uid, "annotations": annotations or {}},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}, **spec},
            "status": {"phase": phase}}


REF = {"kind": "PersistentVolumeClaim", "namespace": "ns", "name": "data", "uid": "u1", "apiVersion": "v1"}
WFFC = {"kind": "StorageClass", "metadata": {"name": "lp"}, "provisioner": "shoal.io/local-path",
        "volumeBindingMode": "WaitForFirstConsumer"}
IMMEDIATE = {"kind": "StorageClass", "metadata": {"name": "fast"}, "provisioner": "shoal.io/local-path"}


def kinds(actions: list[Any]) -> list[str]:
    return [type(a).__name__ for a in actions]


def test_an_unbound_claim_binds_the_smallest_fitting_volume() -> None:
    volumes = [pv("big", "100Gi"), pv("small", "2Gi"), pv("tiny", "512Mi"), pv("taken", "1Gi", "Bound", {
        **REF, "name": "other", "uid": "u9"})]
    actions = plan_claim(pvc(), volumes, None)
    assert kinds(actions) == ["BindVolume", "UpdateClaim", "ClaimStatus"], "in one pass"
    bind, update, status = actions
    assert status == ClaimStatus(pvc(), "Bound", "2Gi", ("ReadWriteOnce",))
    assert isinstance(bind, BindVolume) and bind.volume["metadata"]["name"] == "small"
    assert bind.volume["spec"]["claimRef"] == REF
    assert isinstance(update, UpdateClaim) and update.claim["spec"]["volumeName"] == "small"
    assert update.claim["metadata"]["annotations"]["pv.kubernetes.io/bind-completed"] == "yes"


def test_a_volume_pre_bound_to_the_claim_wins() -> None:
    pre = pv("pre", "50Gi", claim={"namespace": "ns", "name": "data"})
    bind, _update, _status = plan_claim(pvc(), [pv("small", "2Gi"), pre], None)
    assert isinstance(bind, BindVolume) and bind.volume["metadata"]["name"] == "pre"


def test_a_claim_naming_its_volume_becomes_bound_with_its_capacity() -> None:
    volume = pv("v", "5Gi", "Bound", REF)
    claim = pvc(volumeName="v", annotations={"pv.kubernetes.io/bind-completed": "yes"})
    assert plan_claim(claim, [volume], None) == [ClaimStatus(claim, "Bound", "5Gi", ("ReadWriteOnce",))]
    bound = {**claim, "status": {"phase": "Bound", "capacity": {"storage": "5Gi"}, "accessModes": ["ReadWriteOnce"]}}
    assert plan_claim(bound, [volume], None) == []


@pytest.mark.parametrize(("volumes", "why"), [([], "has been deleted"),
                                              ([pv("v", claim={**REF, "uid": "u9"})], "is bound to another claim")])
def test_a_bound_claim_whose_volume_is_gone_is_lost(volumes: list[Obj], why: str) -> None:
    claim = pvc(phase="Bound", volumeName="v")
    actions = plan_claim(claim, volumes, None)
    assert actions[0] == ClaimStatus(claim, "Lost")
    assert isinstance(actions[1], Event) and actions[1].reason == "ClaimLost" and why in actions[1].message


def test_wait_for_first_consumer_waits_for_the_selected_node() -> None:
    claim = pvc(storageClassName="lp")
    (event,) = plan_claim(claim, [pv("v", storageClassName="lp")], WFFC)
    assert isinstance(event, Event) and event.reason == "WaitForFirstConsumer"
    elsewhere = pv("v", storageClassName="lp", nodeAffinity=node_affinity_to("n2"))
    here = pv("w", "20Gi", storageClassName="lp", nodeAffinity=node_affinity_to("n1"))
    selected = pvc(storageClassName="lp", annotations={"volume.kubernetes.io/selected-node": "n1"})
    bind = plan_claim(selected, [elsewhere, here], WFFC)[0]
    assert isinstance(bind, BindVolume) and bind.volume["metadata"]["name"] == "w"


def test_without_a_fitting_volume_the_provisioner_is_asked() -> None:
    claim = pvc(storageClassName="fast")
    update, event = plan_claim(claim, [pv("small", "512Mi", storageClassName="fast")], IMMEDIATE)
    assert isinstance(update, UpdateClaim)
    assert update.claim["metadata"]["annotations"]["volume.kubernetes.io/storage-provisioner"] == "shoal.io/local-path"
    assert isinstance(event, Event) and event.reason == "ExternalProvisioning"
    assert kinds(plan_claim(update.claim, [], IMMEDIATE)) == ["Event"], "annotated once"


@pytest.mark.parametrize(("claim", "storage_class", "message"), [
    (pvc(), None, "no storage class is set"),
    (pvc(storageClassName="gone"), None, 'storageclass.storage.k8s.io "gone" not found'),
])
def test_a_claim_nothing_can_satisfy_waits_with_an_event(claim: Obj, storage_class: Obj | None, message: str) -> None:
    (event,) = plan_claim(claim, [], storage_class)
    assert isinstance(event, Event) and event.reason == "FailedBinding" and message in event.message


def test_deleting_claims_are_left_alone() -> None:
    claim = pvc()
    claim["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    assert plan_claim(claim, [pv("v")], None) == []


@pytest.mark.parametrize(("volume", "claim", "expected"), [
    pytest.param(pv("v", phase="Pending"), None, [("Available", "")], id="new volume"),
    pytest.param(pv("v"), None, [], id="already available"),
    pytest.param(pv("v", phase="Available", claim=REF), pvc(volumeName="v"), [("Bound", "")], id="bound"),
    pytest.param(pv("v", phase="Available", claim=REF), pvc(), [], id="claim side still binding"),
    pytest.param(pv("v", phase="Bound", claim=REF), None, [("Released", "")], id="claim deleted: retained"),
    pytest.param(pv("v", phase="Bound", claim=REF), pvc(uid="u2"), [("Released", "")], id="claim re-created"),
    pytest.param(pv("v", phase="Released", claim=REF), None, [], id="stays released"),
    pytest.param(pv("v", phase="Bound", claim=REF, persistentVolumeReclaimPolicy="Delete",
                    annotations={"pv.kubernetes.io/provisioned-by": "shoal.io/local-path"}), None,
                 [("Released", "")], id="provisioned: released for its provisioner to delete"),
    pytest.param(pv("v", phase="Bound", claim=REF, persistentVolumeReclaimPolicy="Delete"), None,
                 [("Failed", "VolumeFailedDelete")], id="nobody can delete it"),
    pytest.param(pv("v", phase="Available", claim={"namespace": "ns", "name": "data"}), None, [],
                 id="pre-bound to a claim not made yet"),
])
def test_volume_phases(volume: Obj, claim: Obj | None, expected: list[tuple[str, str]]) -> None:
    assert [(a.phase, a.reason) for a in plan_volume(volume, claim) if isinstance(a, VolumeStatus)] == expected


def test_a_volume_its_claim_left_for_another_is_given_back() -> None:
    volume = pv("v", phase="Bound", claim=REF, annotations={"pv.kubernetes.io/bound-by-controller": "yes"})
    (bind,) = plan_volume(volume, pvc(volumeName="other"))
    assert isinstance(bind, BindVolume) and "claimRef" not in bind.volume["spec"]
    volume["metadata"]["annotations"] = {}
    assert plan_volume(volume, pvc(volumeName="other")) == [], "an administrator's binding is kept"


def test_node_reaches_by_hostname_labels_and_fields() -> None:
    assert node_reaches(pv("v"), None, "n1")
    assert node_reaches(pv("v", nodeAffinity=node_affinity_to("n1")), None, "n1")
    assert not node_reaches(pv("v", nodeAffinity=node_affinity_to("n1")), None, "n2")
    by_zone = pv("v", nodeAffinity={"required": {"nodeSelectorTerms": [{"matchExpressions": [
        {"key": "zone", "operator": "In", "values": ["a"]}]}, {"matchFields": [
        {"key": "metadata.name", "operator": "In", "values": ["n9"]}]}]}})
    assert node_reaches(by_zone, {"zone": "a"}, "n1") and node_reaches(by_zone, {}, "n9")
    assert not node_reaches(by_zone, {"zone": "b"}, "n1")
    assert find_volume(pvc(), [by_zone], "n1", {"zone": "b"}) is None


def test_a_deleted_claim_waits_for_its_last_pod() -> None:
    claim = pvc(phase="Bound", volumeName="v")
    claim["metadata"].update(deletionTimestamp="2026-01-01T00:00:00Z", finalizers=["kubernetes.io/pvc-protection"])
    assert plan_claim(claim, [pv("v", claim=REF)], None, in_use=True) == []
    assert plan_claim(claim, [pv("v", claim=REF)], None) == [RemoveFinalizer(claim, "kubernetes.io/pvc-protection")]
    claim["metadata"]["finalizers"] = []
    assert plan_claim(claim, [], None) == []


def test_a_deleted_volume_waits_while_bound() -> None:
    volume = pv("v", phase="Bound", claim=REF)
    volume["metadata"].update(deletionTimestamp="2026-01-01T00:00:00Z", finalizers=["kubernetes.io/pv-protection"])
    assert plan_volume(volume, pvc(volumeName="v")) == []
    volume["status"]["phase"] = "Released"
    assert plan_volume(volume, None) == [RemoveFinalizer(volume, "kubernetes.io/pv-protection")]


def test_a_bound_claim_grows_when_its_class_allows() -> None:
    volume = pv("v", "1Gi", "Bound", REF, annotations={"pv.kubernetes.io/provisioned-by": "shoal.io/local-path"})
    claim = pvc(phase="Bound", volumeName="v", storageClassName="fast",
                annotations={"pv.kubernetes.io/bind-completed": "yes"}, resources={"requests": {"storage": "3Gi"}})
    resize, status, event = plan_claim(claim, [volume], {**IMMEDIATE, "allowVolumeExpansion": True})
    assert isinstance(resize, BindVolume) and resize.volume["spec"]["capacity"] == {"storage": "3Gi"}
    assert status == ClaimStatus(claim, "Bound", "3Gi", ("ReadWriteOnce",))
    assert isinstance(event, Event) and event.reason == "VolumeResizeSuccessful"
    (refused,) = plan_claim(claim, [volume], IMMEDIATE)
    assert isinstance(refused, Event) and refused.reason == "VolumeResizeFailed"
    assert 'storageclass "fast" does not allow volume expansion' in refused.message
    volume["metadata"]["annotations"] = {}
    (static,) = plan_claim(claim, [volume], {**IMMEDIATE, "allowVolumeExpansion": True})
    assert isinstance(static, Event) and "only dynamically provisioned" in static.message
