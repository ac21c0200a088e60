"""PersistentVolume (v1, cluster-scoped, ``pv``): a piece of storage, made by an administrator or provisioned
for a claim. Shoal's kubelet mounts ``hostPath`` and ``local`` volumes (a node directory); a ``local``
volume needs ``nodeAffinity``. ``claimRef`` names the claim it is bound (or reserved) to; the PV controller
moves ``status.phase`` through Pending, Available, Bound, Released and Failed."""

from __future__ import annotations

import posixpath
from typing import Any

from protocol.fielderrors import Errors
from protocol.kinds.storage import (
    ACCESS_MODES_FIELD,
    PV_PROTECTION_FINALIZER,
    RECLAIM_POLICIES,
    UNSET,
    VOLUME_MODE_FIELD,
    VOLUME_MODES,
    access_modes_text,
    validate_access_modes,
    validate_node_selector_terms,
    validate_storage,
)
from protocol.kinds.strategy import AGE, NAME, Column, Field, KindInfo, Strategy, as_dict, get_path
from protocol.objects import Obj, meta

INFO = KindInfo("PersistentVolume", "v1", "persistentvolumes", "persistentvolume", ("pv",), namespaced=False,
                subresources=frozenset({"status"}))
PHASES = ("Pending", "Available", "Bound", "Released", "Failed")
SOURCES = ("hostPath", "local")
HOST_PATH_TYPES = ("", "DirectoryOrCreate", "Directory")
IMMUTABLE = ("hostPath", "local", "volumeMode", "nodeAffinity")


def source_path(pv: Obj) -> str:
    """The node directory the volume is (hostPath or local path); "" when it has none."""
    spec = as_dict(pv.get("spec"))
    for source in SOURCES:
        path = as_dict(spec.get(source)).get("path")
        if isinstance(path, str) and path:
            return path
    return ""


def _default(obj: Obj) -> None:
    spec = obj.get("spec")
    if isinstance(spec, dict):
        spec.setdefault("persistentVolumeReclaimPolicy", "Retain")
        spec.setdefault("volumeMode", "Filesystem")


def _admit_new(obj: Obj) -> None:
    """The protection finalizer (removed by the PV controller once nothing uses the object)."""
    finalizers = meta(obj).setdefault("finalizers", [])
    if isinstance(finalizers, list) and PV_PROTECTION_FINALIZER not in finalizers:
        finalizers.append(PV_PROTECTION_FINALIZER)


def _create_status(obj: Obj) -> None:
    obj["status"] = {"phase": "Pending"}


def _validate(e: Errors, obj: Obj) -> None:
    if not e.check(obj.get("spec"), "spec", dict, required=True):
        return
    spec: Any = obj["spec"]
    capacity = spec.get("capacity")
    if e.check(capacity, "spec.capacity", dict, required=True):
        validate_storage(e, capacity.get("storage"), "spec.capacity.storage")
        for key in capacity:
            if key != "storage":
                e.add(f"spec.capacity[{key}]", "Unsupported value: only storage may be given")
    validate_access_modes(e, spec.get("accessModes"), "spec.accessModes")
    e.enum(spec, "persistentVolumeReclaimPolicy", "spec.persistentVolumeReclaimPolicy", RECLAIM_POLICIES)
    e.enum(spec, "volumeMode", "spec.volumeMode", VOLUME_MODES)
    e.check(spec.get("storageClassName"), "spec.storageClassName", str)
    e.str_list(spec.get("mountOptions"), "spec.mountOptions")
    if spec.get("mountOptions"):
        e.add("spec.mountOptions", "Forbidden: Shoal's volumes are bind mounts of node directories and take no "
                                   "mount options")
    sources = [s for s in spec if s in SOURCES]
    others = [s for s in spec if s not in SOURCES and s not in _KNOWN]
    if others:
        e.add(f"spec.{others[0]}", "Unsupported value: Shoal mounts hostPath and local persistent volumes")
    elif len(sources) != 1:
        e.add("spec", "Required value: exactly one volume source (hostPath or local) must be given")
    for source in sources:
        s = spec.get(source)
        if e.check(s, f"spec.{source}", dict, required=True):
            path = s.get("path")
            if e.check(path, f"spec.{source}.path", str, required=True) and not posixpath.isabs(path):
                e.add(f"spec.{source}.path", f"Invalid value: {path!r}: must be an absolute path")
            if source == "hostPath" and s.get("type") not in (None, *HOST_PATH_TYPES):
                e.add("spec.hostPath.type", f"Unsupported value: {s.get('type')!r}: supported values: "
                                            "Directory, DirectoryOrCreate")
    affinity = spec.get("nodeAffinity")
    if e.check(affinity, "spec.nodeAffinity", dict) and e.check(
            affinity.get("required"), "spec.nodeAffinity.required", dict, required=True):
        validate_node_selector_terms(e, affinity["required"].get("nodeSelectorTerms"),
                                     "spec.nodeAffinity.required.nodeSelectorTerms")
    if "local" in sources and affinity is None:
        e.add("spec.nodeAffinity", "Required value: Local volume requires node affinity")
    claim_ref = spec.get("claimRef")
    if e.check(claim_ref, "spec.claimRef", dict):
        e.check(claim_ref.get("name"), "spec.claimRef.name", str, required=True)
        e.check(claim_ref.get("namespace"), "spec.claimRef.namespace", str, required=True)
        e.check(claim_ref.get("uid"), "spec.claimRef.uid", str)
    status = obj.get("status")
    if isinstance(status, dict) and status.get("phase") is not None:
        e.enum(status, "phase", "status.phase", PHASES)


_KNOWN = frozenset({"capacity", "accessModes", "persistentVolumeReclaimPolicy", "volumeMode", "storageClassName",
                    "mountOptions", "nodeAffinity", "claimRef", "volumeAttributesClassName"})


def _validate_update(e: Errors, new: Obj, old: Obj) -> None:
    for field in IMMUTABLE:
        if get_path(new, "spec", field) != get_path(old, "spec", field) and get_path(old, "spec", field) is not None:
            e.add(f"spec.{field}", "Invalid value: field is immutable")


def phase_of(pv: Obj) -> str:
    if meta(pv).get("deletionTimestamp"):
        return "Terminating"
    return str(get_path(pv, "status", "phase") or "")


def _claim(pv: Obj) -> str:
    ref = as_dict(get_path(pv, "spec", "claimRef"))
    return f"{ref.get('namespace')}/{ref.get('name')}" if ref.get("name") else ""


STRATEGY = Strategy(
    INFO, description="Storage in the cluster, provisioned by an administrator or by a StorageClass.",
    schema=(
        Field("spec", "object", "What the volume is.", required=True, fields=(
            Field("capacity", "object", "Its size: storage (a quantity such as 10Gi).", required=True,
                  fields=(Field("storage", "string"),)),
            ACCESS_MODES_FIELD,
            Field("persistentVolumeReclaimPolicy", "string", "What happens when its claim goes: Retain "
                  "(default; the volume becomes Released) or Delete.", enum=RECLAIM_POLICIES),
            Field("storageClassName", "string", "The class it belongs to (\"\": none)."),
            VOLUME_MODE_FIELD,
            Field("hostPath", "object", "A directory of the node.", fields=(
                Field("path", "string", required=True),
                Field("type", "string", enum=("Directory", "DirectoryOrCreate")))),
            Field("local", "object", "A local directory of one node (needs nodeAffinity).", fields=(
                Field("path", "string", required=True),)),
            Field("nodeAffinity", "object", "The nodes the volume can be reached from.", fields=(
                Field("required", "object", fields=(Field("nodeSelectorTerms", "array",
                                                          items=Field("", "object")),)),)),
            Field("claimRef", "object", "The claim bound (or reserved) to it.", fields=(
                Field("namespace", "string"), Field("name", "string"), Field("uid", "string"))),
        )),
        Field("status", "object", "Its phase: Pending, Available, Bound, Released, Failed.", fields=(
            Field("phase", "string", enum=PHASES), Field("reason", "string"), Field("message", "string"))),
    ),
    columns=(
        NAME,
        Column("CAPACITY", lambda o, now: str(get_path(o, "spec", "capacity", "storage") or ""),
               description="The volume's size."),
        Column("ACCESS MODES", lambda o, now: access_modes_text(get_path(o, "spec", "accessModes"))),
        Column("RECLAIM POLICY", lambda o, now: str(get_path(o, "spec", "persistentVolumeReclaimPolicy") or "")),
        Column("STATUS", lambda o, now: phase_of(o)),
        Column("CLAIM", lambda o, now: _claim(o)),
        Column("STORAGECLASS", lambda o, now: str(get_path(o, "spec", "storageClassName") or "")),
        Column("VOLUMEATTRIBUTESCLASS",
               lambda o, now: str(get_path(o, "spec", "volumeAttributesClassName") or UNSET)),
        Column("REASON", lambda o, now: str(get_path(o, "status", "reason") or "")),
        AGE,
        Column("VOLUMEMODE", lambda o, now: str(get_path(o, "spec", "volumeMode") or UNSET), priority=1),
    ),
    default=_default, admit_new=_admit_new, create_status=_create_status, validate=_validate,
    validate_update=_validate_update,
)
