"""What the kinds that run pods from a template share (ReplicationController, ReplicaSet, Deployment):
the template's defaults, validation and warnings, replicas, and the CONTAINERS/IMAGES/SELECTOR columns."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from protocol.errors import BadRequest
from protocol.fielderrors import Errors
from protocol.kinds.pod import POD_SPEC_SCHEMA, pod_spec_defaults, pod_spec_warnings, validate_pod_spec
from protocol.kinds.strategy import (
    NONE,
    OBJECT_META_FIELDS,
    Column,
    Field,
    as_list,
    get_path,
    string_map,
    undescribed,
)
from protocol.objects import Obj
from protocol.selectors import Selector, from_label_selector, from_match_labels


def replicated_defaults(obj: Obj) -> None:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return
    spec.setdefault("replicas", 1)
    spec.setdefault("minReadySeconds", 0)
    template = spec.get("template")
    if isinstance(template, dict):
        pod_spec_defaults(template.get("spec"))


def validate_replicas(e: Errors, spec: Obj) -> None:
    e.integer(spec, "replicas", "spec.replicas", 0)
    e.integer(spec, "minReadySeconds", "spec.minReadySeconds", 0)


def validate_template(e: Errors, spec: Any, path: str, selects: Callable[[dict[str, str]], bool]) -> None:
    template = spec.get("template")
    if not e.check(template, f"{path}.template", dict, required=True):
        return
    meta = template.get("metadata") or {}
    labels = meta.get("labels") if isinstance(meta, dict) else None
    e.string_map(labels, f"{path}.template.metadata.labels")
    if not selects(labels if isinstance(labels, dict) else {}):
        e.add(f"{path}.template.metadata.labels", "Invalid value: selector does not match template labels")
    validate_pod_spec(e, template.get("spec"), f"{path}.template.spec")


def validate_label_selector(e: Errors, spec: Obj) -> None:
    """spec.selector as a LabelSelector (matchLabels/matchExpressions) that must match the template."""
    selector = spec.get("selector")
    if e.check(selector, "spec.selector", dict, required=True):
        try:
            parsed = from_label_selector(selector)
        except Exception as exc:
            e.add("spec.selector", str(exc))
            return
        if parsed.empty:
            e.add("spec.selector", "Required value: an empty selector would select every pod")
        validate_template(e, spec, "spec", parsed.matches)


def template_warnings(obj: Obj) -> list[str]:
    return pod_spec_warnings(get_path(obj, "spec", "template", "spec"), "spec.template.spec")


def label_selector(obj: Obj) -> Selector:
    return from_label_selector(get_path(obj, "spec", "selector"))


def match_labels_selector(obj: Obj) -> Selector:
    return from_match_labels(get_path(obj, "spec", "selector"))


def selector_column(selector: Callable[[Obj], Selector]) -> Column:
    def cell(obj: Obj, now: float) -> str:
        try:
            text = str(selector(obj)) if get_path(obj, "spec", "selector") else ""
        except BadRequest:
            text = str(get_path(obj, "spec", "selector"))
        return text or NONE

    return Column("SELECTOR", cell, priority=1, description="The label selector of the pods it manages.")


def _containers(obj: Obj) -> list[Any]:
    return as_list(get_path(obj, "spec", "template", "spec", "containers"))


def _container_field(field: str) -> Callable[[Obj, float], str]:
    return lambda o, now: ",".join(str(c.get(field)) for c in _containers(o)) or NONE


CONTAINERS = Column("CONTAINERS", _container_field("name"), priority=1, description="The template's containers.")
IMAGES = Column("IMAGES", _container_field("image"), priority=1, description="The template's images.")

TEMPLATE_SCHEMA = Field("template", "object", "The pods to run.", required=True, fields=(
    Field("metadata", "object", "Labels and annotations of the pods.", fields=(
        string_map("labels", "Must match the selector."), string_map("annotations", ""),
        *undescribed(*(f for f in OBJECT_META_FIELDS if f not in ("labels", "annotations"))))),
    POD_SPEC_SCHEMA,
))
REPLICAS = Field("replicas", "integer", "Pods wanted (default 1).")
MIN_READY = Field("minReadySeconds", "integer", "Seconds a pod must be ready to count as available.")
REPLICA_STATUS = Field("status", "object", "What the controller last observed.", fields=(
    Field("replicas", "integer"), Field("readyReplicas", "integer"), Field("availableReplicas", "integer"),
    Field("observedGeneration", "integer"),
))
LABEL_SELECTOR = Field("selector", "object", "Which pods it manages; must match the template's labels.",
                       required=True, fields=(
                           string_map("matchLabels", ""),
                           Field("matchExpressions", "array", "", items=Field("", "object", fields=(
                               Field("key", "string", required=True),
                               Field("operator", "string", enum=("In", "NotIn", "Exists", "DoesNotExist")),
                               Field("values", "array", items=Field("", "string"))))),
                       ))
