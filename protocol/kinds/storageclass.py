"""StorageClass (storage.k8s.io/v1, cluster-scoped, ``sc``): how volumes of a class are provisioned.
No spec: ``provisioner``, ``parameters``, ``reclaimPolicy`` (default Delete), ``volumeBindingMode``
(default Immediate) and ``allowVolumeExpansion`` are top-level. The class annotated
``storageclass.kubernetes.io/is-default-class: "true"`` is given to claims that name none."""

from __future__ import annotations

from protocol.fielderrors import Errors
from protocol.kinds.storage import BINDING_MODES, RECLAIM_POLICIES, is_default_class
from protocol.kinds.strategy import AGE, Column, Field, KindInfo, Strategy, string_map
from protocol.objects import Obj, name_of

INFO = KindInfo("StorageClass", "storage.k8s.io/v1", "storageclasses", "storageclass", ("sc",), namespaced=False)
IMMUTABLE = ("provisioner", "parameters", "reclaimPolicy", "volumeBindingMode")


def _default(obj: Obj) -> None:
    obj.setdefault("reclaimPolicy", "Delete")
    obj.setdefault("volumeBindingMode", "Immediate")


def _validate(e: Errors, obj: Obj) -> None:
    e.check(obj.get("provisioner"), "provisioner", str, required=True)
    e.string_map(obj.get("parameters"), "parameters")
    e.enum(obj, "reclaimPolicy", "reclaimPolicy", RECLAIM_POLICIES)
    e.enum(obj, "volumeBindingMode", "volumeBindingMode", BINDING_MODES)
    e.check(obj.get("allowVolumeExpansion"), "allowVolumeExpansion", bool)
    e.str_list(obj.get("mountOptions"), "mountOptions")
    if obj.get("mountOptions"):
        e.add("mountOptions", "Forbidden: Shoal's volumes are bind mounts and take no mount options")
    if obj.get("allowedTopologies") is not None:
        e.add("allowedTopologies", "Unsupported value: Shoal does not restrict classes to topologies")
    if obj.get("spec") is not None:
        e.add("spec", "StorageClass has no spec: provisioner, parameters, reclaimPolicy and volumeBindingMode "
                      "are top-level fields")


def _validate_update(e: Errors, new: Obj, old: Obj) -> None:
    for field in IMMUTABLE:
        if new.get(field) != old.get(field):
            e.add(field, "Forbidden: updates to " + field + " are forbidden.")


def _name(obj: Obj) -> str:
    return name_of(obj) + (" (default)" if is_default_class(obj) else "")


STRATEGY = Strategy(
    INFO, description="A class of storage: who provisions its volumes and how they are bound and reclaimed.",
    schema=(
        Field("provisioner", "string", "Who provisions the volumes (shoal.io/local-path: a node directory).",
              required=True),
        string_map("parameters", "Provisioner-specific parameters."),
        Field("reclaimPolicy", "string", "Delete (default) or Retain: what happens to a released volume.",
              enum=RECLAIM_POLICIES),
        Field("volumeBindingMode", "string", "Immediate (default) or WaitForFirstConsumer: provision once a "
                                             "pod using the claim is scheduled.", enum=BINDING_MODES),
        Field("allowVolumeExpansion", "boolean", "Whether claims of the class may grow."),
    ),
    columns=(
        Column("NAME", lambda o, now: _name(o), format="name", description="Its name; (default) marks the "
                                                                             "default class."),
        Column("PROVISIONER", lambda o, now: str(o.get("provisioner") or "")),
        Column("RECLAIMPOLICY", lambda o, now: str(o.get("reclaimPolicy") or "Delete")),
        Column("VOLUMEBINDINGMODE", lambda o, now: str(o.get("volumeBindingMode") or "Immediate")),
        Column("ALLOWVOLUMEEXPANSION", lambda o, now: "true" if o.get("allowVolumeExpansion") else "false",
               type="boolean"),
        AGE,
    ),
    default=_default, validate=_validate, validate_update=_validate_update,
)
