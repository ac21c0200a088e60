"""Pure decisions of the cloud volume controller: dynamic provisioning and deletion of the volumes of the
provider's StorageClasses (what Kubernetes' external-provisioner sidecar does for a CSI driver).

``plan_claim(claim, storage_class, provisioner, volume_exists)``: an unbound claim of a class this
provider provisions gets a volume: at once for ``Immediate`` classes, once the scheduler set
``volume.kubernetes.io/selected-node`` for ``WaitForFirstConsumer`` ones (the volume is then made on, and
pinned to, that node). The PersistentVolume is named ``pvc-<claim uid>``, so a provisioning repeated
after a crash or a stale cache finds the one already made; it is created pre-bound to the claim
(``claimRef`` with the claim's uid) and the PV controller completes the binding.

``plan_volume(volume, provisioner)``: a Released volume this provider made whose reclaim policy is Delete
is deleted: first the provider's storage, then the PersistentVolume.
"""

from __future__ import annotations

from dataclasses import dataclass

from actors.cloud.provider import VolumeRequest
from protocol.kinds.storage import PROVISIONED_BY_ANNOTATION, SELECTED_NODE_ANNOTATION, claim_ref, claim_request
from protocol.kinds.strategy import as_dict, get_path
from protocol.objects import Obj, is_deleting, meta, name_of, namespace_of, uid_of


@dataclass(frozen=True, slots=True)
class Provision:
    request: VolumeRequest
    volume: Obj
    """The PersistentVolume to create once the provider made the storage (its source filled in then)."""


@dataclass(frozen=True, slots=True)
class Delete:
    volume: Obj


def volume_name(claim: Obj) -> str:
    return f"pvc-{uid_of(claim)}"


def plan_claim(claim: Obj | None, storage_class: Obj | None, provisioner: str, volume_exists: bool) -> list[Provision]:
    if (claim is None or storage_class is None or not provisioner or is_deleting(claim) or volume_exists
            or storage_class.get("provisioner") != provisioner or get_path(claim, "spec", "volumeName")):
        return []
    node = as_dict(meta(claim).get("annotations")).get(SELECTED_NODE_ANNOTATION)
    if storage_class.get("volumeBindingMode") == "WaitForFirstConsumer" and not node:
        return []
    spec = as_dict(claim.get("spec"))
    parameters = tuple(sorted((str(k), str(v)) for k, v in as_dict(storage_class.get("parameters")).items()))
    request = VolumeRequest(volume_name(claim), namespace_of(claim) or "default", name_of(claim),
                            claim_request(claim), parameters, str(node) if node else None)
    volume: Obj = {
        "apiVersion": "v1", "kind": "PersistentVolume",
        "metadata": {"name": request.name, "annotations": {PROVISIONED_BY_ANNOTATION: provisioner}},
        "spec": {"capacity": {"storage": get_path(spec, "resources", "requests", "storage")},
                 "accessModes": list(spec.get("accessModes") or []),
                 "persistentVolumeReclaimPolicy": storage_class.get("reclaimPolicy") or "Delete",
                 "storageClassName": name_of(storage_class),
                 "volumeMode": spec.get("volumeMode") or "Filesystem",
                 "claimRef": claim_ref(claim)},
    }
    return [Provision(request, volume)]


def plan_volume(volume: Obj | None, provisioner: str) -> list[Delete]:
    if volume is None or not provisioner or is_deleting(volume):
        return []
    if as_dict(meta(volume).get("annotations")).get(PROVISIONED_BY_ANNOTATION) != provisioner:
        return []
    if get_path(volume, "status", "phase") != "Released":
        return []
    if (get_path(volume, "spec", "persistentVolumeReclaimPolicy") or "Retain") != "Delete":
        return []
    return [Delete(volume)]
