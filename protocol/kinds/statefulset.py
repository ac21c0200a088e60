"""StatefulSet (apps/v1): pods with stable ordinal names, network identity and storage, rolled out in order."""

from __future__ import annotations

from typing import Any

from protocol.fielderrors import Errors, int_or_percent
from protocol.kinds.strategy import AGE, NAME, Column, Field, KindInfo, Strategy, get_path, num
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

INFO = KindInfo("StatefulSet", "apps/v1", "statefulsets", "statefulset", ("sts",),
                subresources=frozenset({"status", "scale"}),
                categories=("all",))
POLICIES = ("OrderedReady", "Parallel")
STRATEGIES = ("RollingUpdate", "OnDelete")
RETENTION = ("Retain", "Delete")
MUTABLE = ("replicas", "template", "updateStrategy", "persistentVolumeClaimRetentionPolicy", "minReadySeconds",
           "ordinals")
"""What of the spec an update may change (Kubernetes' ``ValidateStatefulSetUpdate``); the rest is immutable."""


def _default(obj: Obj) -> None:
    replicated_defaults(obj)
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return
    spec.setdefault("podManagementPolicy", "OrderedReady")
    spec.setdefault("revisionHistoryLimit", 10)
    strategy = spec.setdefault("updateStrategy", {})
    if isinstance(strategy, dict):
        strategy.setdefault("type", "RollingUpdate")
        if strategy["type"] == "RollingUpdate":
            rolling = strategy.setdefault("rollingUpdate", {})
            if isinstance(rolling, dict):
                rolling.setdefault("partition", 0)
    retention = spec.setdefault("persistentVolumeClaimRetentionPolicy", {})
    if isinstance(retention, dict):
        retention.setdefault("whenDeleted", "Retain")
        retention.setdefault("whenScaled", "Retain")


def _validate(e: Errors, obj: Obj) -> None:
    spec: Any = obj.get("spec")
    if not e.check(spec, "spec", dict, required=True):
        return
    validate_replicas(e, spec)
    validate_label_selector(e, spec)
    e.check(spec.get("serviceName"), "spec.serviceName", str)
    e.integer(spec, "revisionHistoryLimit", "spec.revisionHistoryLimit", 0)
    e.enum(spec, "podManagementPolicy", "spec.podManagementPolicy", POLICIES)
    restart = get_path(spec, "template", "spec", "restartPolicy")
    if restart not in (None, "Always"):
        e.add("spec.template.spec.restartPolicy", f'Unsupported value: "{restart}": supported values: "Always"')
    ordinals = spec.get("ordinals")
    if e.check(ordinals, "spec.ordinals", dict) and isinstance(ordinals, dict):
        e.integer(ordinals, "start", "spec.ordinals.start", 0)
    retention = spec.get("persistentVolumeClaimRetentionPolicy")
    if e.check(retention, "spec.persistentVolumeClaimRetentionPolicy", dict) and isinstance(retention, dict):
        for when in ("whenDeleted", "whenScaled"):
            e.enum(retention, when, f"spec.persistentVolumeClaimRetentionPolicy.{when}", RETENTION)
    templates = spec.get("volumeClaimTemplates")
    if e.check(templates, "spec.volumeClaimTemplates", list) and isinstance(templates, list):
        for i, template in enumerate(templates):
            path = f"spec.volumeClaimTemplates[{i}]"
            if e.check(template, path, dict, required=True) and isinstance(template, dict):
                if not isinstance(get_path(template, "metadata", "name"), str) or not template["metadata"]["name"]:
                    e.add(f"{path}.metadata.name", "Required value")
                e.check(template.get("spec"), f"{path}.spec", dict)
    _validate_strategy(e, spec)


def _validate_strategy(e: Errors, spec: Obj) -> None:
    strategy = spec.get("updateStrategy")
    if not e.check(strategy, "spec.updateStrategy", dict) or not isinstance(strategy, dict):
        return
    e.enum(strategy, "type", "spec.updateStrategy.type", STRATEGIES)
    rolling = strategy.get("rollingUpdate")
    if not e.check(rolling, "spec.updateStrategy.rollingUpdate", dict) or not isinstance(rolling, dict):
        return
    path = "spec.updateStrategy.rollingUpdate"
    if strategy.get("type") == "OnDelete":
        e.add(path, "Forbidden: only allowed for updateStrategy 'RollingUpdate'")
    e.integer(rolling, "partition", f"{path}.partition", 0)
    if "maxUnavailable" in rolling:
        int_or_percent(e, rolling, "maxUnavailable", f"{path}.maxUnavailable")
        if rolling["maxUnavailable"] in (0, "0%"):
            e.add(f"{path}.maxUnavailable", "Invalid value: must be greater than 0")


def _validate_update(e: Errors, new: Obj, old: Obj) -> None:
    new_spec, old_spec = new.get("spec") or {}, old.get("spec") or {}
    if not isinstance(new_spec, dict) or not isinstance(old_spec, dict):
        return
    keys = (set(new_spec) | set(old_spec)) - set(MUTABLE)
    if any(new_spec.get(k) != old_spec.get(k) for k in keys):
        e.add("spec", "Forbidden: updates to statefulset spec for fields other than 'replicas', 'ordinals', "
              "'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' "
              "are forbidden")


COLUMNS = (
    NAME,
    Column("READY", lambda o, now: f"{num(o, 'status', 'readyReplicas')}/{num(o, 'spec', 'replicas')}",
           description="Ready pods / wanted pods."),
    AGE, CONTAINERS, IMAGES, selector_column(label_selector),
)

_CLAIM = Field("", "object", "A PersistentVolumeClaim made for each pod, named <template>-<set>-<ordinal>.",
               fields=(Field("metadata", "object", "", fields=(Field("name", "string", required=True),)),
                       Field("spec", "object", "The claim's spec (accessModes, resources, storageClassName).")))
SCHEMA = (
    Field("spec", "object", "The wanted pods, their identity and storage, and how to roll out a change.",
          required=True, fields=(
              REPLICAS, MIN_READY, LABEL_SELECTOR, TEMPLATE_SCHEMA,
              Field("serviceName", "string", "The headless Service giving the pods their DNS names."),
              Field("podManagementPolicy", "string", "OrderedReady (default: one at a time, in order) or Parallel.",
                    enum=POLICIES),
              Field("updateStrategy", "object", "How a new template replaces the pods.", fields=(
                  Field("type", "string", "RollingUpdate (default) or OnDelete.", enum=STRATEGIES),
                  Field("rollingUpdate", "object", "", fields=(
                      Field("partition", "integer", "Pods with an ordinal below it keep the old template."),
                      Field("maxUnavailable", "string", "Pods updated at once (default 1)."))))),
              Field("volumeClaimTemplates", "array", "Claims each pod gets.", items=_CLAIM),
              Field("persistentVolumeClaimRetentionPolicy", "object", "What happens to the claims.", fields=(
                  Field("whenDeleted", "string", "Retain (default) or Delete, when the set is deleted.",
                        enum=RETENTION),
                  Field("whenScaled", "string", "Retain (default) or Delete, when a pod is scaled away.",
                        enum=RETENTION))),
              Field("ordinals", "object", "", fields=(Field("start", "integer", "The first ordinal (default 0)."),)),
              Field("revisionHistoryLimit", "integer", "Old revisions kept (default 10)."),
          )),
    Field("status", "object", "What the controller last observed.", fields=(
        Field("replicas", "integer"), Field("readyReplicas", "integer"), Field("currentReplicas", "integer"),
        Field("updatedReplicas", "integer"), Field("availableReplicas", "integer"),
        Field("currentRevision", "string"), Field("updateRevision", "string"),
        Field("collisionCount", "integer"), Field("observedGeneration", "integer"))),
)

STRATEGY = Strategy(
    INFO, description="Runs pods with stable names, network identity and storage, in ordinal order.",
    schema=SCHEMA, columns=COLUMNS, default=_default, validate=_validate, validate_update=_validate_update,
    warnings=template_warnings, pod_selector=label_selector,
)
