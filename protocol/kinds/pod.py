"""Pod (v1): the pod spec's defaults, validation, warnings and schema (shared by the kinds with a pod
template), pods' create-time tolerations, initial status, graceful deletion and printed columns."""

from __future__ import annotations

from typing import Any

from protocol.errors import Invalid
from protocol.fielderrors import DNS_LABEL, Errors
from protocol.humanize import duration
from protocol.kinds.strategy import (
    AGE,
    NAME,
    NONE,
    Column,
    Field,
    KindInfo,
    Strategy,
    as_dict,
    as_list,
    get_path,
    no_update_warnings,
    string_map,
    undescribed,
)
from protocol.objects import Obj, condition, condition_true, meta, parse_time
from protocol.podfields import refusals as field_refusals
from protocol.podfields import warnings as field_warnings
from protocol.quantity import QuantityError, parse_quantity
from protocol.tolerations import NOT_READY, UNREACHABLE

INFO = KindInfo("Pod", "v1", "pods", "pod", ("po",),
                subresources=frozenset({"status", "binding", "log", "eviction"}),
                categories=("all",))
DEFAULT_GRACE_SECONDS = 30
DEPRECATED_NODE_LABELS = {
    "beta.kubernetes.io/arch": "kubernetes.io/arch",
    "beta.kubernetes.io/os": "kubernetes.io/os",
    "failure-domain.beta.kubernetes.io/region": "topology.kubernetes.io/region",
    "failure-domain.beta.kubernetes.io/zone": "topology.kubernetes.io/zone",
    "beta.kubernetes.io/instance-type": "node.kubernetes.io/instance-type",
}
"""Node labels Kubernetes deprecated (pkg/api/pod/warnings.go): selecting on them draws a warning."""


# -- defaulting -------------------------------------------------------------------------------------
def _container_defaults(c: Any) -> None:
    if not isinstance(c, dict):
        return
    c.setdefault("imagePullPolicy", "Always" if str(c.get("image", "")).endswith(":latest") else "IfNotPresent")
    for port in c.get("ports") or []:
        if isinstance(port, dict):
            port.setdefault("protocol", "TCP")
    c.setdefault("terminationMessagePath", "/dev/termination-log")
    c.setdefault("terminationMessagePolicy", "File")
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
    spec.setdefault("terminationGracePeriodSeconds", DEFAULT_GRACE_SECONDS)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("schedulerName", "default-scheduler")
    if spec.get("serviceAccount") and not spec.get("serviceAccountName"):
        spec["serviceAccountName"] = spec["serviceAccount"]  # the deprecated alias, as Kubernetes defaults it
    for c in (spec.get("containers") or []) + (spec.get("initContainers") or []):
        _container_defaults(c)


def _default(obj: Obj) -> None:
    pod_spec_defaults(obj.get("spec"))


def _admit_new(obj: Obj) -> None:
    """Kubernetes' DefaultTolerationSeconds: pods tolerate an unreachable or not-ready node for 300 s
    unless they say otherwise."""
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return
    tolerations = spec.setdefault("tolerations", [])
    for key in (NOT_READY, UNREACHABLE):
        if not any(t.get("key") == key for t in tolerations if isinstance(t, dict)):
            tolerations.append({"key": key, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300})


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


def _create_status(obj: Obj) -> None:
    obj["status"] = {"phase": "Pending", "conditions": [], "qosClass": qos_class(obj.get("spec") or {})}


# -- validation -------------------------------------------------------------------------------------
def _quantities(e: Errors, value: Any, path: str) -> None:
    if e.check(value, path, dict):
        for name, q in value.items():
            if not isinstance(q, str | int | float) or isinstance(q, bool):
                e.add(f"{path}[{name}]", "Invalid type: expected a quantity such as 100m or 64Mi")
                continue
            try:
                parse_quantity(q)
            except QuantityError as exc:
                e.add(f"{path}[{name}]", str(exc))


def _probe(e: Errors, probe: Any, path: str) -> None:
    if not e.check(probe, path, dict):
        return
    handlers = [h for h in ("exec", "httpGet", "tcpSocket", "grpc") if probe.get(h) is not None]
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


def _container(e: Errors, c: Any, path: str) -> None:
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
    e.enum(c, "terminationMessagePolicy", f"{path}.terminationMessagePolicy", ("File", "FallbackToLogsOnError"))
    e.check(c.get("terminationMessagePath"), f"{path}.terminationMessagePath", str)
    lifecycle = c.get("lifecycle")
    if e.check(lifecycle, f"{path}.lifecycle", dict):
        for hook in ("postStart", "preStop"):
            _lifecycle_handler(e, lifecycle.get(hook), f"{path}.lifecycle.{hook}")
    validate_security_context(e, c.get("securityContext"), f"{path}.securityContext")
    for flag in ("stdin", "stdinOnce", "tty"):
        e.check(c.get(flag), f"{path}.{flag}", bool)


def _lifecycle_handler(e: Errors, handler: Any, path: str) -> None:
    if not e.check(handler, path, dict):
        return
    kinds = [h for h in ("exec", "httpGet", "tcpSocket", "sleep") if handler.get(h) is not None]
    if len(kinds) != 1:
        e.add(path, "must specify exactly one handler: exec, httpGet or sleep")
    if handler.get("exec") is not None and e.check(handler["exec"], f"{path}.exec", dict):
        e.str_list(handler["exec"].get("command"), f"{path}.exec.command")
    if handler.get("httpGet") is not None and e.check(handler["httpGet"], f"{path}.httpGet", dict):
        e.check(handler["httpGet"].get("port"), f"{path}.httpGet.port", (int, str), required=True)
    if handler.get("sleep") is not None and e.check(handler["sleep"], f"{path}.sleep", dict):
        e.integer(handler["sleep"], "seconds", f"{path}.sleep.seconds", 0, required=True)


def validate_security_context(e: Errors, sc: Any, path: str, *, pod: bool = False) -> None:
    """The fields of a (pod or container) securityContext that Shoal honours, checked as Kubernetes does."""
    if not e.check(sc, path, dict):
        return
    for field in ("runAsUser", "runAsGroup"):
        e.integer(sc, field, f"{path}.{field}", 0, 2147483647)
    e.check(sc.get("runAsNonRoot"), f"{path}.runAsNonRoot", bool)
    if pod:
        e.integer(sc, "fsGroup", f"{path}.fsGroup", 0, 2147483647)
        for i, g in enumerate(sc.get("supplementalGroups") or [] if isinstance(sc.get("supplementalGroups"), list)
                              else []):
            e.check(g, f"{path}.supplementalGroups[{i}]", int)
        for spath, sysctl in e.items(sc.get("sysctls"), f"{path}.sysctls"):
            e.check(sysctl.get("name"), f"{spath}.name", str, required=True)
            e.check(sysctl.get("value"), f"{spath}.value", str, required=True)
        return
    for flag in ("privileged", "readOnlyRootFilesystem", "allowPrivilegeEscalation"):
        e.check(sc.get(flag), f"{path}.{flag}", bool)
    caps = sc.get("capabilities")
    if e.check(caps, f"{path}.capabilities", dict):
        e.str_list(caps.get("add"), f"{path}.capabilities.add")
        e.str_list(caps.get("drop"), f"{path}.capabilities.drop")
    if sc.get("allowPrivilegeEscalation") is False and (sc.get("privileged") or "SYS_ADMIN" in
                                                         ((caps or {}).get("add") or [] if isinstance(caps, dict)
                                                          else [])):
        e.add(f"{path}.allowPrivilegeEscalation", "Invalid value: false: cannot set allowPrivilegeEscalation to "
              "false and privileged to true (or add CAP_SYS_ADMIN)")
    profile = sc.get("seccompProfile")
    if e.check(profile, f"{path}.seccompProfile", dict):
        e.enum(profile, "type", f"{path}.seccompProfile.type", ("RuntimeDefault", "Unconfined", "Localhost"))


def validate_pod_spec(e: Errors, spec: Any, path: str) -> None:
    if not e.check(spec, path, dict, required=True):
        return
    containers = e.items(spec.get("containers"), f"{path}.containers", required=True)
    if isinstance(spec.get("containers"), list) and not spec["containers"]:
        e.add(f"{path}.containers", "Required value: a pod needs at least one container")
    names: set[str] = set()
    for cpath, c in containers + e.items(spec.get("initContainers"), f"{path}.initContainers"):
        _container(e, c, cpath)
        name = c.get("name")
        if not isinstance(name, str):  # reported by _container; a list or map here is not hashable
            continue
        if name in names:
            e.add(f"{cpath}.name", f"Duplicate value: {name!r}")
        names.add(name)
    for ipath, c in e.items(spec.get("initContainers"), f"{path}.initContainers"):
        e.enum(c, "restartPolicy", f"{ipath}.restartPolicy", ("Always",))  # the only value Kubernetes allows
    e.enum(spec, "restartPolicy", f"{path}.restartPolicy", ("Always", "OnFailure", "Never"))
    e.string_map(spec.get("nodeSelector"), f"{path}.nodeSelector")
    e.check(spec.get("nodeName"), f"{path}.nodeName", str)
    e.integer(spec, "terminationGracePeriodSeconds", f"{path}.terminationGracePeriodSeconds", 0, bits=64)
    for tpath, t in e.items(spec.get("tolerations"), f"{path}.tolerations"):
        e.check(t.get("key"), f"{tpath}.key", str)
        e.enum(t, "operator", f"{tpath}.operator", ("Exists", "Equal"))
        e.enum(t, "effect", f"{tpath}.effect", ("NoSchedule", "PreferNoSchedule", "NoExecute"))
        e.integer(t, "tolerationSeconds", f"{tpath}.tolerationSeconds", bits=64)
        operator = t.get("operator") or "Equal"
        if not t.get("key") and operator != "Exists":
            e.add(f"{tpath}.operator", "Invalid value: operator must be Exists when `key` is empty, "
                  "which means \"match all values and all keys\"")
        if operator == "Exists" and t.get("value"):
            e.add(f"{tpath}.operator", "Invalid value: value must be empty when `operator` is 'Exists'")
    e.check(spec.get("affinity"), f"{path}.affinity", dict)
    e.check(spec.get("hostNetwork"), f"{path}.hostNetwork", bool)
    for flag in ("hostPID", "hostIPC", "shareProcessNamespace", "automountServiceAccountToken", "setHostnameAsFQDN"):
        e.check(spec.get(flag), f"{path}.{flag}", bool)
    for field in ("hostname", "subdomain"):
        if spec.get(field) is not None:
            e.name(spec.get(field), f"{path}.{field}", DNS_LABEL, "label", 63)
    for apath, alias in e.items(spec.get("hostAliases"), f"{path}.hostAliases"):
        e.check(alias.get("ip"), f"{apath}.ip", str, required=True)
        e.str_list(alias.get("hostnames"), f"{apath}.hostnames")
    validate_security_context(e, spec.get("securityContext"), f"{path}.securityContext", pod=True)
    field_refusals(e, spec, path)




def _validate(e: Errors, obj: Obj) -> None:
    validate_pod_spec(e, obj.get("spec"), "spec")


def _keep_node(current: Obj, merged: Obj) -> None:
    """spec.nodeName is set once, by a binding: an update may omit it but not change it."""
    old_node = (current.get("spec") or {}).get("nodeName")
    new_spec = merged.get("spec") or {}
    if old_node and new_spec.get("nodeName") not in (None, old_node):
        raise Invalid("spec.nodeName cannot be changed once a pod is bound",
                      {"causes": [{"field": "spec.nodeName", "message": "field is immutable"}]})
    if old_node:
        new_spec["nodeName"] = old_node


# -- warnings ---------------------------------------------------------------------------------------
def pod_spec_warnings(spec: Any, path: str) -> list[str]:
    """Kubernetes' pod warnings that apply to Shoal (node selectors on deprecated node labels), and every
    field Shoal accepts without honouring it (``protocol.podfields``)."""
    found = []
    for key in as_dict(as_dict(spec).get("nodeSelector")):
        if key in DEPRECATED_NODE_LABELS:
            found.append(f"{path}.nodeSelector[{key}]: deprecated since v1.14; use "
                         f"\"{DEPRECATED_NODE_LABELS[key]}\" instead")
    return found + field_warnings(spec, path)


def _warnings(obj: Obj) -> list[str]:
    """On create only: pods are updated by machines, often (Kubernetes skips pod warnings on update too)."""
    return pod_spec_warnings(obj.get("spec"), "spec")


# -- deletion ---------------------------------------------------------------------------------------
def _grace_period(obj: Obj) -> int:
    value = (obj.get("spec") or {}).get("terminationGracePeriodSeconds", DEFAULT_GRACE_SECONDS)
    return int(value)


def _awaits_kubelet(obj: Obj) -> bool:
    """A bound, running pod being deleted gracefully waits for its kubelet to confirm."""
    grace = meta(obj).get("deletionGracePeriodSeconds")
    phase = (obj.get("status") or {}).get("phase")
    return bool((obj.get("spec") or {}).get("nodeName")) and grace != 0 and phase not in ("Succeeded", "Failed")


# -- columns ----------------------------------------------------------------------------------------
def pod_status(pod: Obj) -> str:
    """The STATUS kubectl shows: a waiting/terminated reason, Init:x/y, Terminating, else the phase."""
    spec, status = as_dict(pod.get("spec")), as_dict(pod.get("status"))
    reason = str(status.get("reason") or status.get("phase") or "Pending")
    initializing = False
    init_specs = as_list(spec.get("initContainers"))
    for i, cs in enumerate(as_list(status.get("initContainerStatuses"))):
        state = as_dict(cs.get("state"))
        terminated, waiting = as_dict(state.get("terminated")), as_dict(state.get("waiting"))
        if terminated and terminated.get("exitCode") == 0:
            continue
        if terminated:
            if terminated.get("reason"):
                reason = f"Init:{terminated['reason']}"
            elif terminated.get("signal"):
                reason = f"Init:Signal:{terminated['signal']}"
            else:
                reason = f"Init:ExitCode:{terminated.get('exitCode')}"
        elif waiting.get("reason") and waiting.get("reason") != "PodInitializing":
            reason = f"Init:{waiting['reason']}"
        else:
            reason = f"Init:{i}/{len(init_specs)}"
        initializing = True
        break
    if not initializing or condition_true(pod, "Initialized"):
        has_running = False
        for cs in reversed(as_list(status.get("containerStatuses"))):
            state = as_dict(cs.get("state"))
            terminated, waiting = as_dict(state.get("terminated")), as_dict(state.get("waiting"))
            if waiting.get("reason"):
                reason = str(waiting["reason"])
            elif terminated.get("reason"):
                reason = str(terminated["reason"])
            elif terminated:
                reason = (f"Signal:{terminated['signal']}" if terminated.get("signal")
                          else f"ExitCode:{terminated.get('exitCode')}")
            elif cs.get("ready") and state.get("running") is not None:
                has_running = True
        if reason == "Completed" and has_running:
            reason = "Running" if (condition(pod, "Ready") or {}).get("status") == "True" else "NotReady"
    if meta(pod).get("deletionTimestamp"):
        reason = "Unknown" if status.get("reason") == "NodeLost" else "Terminating"
    return reason


def pod_ready(pod: Obj) -> str:
    total = len(as_list(get_path(pod, "spec", "containers")))
    ready = sum(1 for cs in as_list(get_path(pod, "status", "containerStatuses")) if cs.get("ready"))
    return f"{ready}/{total}"


def pod_restarts(pod: Obj, now: float) -> str:
    status = pod.get("status")
    statuses = as_list(get_path(status, "containerStatuses")) + as_list(get_path(status, "initContainerStatuses"))
    restarts = sum(int(cs.get("restartCount") or 0) for cs in statuses)
    last: float | None = None
    for cs in statuses:
        finished = parse_time(get_path(cs, "lastState", "terminated", "finishedAt"))
        if finished is not None and (last is None or finished > last):
            last = finished
    return f"{restarts} ({duration(now - last)} ago)" if restarts and last is not None else str(restarts)


COLUMNS = (
    NAME,
    Column("READY", lambda o, now: pod_ready(o), description="Ready containers / containers."),
    Column("STATUS", lambda o, now: pod_status(o), description="The phase, or why the pod is not running."),
    Column("RESTARTS", pod_restarts, type="integer", description="Container restarts (and the last one's age)."),
    AGE,
    Column("IP", lambda o, now: str(get_path(o, "status", "podIP") or NONE), priority=1,
           description="The pod's IP address."),
    Column("NODE", lambda o, now: str(get_path(o, "spec", "nodeName") or NONE), priority=1,
           description="The node the pod is bound to."),
)

# -- schema -----------------------------------------------------------------------------------------
_QUANTITIES = Field("", "string", "A quantity such as 100m or 64Mi.")
_PROBE = Field("", "object", "A health check: exactly one of exec, httpGet, tcpSocket.", fields=(
    Field("exec", "object", "Run a command in the container.",
          fields=(Field("command", "array", "", items=Field("", "string")),)),
    Field("httpGet", "object", "GET a path on a port.", fields=(
        Field("path", "string"), Field("port", "integer", "A port number or name."),
        *undescribed("host:string", "httpHeaders:array", "scheme:string"))),
    Field("tcpSocket", "object", "Open a TCP connection.",
          fields=(Field("port", "integer", "A port number or name."), *undescribed("host:string"))),
    Field("initialDelaySeconds", "integer"), Field("periodSeconds", "integer"),
    Field("timeoutSeconds", "integer"), Field("successThreshold", "integer"), Field("failureThreshold", "integer"),
    *undescribed("grpc", "terminationGracePeriodSeconds:integer"),
))
CONTAINER_SCHEMA = Field("", "object", "A container of the pod.", fields=(
    Field("name", "string", "A DNS label, unique within the pod.", required=True),
    Field("image", "string", "The container image.", required=True),
    Field("command", "array", "Entrypoint (replaces the image's).", items=Field("", "string")),
    Field("args", "array", "Arguments to the entrypoint.", items=Field("", "string")),
    Field("workingDir", "string"),
    Field("env", "array", "Environment variables.", items=Field("", "object", fields=(
        Field("name", "string", required=True), Field("value", "string"), *undescribed("valueFrom")))),
    Field("ports", "array", "Ports the container exposes.", items=Field("", "object", fields=(
        Field("containerPort", "integer", required=True), Field("hostPort", "integer"),
        Field("protocol", "string", enum=("TCP", "UDP", "SCTP")), Field("name", "string"),
        Field("hostIP", "string")))),
    Field("resources", "object", "Compute resources.", fields=(
        Field("requests", "object", "Minimum resources.", values=_QUANTITIES),
        Field("limits", "object", "Maximum resources.", values=_QUANTITIES), *undescribed("claims:array"))),
    Field("livenessProbe", "object", _PROBE.description, fields=_PROBE.fields),
    Field("readinessProbe", "object", _PROBE.description, fields=_PROBE.fields),
    Field("startupProbe", "object", _PROBE.description, fields=_PROBE.fields),
    Field("imagePullPolicy", "string", enum=("Always", "IfNotPresent", "Never")),
    *undescribed("envFrom:array", "lifecycle", "resizePolicy:array", "restartPolicy:string", "securityContext",
                 "stdin:boolean", "stdinOnce:boolean", "terminationMessagePath:string",
                 "terminationMessagePolicy:string", "tty:boolean", "volumeDevices:array", "volumeMounts:array"),
))
POD_SPEC_SCHEMA = Field("spec", "object", "What the pod runs.", required=True, fields=(
    Field("containers", "array", "At least one container.", required=True, items=CONTAINER_SCHEMA),
    Field("initContainers", "array", "Containers run to completion, in order, before the others.",
          items=CONTAINER_SCHEMA),
    Field("restartPolicy", "string", "", enum=("Always", "OnFailure", "Never")),
    string_map("nodeSelector", "Labels a node must have to run the pod."),
    Field("nodeName", "string", "The node the pod is bound to (set by a binding)."),
    Field("terminationGracePeriodSeconds", "integer", "Seconds the pod has to stop when deleted."),
    Field("tolerations", "array", "Taints the pod tolerates.", items=Field("", "object", fields=(
        Field("key", "string"), Field("operator", "string", enum=("Exists", "Equal")), Field("value", "string"),
        Field("effect", "string", enum=("NoSchedule", "PreferNoSchedule", "NoExecute")),
        Field("tolerationSeconds", "integer")))),
    Field("affinity", "object", "Node and pod affinity rules."),
    Field("hostNetwork", "boolean", "Use the node's network namespace."),
    *undescribed("activeDeadlineSeconds:integer", "automountServiceAccountToken:boolean", "dnsConfig",
                 "dnsPolicy:string", "enableServiceLinks:boolean", "ephemeralContainers:array", "hostAliases:array",
                 "hostIPC:boolean", "hostPID:boolean", "hostUsers:boolean", "hostname:string",
                 "imagePullSecrets:array", "os", "overhead", "preemptionPolicy:string", "priority:integer",
                 "priorityClassName:string", "readinessGates:array", "resourceClaims:array", "resources",
                 "runtimeClassName:string", "schedulerName:string", "schedulingGates:array", "securityContext",
                 "serviceAccount:string", "serviceAccountName:string", "setHostnameAsFQDN:boolean",
                 "shareProcessNamespace:boolean", "subdomain:string", "topologySpreadConstraints:array",
                 "volumes:array"),
))
POD_STATUS_SCHEMA = Field("status", "object", "What the kubelet last reported.", fields=(
    Field("phase", "string", "", enum=("Pending", "Running", "Succeeded", "Failed", "Unknown")),
    Field("conditions", "array", "", items=Field("", "object")),
    Field("podIP", "string"), Field("qosClass", "string"),
    Field("containerStatuses", "array", "", items=Field("", "object")),
))

STRATEGY = Strategy(
    INFO, description="A group of containers run together on one node.",
    schema=(POD_SPEC_SCHEMA, POD_STATUS_SCHEMA), columns=COLUMNS,
    default=_default, admit_new=_admit_new, create_status=_create_status, validate=_validate,
    prepare_update=_keep_node, warnings=_warnings, warnings_on_update=no_update_warnings,
    grace_period=_grace_period, awaits_confirmation=_awaits_kubelet,
)
