"""Deployment (apps/v1): a pod template rolled out through ReplicaSets, with a rollout strategy."""

from __future__ import annotations

from typing import Any

from protocol.fielderrors import Errors, int_or_percent
from protocol.kinds.strategy import AGE, NAME, Column, Field, KindInfo, Strategy, num
from protocol.kinds.workload import (
    CONTAINERS,
    IMAGES,
    LABEL_SELECTOR,
    MIN_READY,
    REPLICAS,
    TEMPLATE_SCHEMA,
    label_selector,
    replicated_defaults,
    selector_column,
    template_warnings,
    validate_label_selector,
    validate_replicas,
)
from protocol.objects import Obj

INFO = KindInfo("Deployment", "apps/v1", "deployments", "deployment", ("deploy",),
                subresources=frozenset({"status", "scale"}),
                categories=("all",))


def _default(obj: Obj) -> None:
    replicated_defaults(obj)
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return
    strategy = spec.setdefault("strategy", {})
    if isinstance(strategy, dict):
        strategy.setdefault("type", "RollingUpdate")
        if strategy["type"] == "RollingUpdate":
            ru = strategy.setdefault("rollingUpdate", {})
            if isinstance(ru, dict):
                ru.setdefault("maxSurge", "25%")
                ru.setdefault("maxUnavailable", "25%")
    spec.setdefault("revisionHistoryLimit", 10)
    spec.setdefault("progressDeadlineSeconds", 600)


def _validate(e: Errors, obj: Obj) -> None:
    spec: Any = obj.get("spec")
    if not e.check(spec, "spec", dict, required=True):
        return
    validate_replicas(e, spec)
    validate_label_selector(e, spec)
    strategy = spec.get("strategy")
    if e.check(strategy, "spec.strategy", dict):
        e.enum(strategy, "type", "spec.strategy.type", ("RollingUpdate", "Recreate"))
        ru = strategy.get("rollingUpdate")
        if e.check(ru, "spec.strategy.rollingUpdate", dict):
            int_or_percent(e, ru, "maxSurge", "spec.strategy.rollingUpdate.maxSurge")
            int_or_percent(e, ru, "maxUnavailable", "spec.strategy.rollingUpdate.maxUnavailable")
    e.integer(spec, "revisionHistoryLimit", "spec.revisionHistoryLimit", 0)
    e.check(spec.get("paused"), "spec.paused", bool)


COLUMNS = (
    NAME,
    Column("READY", lambda o, now: f"{num(o, 'status', 'readyReplicas')}/{num(o, 'spec', 'replicas')}",
           description="Ready pods / wanted pods."),
    Column("UP-TO-DATE", lambda o, now: num(o, "status", "updatedReplicas"), type="integer",
           description="Pods of the current template."),
    Column("AVAILABLE", lambda o, now: num(o, "status", "availableReplicas"), type="integer",
           description="Pods ready for at least minReadySeconds."),
    AGE, CONTAINERS, IMAGES, selector_column(label_selector),
)

_INT_OR_PERCENT = "An integer or a percentage such as 25%."
SCHEMA = (
    Field("spec", "object", "The wanted pods and how to roll out a change.", required=True, fields=(
        REPLICAS, MIN_READY, LABEL_SELECTOR, TEMPLATE_SCHEMA,
        Field("strategy", "object", "How a new template replaces the old pods.", fields=(
            Field("type", "string", "", enum=("RollingUpdate", "Recreate")),
            Field("rollingUpdate", "object", "", fields=(
                Field("maxSurge", "string", "Pods above replicas during a rollout. " + _INT_OR_PERCENT),
                Field("maxUnavailable", "string", "Pods below replicas during a rollout. " + _INT_OR_PERCENT))))),
        Field("revisionHistoryLimit", "integer", "Old ReplicaSets kept for rollback (default 10)."),
        Field("progressDeadlineSeconds", "integer", "Seconds before a stalled rollout is reported (default 600)."),
        Field("paused", "boolean", "Stop rolling out template changes."),
    )),
    Field("status", "object", "What the controller last observed.", fields=(
        Field("replicas", "integer"), Field("updatedReplicas", "integer"), Field("readyReplicas", "integer"),
        Field("availableReplicas", "integer"), Field("observedGeneration", "integer"),
        Field("conditions", "array", items=Field("", "object")))),
)

STRATEGY = Strategy(
    INFO, description="Declarative updates of pods through ReplicaSets.", schema=SCHEMA, columns=COLUMNS,
    default=_default, validate=_validate, warnings=template_warnings, pod_selector=label_selector,
)
