"""PersistentVolumeClaim (v1, ``pvc``): a pod's request for storage of a class, a size and access modes.

The PV controller binds it to a matching PersistentVolume (``spec.volumeName``, phase Bound), or the
cloud controller manager provisions one for it (``WaitForFirstConsumer`` classes: once the scheduler
chose a node, ``volume.kubernetes.io/selected-node``). Its spec is immutable after creation except
``resources.requests`` (which may only grow, on a bound claim), the ``volumeName`` a binder sets and a
``storageClassName`` set where none was (as Kubernetes allows)."""

from __future__ import annotations

from typing import Any

from protocol.fielderrors import Errors
from protocol.kinds.storage import (
    ACCESS_MODES_FIELD,
    PVC_PROTECTION_FINALIZER,
    UNSET,
    VOLUME_MODE_FIELD,
    VOLUME_MODES,
    access_modes_text,
    storage_bytes,
    validate_access_modes,
    validate_label_selector,
    validate_storage,
)
from protocol.kinds.strategy import AGE, NAME, Column, Field, KindInfo, Strategy, as_dict, get_path
from protocol.objects import Obj, meta

INFO = KindInfo("PersistentVolumeClaim", "v1", "persistentvolumeclaims", "persistentvolumeclaim", ("pvc",),
                subresources=frozenset({"status"}))
PHASES = ("Pending", "Bound", "Lost")
_KNOWN = frozenset({"accessModes", "resources", "storageClassName", "volumeName", "volumeMode", "selector",
                    "volumeAttributesClassName"})
IMMUTABLE_MESSAGE = ("Forbidden: spec is immutable after creation except resources.requests (which may only "
                     "grow) and volumeAttributesClassName for bound claims")


def _default(obj: Obj) -> None:
    spec = obj.get("spec")
    if isinstance(spec, dict):
        spec.setdefault("volumeMode", "Filesystem")


def _admit_new(obj: Obj) -> None:
    """The protection finalizer (removed by the PV controller once nothing uses the object)."""
    finalizers = meta(obj).setdefault("finalizers", [])
    if isinstance(finalizers, list) and PVC_PROTECTION_FINALIZER not in finalizers:
        finalizers.append(PVC_PROTECTION_FINALIZER)


def _create_status(obj: Obj) -> None:
    obj["status"] = {"phase": "Pending"}


def _validate(e: Errors, obj: Obj) -> None:
    if not e.check(obj.get("spec"), "spec", dict, required=True):
        return
    spec: Any = obj["spec"]
    for key in spec:
        if key not in _KNOWN:
            what = "dataSource (cloning, snapshots)" if key.startswith("dataSource") else key
            e.add(f"spec.{key}", f"Unsupported value: Shoal does not support {what} for claims")
    validate_access_modes(e, spec.get("accessModes"), "spec.accessModes")
    resources = spec.get("resources")
    if e.check(resources, "spec.resources", dict, required=True):
        requests = resources.get("requests")
        if e.check(requests, "spec.resources.requests", dict, required=True):
            validate_storage(e, requests.get("storage"), "spec.resources.requests[storage]")
        limits = resources.get("limits")
        if e.check(limits, "spec.resources.limits", dict) and limits.get("storage") is not None:
            validate_storage(e, limits.get("storage"), "spec.resources.limits[storage]")
    e.check(spec.get("storageClassName"), "spec.storageClassName", str)
    e.check(spec.get("volumeName"), "spec.volumeName", str)
    e.enum(spec, "volumeMode", "spec.volumeMode", VOLUME_MODES)
    validate_label_selector(e, spec.get("selector"), "spec.selector")
    status = obj.get("status")
    if isinstance(status, dict) and status.get("phase") is not None:
        e.enum(status, "phase", "status.phase", PHASES)


def _validate_update(e: Errors, new: Obj, old: Obj) -> None:
    new_spec, old_spec = dict(as_dict(new.get("spec"))), dict(as_dict(old.get("spec")))
    new_storage = storage_bytes(get_path(new_spec, "resources", "requests", "storage")) or 0
    old_storage = storage_bytes(get_path(old_spec, "resources", "requests", "storage")) or 0
    if new_storage < old_storage:
        e.add("spec.resources.requests.storage", "Forbidden: field can not be less than status.capacity")
    elif new_storage > old_storage and get_path(old, "status", "phase") != "Bound":
        e.add("spec.resources.requests.storage", "Forbidden: only bound claims can be expanded")
    for spec in (new_spec, old_spec):
        spec.pop("resources", None)
        spec.pop("volumeAttributesClassName", None)
    if not old_spec.get("volumeName"):  # a binder sets it once
        new_spec.pop("volumeName", None)
        old_spec.pop("volumeName", None)
    if old_spec.get("storageClassName") is None:  # a class may be given where none was
        new_spec.pop("storageClassName", None)
        old_spec.pop("storageClassName", None)
    if new_spec != old_spec:
        e.add("spec", IMMUTABLE_MESSAGE)


def phase_of(pvc: Obj) -> str:
    if meta(pvc).get("deletionTimestamp"):
        return "Terminating"
    return str(get_path(pvc, "status", "phase") or "")


def _bound(pvc: Obj, value: str) -> str:
    return value if get_path(pvc, "spec", "volumeName") else ""


STRATEGY = Strategy(
    INFO, description="A request for storage, bound to a PersistentVolume.",
    schema=(
        Field("spec", "object", "What is asked for.", required=True, fields=(
            ACCESS_MODES_FIELD,
            Field("resources", "object", "requests.storage: the size asked for.", required=True, fields=(
                Field("requests", "object", fields=(Field("storage", "string"),)),
                Field("limits", "object", fields=(Field("storage", "string"),)))),
            Field("storageClassName", "string", "The class to bind or provision from (absent: the default "
                                                "class; \"\": only volumes without a class)."),
            Field("volumeName", "string", "The volume it is (to be) bound to."),
            Field("selector", "object", "Labels the volume must have."),
            VOLUME_MODE_FIELD,
        )),
        Field("status", "object", "Phase (Pending, Bound, Lost), capacity and access modes of the bound volume.",
              fields=(Field("phase", "string", enum=PHASES), Field("capacity", "object"),
                      Field("accessModes", "array", items=Field("", "string")))),
    ),
    columns=(
        NAME,
        Column("STATUS", lambda o, now: phase_of(o)),
        Column("VOLUME", lambda o, now: str(get_path(o, "spec", "volumeName") or "")),
        Column("CAPACITY", lambda o, now: _bound(o, str(get_path(o, "status", "capacity", "storage") or ""))),
        Column("ACCESS MODES", lambda o, now: _bound(o, access_modes_text(get_path(o, "status", "accessModes")))),
        Column("STORAGECLASS", lambda o, now: str(get_path(o, "spec", "storageClassName") or "")),
        Column("VOLUMEATTRIBUTESCLASS",
               lambda o, now: str(get_path(o, "spec", "volumeAttributesClassName") or UNSET)),
        AGE,
        Column("VOLUMEMODE", lambda o, now: str(get_path(o, "spec", "volumeMode") or UNSET), priority=1),
    ),
    default=_default, admit_new=_admit_new, create_status=_create_status, validate=_validate,
    validate_update=_validate_update,
)
