"""PersistentVolume, PersistentVolumeClaim and StorageClass strategies: defaults, validation, update checks,
columns as kubectl prints them, and the claim/volume matching the PV controller and scheduler use."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from protocol.errors import Invalid
from protocol.kinds import resolve, strategy_for
from protocol.kinds.storage import access_modes_text, claim_ref_matches, volume_fits
from protocol.objects import Obj
from protocol.validation import validate

NOW = 1_800_000_000.0
CREATED = "2027-01-15T07:50:00Z"  # NOW - 10 minutes


def pv(name: str = "pv1", **spec: Any) -> Obj:
    base: Obj = {"capacity": {"storage": "10Gi"}, "accessModes": ["ReadWriteOnce"], "hostPath": {"path": "/srv/a"}}
    base.update(spec)
    return {"apiVersion": "v1", "kind": "PersistentVolume",
            "metadata": {"name": name, "creationTimestamp": CREATED}, "spec": base}


def pvc(name: str = "data", **spec: Any) -> Obj:
    base: Obj = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}
    base.update(spec)
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"name": name, "namespace": "default", "creationTimestamp": CREATED, "uid": "u1"},
            "spec": base}


def sc(name: str = "fast", **fields: Any) -> Obj:
    return {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
            "metadata": {"name": name, "creationTimestamp": CREATED}, "provisioner": "shoal.io/local-path", **fields}


def causes(obj: Obj, old: Obj | None = None) -> list[str]:
    with pytest.raises(Invalid) as info:
        validate(obj, old=old)
    return [c["field"] for c in info.value.details["causes"]]


@pytest.mark.parametrize(("typed", "kind"), [
    ("pv", "PersistentVolume"), ("pvc", "PersistentVolumeClaim"), ("sc", "StorageClass"),
    ("storageclasses.storage.k8s.io", "StorageClass"), ("persistentvolumeclaims", "PersistentVolumeClaim")])
def test_resolve(typed: str, kind: str) -> None:
    assert resolve(typed).kind == kind


def test_identity() -> None:
    assert not resolve("pv").namespaced and resolve("pvc").namespaced and not resolve("sc").namespaced
    assert resolve("sc").group == "storage.k8s.io" and resolve("pv").api_version == "v1"
    assert resolve("pv").has_status and resolve("pvc").has_status and not resolve("sc").has_status


def test_defaults_and_initial_status() -> None:
    v, c, s = pv(), pvc(), sc()
    for obj in (v, c, s):
        strategy_for(obj["kind"]).default(obj)
        strategy_for(obj["kind"]).initial_status(obj)
    assert v["spec"]["persistentVolumeReclaimPolicy"] == "Retain" and v["spec"]["volumeMode"] == "Filesystem"
    assert v["status"] == {"phase": "Pending"} and c["status"] == {"phase": "Pending"}
    assert c["spec"]["volumeMode"] == "Filesystem" and "storageClassName" not in c["spec"]
    assert s["reclaimPolicy"] == "Delete" and s["volumeBindingMode"] == "Immediate"


@pytest.mark.parametrize("obj", [
    pv(), pv(local={"path": "/mnt/disk"}, hostPath=None) | {},
    pv(persistentVolumeReclaimPolicy="Delete", storageClassName="fast", claimRef={"namespace": "a", "name": "b"}),
    pvc(), pvc(storageClassName="", selector={"matchLabels": {"tier": "gold"}}, volumeName="pv1"),
    sc(), sc(reclaimPolicy="Retain", volumeBindingMode="WaitForFirstConsumer", allowVolumeExpansion=True,
             parameters={"a": "b"}),
])
def test_valid(obj: Obj) -> None:
    obj = copy.deepcopy(obj)
    spec = obj.get("spec")
    if isinstance(spec, dict) and spec.get("local"):  # the local variant: no hostPath, node affinity
        spec.pop("hostPath")
        spec["nodeAffinity"] = {"required": {"nodeSelectorTerms": [{"matchExpressions": [
            {"key": "kubernetes.io/hostname", "operator": "In", "values": ["n1"]}]}]}}
    validate(obj)


@pytest.mark.parametrize(("obj", "field"), [
    (pv(capacity={}), "spec.capacity.storage"),
    (pv(capacity={"storage": "lots"}), "spec.capacity.storage"),
    (pv(capacity={"storage": "0"}), "spec.capacity.storage"),
    (pv(accessModes=[]), "spec.accessModes"),
    (pv(accessModes=["ReadWriteSometimes"]), "spec.accessModes[0]"),
    (pv(accessModes=["ReadWriteOncePod", "ReadOnlyMany"]), "spec.accessModes"),
    (pv(volumeMode="Block"), "spec.volumeMode"),
    (pv(persistentVolumeReclaimPolicy="Recycle"), "spec.persistentVolumeReclaimPolicy"),
    (pv(nfs={"server": "x", "path": "/"}), "spec.nfs"),
    (pv(hostPath={"path": "relative"}), "spec.hostPath.path"),
    (pv(local={"path": "/a"}), "spec"),  # two sources
    (pv(claimRef={"name": "x"}), "spec.claimRef.namespace"),
    (pv(mountOptions=["ro"]), "spec.mountOptions"),
    (pvc(accessModes=None), "spec.accessModes"),
    (pvc(resources={"requests": {}}), "spec.resources.requests[storage]"),
    (pvc(resources={"requests": {"storage": "-1Gi"}}), "spec.resources.requests[storage]"),
    (pvc(volumeMode="Block"), "spec.volumeMode"),
    (pvc(dataSource={"kind": "PersistentVolumeClaim", "name": "x"}), "spec.dataSource"),
    (pvc(selector={"matchExpressions": [{"key": "a", "operator": "Near"}]}), "spec.selector"),
    (sc(provisioner=None), "provisioner"),
    (sc(volumeBindingMode="Later"), "volumeBindingMode"),
    (sc(reclaimPolicy="Recycle"), "reclaimPolicy"),
])
def test_invalid(obj: Obj, field: str) -> None:
    assert field in causes(obj)


def test_local_volume_needs_node_affinity() -> None:
    obj = pv(local={"path": "/mnt/disk"})
    obj["spec"].pop("hostPath")
    assert "spec.nodeAffinity" in causes(obj)


def test_claim_spec_is_immutable_but_requests_grow_on_bound_claims() -> None:
    old = pvc()
    old["status"] = {"phase": "Bound"}
    grown = pvc(resources={"requests": {"storage": "2Gi"}})
    validate(grown, old=old)
    assert causes(pvc(resources={"requests": {"storage": "512Mi"}}), old) == ["spec.resources.requests.storage"]
    assert causes(pvc(accessModes=["ReadWriteMany"]), old) == ["spec"]
    pending = pvc()
    assert causes(grown, pending) == ["spec.resources.requests.storage"]
    # a binder sets volumeName once, and a class may be given where there was none
    validate(pvc(volumeName="pv1", storageClassName="fast"), old=pending)
    assert causes(pvc(volumeName="pv2"), pvc(volumeName="pv1")) == ["spec"]
    assert causes(pvc(storageClassName="slow"), pvc(storageClassName="fast")) == ["spec"]


def test_volume_source_and_class_fields_are_immutable() -> None:
    assert causes(pv(hostPath={"path": "/srv/b"}), pv()) == ["spec.hostPath"]
    validate(pv(claimRef={"namespace": "default", "name": "data"}), old=pv())  # binding changes claimRef
    assert causes(sc(volumeBindingMode="WaitForFirstConsumer"), sc()) == ["volumeBindingMode"]
    validate(sc(allowVolumeExpansion=True), old=sc())


@pytest.mark.parametrize(("kind", "wide", "names"), [
    ("PersistentVolumeClaim", False, ["NAME", "STATUS", "VOLUME", "CAPACITY", "ACCESS MODES", "STORAGECLASS",
                                      "VOLUMEATTRIBUTESCLASS", "AGE"]),
    ("PersistentVolumeClaim", True, ["NAME", "STATUS", "VOLUME", "CAPACITY", "ACCESS MODES", "STORAGECLASS",
                                     "VOLUMEATTRIBUTESCLASS", "AGE", "VOLUMEMODE"]),
    ("PersistentVolume", False, ["NAME", "CAPACITY", "ACCESS MODES", "RECLAIM POLICY", "STATUS", "CLAIM",
                                 "STORAGECLASS", "VOLUMEATTRIBUTESCLASS", "REASON", "AGE"]),
    ("StorageClass", False, ["NAME", "PROVISIONER", "RECLAIMPOLICY", "VOLUMEBINDINGMODE", "ALLOWVOLUMEEXPANSION",
                             "AGE"]),
])
def test_columns(kind: str, wide: bool, names: list[str]) -> None:
    assert [c.name for c in strategy_for(kind).columns_for(wide=wide)] == names


def test_rows() -> None:
    claim = pvc(storageClassName="local-path", volumeName="pvc-1")
    claim["status"] = {"phase": "Bound", "capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"]}
    assert strategy_for("PersistentVolumeClaim").row(claim, NOW) == [
        "data", "Bound", "pvc-1", "1Gi", "RWO", "local-path", "<unset>", "10m"]
    pending = pvc()
    pending["status"] = {"phase": "Pending"}
    assert strategy_for("PersistentVolumeClaim").row(pending, NOW, wide=True) == [
        "data", "Pending", "", "", "", "", "<unset>", "10m", "<unset>"]
    volume = pv(persistentVolumeReclaimPolicy="Delete", storageClassName="local-path",
                claimRef={"namespace": "default", "name": "data"}, accessModes=["ReadWriteMany", "ReadWriteOnce"])
    volume["status"] = {"phase": "Bound"}
    assert strategy_for("PersistentVolume").row(volume, NOW) == [
        "pv1", "10Gi", "RWO,RWX", "Delete", "Bound", "default/data", "local-path", "<unset>", "", "10m"]
    volume["metadata"]["deletionTimestamp"] = CREATED
    assert strategy_for("PersistentVolume").row(volume, NOW)[4] == "Terminating"
    default = sc("local-path", volumeBindingMode="WaitForFirstConsumer", reclaimPolicy="Delete")
    default["metadata"]["annotations"] = {"storageclass.kubernetes.io/is-default-class": "true"}
    assert strategy_for("StorageClass").row(default, NOW) == [
        "local-path (default)", "shoal.io/local-path", "Delete", "WaitForFirstConsumer", "false", "10m"]


def test_access_modes_text_is_ordered_and_unique() -> None:
    assert access_modes_text(["ReadWriteOncePod", "ReadOnlyMany", "ReadWriteOnce", "ReadOnlyMany"]) == "RWO,ROX,RWOP"
    assert access_modes_text(None) == ""


@pytest.mark.parametrize(("volume", "claim", "fits"), [
    (pv(), pvc(), True),
    (pv(capacity={"storage": "512Mi"}), pvc(), False),
    (pv(storageClassName="fast"), pvc(), False),
    (pv(storageClassName="fast"), pvc(storageClassName="fast"), True),
    (pv(accessModes=["ReadOnlyMany"]), pvc(), False),
    (pv(accessModes=["ReadWriteOnce", "ReadOnlyMany"]), pvc(accessModes=["ReadOnlyMany"]), True),
    (pv(), pvc(selector={"matchLabels": {"tier": "gold"}}), False),
    (pv() | {"metadata": {"name": "g", "labels": {"tier": "gold"}}}, pvc(selector={"matchLabels": {"tier": "gold"}}),
     True),
])
def test_volume_fits(volume: Obj, claim: Obj, fits: bool) -> None:
    assert volume_fits(volume, claim) is fits


def test_claim_ref_matches_by_name_and_uid() -> None:
    claim = pvc()
    assert claim_ref_matches(pv(claimRef={"namespace": "default", "name": "data"}), claim)
    assert claim_ref_matches(pv(claimRef={"namespace": "default", "name": "data", "uid": "u1"}), claim)
    assert not claim_ref_matches(pv(claimRef={"namespace": "default", "name": "data", "uid": "old"}), claim)
    assert not claim_ref_matches(pv(claimRef={"namespace": "other", "name": "data"}), claim)
    assert not claim_ref_matches(pv(), claim)


@pytest.mark.parametrize("kind", ["ConfigMap", "Secret"])
def test_immutable_config_refuses_data_changes_and_unsetting(kind: str) -> None:
    def obj(data: dict[str, str], immutable: Any = True, **extra: Any) -> Obj:
        return {"apiVersion": "v1", "kind": kind, "metadata": {"name": "c", "namespace": "default"},
                "data": data, **({"immutable": immutable} if immutable is not None else {}), **extra}

    old = obj({"a": "YQ=="})
    validate(obj({"a": "YQ=="}), old=old)
    assert causes(obj({"a": "Yg=="}), old) == ["data"]
    assert causes(obj({"a": "YQ=="}, None), old) == ["immutable"]
    assert causes(obj({"a": "YQ=="}, False), old) == ["immutable"]
    validate(obj({"a": "Yg=="}, True), old=obj({"a": "YQ=="}, None))  # may become immutable with a change
    validate(obj({"a": "Yg=="}, None), old=obj({"a": "YQ=="}, False))
    assert "immutable" in causes(obj({}, "yes"))
    if kind == "ConfigMap":
        assert causes(obj({"a": "YQ=="}, binaryData={"b": "Yg=="}), old) == ["binaryData"]
    else:
        assert causes(obj({"a": "YQ=="}, stringData={"b": "x"}), old) == ["stringData"]
