"""HorizontalPodAutoscaler (autoscaling/v2): scales a Deployment, ReplicaSet, ReplicationController or
StatefulSet between min and max replicas to keep its pods' CPU or memory use at a target."""

from __future__ import annotations

from typing import Any

from protocol.errors import BadRequest
from protocol.fielderrors import Errors
from protocol.kinds.strategy import AGE, NAME, NONE, Column, Field, KindInfo, Strategy, get_path, num
from protocol.objects import Obj
from protocol.quantity import parse_quantity

INFO = KindInfo("HorizontalPodAutoscaler", "autoscaling/v2", "horizontalpodautoscalers", "horizontalpodautoscaler",
                ("hpa",), subresources=frozenset({"status"}),
                categories=("all",))
SCALABLE = ("Deployment", "ReplicaSet", "ReplicationController", "StatefulSet")
RESOURCES = ("cpu", "memory")
TARGET_TYPES = ("Utilization", "AverageValue")
SELECT_POLICIES = ("Max", "Min", "Disabled")
POLICY_TYPES = ("Pods", "Percent")
DEFAULT_SCALE_UP: Obj = {"stabilizationWindowSeconds": 0, "selectPolicy": "Max", "policies": [
    {"type": "Percent", "value": 100, "periodSeconds": 15}, {"type": "Pods", "value": 4, "periodSeconds": 15}]}
DEFAULT_SCALE_DOWN: Obj = {"stabilizationWindowSeconds": 300, "selectPolicy": "Max", "policies": [
    {"type": "Percent", "value": 100, "periodSeconds": 15}]}
"""Kubernetes' defaults (``GenerateHPAScaleUpRules`` / ``GenerateHPAScaleDownRules``)."""


def _rules(given: Any, default: Obj) -> Obj:
    rules = dict(given) if isinstance(given, dict) else {}
    for key, value in default.items():
        if key not in rules:
            rules[key] = [dict(p) for p in value] if key == "policies" else value
    return rules


def _default(obj: Obj) -> None:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return
    spec.setdefault("minReplicas", 1)
    if "metrics" not in spec:  # Kubernetes: 80% CPU utilization when no metric is given
        spec["metrics"] = [{"type": "Resource", "resource": {"name": "cpu", "target": {
            "type": "Utilization", "averageUtilization": 80}}}]
    behavior = spec.get("behavior")
    behavior = dict(behavior) if isinstance(behavior, dict) else {}
    behavior["scaleUp"] = _rules(behavior.get("scaleUp"), DEFAULT_SCALE_UP)
    behavior["scaleDown"] = _rules(behavior.get("scaleDown"), DEFAULT_SCALE_DOWN)
    spec["behavior"] = behavior


def _validate(e: Errors, obj: Obj) -> None:
    spec: Any = obj.get("spec")
    if not e.check(spec, "spec", dict, required=True):
        return
    target = spec.get("scaleTargetRef")
    if e.check(target, "spec.scaleTargetRef", dict, required=True):
        e.enum(target, "kind", "spec.scaleTargetRef.kind", SCALABLE)
        if not target.get("kind"):
            e.add("spec.scaleTargetRef.kind", "Required value")
        if not e.check(target.get("name"), "spec.scaleTargetRef.name", str, required=True) or not target["name"]:
            e.add("spec.scaleTargetRef.name", "Required value")
        e.check(target.get("apiVersion"), "spec.scaleTargetRef.apiVersion", str)
    e.integer(spec, "minReplicas", "spec.minReplicas", 1)
    e.integer(spec, "maxReplicas", "spec.maxReplicas", 1, required=True)
    low, high = spec.get("minReplicas"), spec.get("maxReplicas")
    if isinstance(low, int) and isinstance(high, int) and low > high:
        e.add("spec.maxReplicas", f"Invalid value: {high}: must be greater than or equal to `minReplicas`")
    metrics = spec.get("metrics")
    if e.check(metrics, "spec.metrics", list) and isinstance(metrics, list):
        for i, metric in enumerate(metrics):
            _validate_metric(e, metric, f"spec.metrics[{i}]")
    behavior = spec.get("behavior")
    if e.check(behavior, "spec.behavior", dict) and isinstance(behavior, dict):
        for direction in ("scaleUp", "scaleDown"):
            _validate_rules(e, behavior.get(direction), f"spec.behavior.{direction}")


def _validate_metric(e: Errors, metric: Any, path: str) -> None:
    if not e.check(metric, path, dict, required=True):
        return
    if metric.get("type") != "Resource":
        e.add(f"{path}.type", f"Unsupported value: {metric.get('type')!r}: supported values: Resource "
              "(Pods, Object, External and ContainerResource metrics need a custom metrics API Shoal does not have)")
        return
    resource = metric.get("resource")
    if not e.check(resource, f"{path}.resource", dict, required=True):
        return
    e.enum(resource, "name", f"{path}.resource.name", RESOURCES)
    target = resource.get("target")
    if not e.check(target, f"{path}.resource.target", dict, required=True):
        return
    e.enum(target, "type", f"{path}.resource.target.type", TARGET_TYPES)
    if target.get("type") == "Utilization":
        e.integer(target, "averageUtilization", f"{path}.resource.target.averageUtilization", 1, required=True)
    elif target.get("type") == "AverageValue":
        value = target.get("averageValue")
        try:
            if value is None or parse_quantity(value) <= 0:
                e.add(f"{path}.resource.target.averageValue", "Invalid value: must be positive")
        except BadRequest as exc:
            e.add(f"{path}.resource.target.averageValue", str(exc))


def _validate_rules(e: Errors, rules: Any, path: str) -> None:
    if not e.check(rules, path, dict):
        return
    e.integer(rules, "stabilizationWindowSeconds", f"{path}.stabilizationWindowSeconds", 0, 3600)
    e.enum(rules, "selectPolicy", f"{path}.selectPolicy", SELECT_POLICIES)
    policies = rules.get("policies")
    if e.check(policies, f"{path}.policies", list) and isinstance(policies, list):
        if not policies and rules.get("selectPolicy") != "Disabled":
            e.add(f"{path}.policies", "Required value: must specify at least one Policy")
        for i, policy in enumerate(policies):
            where = f"{path}.policies[{i}]"
            if e.check(policy, where, dict, required=True):
                e.enum(policy, "type", f"{where}.type", POLICY_TYPES)
                e.integer(policy, "value", f"{where}.value", 1, required=True)
                e.integer(policy, "periodSeconds", f"{where}.periodSeconds", 1, 1800, required=True)


def _reference(obj: Obj, now: float) -> str:
    target = get_path(obj, "spec", "scaleTargetRef") or {}
    return f"{target.get('kind')}/{target.get('name')}" if isinstance(target, dict) else NONE


def targets_text(obj: Obj) -> str:
    """kubectl's TARGETS: ``cpu: 45%/50%`` per metric, ``<unknown>`` before the first measure."""
    current = {str(get_path(m, "resource", "name")): get_path(m, "resource", "current") or {}
               for m in get_path(obj, "status", "currentMetrics") or [] if isinstance(m, dict)}
    parts = []
    for metric in get_path(obj, "spec", "metrics") or []:
        name = str(get_path(metric, "resource", "name"))
        target = get_path(metric, "resource", "target") or {}
        now_ = current.get(name) or {}
        if target.get("type") == "Utilization":
            value = now_.get("averageUtilization")
            parts.append(f"{name}: {'<unknown>' if value is None else f'{value}%'}/{target.get('averageUtilization')}%")
        else:
            value = now_.get("averageValue")
            parts.append(f"{name}: {'<unknown>' if value is None else value}/{target.get('averageValue')}")
    return ", ".join(parts) or NONE


COLUMNS = (
    NAME,
    Column("REFERENCE", _reference, description="The scaled object."),
    Column("TARGETS", lambda o, now: targets_text(o), description="Current / target use per metric."),
    Column("MINPODS", lambda o, now: num(o, "spec", "minReplicas"), type="integer", description="Fewest replicas."),
    Column("MAXPODS", lambda o, now: num(o, "spec", "maxReplicas"), type="integer", description="Most replicas."),
    Column("REPLICAS", lambda o, now: num(o, "status", "currentReplicas"), type="integer",
           description="Replicas last seen."),
    AGE,
)

_RULES = (
    Field("stabilizationWindowSeconds", "integer", "Past recommendations considered (scale up 0, down 300)."),
    Field("selectPolicy", "string", "Max (default), Min or Disabled.", enum=SELECT_POLICIES),
    Field("policies", "array", "Most change per period.", items=Field("", "object", fields=(
        Field("type", "string", "Pods or Percent.", enum=POLICY_TYPES), Field("value", "integer", required=True),
        Field("periodSeconds", "integer", required=True)))),
)
_TARGET = Field("target", "object", "", fields=(
    Field("type", "string", "", enum=TARGET_TYPES),
    Field("averageUtilization", "integer", "Percent of the pods' requests."),
    Field("averageValue", "string", "A quantity per pod, such as 200m or 64Mi.")))
_METRIC = Field("", "object", fields=(
    Field("type", "string", "Resource.", enum=("Resource",)),
    Field("resource", "object", "", fields=(Field("name", "string", "cpu or memory.", enum=RESOURCES), _TARGET))))
SCHEMA = (
    Field("spec", "object", "What to scale, between which bounds, to which target.", required=True, fields=(
        Field("scaleTargetRef", "object", "The scaled object.", required=True, fields=(
            Field("kind", "string", "", required=True, enum=SCALABLE), Field("name", "string", required=True),
            Field("apiVersion", "string"))),
        Field("minReplicas", "integer", "Fewest replicas (default 1)."),
        Field("maxReplicas", "integer", "Most replicas.", required=True),
        Field("metrics", "array", "Targets (default: 80% CPU utilization).", items=_METRIC),
        Field("behavior", "object", "How fast to scale.", fields=(
            Field("scaleUp", "object", "", fields=_RULES), Field("scaleDown", "object", "", fields=_RULES))),
    )),
    Field("status", "object", "What the controller last observed.", fields=(
        Field("currentReplicas", "integer"), Field("desiredReplicas", "integer"), Field("lastScaleTime", "string"),
        Field("currentMetrics", "array", items=Field("", "object")),
        Field("conditions", "array", items=Field("", "object")),
        Field("observedGeneration", "integer"))),
)

STRATEGY = Strategy(
    INFO, description="Scales a workload to keep its pods' CPU or memory use at a target.", schema=SCHEMA,
    columns=COLUMNS, default=_default, validate=_validate,
)
