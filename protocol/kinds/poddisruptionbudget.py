"""PodDisruptionBudget (policy/v1): how many of some pods voluntary disruptions (evictions) may take down."""

from __future__ import annotations

from typing import Any

from protocol.fielderrors import Errors, int_or_percent
from protocol.kinds.strategy import AGE, NAME, NONE, Column, Field, KindInfo, Strategy, get_path, num
from protocol.kinds.workload import label_selector
from protocol.objects import Obj
from protocol.selectors import from_label_selector

INFO = KindInfo("PodDisruptionBudget", "policy/v1", "poddisruptionbudgets", "poddisruptionbudget", ("pdb",),
                subresources=frozenset({"status"}))
POLICIES = ("IfHealthyBudget", "AlwaysAllow")


def _validate(e: Errors, obj: Obj) -> None:
    spec: Any = obj.get("spec")
    if not e.check(spec, "spec", dict, required=True):
        return
    if spec.get("minAvailable") is not None and spec.get("maxUnavailable") is not None:
        e.add("spec", "Invalid value: minAvailable and maxUnavailable cannot be both set")
    for field in ("minAvailable", "maxUnavailable"):
        int_or_percent(e, spec, field, f"spec.{field}")
        value = spec.get(field)
        if isinstance(value, int) and not isinstance(value, bool) and value < 0:
            e.add(f"spec.{field}", "Invalid value: must be greater than or equal to 0")
        if isinstance(value, str) and value.endswith("%") and value[:-1].isdigit() and int(value[:-1]) > 100:
            e.add(f"spec.{field}", "Invalid value: must not be greater than 100%")
    selector = spec.get("selector")
    if e.check(selector, "spec.selector", dict):
        try:
            from_label_selector(selector)
        except Exception as exc:
            e.add("spec.selector", str(exc))
    e.enum(spec, "unhealthyPodEvictionPolicy", "spec.unhealthyPodEvictionPolicy", POLICIES)


def _field(name: str) -> Any:
    def cell(obj: Obj, now: float) -> str:
        value = get_path(obj, "spec", name)
        return NONE if value is None else str(value)

    return cell


COLUMNS = (
    NAME,
    Column("MIN AVAILABLE", _field("minAvailable"), description="Pods that must stay available."),
    Column("MAX UNAVAILABLE", _field("maxUnavailable"), description="Pods that may be unavailable."),
    Column("ALLOWED DISRUPTIONS", lambda o, now: num(o, "status", "disruptionsAllowed"), type="integer",
           description="Evictions allowed now."),
    AGE,
)

_INT_OR_PERCENT = "An integer or a percentage such as 50%."
SCHEMA = (
    Field("spec", "object", "Which pods, and how many must stay available.", required=True, fields=(
        Field("selector", "object", "The pods covered (an empty selector covers every pod of the namespace)."),
        Field("minAvailable", "string", "Pods that must stay available. " + _INT_OR_PERCENT),
        Field("maxUnavailable", "string", "Pods that may be unavailable. " + _INT_OR_PERCENT),
        Field("unhealthyPodEvictionPolicy", "string", "When unready pods may be evicted.", enum=POLICIES),
    )),
    Field("status", "object", "What the disruption controller last computed.", fields=(
        Field("expectedPods", "integer"), Field("desiredHealthy", "integer"), Field("currentHealthy", "integer"),
        Field("disruptionsAllowed", "integer"), Field("observedGeneration", "integer"),
        Field("disruptedPods", "object", "Evicted pods whose deletion is awaited, with the eviction time."),
        Field("conditions", "array", items=Field("", "object")))),
)

STRATEGY = Strategy(
    INFO, description="Limits the voluntary disruptions (evictions) of a set of pods.", schema=SCHEMA,
    columns=COLUMNS, validate=_validate, pod_selector=label_selector,
)
