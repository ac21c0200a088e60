"""Secret (v1): base64 data; stringData is folded into data on write. Token Secrets are signed API-side
(``actors/api/kindhooks.py``)."""

from __future__ import annotations

import base64

from protocol.fielderrors import Errors
from protocol.kinds.configmap import validate_immutable
from protocol.kinds.strategy import AGE, NAME, Column, Field, KindInfo, Strategy, as_dict, string_map
from protocol.objects import Obj

INFO = KindInfo("Secret", "v1", "secrets", "secret")


def _default(obj: Obj) -> None:
    obj.setdefault("type", "Opaque")
    string_data = obj.pop("stringData", None)
    if isinstance(string_data, dict):
        data = obj.setdefault("data", {})
        for k, v in string_data.items():
            data[k] = base64.b64encode(str(v).encode()).decode()


def _validate(e: Errors, obj: Obj) -> None:
    e.string_map(obj.get("data"), "data")
    e.string_map(obj.get("stringData"), "stringData")
    e.check(obj.get("type"), "type", str)
    e.check(obj.get("immutable"), "immutable", bool)
    if obj.get("spec") is not None:
        e.check(obj.get("spec"), "spec", dict)


def _validate_update(e: Errors, new: Obj, old: Obj) -> None:
    validate_immutable(e, new, old, ("data",))
    if old.get("immutable") is True and new.get("stringData"):  # a patch's stringData, not folded yet
        e.add("stringData", "Forbidden: field is immutable when `immutable` is set")


STRATEGY = Strategy(
    INFO, description="Confidential data: keys to base64 values.",
    schema=(string_map("data", "Keys to base64-encoded values."),
            string_map("stringData", "Keys to plain values, folded into data on write."),
            Field("type", "string", "How the data is used (default Opaque)."),
            Field("immutable", "boolean", "When true, data can no longer change (nor this field).")),
    columns=(NAME, Column("TYPE", lambda o, now: str(o.get("type") or "Opaque")),
             Column("DATA", lambda o, now: str(len(as_dict(o.get("data")))), type="integer",
                    description="Number of keys."), AGE),
    default=_default, validate=_validate, validate_update=_validate_update,
)
