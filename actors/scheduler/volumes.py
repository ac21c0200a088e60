"""The scheduler's view of a pod's PersistentVolumeClaims (the PreFilter half of kube-scheduler's
VolumeBinding plugin), pure: given lookups of claims, volumes and classes, what the pod needs.

- a claim that does not exist, or is being deleted, keeps the pod Pending (``persistentvolumeclaim "x" not
  found``, Kubernetes' wording), as does an unbound claim of an ``Immediate`` class (the PV controller
  binds it first);
- a bound claim's volume brings its node affinity: ``PodInfo.volume_terms``, checked per node by the
  ``VolumeBinding`` filter (a pod whose claim is bound to node A only goes to A);
- a ``ReadWriteOncePod`` claim another pod already uses keeps the pod Pending (the VolumeRestrictions
  plugin's rule);
- an unbound claim of a ``WaitForFirstConsumer`` class is placed normally, and once a node is chosen the
  scheduler marks the claim with ``volume.kubernetes.io/selected-node`` and waits for it to be bound (the
  provisioner makes the volume on that node) before it binds the pod.

Pods without claims never come here (``PodInfo.claims`` is empty): the hot path pays nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from actors.scheduler.model import NodeSelectorTerm, PodInfo, selector_terms
from protocol.kinds.storage import claim_class, node_affinity_terms
from protocol.kinds.strategy import get_path
from protocol.objects import Obj, is_deleting

Lookup = Callable[[str], Obj | None]
InUse = Callable[[str], bool]
"""``namespace/claim`` -> does another pod (bound or assumed) use it?"""
RWOP_CONFLICT = "node has pod using PersistentVolumeClaim with the same name and ReadWriteOncePod access mode"


@dataclass(frozen=True, slots=True)
class ClaimsReady:
    info: PodInfo
    """The pod with ``volume_terms`` filled in."""
    to_select: tuple[str, ...] = ()
    """Unbound WaitForFirstConsumer claims: to mark with the chosen node, then wait for."""


@dataclass(frozen=True, slots=True)
class ClaimsBlocked:
    message: str


def check_claims(info: PodInfo, namespace: str, claims: Lookup, volumes: Lookup,
                 classes: Lookup, in_use: InUse | None = None) -> ClaimsReady | ClaimsBlocked:
    """What the pod's claims ask of its placement (lookups by ``namespace/name`` for claims, by name for
    volumes and classes; ``in_use`` asked only for ReadWriteOncePod claims)."""
    terms: list[tuple[NodeSelectorTerm, ...]] = []
    to_select: list[str] = []
    unbound_immediate = False
    for name in info.claims:
        claim = claims(f"{namespace}/{name}")
        if claim is None:
            return ClaimsBlocked(f'persistentvolumeclaim "{name}" not found')
        if is_deleting(claim):
            return ClaimsBlocked(f'persistentvolumeclaim "{name}" is being deleted')
        if "ReadWriteOncePod" in (get_path(claim, "spec", "accessModes") or ()) and in_use is not None \
                and in_use(f"{namespace}/{name}"):
            return ClaimsBlocked(RWOP_CONFLICT)
        volume_name = get_path(claim, "spec", "volumeName")
        if volume_name:
            volume = volumes(str(volume_name))
            if volume is None:
                return ClaimsBlocked(f'persistentvolume "{volume_name}" not found')
            affinity = node_affinity_terms(volume)
            if affinity:
                terms.append(selector_terms(affinity))
            continue
        klass = classes(claim_class(claim)) if claim_class(claim) else None
        if klass is not None and klass.get("volumeBindingMode") == "WaitForFirstConsumer":
            to_select.append(name)
        else:
            unbound_immediate = True
    if unbound_immediate:
        return ClaimsBlocked("pod has unbound immediate PersistentVolumeClaims")
    return ClaimsReady(replace(info, volume_terms=tuple(terms)), tuple(to_select))
