"""ServiceAccount (v1): an identity for pods; its token Secrets are signed API-side."""

from __future__ import annotations

from protocol.fielderrors import Errors
from protocol.kinds.strategy import AGE, NAME, Column, Field, KindInfo, Strategy, as_list, undescribed
from protocol.objects import Obj

INFO = KindInfo("ServiceAccount", "v1", "serviceaccounts", "serviceaccount", ("sa",), subresources=frozenset({"token"}))


def _validate(e: Errors, obj: Obj) -> None:
    if obj.get("spec") is not None:
        e.check(obj.get("spec"), "spec", dict)
    for path, ref in e.items(obj.get("secrets"), "secrets"):
        e.check(ref.get("name"), f"{path}.name", str)


STRATEGY = Strategy(
    INFO, description="An identity for processes that run in pods.",
    schema=(Field("secrets", "array", "Its token Secrets.", items=Field("", "object", fields=(
        Field("name", "string"), *undescribed("apiVersion:string", "fieldPath:string", "kind:string",
                                              "namespace:string", "resourceVersion:string", "uid:string")))),
            *undescribed("automountServiceAccountToken:boolean", "imagePullSecrets:array")),
    columns=(NAME, Column("SECRETS", lambda o, now: str(len(as_list(o.get("secrets")))), type="integer"), AGE),
    validate=_validate,
)
