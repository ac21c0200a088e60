"""``meta.k8s.io/v1`` Table output: what ``kubectl get`` asks for (``Accept: application/json;as=Table;
v=v1;g=meta.k8s.io``) and prints as it comes, with the columns ``shoal get`` shows (priority 1 for the
``-o wide`` ones). Pure."""

from __future__ import annotations

import time
from typing import Any

from protocol.kinds import strategy_for
from protocol.objects import Obj, meta

TABLE_MEDIA = "as=Table"


def wants_table(accept: str) -> bool:
    """Whether the first acceptable media type of ``accept`` is a meta.k8s.io/v1 Table."""
    for part in accept.split(","):
        params = {p.strip().partition("=")[0]: p.strip().partition("=")[2] for p in part.split(";")[1:]}
        if params.get("as") == "Table":
            if params.get("v") == "v1" and params.get("g") == "meta.k8s.io":
                return True
            continue
        return False
    return False


def partial_metadata(obj: Obj) -> Obj:
    return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": meta(obj)}


def column_definitions(kind: str) -> list[dict[str, Any]]:
    """The registry's columns (kubectl prints ``name`` upper-cased, so ``UP-TO-DATE`` reads the same)."""
    return [{"name": c.name.title(), "type": c.type, "format": c.format,
             "description": c.description or f"{c.name} as `shoal get` prints it", "priority": c.priority}
            for c in strategy_for(kind).columns]


def rows(kind: str, objects: list[Obj], include_object: str = "Metadata", now: float | None = None
         ) -> list[dict[str, Any]]:
    now = time.time() if now is None else now
    strategy = strategy_for(kind)
    out = []
    for obj in objects:
        row: dict[str, Any] = {"cells": strategy.row(obj, now, wide=True)}
        if include_object == "Object":
            row["object"] = obj
        elif include_object != "None":
            row["object"] = partial_metadata(obj)
        out.append(row)
    return out


def table(kind: str, objects: list[Obj], *, resource_version: str = "", continue_token: str = "",
          include_object: str = "Metadata", headers: bool = True) -> dict[str, Any]:
    metadata: dict[str, Any] = {"resourceVersion": resource_version}
    if continue_token:
        metadata["continue"] = continue_token
    return {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": metadata,
            "columnDefinitions": column_definitions(kind) if headers else [],
            "rows": rows(kind, objects, include_object)}
