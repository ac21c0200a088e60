"""ConfigMap (v1): configuration as keys to strings; ``immutable: true`` freezes its data (Kubernetes' rule)."""

from __future__ import annotations

from protocol.fielderrors import Errors
from protocol.kinds.strategy import AGE, NAME, Column, Field, KindInfo, Strategy, as_dict, string_map
from protocol.objects import Obj

INFO = KindInfo("ConfigMap", "v1", "configmaps", "configmap", ("cm",))


def _validate(e: Errors, obj: Obj) -> None:
    e.string_map(obj.get("data"), "data")
    e.string_map(obj.get("binaryData"), "binaryData")
    e.check(obj.get("immutable"), "immutable", bool)
    if obj.get("spec") is not None:
        e.check(obj.get("spec"), "spec", dict)


def validate_immutable(e: Errors, new: Obj, old: Obj, fields: tuple[str, ...]) -> None:
    """``immutable: true`` (ConfigMap, Secret): the data fields may not change, and it may not be unset."""
    if old.get("immutable") is not True:
        return
    if new.get("immutable") is not True:
        e.add("immutable", "Forbidden: field is immutable when `immutable` is set")
    for field in fields:
        if (new.get(field) or {}) != (old.get(field) or {}):
            e.add(field, "Forbidden: field is immutable when `immutable` is set")


def _validate_update(e: Errors, new: Obj, old: Obj) -> None:
    validate_immutable(e, new, old, ("data", "binaryData"))


STRATEGY = Strategy(
    INFO, description="Configuration data: keys to strings.",
    schema=(string_map("data", "Keys to values."), string_map("binaryData", "Keys to base64-encoded values."),
            Field("immutable", "boolean", "When true, data and binaryData can no longer change (nor this field).")),
    columns=(NAME, Column("DATA", lambda o, now: str(len(as_dict(o.get("data"))) + len(as_dict(o.get("binaryData")))),
                          type="integer", description="Number of keys."), AGE),
    validate=_validate, validate_update=_validate_update,
)
