"""Namespace (v1): a scope for names. Its spec.finalizers hold its deletion until the namespace
controller has emptied it; a deleted namespace turns Terminating; the system ones cannot be deleted."""

from __future__ import annotations

from protocol.kinds.strategy import AGE, NAME, Column, Field, KindInfo, Strategy, get_path
from protocol.objects import Obj

INFO = KindInfo("Namespace", "v1", "namespaces", "namespace", ("ns",), namespaced=False,
                subresources=frozenset({"status"}))
SYSTEM_NAMESPACES = ("default", "kube-system", "kube-node-lease")


def _default(obj: Obj) -> None:
    obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
    obj.setdefault("status", {}).setdefault("phase", "Active")


def _create_status(obj: Obj) -> None:
    obj["status"] = {"phase": "Active"}


def _spec_finalizers(obj: Obj) -> list[str]:
    return list((obj.get("spec") or {}).get("finalizers") or [])


def _terminating(obj: Obj) -> None:
    obj.setdefault("status", {})["phase"] = "Terminating"


STRATEGY = Strategy(
    INFO, description="A scope for the names of namespaced objects.",
    schema=(
        Field("spec", "object", "", fields=(
            Field("finalizers", "array", "Hold the deletion until emptied (default [kubernetes]).",
                  items=Field("", "string")),)),
        Field("status", "object", "", fields=(Field("phase", "string", "", enum=("Active", "Terminating")),)),
    ),
    columns=(NAME, Column("STATUS", lambda o, now: str(get_path(o, "status", "phase") or "Active"),
                          description="Active or Terminating."), AGE),
    name_rule="label", default=_default, create_status=_create_status, spec_finalizers=_spec_finalizers,
    protected_names=frozenset(SYSTEM_NAMESPACES), mark_deleting=_terminating,
)
