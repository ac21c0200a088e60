"""Schema validation of objects, reporting every problem with its precise field path.

``validate(obj)`` raises ``Invalid`` whose ``details["causes"]`` is a list of
``{"field": "spec.containers[0].image", "message": "Required value"}``; it never modifies ``obj``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from protocol.errors import Invalid
from protocol.kinds import KindInfo, by_kind
from protocol.quantity import QuantityError, parse_quantity
from protocol.selectors import from_label_selector

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL_NAME = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_IANA_SVC = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
MAX_ANNOTATIONS_BYTES = 256 * 1024


class _Errors:
    def __init__(self) -> None:
        self.causes: list[dict[str, str]] = []

    def add(self, path: str, message: str) -> None:
        self.causes.append({"field": path, "message": message})

    def typed(self, obj: Any, path: str, kind: type | tuple[type, ...], *, required: bool = False) -> bool:
        """True when the field is present and of the type; records an error when it is not."""
        value = obj.get(path.rsplit(".", 1)[-1]) if isinstance(obj, dict) else None
        return self.check(value, path, kind, required=required)

    def check(self, value: Any, path: str, kind: type | tuple[type, ...], *, required: bool = False) -> bool:
        if value is None:
            if required:
                self.add(path, "Required value")
            return False
        if isinstance(value, bool) and kind in (int, (int, float), (int, str)):
            self.add(path, f"Invalid type: expected {_type_name(kind)}, got boolean")
            return False
        if not isinstance(value, kind):
            self.add(path, f"Invalid type: expected {_type_name(kind)}, got {_type_name(type(value))}")
            return False
        return True

    def name(self, value: Any, path: str, pattern: re.Pattern[str], what: str, max_len: int) -> None:
        if not self.check(value, path, str, required=True):
            return
        if len(value) > max_len:
            self.add(path, f"must be no more than {max_len} characters")
        elif not pattern.match(value):
            chars = "'-' or '.'" if "subdomain" in what else "'-'"
            self.add(path, f"a lowercase RFC 1123 {what} must consist of lower case alphanumeric characters "
                           f"or {chars}, and must start and end with an alphanumeric character (got {value!r})")

    def integer(self, obj: Any, field: str, path: str, lo: int | None = None,
                hi: int | None = None, *, required: bool = False) -> None:
        value = obj.get(field)
        if self.check(value, path, int, required=required):
            if lo is not None and value < lo:
                self.add(path, f"must be greater than or equal to {lo}")
            if hi is not None and value > hi:
                self.add(path, f"must be less than or equal to {hi}")

    def enum(self, obj: Any, field: str, path: str, allowed: tuple[str, ...]) -> None:
        value = obj.get(field)
        if self.check(value, path, str) and value not in allowed:
            self.add(path, f"Unsupported value: {value!r}: supported values: {', '.join(allowed)}")

    def string_map(self, value: Any, path: str) -> None:
        if self.check(value, path, dict):
            for k, v in value.items():
                if not isinstance(v, str):
                    self.add(f"{path}[{k}]", f"Invalid type: expected string, got {_type_name(type(v))}")

    def str_list(self, value: Any, path: str) -> None:
        if self.check(value, path, list):
            for i, item in enumerate(value):
                self.check(item, f"{path}[{i}]", str, required=True)

    def items(self, value: Any, path: str, *, required: bool = False) -> list[tuple[str, Any]]:
        if not self.check(value, path, list, required=required):
            return []
        out = []
        for i, item in enumerate(value):
            if self.check(item, f"{path}[{i}]", dict, required=True):
                out.append((f"{path}[{i}]", item))
        return out


def _type_name(kind: Any) -> str:
    names = {dict: "object", list: "array", str: "string", int: "integer", float: "number", bool: "boolean"}
    if isinstance(kind, tuple):
        return " or ".join(names.get(k, k.__name__) for k in kind)
    return names.get(kind, getattr(kind, "__name__", str(kind)))


def _qualified_name(e: _Errors, key: str, path: str) -> None:
    prefix, _, name = key.rpartition("/")
    if prefix and (len(prefix) > 253 or not DNS_SUBDOMAIN.match(prefix)):
        e.add(path, f"prefix part of {key!r} must be a DNS subdomain")
    if not name or len(name) > 63 or not _LABEL_NAME.match(name):
        e.add(path, f"name part of {key!r} must be 63 characters or less, alphanumeric, '-', '_' or '.', "
                    "starting and ending with an alphanumeric character")


def _metadata(e: _Errors, obj: Any, info: KindInfo) -> None:
    meta = obj.get("metadata")
    if not e.check(meta, "metadata", dict, required=True):
        return
    pattern, what, max_len = (
        (DNS_LABEL, "label", 63) if info.kind in ("Namespace", "Service") else
        (DNS_SUBDOMAIN, "subdomain", 253)
    )
    if meta.get("name") is None and meta.get("generateName"):
        e.check(meta["generateName"], "metadata.generateName", str)
    else:
        e.name(meta.get("name"), "metadata.name", pattern, what, max_len)
    if info.namespaced and meta.get("namespace") is not None:
        e.name(meta.get("namespace"), "metadata.namespace", DNS_LABEL, "label", 63)
    labels = meta.get("labels")
    if e.check(labels, "metadata.labels", dict):
        for k, v in labels.items():
            _qualified_name(e, str(k), f"metadata.labels[{k}]")
            if not isinstance(v, str):
                e.add(f"metadata.labels[{k}]", "Invalid type: label values must be strings")
            elif len(v) > 63 or not _LABEL_VALUE.match(v):
                e.add(f"metadata.labels[{k}]", f"invalid label value {v!r}: 63 characters or less, "
                                              "alphanumeric, '-', '_' or '.'")
    annotations = meta.get("annotations")
    e.string_map(annotations, "metadata.annotations")
    if isinstance(annotations, dict):
        size = sum(len(str(k)) + len(str(v)) for k, v in annotations.items())
        if size > MAX_ANNOTATIONS_BYTES:
            e.add("metadata.annotations", f"Too long: must have at most {MAX_ANNOTATIONS_BYTES} bytes")
    e.str_list(meta.get("finalizers"), "metadata.finalizers")
    for path, ref in e.items(meta.get("ownerReferences"), "metadata.ownerReferences"):
        for f in ("apiVersion", "kind", "name", "uid"):
            e.check(ref.get(f), f"{path}.{f}", str, required=True)
        for f in ("controller", "blockOwnerDeletion"):
            e.check(ref.get(f), f"{path}.{f}", bool)
    for f in ("resourceVersion", "uid", "creationTimestamp", "deletionTimestamp"):
        e.check(meta.get(f), f"metadata.{f}", str)
    e.integer(meta, "generation", "metadata.generation", 0)


def _quantities(e: _Errors, value: Any, path: str) -> None:
    if e.check(value, path, dict):
        for name, q in value.items():
            if not isinstance(q, str | int | float) or isinstance(q, bool):
                e.add(f"{path}[{name}]", "Invalid type: expected a quantity such as 100m or 64Mi")
                continue
            try:
                parse_quantity(q)
            except QuantityError as exc:
                e.add(f"{path}[{name}]", str(exc))


def _probe(e: _Errors, probe: Any, path: str) -> None:
    if not e.check(probe, path, dict):
        return
    handlers = [h for h in ("exec", "httpGet", "tcpSocket") if probe.get(h) is not None]
    if len(handlers) != 1:
        e.add(path, "must specify exactly one handler: exec, httpGet or tcpSocket")
    if probe.get("exec") is not None and e.check(probe["exec"], f"{path}.exec", dict):
        e.str_list(probe["exec"].get("command"), f"{path}.exec.command")
    for h in ("httpGet", "tcpSocket"):
        if probe.get(h) is not None and e.check(probe[h], f"{path}.{h}", dict):
            port = probe[h].get("port")
            valid = e.check(port, f"{path}.{h}.port", (int, str), required=True)
            if valid and isinstance(port, int) and not 0 < port < 65536:
                e.add(f"{path}.{h}.port", "must be between 1 and 65535, inclusive")
    for f in ("initialDelaySeconds", "periodSeconds", "timeoutSeconds", "successThreshold",
              "failureThreshold"):
        e.integer(probe, f, f"{path}.{f}", 0)


def _container(e: _Errors, c: Any, path: str) -> None:
    e.name(c.get("name"), f"{path}.name", DNS_LABEL, "label", 63)
    if e.check(c.get("image"), f"{path}.image", str, required=True) and not c["image"].strip():
        e.add(f"{path}.image", "Required value")
    e.str_list(c.get("command"), f"{path}.command")
    e.str_list(c.get("args"), f"{path}.args")
    e.check(c.get("workingDir"), f"{path}.workingDir", str)
    for epath, env in e.items(c.get("env"), f"{path}.env"):
        e.check(env.get("name"), f"{epath}.name", str, required=True)
        e.check(env.get("value"), f"{epath}.value", str)
    for ppath, port in e.items(c.get("ports"), f"{path}.ports"):
        e.integer(port, "containerPort", f"{ppath}.containerPort", 1, 65535, required=True)
        e.integer(port, "hostPort", f"{ppath}.hostPort", 0, 65535)
        e.enum(port, "protocol", f"{ppath}.protocol", ("TCP", "UDP", "SCTP"))
        e.check(port.get("name"), f"{ppath}.name", str)
        e.check(port.get("hostIP"), f"{ppath}.hostIP", str)
    resources = c.get("resources")
    if e.check(resources, f"{path}.resources", dict):
        _quantities(e, resources.get("requests"), f"{path}.resources.requests")
        _quantities(e, resources.get("limits"), f"{path}.resources.limits")
    for p in ("livenessProbe", "readinessProbe", "startupProbe"):
        _probe(e, c.get(p), f"{path}.{p}")
    e.enum(c, "imagePullPolicy", f"{path}.imagePullPolicy", ("Always", "IfNotPresent", "Never"))


def _pod_spec(e: _Errors, spec: Any, path: str) -> None:
    if not e.check(spec, path, dict, required=True):
        return
    containers = e.items(spec.get("containers"), f"{path}.containers", required=True)
    if isinstance(spec.get("containers"), list) and not spec["containers"]:
        e.add(f"{path}.containers", "Required value: a pod needs at least one container")
    names: set[str] = set()
    for cpath, c in containers + e.items(spec.get("initContainers"), f"{path}.initContainers"):
        _container(e, c, cpath)
        if c.get("name") in names:
            e.add(f"{cpath}.name", f"Duplicate value: {c.get('name')!r}")
        names.add(str(c.get("name")))
    e.enum(spec, "restartPolicy", f"{path}.restartPolicy", ("Always", "OnFailure", "Never"))
    e.string_map(spec.get("nodeSelector"), f"{path}.nodeSelector")
    e.check(spec.get("nodeName"), f"{path}.nodeName", str)
    e.integer(spec, "terminationGracePeriodSeconds", f"{path}.terminationGracePeriodSeconds", 0)
    for tpath, t in e.items(spec.get("tolerations"), f"{path}.tolerations"):
        e.check(t.get("key"), f"{tpath}.key", str)
        e.enum(t, "operator", f"{tpath}.operator", ("Exists", "Equal"))
        e.enum(t, "effect", f"{tpath}.effect", ("NoSchedule", "PreferNoSchedule", "NoExecute"))
        e.integer(t, "tolerationSeconds", f"{tpath}.tolerationSeconds")
    e.check(spec.get("affinity"), f"{path}.affinity", dict)
    e.check(spec.get("hostNetwork"), f"{path}.hostNetwork", bool)


def _template(e: _Errors, spec: Any, path: str, selects: Callable[[dict[str, str]], bool]) -> None:
    template = spec.get("template")
    if not e.check(template, f"{path}.template", dict, required=True):
        return
    meta = template.get("metadata") or {}
    labels = meta.get("labels") if isinstance(meta, dict) else None
    e.string_map(labels, f"{path}.template.metadata.labels")
    if not selects(labels if isinstance(labels, dict) else {}):
        e.add(f"{path}.template.metadata.labels", "Invalid value: selector does not match template labels")
    _pod_spec(e, template.get("spec"), f"{path}.template.spec")


def _int_or_percent(e: _Errors, obj: Any, field: str, path: str) -> None:
    value = obj.get(field)
    if e.check(value, path, (int, str)) and isinstance(value, str) and not re.fullmatch(r"\d+%", value):
        e.add(path, f"must be an integer or a percentage such as 25% (got {value!r})")


def _validate_spec(e: _Errors, obj: Any, kind: str) -> None:
    spec = obj.get("spec")
    if kind == "Pod":
        _pod_spec(e, spec, "spec")
    elif kind in ("ReplicationController", "ReplicaSet", "Deployment", "DaemonSet"):
        if not e.check(spec, "spec", dict, required=True):
            return
        e.integer(spec, "replicas", "spec.replicas", 0)
        e.integer(spec, "minReadySeconds", "spec.minReadySeconds", 0)
        if kind == "ReplicationController":
            selector = spec.get("selector")
            e.string_map(selector, "spec.selector")
            if isinstance(selector, dict) and not selector:
                e.add("spec.selector", "Required value: an empty selector would select every pod")
            sel = selector if isinstance(selector, dict) else None
            _template(e, spec, "spec",
                      lambda labels: sel is None or all(labels.get(k) == v for k, v in sel.items()))
        else:
            selector = spec.get("selector")
            if e.check(selector, "spec.selector", dict, required=True):
                try:
                    parsed = from_label_selector(selector)
                except Exception as exc:
                    e.add("spec.selector", str(exc))
                    return
                if parsed.empty:
                    e.add("spec.selector", "Required value: an empty selector would select every pod")
                _template(e, spec, "spec", parsed.matches)
        if kind == "Deployment":
            strategy = spec.get("strategy")
            if e.check(strategy, "spec.strategy", dict):
                e.enum(strategy, "type", "spec.strategy.type", ("RollingUpdate", "Recreate"))
                ru = strategy.get("rollingUpdate")
                if e.check(ru, "spec.strategy.rollingUpdate", dict):
                    _int_or_percent(e, ru, "maxSurge", "spec.strategy.rollingUpdate.maxSurge")
                    _int_or_percent(e, ru, "maxUnavailable", "spec.strategy.rollingUpdate.maxUnavailable")
            e.integer(spec, "revisionHistoryLimit", "spec.revisionHistoryLimit", 0)
            e.check(spec.get("paused"), "spec.paused", bool)
        if kind == "DaemonSet":
            strategy = spec.get("updateStrategy")
            if e.check(strategy, "spec.updateStrategy", dict):
                e.enum(strategy, "type", "spec.updateStrategy.type", ("RollingUpdate", "OnDelete"))
                ru = strategy.get("rollingUpdate")
                if e.check(ru, "spec.updateStrategy.rollingUpdate", dict):
                    _int_or_percent(e, ru, "maxSurge", "spec.updateStrategy.rollingUpdate.maxSurge")
                    _int_or_percent(e, ru, "maxUnavailable", "spec.updateStrategy.rollingUpdate.maxUnavailable")
            e.integer(spec, "revisionHistoryLimit", "spec.revisionHistoryLimit", 0)
    elif kind == "Service":
        if not e.check(spec, "spec", dict, required=True):
            return
        e.enum(spec, "type", "spec.type", ("ClusterIP", "NodePort", "LoadBalancer", "ExternalName"))
        e.string_map(spec.get("selector"), "spec.selector")
        e.enum(spec, "sessionAffinity", "spec.sessionAffinity", ("None", "ClientIP"))
        e.check(spec.get("clusterIP"), "spec.clusterIP", str)
        for ppath, port in e.items(spec.get("ports"), "spec.ports"):
            e.integer(port, "port", f"{ppath}.port", 1, 65535, required=True)
            e.integer(port, "nodePort", f"{ppath}.nodePort", 0, 65535)
            e.enum(port, "protocol", f"{ppath}.protocol", ("TCP", "UDP", "SCTP"))
            tp = port.get("targetPort")
            if e.check(tp, f"{ppath}.targetPort", (int, str)) and isinstance(tp, int) and not 0 < tp < 65536:
                e.add(f"{ppath}.targetPort", "must be between 1 and 65535, inclusive")
            name = port.get("name")
            if e.check(name, f"{ppath}.name", str) and not _IANA_SVC.match(name):
                e.add(f"{ppath}.name", "must be a DNS label")
    elif kind == "Node":
        if spec is None:
            return
        if e.check(spec, "spec", dict):
            e.check(spec.get("unschedulable"), "spec.unschedulable", bool)
            for tpath, t in e.items(spec.get("taints"), "spec.taints"):
                e.check(t.get("key"), f"{tpath}.key", str, required=True)
                e.check(t.get("value"), f"{tpath}.value", str)
                if t.get("effect") is None:
                    e.add(f"{tpath}.effect", "Required value")
                e.enum(t, "effect", f"{tpath}.effect", ("NoSchedule", "PreferNoSchedule", "NoExecute"))
    elif kind == "PodDisruptionBudget":
        if not e.check(spec, "spec", dict, required=True):
            return
        if spec.get("minAvailable") is not None and spec.get("maxUnavailable") is not None:
            e.add("spec", "minAvailable and maxUnavailable cannot be both set")
        for field in ("minAvailable", "maxUnavailable"):
            _int_or_percent(e, spec, field, f"spec.{field}")
            if isinstance(spec.get(field), int) and spec[field] < 0:
                e.add(f"spec.{field}", "must be greater than or equal to 0")
        selector = spec.get("selector")
        if e.check(selector, "spec.selector", dict):
            try:
                from_label_selector(selector)
            except Exception as exc:
                e.add("spec.selector", str(exc))
        e.enum(spec, "unhealthyPodEvictionPolicy", "spec.unhealthyPodEvictionPolicy",
               ("IfHealthyBudget", "AlwaysAllow"))
    elif kind == "Lease":
        if spec is not None and e.check(spec, "spec", dict):
            e.check(spec.get("holderIdentity"), "spec.holderIdentity", str)
            e.integer(spec, "leaseDurationSeconds", "spec.leaseDurationSeconds", 1)
            e.integer(spec, "leaseTransitions", "spec.leaseTransitions", 0)
            e.check(spec.get("renewTime"), "spec.renewTime", str)
            e.check(spec.get("acquireTime"), "spec.acquireTime", str)
    elif spec is not None:
        e.check(spec, "spec", dict)


def _validate_body(e: _Errors, obj: Any, kind: str) -> None:
    if kind in ("ConfigMap", "Secret"):
        e.string_map(obj.get("data"), "data")
        if kind == "Secret":
            e.string_map(obj.get("stringData"), "stringData")
            e.check(obj.get("type"), "type", str)
    elif kind == "Endpoints":
        for spath, subset in e.items(obj.get("subsets"), "subsets"):
            for field in ("addresses", "notReadyAddresses"):
                for apath, addr in e.items(subset.get(field), f"{spath}.{field}"):
                    e.check(addr.get("ip"), f"{apath}.ip", str, required=True)
            for ppath, port in e.items(subset.get("ports"), f"{spath}.ports"):
                e.integer(port, "port", f"{ppath}.port", 1, 65535, required=True)
    elif kind == "Event":
        involved = obj.get("involvedObject")
        if e.check(involved, "involvedObject", dict, required=True):
            e.check(involved.get("kind"), "involvedObject.kind", str, required=True)
            e.check(involved.get("name"), "involvedObject.name", str, required=True)
        e.check(obj.get("reason"), "reason", str)
        e.check(obj.get("message"), "message", str)
        e.enum(obj, "type", "type", ("Normal", "Warning"))
        e.integer(obj, "count", "count", 0)
    elif kind == "ServiceAccount":
        for path, ref in e.items(obj.get("secrets"), "secrets"):
            e.check(ref.get("name"), f"{path}.name", str)


def validate(obj: Any, *, expect_kind: str | None = None) -> KindInfo:
    """Validate a whole object; return its kind. Raises Invalid listing every cause."""
    e = _Errors()
    if not isinstance(obj, dict):
        raise Invalid(f"an object must be a map, got {_type_name(type(obj))}",
                      {"causes": [{"field": "", "message": "expected a map"}]})
    kind: Any = obj.get("kind")
    if not e.check(kind, "kind", str, required=True):
        raise Invalid("object has no kind", {"causes": e.causes})
    info = by_kind(kind)  # BadRequest for unknown kinds
    if expect_kind and kind != expect_kind:
        raise Invalid(f"kind {kind!r} sent to the {expect_kind} endpoint",
                      {"causes": [{"field": "kind", "message": f"expected {expect_kind}"}]})
    api_version = obj.get("apiVersion")
    if e.check(api_version, "apiVersion", str) and api_version != info.api_version:
        e.add("apiVersion", f"Unsupported value: {api_version!r}: {kind} is served as {info.api_version}")
    _metadata(e, obj, info)
    _validate_spec(e, obj, kind)
    e.check(obj.get("status"), "status", dict)
    _validate_body(e, obj, kind)
    if e.causes:
        name = obj.get("metadata", {}).get("name") if isinstance(obj.get("metadata"), dict) else None
        summary = "; ".join(f"{c['field']}: {c['message']}" for c in e.causes[:5])
        more = f" (and {len(e.causes) - 5} more)" if len(e.causes) > 5 else ""
        raise Invalid(f"{kind} {name!r} is invalid: {summary}{more}",
                      {"kind": kind, "name": name, "causes": e.causes})
    return info



def validate_status(obj: Any, *, expect_kind: str) -> None:
    """What an update-status request must get right: a map of the kind, with a name and a map status.
    The rest of the object is taken from the stored copy, so it is not checked again."""
    e = _Errors()
    if not isinstance(obj, dict):
        raise Invalid("an object must be a map", {"causes": [{"field": "", "message": "expected a map"}]})
    if obj.get("kind") != expect_kind:
        e.add("kind", f"expected {expect_kind}")
    if e.check(obj.get("metadata"), "metadata", dict, required=True):
        e.check(obj["metadata"].get("name"), "metadata.name", str, required=True)
    e.check(obj.get("status"), "status", dict)
    if e.causes:
        raise Invalid(f"{expect_kind} status update is invalid: "
                      + "; ".join(f"{c['field']}: {c['message']}" for c in e.causes), {"causes": e.causes})
