"""PriorityClass (scheduling.k8s.io/v1): a name for a pod priority value. Cluster-scoped, no spec: its
fields are top-level. ``value`` and ``preemptionPolicy`` are immutable; user classes may not exceed
``HIGHEST_USER_PRIORITY`` nor take the ``system-`` prefix (Kubernetes' rules)."""

from __future__ import annotations

from protocol.fielderrors import Errors
from protocol.kinds.strategy import AGE, NAME, Column, Field, KindInfo, Strategy
from protocol.objects import Obj, name_of

INFO = KindInfo("PriorityClass", "scheduling.k8s.io/v1", "priorityclasses", "priorityclass", ("pc",),
                namespaced=False)
HIGHEST_USER_PRIORITY = 1_000_000_000
LOWEST_PRIORITY = -2_147_483_648
PREEMPTION_POLICIES = ("PreemptLowerPriority", "Never")
SYSTEM_PREFIX = "system-"
IMMUTABLE = ("value", "preemptionPolicy")


def _default(obj: Obj) -> None:
    obj.setdefault("preemptionPolicy", "PreemptLowerPriority")


def _validate(e: Errors, obj: Obj) -> None:
    e.integer(obj, "value", "value", LOWEST_PRIORITY, HIGHEST_USER_PRIORITY, required=True)
    e.check(obj.get("globalDefault"), "globalDefault", bool)
    e.enum(obj, "preemptionPolicy", "preemptionPolicy", PREEMPTION_POLICIES)
    e.check(obj.get("description"), "description", str)
    if name_of(obj).startswith(SYSTEM_PREFIX):
        e.add("metadata.name", f"priority class names with the {SYSTEM_PREFIX!r} prefix are reserved for the system")
    if obj.get("spec") is not None:
        e.add("spec", "PriorityClass has no spec: value, globalDefault, preemptionPolicy and description are "
                      "top-level fields")


def _validate_update(e: Errors, new: Obj, old: Obj) -> None:
    for field in IMMUTABLE:
        if field in old and new.get(field) != old.get(field):
            e.add(field, "field is immutable")


STRATEGY = Strategy(
    INFO, description="A named pod priority; pods name it in spec.priorityClassName.",
    schema=(
        Field("value", "integer", f"The priority; higher is more important (at most {HIGHEST_USER_PRIORITY}).",
              required=True),
        Field("globalDefault", "boolean", "The priority of pods that name no class."),
        Field("preemptionPolicy", "string", "Whether pods of this class may preempt lower ones "
                                            "(default PreemptLowerPriority).", enum=PREEMPTION_POLICIES),
        Field("description", "string", "When to use this class."),
    ),
    columns=(
        NAME,
        Column("VALUE", lambda o, now: str(o.get("value")), type="integer", description="The priority."),
        Column("GLOBAL-DEFAULT", lambda o, now: "true" if o.get("globalDefault") else "false", type="boolean",
               description="Whether pods without a class get this one."),
        AGE,
        Column("PREEMPTIONPOLICY", lambda o, now: str(o.get("preemptionPolicy") or ""), priority=1),
    ),
    default=_default, validate=_validate, validate_update=_validate_update,
)
