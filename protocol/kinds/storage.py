"""What PersistentVolume, PersistentVolumeClaim and StorageClass share: access modes, storage quantities,
volume modes, label selectors of claims, node affinity of volumes, and the matching of a claim to a volume
(used by the PV controller and the scheduler). Pure.

Names follow Kubernetes (``pkg/apis/core/validation``, ``pkg/controller/volume/persistentvolume``).
"""

from __future__ import annotations

from typing import Any

from protocol.fielderrors import Errors
from protocol.kinds.strategy import Field, as_dict, as_list, get_path
from protocol.objects import Obj, labels_of, meta, name_of, namespace_of
from protocol.quantity import QuantityError, memory_bytes
from protocol.selectors import from_label_selector

ACCESS_MODES = ("ReadWriteOnce", "ReadOnlyMany", "ReadWriteMany", "ReadWriteOncePod")
SHORT_MODES = {"ReadWriteOnce": "RWO", "ReadOnlyMany": "ROX", "ReadWriteMany": "RWX", "ReadWriteOncePod": "RWOP"}
VOLUME_MODES = ("Filesystem",)
"""``Block`` is Kubernetes' other mode; Shoal's kubelet mounts filesystems only, so it is refused."""
RECLAIM_POLICIES = ("Retain", "Delete")
"""``Recycle`` (deprecated in Kubernetes) is refused: nothing would scrub the volume."""
BINDING_MODES = ("Immediate", "WaitForFirstConsumer")
UNSET = "<unset>"

DEFAULT_CLASS_ANNOTATION = "storageclass.kubernetes.io/is-default-class"
BETA_DEFAULT_CLASS_ANNOTATION = "storageclass.beta.kubernetes.io/is-default-class"
SELECTED_NODE_ANNOTATION = "volume.kubernetes.io/selected-node"
PROVISIONER_ANNOTATION = "volume.kubernetes.io/storage-provisioner"
PROVISIONED_BY_ANNOTATION = "pv.kubernetes.io/provisioned-by"
BOUND_BY_CONTROLLER_ANNOTATION = "pv.kubernetes.io/bind-completed"
PV_PROTECTION_FINALIZER = "kubernetes.io/pv-protection"
PVC_PROTECTION_FINALIZER = "kubernetes.io/pvc-protection"

ACCESS_MODES_FIELD = Field("accessModes", "array", "How the volume may be mounted: ReadWriteOnce (one node), "
                           "ReadOnlyMany, ReadWriteMany, ReadWriteOncePod.",
                           items=Field("", "string", enum=ACCESS_MODES))
VOLUME_MODE_FIELD = Field("volumeMode", "string", "Filesystem (the default; Block is not supported).",
                          enum=VOLUME_MODES)


def access_modes_text(modes: Any) -> str:
    """kubectl's ``GetAccessModesAsString``: RWO,ROX,RWX,RWOP in that order, each once."""
    present = set(as_list(modes))
    return ",".join(SHORT_MODES[m] for m in ACCESS_MODES if m in present)


def is_default_class(sc: Obj) -> bool:
    annotations = as_dict(meta(sc).get("annotations"))
    return "true" in (annotations.get(DEFAULT_CLASS_ANNOTATION), annotations.get(BETA_DEFAULT_CLASS_ANNOTATION))


def storage_bytes(value: Any) -> int | None:
    """A storage quantity in bytes; None when absent or not a quantity."""
    if value is None or isinstance(value, bool) or not isinstance(value, str | int | float):
        return None
    try:
        return memory_bytes(value)
    except QuantityError:
        return None


def validate_storage(e: Errors, value: Any, path: str, *, required: bool = True) -> None:
    """A storage quantity (``10Gi``): present when required, a quantity, greater than zero."""
    if value is None:
        if required:
            e.add(path, "Required value")
        return
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        e.add(path, f"Invalid value: {value!r}: must be a quantity such as 1Gi")
        return
    try:
        amount = memory_bytes(value)
    except QuantityError as exc:
        e.add(path, f"Invalid value: {exc}")
        return
    if amount <= 0:
        e.add(path, "Invalid value: must be greater than zero")


def validate_access_modes(e: Errors, value: Any, path: str) -> None:
    if not e.check(value, path, list, required=True):
        return
    if not value:
        e.add(path, "Required value: at least 1 access mode is required")
    for i, mode in enumerate(value):
        if mode not in ACCESS_MODES:
            e.add(f"{path}[{i}]", f"Unsupported value: {mode!r}: supported values: {', '.join(ACCESS_MODES)}")
    if "ReadWriteOncePod" in value and len(value) > 1:
        e.add(path, "Forbidden: may not use ReadWriteOncePod with other access modes")


def validate_label_selector(e: Errors, value: Any, path: str) -> None:
    if e.check(value, path, dict):
        try:
            from_label_selector(value)
        except Exception as exc:
            e.add(path, str(exc))


_OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt")


def validate_node_selector_terms(e: Errors, value: Any, path: str) -> None:
    """``nodeSelectorTerms``: at least one term, each with matchExpressions/matchFields of known operators."""
    terms = e.items(value, path, required=True)
    if isinstance(value, list) and not value:
        e.add(path, "Required value: must have at least one node selector term")
    for tpath, term in terms:
        for field in ("matchExpressions", "matchFields"):
            for rpath, req in e.items(term.get(field), f"{tpath}.{field}"):
                e.check(req.get("key"), f"{rpath}.key", str, required=True)
                e.enum(req, "operator", f"{rpath}.operator", _OPERATORS)
                if req.get("operator") is None:
                    e.add(f"{rpath}.operator", "Required value")
                e.str_list(req.get("values"), f"{rpath}.values")


def node_affinity_terms(pv: Obj) -> list[Obj]:
    """The PV's ``spec.nodeAffinity.required.nodeSelectorTerms`` (empty: any node)."""
    return [t for t in as_list(get_path(pv, "spec", "nodeAffinity", "required", "nodeSelectorTerms"))
            if isinstance(t, dict)]


def node_affinity_to(node: str) -> Obj:
    """A PV's node affinity pinning it to ``node`` (by hostname label, as local-path-provisioner does)."""
    return {"required": {"nodeSelectorTerms": [{"matchExpressions": [
        {"key": "kubernetes.io/hostname", "operator": "In", "values": [node]}]}]}}


# -- claims and volumes -----------------------------------------------------------------------------------


def claim_class(pvc: Obj) -> str:
    return str(get_path(pvc, "spec", "storageClassName") or "")


def volume_class(pv: Obj) -> str:
    return str(get_path(pv, "spec", "storageClassName") or "")


def claim_request(pvc: Obj) -> int:
    return storage_bytes(get_path(pvc, "spec", "resources", "requests", "storage")) or 0


def volume_capacity(pv: Obj) -> int:
    return storage_bytes(get_path(pv, "spec", "capacity", "storage")) or 0


def claim_ref(claim: Obj) -> Obj:
    """A volume's ``claimRef`` to ``claim`` (with its uid: a re-created claim of that name is another one)."""
    return {"kind": "PersistentVolumeClaim", "namespace": namespace_of(claim) or "default", "name": name_of(claim),
            "uid": str(meta(claim).get("uid") or ""), "apiVersion": "v1"}


def claim_ref_matches(pv: Obj, pvc: Obj) -> bool:
    """The PV's claimRef names this claim (and, when it has a uid, this very claim)."""
    claim_ref = as_dict(get_path(pv, "spec", "claimRef"))
    if claim_ref.get("name") != name_of(pvc) or (claim_ref.get("namespace") or "") != (namespace_of(pvc) or ""):
        return False
    uid = claim_ref.get("uid")
    return not uid or uid == meta(pvc).get("uid")


def volume_fits(pv: Obj, pvc: Obj) -> bool:
    """Kubernetes' ``findMatchingVolume`` check of one volume: same class, the claim's access modes all
    offered, enough capacity, the claim's selector matching the volume's labels, same volume mode."""
    if volume_class(pv) != claim_class(pvc):
        return False
    if (get_path(pv, "spec", "volumeMode") or "Filesystem") != (get_path(pvc, "spec", "volumeMode") or "Filesystem"):
        return False
    offered = set(as_list(get_path(pv, "spec", "accessModes")))
    if not set(as_list(get_path(pvc, "spec", "accessModes"))) <= offered:
        return False
    if volume_capacity(pv) < claim_request(pvc):
        return False
    selector = get_path(pvc, "spec", "selector")
    if isinstance(selector, dict):
        try:
            if not from_label_selector(selector).matches(labels_of(pv)):
                return False
        except Exception:
            return False
    return True
