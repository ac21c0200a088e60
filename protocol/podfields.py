"""Every field of a Kubernetes 1.32 PodSpec and Container, and what Shoal does with it: one table. Pure.

Each ``Rule`` says a field is **honoured** (Shoal does what Kubernetes does), **warned** (accepted, not
honoured: the API's reply carries a warning naming the field) or **refused** (the API answers Invalid naming
the field, because running the pod without it would be dangerous or misleading). A rule's ``when`` narrows
the values it applies to (``hostPID`` is refused only when true). The Pod strategy's ``warnings`` hook and
its validation read this table (``warnings``, ``refusals``) for pods and for the pod template of every
workload kind, and docs/POD_FIELDS.md carries ``markdown()`` of it (a test compares them), so what the API
does and what the documentation says cannot drift.

Paths are relative to a pod spec: ``hostPID``, ``securityContext.sysctls``; container rules have
``scope`` ``container`` (app and init containers), ``app`` or ``init``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

from protocol.fielderrors import Errors

Status = Literal["honoured", "warned", "refused"]
Scope = Literal["pod", "container", "app", "init"]

VOLUME_TYPES = ("emptyDir", "hostPath", "configMap", "secret", "downwardAPI", "projected", "persistentVolumeClaim")
"""The volume types a Shoal kubelet mounts; any other is refused."""
K8S_VOLUME_TYPES = ("awsElasticBlockStore", "azureDisk", "azureFile", "cephfs", "cinder", "csi", "ephemeral", "fc",
                    "flexVolume", "flocker", "gcePersistentDisk", "gitRepo", "glusterfs", "image", "iscsi", "nfs",
                    "photonPersistentDisk", "portworxVolume", "quobyte", "rbd", "scaleIO", "storageos",
                    "vsphereVolume")


def _set(value: Any) -> bool:
    return value is not None and value != [] and value != {} and value != ""


def _true(value: Any) -> bool:
    return value is True


def _false(value: Any) -> bool:
    return value is False


@dataclass(frozen=True, slots=True)
class Rule:
    path: str
    status: Status
    note: str = ""
    scope: Scope = "pod"
    when: Callable[[Any], bool] = _set
    condition: str = ""
    """How ``when`` reads in the documentation (``true``, ``Always``...); "" for any value."""
    parent: Callable[[Any], bool] | None = None
    """Also required of the map holding the field (``sizeLimit`` of an emptyDir not in memory)."""


def _on_disk(empty_dir: Any) -> bool:
    return isinstance(empty_dir, dict) and empty_dir.get("medium") != "Memory"


def _c(path: str, status: Status, note: str = "", *, scope: Scope = "container",
       when: Callable[[Any], bool] = _set, condition: str = "") -> Rule:
    return Rule(path, status, note, scope, when, condition)


def _value_is(*values: str) -> Callable[[Any], bool]:
    return lambda v: bool(v in values)


def _seccomp_localhost(value: Any) -> bool:
    return isinstance(value, dict) and value.get("type") == "Localhost"


def _other_os(value: Any) -> bool:
    return isinstance(value, dict) and value.get("name") not in (None, "linux")


def _procmount_unmasked(value: Any) -> bool:
    return bool(value == "Unmasked")


RULES: tuple[Rule, ...] = (
    # -- PodSpec -------------------------------------------------------------------------------------------
    Rule("volumes", "honoured", "emptyDir, hostPath, configMap, secret, downwardAPI, projected (with "
         "serviceAccountToken), persistentVolumeClaim; any other type is refused (see below)"),
    Rule("volumes.emptyDir.sizeLimit", "warned", "honoured for medium: Memory (the tmpfs size); on disk no usage "
         "limit is enforced (no eviction)", parent=_on_disk, condition="medium other than Memory"),
    Rule("initContainers", "honoured", "run in order, each to completion, before the app containers"),
    Rule("containers", "honoured"),
    Rule("ephemeralContainers", "refused", "no ephemeral (debug) containers; Kubernetes refuses them on create too"),
    Rule("restartPolicy", "honoured"),
    Rule("terminationGracePeriodSeconds", "honoured", "preStop hooks and the stop signal share it"),
    Rule("activeDeadlineSeconds", "warned", "no deadline is enforced: the pod is never failed with "
         "DeadlineExceeded"),
    Rule("dnsPolicy", "honoured", "ClusterFirst, ClusterFirstWithHostNet, Default, None"),
    Rule("dnsConfig", "honoured"),
    Rule("nodeSelector", "honoured"),
    Rule("serviceAccountName", "honoured", "its token, the cluster CA and the namespace are mounted at "
         "/var/run/secrets/kubernetes.io/serviceaccount (admission adds the kube-api-access-* volume)"),
    Rule("serviceAccount", "honoured", "the deprecated alias of serviceAccountName"),
    Rule("automountServiceAccountToken", "honoured", "false (on the pod or its ServiceAccount): no token volume"),
    Rule("nodeName", "honoured"),
    Rule("hostNetwork", "refused", "pods always get their own network namespace on the node's pod network",
         when=_true, condition="true"),
    Rule("hostPID", "refused", "pods never share the node's PID namespace", when=_true, condition="true"),
    Rule("hostIPC", "refused", "pods never share the node's IPC namespace", when=_true, condition="true"),
    Rule("shareProcessNamespace", "honoured", "one PID namespace for the pod's containers (Podman pod --share pid)"),
    Rule("securityContext.runAsUser", "honoured", "default of every container's runAsUser"),
    Rule("securityContext.runAsGroup", "honoured", "default of every container's runAsGroup"),
    Rule("securityContext.runAsNonRoot", "honoured", "default of every container's runAsNonRoot"),
    Rule("securityContext.supplementalGroups", "honoured", "added to every container's groups"),
    Rule("securityContext.supplementalGroupsPolicy", "warned", "the image's /etc/group memberships are always "
         "merged (Kubernetes' Merge)", when=_value_is("Strict"), condition="Strict"),
    Rule("securityContext.fsGroup", "honoured", "added to every container's groups; emptyDir and file volumes "
         "are made group-owned by it (setgid directories)"),
    Rule("securityContext.fsGroupChangePolicy", "honoured", "volumes are made by the kubelet, so Always and "
         "OnRootMismatch behave alike"),
    Rule("securityContext.sysctls", "honoured", "passed to Podman (namespaced sysctls only: net.*, kernel.shm*, "
         "kernel.msg*, kernel.sem, fs.mqueue.*; others fail the container with CreateContainerError)"),
    Rule("securityContext.seccompProfile", "honoured", "RuntimeDefault (Podman's default) and Unconfined"),
    Rule("securityContext.seccompProfile", "refused", "no Localhost seccomp profiles: running without the one "
         "asked for would be less confined", when=_seccomp_localhost, condition="type: Localhost"),
    Rule("securityContext.appArmorProfile", "warned", "Podman's default AppArmor profile (if any) applies"),
    Rule("securityContext.seLinuxOptions", "warned", "SELinux labels are not set"),
    Rule("securityContext.seLinuxChangePolicy", "warned", "SELinux labels are not set"),
    Rule("securityContext.windowsOptions", "warned", "ignored on Linux, as Kubernetes does"),
    Rule("imagePullSecrets", "warned", "no registry credentials are used: images come from the node's store or "
         "anonymous pulls (the Secrets are still readable by the node)"),
    Rule("hostname", "honoured", "the pod's host name (default: the pod name)"),
    Rule("subdomain", "honoured", "<hostname>.<subdomain>.<namespace>.svc.cluster.local in /etc/hosts"),
    Rule("setHostnameAsFQDN", "honoured", "the host name is the FQDN (needs subdomain)"),
    Rule("affinity.nodeAffinity", "honoured", "required and preferred terms (scheduler)"),
    Rule("affinity.podAffinity", "warned", "the scheduler ignores inter-pod affinity"),
    Rule("affinity.podAntiAffinity", "warned", "the scheduler ignores inter-pod anti-affinity: replicas may share "
         "a node"),
    Rule("schedulerName", "honoured", "pods naming another scheduler are left to it"),
    Rule("tolerations", "honoured"),
    Rule("hostAliases", "honoured", "entries added to the pod's /etc/hosts"),
    Rule("priorityClassName", "warned", "not resolved to a priority: set spec.priority"),
    Rule("priority", "honoured", "scheduling order"),
    Rule("preemptionPolicy", "warned", "the scheduler does not preempt"),
    Rule("readinessGates", "warned", "Ready does not wait for the gates' conditions"),
    Rule("runtimeClassName", "refused", "no RuntimeClass kind: every pod runs under the node's default OCI "
         "runtime, which may not isolate as the class asks"),
    Rule("enableServiceLinks", "honoured"),
    Rule("overhead", "honoured", "added to the pod's requests by the scheduler"),
    Rule("topologySpreadConstraints", "warned", "the scheduler spreads replicas by its own scoring only"),
    Rule("os", "honoured", "linux"),
    Rule("os", "refused", "every Shoal node runs Linux", when=_other_os, condition="name other than linux"),
    Rule("hostUsers", "refused", "no user namespaces: the pod would run with the host's user ids",
         when=_false, condition="false"),
    Rule("schedulingGates", "warned", "the pod is scheduled at once, gates or not"),
    Rule("resourceClaims", "refused", "no dynamic resource allocation"),
    Rule("resources", "warned", "pod-level resources are not enforced: set them per container"),
    # -- Container -----------------------------------------------------------------------------------------
    _c("name", "honoured"),
    _c("image", "honoured"),
    _c("command", "honoured", "$(VAR) expanded"),
    _c("args", "honoured", "$(VAR) expanded"),
    _c("workingDir", "honoured"),
    _c("ports", "honoured", "published on the pod IP; hostPort on the node address"),
    _c("envFrom", "honoured"),
    _c("env", "honoured"),
    _c("resources", "honoured", "limits: CPU quota and memory limit; requests: scheduling"),
    _c("resources.claims", "refused", "no dynamic resource allocation"),
    _c("resizePolicy", "warned", "resources are never resized in place"),
    _c("restartPolicy", "refused", "only init containers may set it (Kubernetes refuses it too)", scope="app"),
    _c("restartPolicy", "refused", "sidecar init containers are not supported: run the sidecar as an app "
       "container", scope="init", when=_value_is("Always"), condition="Always"),
    _c("volumeMounts", "honoured", "mountPath, subPath, subPathExpr, readOnly, mountPropagation"),
    _c("volumeMounts.recursiveReadOnly", "warned", "read-only mounts are not made recursively read-only",
       when=_value_is("Enabled", "IfPossible"), condition="Enabled, IfPossible"),
    _c("volumeDevices", "refused", "no raw block volumes"),
    _c("livenessProbe", "honoured", scope="app"),
    _c("readinessProbe", "honoured", scope="app"),
    _c("startupProbe", "honoured", scope="app"),
    _c("livenessProbe", "refused", "init containers cannot have probes (as in Kubernetes)", scope="init"),
    _c("readinessProbe", "refused", "init containers cannot have probes (as in Kubernetes)", scope="init"),
    _c("startupProbe", "refused", "init containers cannot have probes (as in Kubernetes)", scope="init"),
    _c("livenessProbe.grpc", "refused", "no gRPC probes: use exec, httpGet or tcpSocket", scope="app"),
    _c("readinessProbe.grpc", "refused", "no gRPC probes: use exec, httpGet or tcpSocket", scope="app"),
    _c("startupProbe.grpc", "refused", "no gRPC probes: use exec, httpGet or tcpSocket", scope="app"),
    _c("livenessProbe.terminationGracePeriodSeconds", "warned", "a container killed by its liveness probe "
       "gets the pod's grace period", scope="app"),
    _c("lifecycle", "honoured", "postStart and preStop: exec, httpGet, sleep; preStop runs before the stop "
       "signal, within the grace period", scope="app"),
    _c("lifecycle", "refused", "init containers cannot have lifecycle hooks (as in Kubernetes)", scope="init"),
    _c("lifecycle.postStart.tcpSocket", "refused", "a tcpSocket lifecycle handler is not supported (as in "
       "Kubernetes)", scope="app"),
    _c("lifecycle.preStop.tcpSocket", "refused", "a tcpSocket lifecycle handler is not supported (as in "
       "Kubernetes)", scope="app"),
    _c("terminationMessagePath", "honoured", "read into the terminated state's message (at most 4 KiB)"),
    _c("terminationMessagePolicy", "honoured", "File, FallbackToLogsOnError (last 80 lines, 2 KiB)"),
    _c("imagePullPolicy", "honoured", "Never/IfNotPresent/Always against the local store (Always: pulled, "
       "except localhost/ images, which are local by definition)"),
    _c("securityContext.runAsUser", "honoured"),
    _c("securityContext.runAsGroup", "honoured"),
    _c("securityContext.runAsNonRoot", "honoured", "an image that would run as root (or as a user name) is "
       "refused with CreateContainerConfigError"),
    _c("securityContext.readOnlyRootFilesystem", "honoured"),
    _c("securityContext.capabilities", "honoured", "add and drop (ALL too)"),
    _c("securityContext.privileged", "honoured"),
    _c("securityContext.allowPrivilegeEscalation", "honoured", "false sets no_new_privs"),
    _c("securityContext.procMount", "warned", "/proc is always masked (Default)", when=_procmount_unmasked,
       condition="Unmasked"),
    _c("securityContext.seccompProfile", "honoured", "RuntimeDefault and Unconfined"),
    _c("securityContext.seccompProfile", "refused", "no Localhost seccomp profiles", when=_seccomp_localhost,
       condition="type: Localhost"),
    _c("securityContext.appArmorProfile", "warned", "Podman's default AppArmor profile (if any) applies"),
    _c("securityContext.seLinuxOptions", "warned", "SELinux labels are not set"),
    _c("securityContext.windowsOptions", "warned", "ignored on Linux, as Kubernetes does"),
    _c("stdin", "honoured", "stdin kept open; `attach -i` (kubectl, shoal) writes to it, `kubectl run -i` works. "
       "Podman ends a container's stdin when an attachment that sent stdin ends, unless it has a tty: without "
       "one, that is stdinOnce's behaviour even when stdinOnce is false"),
    _c("stdinOnce", "honoured", "the end of the first attachment's stdin ends the container's"),
    _c("tty", "honoured", "a terminal is allocated; `attach -t` uses it (raw output, resized)"),
)

K8S_POD_SPEC_FIELDS = (
    "volumes", "initContainers", "containers", "ephemeralContainers", "restartPolicy", "terminationGracePeriodSeconds",
    "activeDeadlineSeconds", "dnsPolicy", "nodeSelector", "serviceAccountName", "serviceAccount",
    "automountServiceAccountToken", "nodeName", "hostNetwork", "hostPID", "hostIPC", "shareProcessNamespace",
    "securityContext", "imagePullSecrets", "hostname", "subdomain", "affinity", "schedulerName", "tolerations",
    "hostAliases", "priorityClassName", "priority", "dnsConfig", "readinessGates", "runtimeClassName",
    "enableServiceLinks", "preemptionPolicy", "overhead", "topologySpreadConstraints", "setHostnameAsFQDN", "os",
    "hostUsers", "schedulingGates", "resourceClaims", "resources",
)
"""The fields of core/v1 PodSpec in Kubernetes 1.32 (every one has a rule)."""
K8S_POD_SECURITY_CONTEXT_FIELDS = (
    "seLinuxOptions", "windowsOptions", "runAsUser", "runAsGroup", "runAsNonRoot", "supplementalGroups",
    "supplementalGroupsPolicy", "fsGroup", "sysctls", "fsGroupChangePolicy", "seccompProfile", "appArmorProfile",
    "seLinuxChangePolicy",
)
K8S_CONTAINER_FIELDS = (
    "name", "image", "command", "args", "workingDir", "ports", "envFrom", "env", "resources", "resizePolicy",
    "restartPolicy", "volumeMounts", "volumeDevices", "livenessProbe", "readinessProbe", "startupProbe", "lifecycle",
    "terminationMessagePath", "terminationMessagePolicy", "imagePullPolicy", "securityContext", "stdin", "stdinOnce",
    "tty",
)
K8S_SECURITY_CONTEXT_FIELDS = (
    "capabilities", "privileged", "seLinuxOptions", "windowsOptions", "runAsUser", "runAsGroup", "runAsNonRoot",
    "readOnlyRootFilesystem", "allowPrivilegeEscalation", "procMount", "seccompProfile", "appArmorProfile",
)
_LISTS = ("volumeMounts", "volumes")
"""Container fields whose rules look at every item (``volumeMounts.recursiveReadOnly``)."""


_RuleEntry = tuple[int, Rule, tuple[str, ...], bool]
"""A rule's index in ``RULES``, the rule, its path's parts and whether the path goes through a list."""


def _by_first_part(status: Status) -> dict[Scope, dict[str, tuple[_RuleEntry, ...]]]:
    table: dict[Scope, dict[str, list[_RuleEntry]]] = {}
    for index, rule in enumerate(RULES):
        if rule.status == status:
            parts = tuple(rule.path.split("."))
            entry = (index, rule, parts, any(part in _LISTS for part in parts[:-1]))
            table.setdefault(rule.scope, {}).setdefault(parts[0], []).append(entry)
    return {scope: {first: tuple(entries) for first, entries in by_first.items()} for scope, by_first in table.items()}


_BY_STATUS: dict[Status, dict[Scope, dict[str, tuple[_RuleEntry, ...]]]] = {
    status: _by_first_part(status) for status in ("honoured", "warned", "refused")}
"""Each status's rules by scope and by the first part of their path: a rule applies only to a map holding
that key (no rule's ``when`` accepts a missing field), so a spec is matched by the keys it has."""


def _get(obj: Any, path: str) -> Iterator[tuple[str, Any, Any]]:
    """(path suffix, value, the map holding it) for ``path`` in ``obj``; a list field of ``_LISTS`` (not the
    last element of the path) yields one per item."""
    head, _, rest = path.partition(".")
    value = obj.get(head) if isinstance(obj, dict) else None
    if not rest:
        yield head, value, obj
        return
    if head in _LISTS and isinstance(value, list):
        for i, item in enumerate(value):
            for sub, found, parent in _get(item, rest):
                yield f"{head}[{i}].{sub}", found, parent
        return
    for sub, found, parent in _get(value, rest):
        yield f"{head}.{sub}", found, parent


def _containers(spec: dict[str, Any], scope: Scope) -> Iterator[tuple[str, dict[str, Any]]]:
    fields = {"container": ("containers", "initContainers"), "app": ("containers",), "init": ("initContainers",)}
    for field in fields[scope]:
        items = spec.get(field)
        for i, c in enumerate(items if isinstance(items, list) else []):
            if isinstance(c, dict):
                yield f"{field}[{i}]", c


def findings(spec: Any, prefix: str, status: Status) -> Iterator[tuple[str, Rule]]:
    """(field path, rule) for every field of ``spec`` set to a value its rule gives ``status``, in ``RULES``'
    order (every pod or template write reads this: only the rules of the keys present are looked at)."""
    if not isinstance(spec, dict):
        return
    hits: list[tuple[int, int, str, Rule]] = []  # (rule index, target index, path, rule): sorted to RULES' order
    for scope, by_first in _BY_STATUS[status].items():
        targets = [("", spec)] if scope == "pod" else [(f"{p}.", c) for p, c in _containers(spec, scope)]
        for at, (where, obj) in enumerate(targets):
            for key in obj.keys() & by_first.keys():
                for index, rule, parts, through_lists in by_first[key]:
                    if through_lists:
                        for sub, value, parent in _get(obj, rule.path):
                            if rule.when(value) and (rule.parent is None or rule.parent(parent)):
                                hits.append((index, at, f"{prefix}.{where}{sub}", rule))
                        continue
                    holder: Any = obj  # a path through maps only: what ``_get`` yields once
                    for part in parts[:-1]:
                        holder = holder.get(part) if isinstance(holder, dict) else None
                    value = holder.get(parts[-1]) if isinstance(holder, dict) else None
                    if rule.when(value) and (rule.parent is None or rule.parent(holder)):
                        hits.append((index, at, f"{prefix}.{where}{rule.path}", rule))
    hits.sort(key=lambda hit: hit[:2])  # stable: one rule's hits in one target keep their order
    for _, _, path, rule in hits:
        yield path, rule
    if status == "refused":
        yield from _volume_findings(spec, prefix)


_VOLUME_RULE = Rule("volumes[].<type>", "refused", "Shoal mounts " + ", ".join(VOLUME_TYPES) + " volumes")


def _volume_findings(spec: dict[str, Any], prefix: str) -> Iterator[tuple[str, Rule]]:
    volumes = spec.get("volumes")
    for i, volume in enumerate(volumes if isinstance(volumes, list) else []):
        if not isinstance(volume, dict):
            continue
        for key in volume:
            if key != "name" and key not in VOLUME_TYPES:
                yield f"{prefix}.volumes[{i}].{key}", _VOLUME_RULE


def warnings(spec: Any, prefix: str = "spec") -> list[str]:
    """The API's warnings about the accepted-but-ignored fields of a pod spec at ``prefix``."""
    return [f"{path} is not supported by Shoal and is ignored: {rule.note}" for path, rule in
            findings(spec, prefix, "warned")]


def refusals(e: Errors, spec: Any, prefix: str = "spec") -> None:
    """Record an Invalid cause for every refused field of the pod spec at ``prefix``."""
    for path, rule in findings(spec, prefix, "refused"):
        value = "" if not rule.condition else f" ({rule.condition})"
        e.add(path, f"Forbidden: not supported by Shoal{value}: {rule.note}")


# -- the documentation ----------------------------------------------------------------------------------


def _doc_path(rule: Rule) -> str:
    path = rule.path
    for name in _LISTS:
        if path.startswith(f"{name}."):
            path = f"{name}[]{path[len(name):]}"
    if rule.scope == "pod":
        return f"spec.{path}"
    where = {"container": "containers[]", "app": "containers[]", "init": "initContainers[]"}[rule.scope]
    return f"spec.{where}.{path}"


def markdown() -> str:
    """The table of docs/POD_FIELDS.md (between its ``podfields`` markers)."""
    lines = ["| field | when set to | status | notes |", "|---|---|---|---|"]
    for rule in (*RULES, _VOLUME_RULE):
        note = rule.note.replace("|", "\\|")
        path = _doc_path(rule) if rule is not _VOLUME_RULE else "spec.volumes[].<other type>"
        lines.append(f"| `{path}` | {rule.condition or 'any'} | {rule.status} | {note} |")
    return "\n".join(lines) + "\n"
