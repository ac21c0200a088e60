"""DaemonSet (apps/v1): one pod of a template on every eligible node, with an update strategy."""

from __future__ import annotations

from typing import Any

from protocol.fielderrors import Errors, int_or_percent
from protocol.kinds.pod import pod_spec_defaults
from protocol.kinds.strategy import AGE, NAME, NONE, Column, Field, KindInfo, Strategy, get_path, num
from protocol.kinds.workload import (
    CONTAINERS,
    IMAGES,
    LABEL_SELECTOR,
    MIN_READY,
    TEMPLATE_SCHEMA,
    label_selector,
    selector_column,
    template_warnings,
    validate_label_selector,
)
from protocol.objects import Obj

INFO = KindInfo("DaemonSet", "apps/v1", "daemonsets", "daemonset", ("ds",), subresources=frozenset({"status"}),
                categories=("all",))
STRATEGIES = ("RollingUpdate", "OnDelete")


def _default(obj: Obj) -> None:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return
    spec.setdefault("minReadySeconds", 0)
    spec.setdefault("revisionHistoryLimit", 10)
    strategy = spec.setdefault("updateStrategy", {})
    if isinstance(strategy, dict):
        strategy.setdefault("type", "RollingUpdate")
        if strategy["type"] == "RollingUpdate":
            rolling = strategy.setdefault("rollingUpdate", {})
            if isinstance(rolling, dict):
                rolling.setdefault("maxUnavailable", 1)
                rolling.setdefault("maxSurge", 0)
    template = spec.get("template")
    if isinstance(template, dict):
        pod_spec_defaults(template.get("spec"))


def _is_zero(value: Any) -> bool:
    return value in (0, "0%") or value is None


def _validate(e: Errors, obj: Obj) -> None:
    spec: Any = obj.get("spec")
    if not e.check(spec, "spec", dict, required=True):
        return
    e.integer(spec, "minReadySeconds", "spec.minReadySeconds", 0)
    e.integer(spec, "revisionHistoryLimit", "spec.revisionHistoryLimit", 0)
    validate_label_selector(e, spec)
    restart = get_path(spec, "template", "spec", "restartPolicy")
    if restart not in (None, "Always"):
        e.add("spec.template.spec.restartPolicy", f'Unsupported value: "{restart}": supported values: "Always"')
    strategy = spec.get("updateStrategy")
    if not e.check(strategy, "spec.updateStrategy", dict):
        return
    e.enum(strategy, "type", "spec.updateStrategy.type", STRATEGIES)
    rolling = strategy.get("rollingUpdate")
    if not e.check(rolling, "spec.updateStrategy.rollingUpdate", dict) or not isinstance(rolling, dict):
        return
    path = "spec.updateStrategy.rollingUpdate"
    int_or_percent(e, rolling, "maxUnavailable", f"{path}.maxUnavailable")
    int_or_percent(e, rolling, "maxSurge", f"{path}.maxSurge")
    if strategy.get("type") == "OnDelete":
        e.add(f"{path}", "Forbidden: may not be specified when strategy `type` is 'OnDelete'")
    if _is_zero(rolling.get("maxUnavailable")) and _is_zero(rolling.get("maxSurge")):
        e.add(f"{path}.maxUnavailable", "Invalid value: may not be 0 when maxSurge is 0")


def _validate_update(e: Errors, new: Obj, old: Obj) -> None:
    if get_path(new, "spec", "selector") != get_path(old, "spec", "selector"):
        e.add("spec.selector", "Invalid value: field is immutable")


def _node_selector(obj: Obj, now: float) -> str:
    selector = get_path(obj, "spec", "template", "spec", "nodeSelector")
    if not isinstance(selector, dict) or not selector:
        return NONE
    return ",".join(f"{k}={v}" for k, v in sorted(selector.items()))


COLUMNS = (
    NAME,
    Column("DESIRED", lambda o, now: num(o, "status", "desiredNumberScheduled"), type="integer",
           description="Nodes that should run the daemon pod."),
    Column("CURRENT", lambda o, now: num(o, "status", "currentNumberScheduled"), type="integer",
           description="Nodes running at least one daemon pod that should."),
    Column("READY", lambda o, now: num(o, "status", "numberReady"), type="integer",
           description="Nodes whose daemon pod is ready."),
    Column("UP-TO-DATE", lambda o, now: num(o, "status", "updatedNumberScheduled"), type="integer",
           description="Nodes running the current template."),
    Column("AVAILABLE", lambda o, now: num(o, "status", "numberAvailable"), type="integer",
           description="Nodes whose daemon pod is ready for at least minReadySeconds."),
    Column("NODE SELECTOR", _node_selector, description="The template's nodeSelector."),
    AGE, CONTAINERS, IMAGES, selector_column(label_selector),
)

_INT_OR_PERCENT = "An integer or a percentage of the nodes such as 10%."
SCHEMA = (
    Field("spec", "object", "The daemon pods and how to roll out a change.", required=True, fields=(
        LABEL_SELECTOR, TEMPLATE_SCHEMA, MIN_READY,
        Field("updateStrategy", "object", "How a new template replaces the pods.", fields=(
            Field("type", "string", "RollingUpdate (default) or OnDelete.", enum=STRATEGIES),
            Field("rollingUpdate", "object", "", fields=(
                Field("maxUnavailable", "string", "Nodes without an available pod during a rollout (default 1). "
                      + _INT_OR_PERCENT),
                Field("maxSurge", "string", "Nodes running an old and a new pod at once (default 0). "
                      + _INT_OR_PERCENT))))),
        Field("revisionHistoryLimit", "integer", "Old revisions kept (default 10)."),
    )),
    Field("status", "object", "What the controller last observed.", fields=(
        Field("desiredNumberScheduled", "integer"), Field("currentNumberScheduled", "integer"),
        Field("numberMisscheduled", "integer"), Field("numberReady", "integer"),
        Field("updatedNumberScheduled", "integer"), Field("numberAvailable", "integer"),
        Field("numberUnavailable", "integer"), Field("observedGeneration", "integer"))),
)

STRATEGY = Strategy(
    INFO, description="Runs one pod of a template on every eligible node.", schema=SCHEMA, columns=COLUMNS,
    default=_default, validate=_validate, validate_update=_validate_update, warnings=template_warnings,
    pod_selector=label_selector,
)
