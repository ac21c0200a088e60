"""ReplicaSet (apps/v1): replicas of a pod template, selected by a label selector."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from protocol.fielderrors import Errors
from protocol.kinds.strategy import AGE, NAME, Column, Field, KindInfo, Strategy, num
from protocol.kinds.workload import (
    CONTAINERS,
    IMAGES,
    LABEL_SELECTOR,
    MIN_READY,
    REPLICA_STATUS,
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
from protocol.selectors import Selector

INFO = KindInfo("ReplicaSet", "apps/v1", "replicasets", "replicaset", ("rs",),
                subresources=frozenset({"status", "scale"}),
                categories=("all",))


def replica_columns(selector: Callable[[Obj], Selector]) -> tuple[Column, ...]:
    """NAME DESIRED CURRENT READY AGE, and with -o wide CONTAINERS IMAGES SELECTOR."""
    return (
        NAME,
        Column("DESIRED", lambda o, now: num(o, "spec", "replicas"), type="integer", description="Pods wanted."),
        Column("CURRENT", lambda o, now: num(o, "status", "replicas"), type="integer", description="Pods created."),
        Column("READY", lambda o, now: num(o, "status", "readyReplicas"), type="integer", description="Pods ready."),
        AGE, CONTAINERS, IMAGES, selector_column(selector),
    )


def _validate(e: Errors, obj: Obj) -> None:
    spec: Any = obj.get("spec")
    if not e.check(spec, "spec", dict, required=True):
        return
    validate_replicas(e, spec)
    validate_label_selector(e, spec)


STRATEGY = Strategy(
    INFO, description="Keeps a number of pods from a template running.",
    schema=(Field("spec", "object", "The wanted pods.", required=True,
                  fields=(REPLICAS, MIN_READY, LABEL_SELECTOR, TEMPLATE_SCHEMA)), REPLICA_STATUS),
    columns=replica_columns(label_selector),
    default=replicated_defaults, validate=_validate, warnings=template_warnings, pod_selector=label_selector,
)
