"""Pure decisions of the namespace controller: what to delete in a terminating namespace, what its
status conditions say, and when it may be finalized (``spec.finalizers`` without ``kubernetes``).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

from protocol.kinds import KINDS, KindInfo
from protocol.objects import Obj, format_time, is_deleting, meta, name_of

FINALIZER = "kubernetes"

NAMESPACED_KINDS: tuple[KindInfo, ...] = tuple(k for k in KINDS if k.namespaced)
"""Every namespaced kind; a terminating namespace is emptied of all of them."""


@dataclass
class NamespacePlan:
    deletes: list[tuple[str, str]] = field(default_factory=list)
    """(kind, name) of the objects to delete now (those not already being deleted)."""
    remaining: dict[str, int] = field(default_factory=dict)
    """Objects still present, by plural."""
    finalizers: dict[str, int] = field(default_factory=dict)
    """Finalizers holding the remaining objects, with how many objects each holds."""
    finalize: bool = False
    """Everything is gone: remove our finalizer so the API completes the deletion."""


def plan(namespace: Obj, contents: dict[str, list[Obj]]) -> NamespacePlan:
    """``contents`` maps each kind's name to the objects of that kind in the namespace."""
    result = NamespacePlan()
    if not is_deleting(namespace) or FINALIZER not in finalizers_of(namespace):
        return result
    plural = {k.kind: k.plural for k in KINDS}
    for kind, objects in contents.items():
        if not objects:
            continue
        result.remaining[plural.get(kind, kind)] = len(objects)
        for obj in objects:
            if not is_deleting(obj):
                result.deletes.append((kind, name_of(obj)))
            for fin in meta(obj).get("finalizers") or []:
                result.finalizers[fin] = result.finalizers.get(fin, 0) + 1
    result.finalize = not result.remaining
    return result


def finalizers_of(namespace: Obj) -> list[str]:
    return list((namespace.get("spec") or {}).get("finalizers") or [])


def finalized(namespace: Obj) -> Obj:
    """The namespace without our finalizer in ``spec.finalizers``."""
    out = copy.deepcopy(namespace)
    out.setdefault("spec", {})["finalizers"] = [f for f in finalizers_of(namespace) if f != FINALIZER]
    return out


def status_with_conditions(namespace: Obj, p: NamespacePlan, wall_now: float) -> Obj | None:
    """The namespace status with Kubernetes' deletion conditions; None when they are unchanged."""
    status = copy.deepcopy(namespace.get("status") or {})
    old = {c.get("type"): c for c in status.get("conditions") or []}
    content = ", ".join(f"{plural} has {n} resource instances" for plural, n in sorted(p.remaining.items()))
    held = ", ".join(f"{fin} in {n} resource instances" for fin, n in sorted(p.finalizers.items()))
    wanted = [
        ("NamespaceContentRemaining", bool(p.remaining), "SomeResourcesRemain", "ContentRemoved",
         f"Some resources are remaining: {content}" if content else "All content successfully removed"),
        ("NamespaceFinalizersRemaining", bool(p.finalizers), "SomeFinalizersRemain", "ContentHasNoFinalizers",
         f"Some content in the namespace has finalizers remaining: {held}" if held
         else "All content-preserving finalizers finished"),
    ]
    conditions = [c for c in status.get("conditions") or [] if c.get("type") not in {w[0] for w in wanted}]
    changed = False
    for type_, true, reason_true, reason_false, message in wanted:
        value = "True" if true else "False"
        before = old.get(type_) or {}
        cond = {"type": type_, "status": value, "reason": reason_true if true else reason_false,
                "message": message,
                "lastTransitionTime": before.get("lastTransitionTime") if before.get("status") == value
                else format_time(wall_now)}
        changed = changed or {k: before.get(k) for k in ("status", "reason", "message")} != {
            k: cond[k] for k in ("status", "reason", "message")}
        conditions.append(cond)
    if not changed:
        return None
    status["conditions"] = conditions
    return status
