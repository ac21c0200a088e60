"""Pure decisions of the PV controller (Kubernetes' ``persistentvolume`` binder): which volume a claim binds
to, the phases of claims and volumes, and what happens to a volume whose claim is gone.

``plan_claim(claim, volumes, storage_class, node_labels)``
- an unbound claim (no ``spec.volumeName``) binds to a volume pre-bound to it (``claimRef``), else to the
  smallest Available volume that fits (class, access modes, capacity, selector, volume mode;
  ``protocol.kinds.storage.volume_fits``). A ``WaitForFirstConsumer`` class waits until the scheduler put
  ``volume.kubernetes.io/selected-node`` on the claim, and then only takes volumes that node can reach.
  When nothing fits and its class has a provisioner, the claim is annotated
  ``volume.kubernetes.io/storage-provisioner`` and waits for the volume it provisions;
- a claim naming its volume completes the binding (the volume's ``claimRef``, the claim's ``volumeName``,
  then the claim's status: Bound, with the volume's capacity and access modes, all in one pass); a Bound
  claim whose volume is gone, or bound to another claim, is Lost.

Protection (Kubernetes' pvc-protection and pv-protection controllers, folded in here): a claim being
deleted keeps its ``kubernetes.io/pvc-protection`` finalizer while a pod that is not finished uses it, so
its volume is not released under a running pod; a volume being deleted keeps ``kubernetes.io/pv-protection``
while it is Bound.

A Bound claim whose ``resources.requests.storage`` grew gets it when its class allows expansion and a
provisioner made its volume (the volume's capacity and the claim's status follow); else a warning event.

``plan_volume(volume, claim)``: a volume without a claim is Available; bound to its claim, Bound; whose
claim is gone (or was re-created, another uid), Released, and then by ``persistentVolumeReclaimPolicy``:
Retain keeps it Released (an administrator clears ``claimRef`` to reuse it), Delete leaves the deletion
to the provisioner that made it (the cloud controller manager for ``shoal.io/local-path``) and marks a
volume nobody provisioned Failed (no plugin can delete it), as Kubernetes does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from protocol.kinds.storage import (
    BOUND_BY_CONTROLLER_ANNOTATION,
    PROVISIONED_BY_ANNOTATION,
    PROVISIONER_ANNOTATION,
    PV_PROTECTION_FINALIZER,
    PVC_PROTECTION_FINALIZER,
    SELECTED_NODE_ANNOTATION,
    claim_class,
    claim_ref,
    claim_ref_matches,
    claim_request,
    node_affinity_terms,
    volume_capacity,
    volume_fits,
)
from protocol.kinds.strategy import as_dict, as_list, get_path
from protocol.objects import Obj, is_deleting, meta, name_of

BOUND_BY_CONTROLLER = "pv.kubernetes.io/bound-by-controller"


@dataclass(frozen=True, slots=True)
class BindVolume:
    """Write ``claimRef`` on the volume (``volume`` is the changed object)."""

    volume: Obj


@dataclass(frozen=True, slots=True)
class UpdateClaim:
    """Write the claim's metadata/spec (``volumeName``, annotations)."""

    claim: Obj


@dataclass(frozen=True, slots=True)
class ClaimStatus:
    claim: Obj
    phase: str
    capacity: str | None = None
    access_modes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class VolumeStatus:
    volume: Obj
    phase: str
    reason: str = ""
    message: str = ""


@dataclass(frozen=True, slots=True)
class Event:
    obj: Obj
    type: str
    reason: str
    message: str


@dataclass(frozen=True, slots=True)
class RemoveFinalizer:
    obj: Obj
    finalizer: str


Action = BindVolume | UpdateClaim | ClaimStatus | VolumeStatus | Event | RemoveFinalizer


def _release_finalizer(obj: Obj, finalizer: str, held: bool) -> list[Action]:
    return [] if held or finalizer not in as_list(meta(obj).get("finalizers")) else [RemoveFinalizer(obj, finalizer)]


def _phase(obj: Obj) -> str:
    return str(get_path(obj, "status", "phase") or "")


def node_reaches(volume: Obj, node_labels: Mapping[str, str] | None, node: str) -> bool:
    """Whether a node (its labels; ``kubernetes.io/hostname`` and ``metadata.name`` default to its name) satisfies
    the volume's node affinity: any term whose every requirement holds."""
    terms = node_affinity_terms(volume)
    if not terms:
        return True
    labels = {"kubernetes.io/hostname": node, **(node_labels or {})}
    for term in terms:
        ok = True
        for field, values in (("matchExpressions", labels), ("matchFields", {"metadata.name": node})):
            for req in as_list(term.get(field)):
                if not _requirement(as_dict(req), values):
                    ok = False
        if ok and (term.get("matchExpressions") or term.get("matchFields")):
            return True
    return False


def _requirement(req: Obj, labels: Mapping[str, str]) -> bool:
    value = labels.get(str(req.get("key")))
    values = [str(v) for v in as_list(req.get("values"))]
    op = req.get("operator")
    if op == "In":
        return value is not None and value in values
    if op == "NotIn":
        return value is None or value not in values
    if op == "Exists":
        return value is not None
    if op == "DoesNotExist":
        return value is None
    if op in ("Gt", "Lt") and value is not None and len(values) == 1:
        try:
            return int(value) > int(values[0]) if op == "Gt" else int(value) < int(values[0])
        except ValueError:
            return False
    return False


def find_volume(claim: Obj, volumes: Sequence[Obj], node: str | None = None,
                node_labels: Mapping[str, str] | None = None) -> Obj | None:
    """The volume a claim should bind to: one pre-bound to it, else the smallest Available one that fits
    (reachable from ``node`` when given)."""
    best: Obj | None = None
    for volume in volumes:
        if is_deleting(volume) or (node is not None and not node_reaches(volume, node_labels, node)):
            continue
        ref = get_path(volume, "spec", "claimRef")
        if ref:
            if claim_ref_matches(volume, claim) and volume_fits(volume, claim):
                return volume
            continue
        if _phase(volume) not in ("Available", "Pending", "") or not volume_fits(volume, claim):
            continue
        if best is None or (volume_capacity(volume), name_of(volume)) < (volume_capacity(best), name_of(best)):
            best = volume
    return best


def _bind(volume: Obj, claim: Obj) -> list[Action]:
    """Bind the volume to the claim (its side first, as Kubernetes: the claim then names the volume)."""
    actions: list[Action] = []
    if not claim_ref_matches(volume, claim) or not get_path(volume, "spec", "claimRef", "uid"):
        bound = {**volume, "spec": {**as_dict(volume.get("spec")), "claimRef": claim_ref(claim)},
                 "metadata": {**meta(volume), "annotations": {**as_dict(meta(volume).get("annotations")),
                                                              BOUND_BY_CONTROLLER: "yes"}}}
        actions.append(BindVolume(bound))
    annotations = as_dict(meta(claim).get("annotations"))
    if get_path(claim, "spec", "volumeName") != name_of(volume) or BOUND_BY_CONTROLLER_ANNOTATION not in annotations:
        updated = {**claim, "spec": {**as_dict(claim.get("spec")), "volumeName": name_of(volume)},
                   "metadata": {**meta(claim), "annotations": {**annotations, BOUND_BY_CONTROLLER_ANNOTATION: "yes"}}}
        actions.append(UpdateClaim(updated))
    return actions


def plan_claim(claim: Obj | None, volumes: Sequence[Obj], storage_class: Obj | None,
               node_labels: Mapping[str, str] | None = None, in_use: bool = False) -> list[Action]:
    """What to do for one claim (see the module docstring); ``storage_class`` is its class (None: none or
    not found), ``node_labels`` the labels of the node the scheduler selected for it, if any, ``in_use``
    whether a pod that is not finished mounts it."""
    if claim is None:
        return []
    if is_deleting(claim):
        return _release_finalizer(claim, PVC_PROTECTION_FINALIZER, in_use)
    volume_name = get_path(claim, "spec", "volumeName")
    if volume_name:
        volume = next((v for v in volumes if name_of(v) == volume_name), None)
        if volume is None or (get_path(volume, "spec", "claimRef") and not claim_ref_matches(volume, claim)):
            if _phase(claim) == "Bound":
                why = "has been deleted" if volume is None else "is bound to another claim"
                return [ClaimStatus(claim, "Lost"),
                        Event(claim, "Warning", "ClaimLost", f"Bound claim has lost its PersistentVolume. Data on the "
                                                             f"volume is lost! (volume {volume_name} {why})")]
            return []
        actions = _bind(volume, claim)
        if _phase(claim) == "Bound" and claim_request(claim) > volume_capacity(volume):
            return actions + _expand(claim, volume, storage_class)
        return actions + _claim_bound(claim, volume)
    binding_mode = (storage_class or {}).get("volumeBindingMode") or "Immediate"
    node = as_dict(meta(claim).get("annotations")).get(SELECTED_NODE_ANNOTATION)
    if binding_mode == "WaitForFirstConsumer" and not node:
        return [Event(claim, "Normal", "WaitForFirstConsumer",
                      "waiting for first consumer to be created before binding")]
    volume = find_volume(claim, volumes, node if binding_mode == "WaitForFirstConsumer" else None, node_labels)
    if volume is not None:
        return _bind(volume, claim) + _claim_bound(claim, volume)
    provisioner = str((storage_class or {}).get("provisioner") or "")
    if provisioner and provisioner != "kubernetes.io/no-provisioner":
        annotations = as_dict(meta(claim).get("annotations"))
        waiting: list[Action] = [Event(claim, "Normal", "ExternalProvisioning",
                                       f"Waiting for a volume to be created either by the external provisioner "
                                       f"'{provisioner}' or manually by the system administrator. If volume "
                                       "creation is delayed, please verify that the provisioner is running and "
                                       "correctly registered.")]
        if annotations.get(PROVISIONER_ANNOTATION) != provisioner:
            waiting.insert(0, UpdateClaim({**claim, "metadata": {**meta(claim), "annotations": {
                **annotations, PROVISIONER_ANNOTATION: provisioner}}}))
        return waiting
    why = ("no storage class is set" if not claim_class(claim)
           else f'storageclass.storage.k8s.io "{claim_class(claim)}" not found' if storage_class is None
           else "the storage class has no provisioner")
    return [Event(claim, "Normal", "FailedBinding", f"no persistent volumes available for this claim and {why}")]


def _expand(claim: Obj, volume: Obj, storage_class: Obj | None) -> list[Action]:
    """A Bound claim asking for more: a volume its class provisioned and allows to grow gets the new size (the
    local provider's directories hold no quota: the size is the claim's and the volume's record of it);
    otherwise a warning, once, as Kubernetes' admission would have refused it."""
    request = get_path(claim, "spec", "resources", "requests", "storage")
    provisioned = as_dict(meta(volume).get("annotations")).get(PROVISIONED_BY_ANNOTATION)
    if not (storage_class or {}).get("allowVolumeExpansion") or not provisioned:
        why = (f'storageclass "{claim_class(claim)}" does not allow volume expansion' if provisioned
               else "only dynamically provisioned claims can be resized")
        return [Event(claim, "Warning", "VolumeResizeFailed", f"cannot expand to {request}: {why}")]
    resized = {**volume, "spec": {**as_dict(volume.get("spec")), "capacity": {"storage": request}}}
    modes = tuple(str(m) for m in as_list(get_path(volume, "spec", "accessModes")))
    return [BindVolume(resized), ClaimStatus(claim, "Bound", str(request), modes),
            Event(claim, "Normal", "VolumeResizeSuccessful", f"resized to {request}")]


def _claim_bound(claim: Obj, volume: Obj) -> list[Action]:
    capacity = get_path(volume, "spec", "capacity", "storage")
    modes = tuple(str(m) for m in as_list(get_path(volume, "spec", "accessModes")))
    status = as_dict(claim.get("status"))
    if (status.get("phase") == "Bound" and get_path(status, "capacity", "storage") == capacity
            and tuple(as_list(status.get("accessModes"))) == modes):
        return []
    return [ClaimStatus(claim, "Bound", str(capacity) if capacity is not None else None, modes)]


def plan_volume(volume: Obj | None, claim: Obj | None) -> list[Action]:
    """What to do for one volume, given the claim its ``claimRef`` names (None: no such claim)."""
    if volume is None:
        return []
    phase = _phase(volume)
    if is_deleting(volume):
        bound = phase == "Bound" and claim is not None and claim_ref_matches(volume, claim)
        return _release_finalizer(volume, PV_PROTECTION_FINALIZER, bound)
    ref = as_dict(get_path(volume, "spec", "claimRef"))
    if not ref.get("name"):
        return [] if phase == "Available" else [VolumeStatus(volume, "Available")]
    if claim is None or not claim_ref_matches(volume, claim):
        if not ref.get("uid"):  # pre-bound by an administrator to a claim not created yet
            return [] if phase == "Available" else [VolumeStatus(volume, "Available")]
        if phase == "Failed":
            return []
        policy = get_path(volume, "spec", "persistentVolumeReclaimPolicy") or "Retain"
        provisioned_by = as_dict(meta(volume).get("annotations")).get(PROVISIONED_BY_ANNOTATION)
        if policy == "Delete" and not provisioned_by:
            message = f'error getting deleter volume plugin for volume "{name_of(volume)}": no deletable volume ' \
                      "plugin matched"
            return [VolumeStatus(volume, "Failed", "VolumeFailedDelete", message),
                    Event(volume, "Warning", "VolumeFailedDelete", message)]
        return [] if phase == "Released" else [VolumeStatus(volume, "Released")]
    if get_path(claim, "spec", "volumeName") == name_of(volume):
        return [] if phase == "Bound" else [VolumeStatus(volume, "Bound")]
    if get_path(claim, "spec", "volumeName"):  # the claim went to another volume: give this one back
        if as_dict(meta(volume).get("annotations")).get(BOUND_BY_CONTROLLER):
            spec = {k: v for k, v in as_dict(volume.get("spec")).items() if k != "claimRef"}
            return [BindVolume({**volume, "spec": spec})]
        return []
    return []  # the claim side completes the binding
