"""ReplicationController (v1): replicas of a pod template, selected by plain labels."""

from __future__ import annotations

from typing import Any

from protocol.fielderrors import Errors
from protocol.kinds.replicaset import replica_columns
from protocol.kinds.strategy import Field, KindInfo, Strategy, string_map
from protocol.kinds.workload import (
    MIN_READY,
    REPLICA_STATUS,
    REPLICAS,
    TEMPLATE_SCHEMA,
    match_labels_selector,
    replicated_defaults,
    template_warnings,
    validate_replicas,
    validate_template,
)
from protocol.objects import Obj

INFO = KindInfo("ReplicationController", "v1", "replicationcontrollers", "replicationcontroller", ("rc",),
                subresources=frozenset({"status", "scale"}),
                categories=("all",))


def _default(obj: Obj) -> None:
    spec = obj.get("spec")
    if isinstance(spec, dict):
        template = spec.get("template")
        labels = (template.get("metadata") or {}).get("labels") if isinstance(template, dict) else None
        if not spec.get("selector") and isinstance(labels, dict):
            spec["selector"] = dict(labels)  # an RC without a selector selects its template's labels
    replicated_defaults(obj)


def _validate(e: Errors, obj: Obj) -> None:
    spec: Any = obj.get("spec")
    if not e.check(spec, "spec", dict, required=True):
        return
    validate_replicas(e, spec)
    selector = spec.get("selector")
    e.string_map(selector, "spec.selector")
    if isinstance(selector, dict) and not selector:
        e.add("spec.selector", "Required value: an empty selector would select every pod")
    sel = selector if isinstance(selector, dict) else None
    validate_template(e, spec, "spec", lambda labels: sel is None or all(labels.get(k) == v for k, v in sel.items()))


STRATEGY = Strategy(
    INFO, description="Keeps a number of pods from a template running (the older form of ReplicaSet).",
    schema=(Field("spec", "object", "The wanted pods.", required=True, fields=(
        REPLICAS, MIN_READY, string_map("selector", "Labels of the pods it manages (default: the template's)."),
        TEMPLATE_SCHEMA)), REPLICA_STATUS),
    columns=replica_columns(match_labels_selector),
    default=_default, validate=_validate, warnings=template_warnings, pod_selector=match_labels_selector,
)
