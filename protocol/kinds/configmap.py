"""ConfigMap (v1): configuration as keys to strings."""

from __future__ import annotations

from protocol.fielderrors import Errors
from protocol.kinds.strategy import AGE, NAME, Column, KindInfo, Strategy, as_dict, string_map
from protocol.objects import Obj

INFO = KindInfo("ConfigMap", "v1", "configmaps", "configmap", ("cm",))


def _validate(e: Errors, obj: Obj) -> None:
    e.string_map(obj.get("data"), "data")
    if obj.get("spec") is not None:
        e.check(obj.get("spec"), "spec", dict)


STRATEGY = Strategy(
    INFO, description="Configuration data: keys to strings.",
    schema=(string_map("data", "Keys to values."), string_map("binaryData", "Keys to base64-encoded values.")),
    columns=(NAME, Column("DATA", lambda o, now: str(len(as_dict(o.get("data"))) + len(as_dict(o.get("binaryData")))),
                          type="integer", description="Number of keys."), AGE),
    validate=_validate,
)
