"""Defaulting: the fields the API actor fills in on create, as Kubernetes' API server does. Pure."""

from __future__ import annotations

import base64
import copy
import secrets
from typing import Any

from protocol.kinds import KindInfo
from protocol.objects import Obj

_SUFFIX_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


def random_suffix(n: int = 5) -> str:
    return "".join(secrets.choice(_SUFFIX_ALPHABET) for _ in range(n))


def _container_defaults(c: Any) -> None:
    if not isinstance(c, dict):
        return
    c.setdefault("imagePullPolicy", "Always" if str(c.get("image", "")).endswith(":latest") else "IfNotPresent")
    for port in c.get("ports") or []:
        if isinstance(port, dict):
            port.setdefault("protocol", "TCP")
    c.setdefault("terminationMessagePath", "/dev/termination-log")
    for probe_name in ("livenessProbe", "readinessProbe", "startupProbe"):
        probe = c.get(probe_name)
        if isinstance(probe, dict):
            probe.setdefault("periodSeconds", 10)
            probe.setdefault("timeoutSeconds", 1)
            probe.setdefault("successThreshold", 1)
            probe.setdefault("failureThreshold", 3)
            probe.setdefault("initialDelaySeconds", 0)


def pod_spec_defaults(spec: Any) -> None:
    if not isinstance(spec, dict):
        return
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("schedulerName", "default-scheduler")
    for c in (spec.get("containers") or []) + (spec.get("initContainers") or []):
        _container_defaults(c)


def _template_defaults(spec: Obj) -> None:
    template = spec.get("template")
    if isinstance(template, dict):
        pod_spec_defaults(template.get("spec"))


def apply_defaults(obj: Obj, info: KindInfo) -> None:
    """Fill in the kind's defaults in place (only fields that are absent)."""
    obj.setdefault("apiVersion", info.api_version)
    spec = obj.get("spec")
    kind = info.kind
    if kind == "Pod" and isinstance(spec, dict):
        pod_spec_defaults(spec)
    elif kind in ("ReplicationController", "ReplicaSet", "Deployment") and isinstance(spec, dict):
        spec.setdefault("replicas", 1)
        spec.setdefault("minReadySeconds", 0)
        template = spec.get("template")
        if kind == "ReplicationController" and isinstance(template, dict):
            labels = (template.get("metadata") or {}).get("labels")
            if not spec.get("selector") and isinstance(labels, dict):
                spec["selector"] = dict(labels)
        _template_defaults(spec)
        if kind == "Deployment":
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
    elif kind == "Service" and isinstance(spec, dict):
        spec.setdefault("type", "ClusterIP")
        spec.setdefault("sessionAffinity", "None")
        for port in spec.get("ports") or []:
            if isinstance(port, dict):
                port.setdefault("protocol", "TCP")
                port.setdefault("targetPort", port.get("port"))
    elif kind == "Namespace":
        obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
        obj.setdefault("status", {}).setdefault("phase", "Active")
    elif kind == "Secret":
        obj.setdefault("type", "Opaque")
        string_data = obj.pop("stringData", None)
        if isinstance(string_data, dict):
            data = obj.setdefault("data", {})
            for k, v in string_data.items():
                data[k] = base64.b64encode(str(v).encode()).decode()
    elif kind == "Node":
        obj.setdefault("spec", {})


def admit_new(obj: Obj, info: KindInfo) -> None:
    """Create-time admission (Kubernetes' DefaultTolerationSeconds): pods tolerate an unreachable or
    not-ready node for 300 s unless they say otherwise. Not re-applied on update."""
    spec = obj.get("spec")
    if info.kind == "Pod" and isinstance(spec, dict):
        tolerations = spec.setdefault("tolerations", [])
        for key in ("node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"):
            if not any(t.get("key") == key for t in tolerations if isinstance(t, dict)):
                tolerations.append({"key": key, "operator": "Exists", "effect": "NoExecute",
                                    "tolerationSeconds": 300})


def create_status(obj: Obj, info: KindInfo) -> None:
    """Status a new object starts with (what a client sends as status on create is dropped)."""
    if not info.has_status:
        return
    if info.kind == "Pod":
        obj["status"] = {"phase": "Pending", "conditions": [], "qosClass": qos_class(obj.get("spec") or {})}
    elif info.kind == "Namespace":
        obj["status"] = {"phase": "Active"}
    elif info.kind == "Node":
        obj.setdefault("status", {})  # kubelets register with their status
    else:
        obj["status"] = {}


def qos_class(spec: Obj) -> str:
    containers = spec.get("containers") or []
    any_set, all_guaranteed = False, True
    for c in containers:
        res = c.get("resources") or {}
        requests, limits = res.get("requests") or {}, res.get("limits") or {}
        if requests or limits:
            any_set = True
        for r in ("cpu", "memory"):
            if r not in limits or requests.get(r, limits.get(r)) != limits.get(r):
                all_guaranteed = False
    if not any_set:
        return "BestEffort"
    return "Guaranteed" if all_guaranteed else "Burstable"


def spec_part(obj: Obj) -> Obj:
    """Everything but metadata and status: what, when changed, bumps metadata.generation."""
    return {k: v for k, v in obj.items() if k not in ("metadata", "status", "apiVersion", "kind")}


def copy_object(obj: Obj) -> Obj:
    return copy.deepcopy(obj)


