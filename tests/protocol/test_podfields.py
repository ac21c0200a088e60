"""The table of pod fields (``protocol.podfields``): complete for Kubernetes 1.32, the same as
docs/POD_FIELDS.md, and read by the API's warnings and validation, field by field."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest

from protocol.errors import Invalid
from protocol.kinds import strategy_for, warnings_for
from protocol.podfields import (
    K8S_CONTAINER_FIELDS,
    K8S_POD_SECURITY_CONTEXT_FIELDS,
    K8S_POD_SPEC_FIELDS,
    K8S_SECURITY_CONTEXT_FIELDS,
    RULES,
    markdown,
)
from protocol.validation import validate

DOC = Path(__file__).resolve().parents[2] / "docs" / "POD_FIELDS.md"
BEGIN, END = "<!-- podfields:begin -->\n", "<!-- podfields:end -->\n"


def test_every_kubernetes_field_has_a_rule() -> None:
    pod_paths = {r.path for r in RULES if r.scope == "pod"}
    container_paths = {r.path for r in RULES if r.scope != "pod"}
    for name in K8S_POD_SPEC_FIELDS:
        if name == "securityContext":
            assert {f"securityContext.{f}" for f in K8S_POD_SECURITY_CONTEXT_FIELDS} <= pod_paths
        elif name == "affinity":
            assert {"affinity.nodeAffinity", "affinity.podAffinity", "affinity.podAntiAffinity"} <= pod_paths
        else:
            assert name in pod_paths, name
    for name in K8S_CONTAINER_FIELDS:
        if name == "securityContext":
            assert {f"securityContext.{f}" for f in K8S_SECURITY_CONTEXT_FIELDS} <= container_paths
        else:
            assert name in container_paths, name


def test_the_document_carries_the_table() -> None:
    text = DOC.read_text()
    start, end = text.index(BEGIN) + len(BEGIN), text.index(END)
    if os.environ.get("SHOAL_UPDATE_DOCS") == "1":
        DOC.write_text(text[:start] + markdown() + text[end:])
        text = DOC.read_text()
        start, end = text.index(BEGIN) + len(BEGIN), text.index(END)
    assert text[start:end] == markdown(), "docs/POD_FIELDS.md is stale: SHOAL_UPDATE_DOCS=1 pytest this file"


def pod(spec: dict[str, Any], **container: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "default"},
            "spec": {"containers": [{"name": "c", "image": "i", **container}], **spec}}


def deployment(spec: dict[str, Any], **container: Any) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d", "namespace": "default"},
            "spec": {"selector": {"matchLabels": {"a": "b"}},
                     "template": {"metadata": {"labels": {"a": "b"}}, "spec": pod(spec, **container)["spec"]}}}


def prepared(obj: dict[str, Any]) -> dict[str, Any]:
    strategy_for(obj["kind"]).default(obj)
    return obj


SAMPLE: dict[str, Any] = {"topologySpreadConstraints": [{"maxSkew": 1}], "activeDeadlineSeconds": 5,
                          "readinessGates": [{"conditionType": "x"}], "imagePullSecrets": [{"name": "r"}],
                          "affinity": {"podAntiAffinity": {"x": 1}}, "priorityClassName": "high",
                          "volumes": [{"name": "m", "emptyDir": {"medium": "Memory", "sizeLimit": "1Mi"}},
                                      {"name": "d", "emptyDir": {"sizeLimit": "1Gi"}}],
                          "securityContext": {"seLinuxOptions": {"level": "s0"}}}


@pytest.mark.parametrize("make,prefix", [(pod, "spec"), (deployment, "spec.template.spec")])
def test_warned_fields_are_named_in_the_reply(make: Any, prefix: str) -> None:
    obj = prepared(make(SAMPLE, resizePolicy=[{"resourceName": "cpu", "restartPolicy": "NotRequired"}],
                        securityContext={"procMount": "Unmasked"}))
    validate(obj, expect_kind=obj["kind"])
    found = warnings_for(obj)
    for field in ("topologySpreadConstraints", "activeDeadlineSeconds", "readinessGates", "imagePullSecrets",
                  "affinity.podAntiAffinity", "priorityClassName", "securityContext.seLinuxOptions",
                  "containers[0].resizePolicy", "containers[0].securityContext.procMount",
                  "volumes[1].emptyDir.sizeLimit"):
        assert any(w.startswith(f"{prefix}.{field} is not supported by Shoal and is ignored") for w in found), \
            (field, found)
    assert not any(w.startswith(f"{prefix}.volumes[0].") for w in found)  # a tmpfs honours it
    assert f"{prefix}.containers[0].resizePolicy is not supported by Shoal and is ignored: resources are never " \
           "resized in place" in found


def test_honoured_fields_draw_no_warning() -> None:
    obj = prepared(pod({"hostAliases": [{"ip": "198.51.100.9", "hostnames": ["x"]}], "hostname": "h",
                        "subdomain": "s", "shareProcessNamespace": True, "hostPID": False,
                        "securityContext": {"runAsUser": 1000, "fsGroup": 2000}},
                       securityContext={"runAsNonRoot": True, "capabilities": {"drop": ["ALL"]}},
                       lifecycle={"preStop": {"exec": {"command": ["true"]}}}, tty=True, stdin=True))
    validate(obj, expect_kind="Pod")
    assert warnings_for(obj) == []


@pytest.mark.parametrize("spec,container,field", [
    ({"hostPID": True}, {}, "spec.hostPID"),
    ({"hostIPC": True}, {}, "spec.hostIPC"),
    ({"hostNetwork": True}, {}, "spec.hostNetwork"),
    ({"hostUsers": False}, {}, "spec.hostUsers"),
    ({"runtimeClassName": "gvisor"}, {}, "spec.runtimeClassName"),
    ({"os": {"name": "windows"}}, {}, "spec.os"),
    ({"ephemeralContainers": [{"name": "e", "image": "i"}]}, {}, "spec.ephemeralContainers"),
    ({"volumes": [{"name": "v", "nfs": {"server": "s", "path": "/"}}]}, {}, "spec.volumes[0].nfs"),
    ({"securityContext": {"seccompProfile": {"type": "Localhost", "localhostProfile": "p"}}}, {},
     "spec.securityContext.seccompProfile"),
    ({}, {"volumeDevices": [{"name": "v", "devicePath": "/dev/x"}]}, "spec.containers[0].volumeDevices"),
    ({}, {"restartPolicy": "Always"}, "spec.containers[0].restartPolicy"),
    ({}, {"livenessProbe": {"grpc": {"port": 1}}}, "spec.containers[0].livenessProbe.grpc"),
    ({"initContainers": [{"name": "i", "image": "i", "restartPolicy": "Always"}]}, {},
     "spec.initContainers[0].restartPolicy"),
    ({"initContainers": [{"name": "i", "image": "i", "readinessProbe": {"exec": {"command": ["true"]}}}]}, {},
     "spec.initContainers[0].readinessProbe"),
    ({"initContainers": [{"name": "i", "image": "i", "lifecycle": {"preStop": {"exec": {"command": ["x"]}}}}]},
     {}, "spec.initContainers[0].lifecycle"),
])
def test_refused_fields_are_named_in_the_error(spec: dict[str, Any], container: dict[str, Any],
                                               field: str) -> None:
    for make, prefix in ((pod, "spec"), (deployment, "spec.template.spec")):
        obj = prepared(make(spec, **container))
        with pytest.raises(Invalid) as caught:
            validate(obj, expect_kind=obj["kind"])
        fields = [c["field"] for c in caught.value.details["causes"]]
        assert prefix + field.removeprefix("spec") in fields, fields
        assert re.search("not supported by Shoal", str(caught.value.details))


def test_values_that_are_fine_are_not_refused() -> None:
    obj = prepared(pod({"hostNetwork": False, "hostPID": False, "hostUsers": True, "os": {"name": "linux"},
                        "initContainers": [{"name": "i", "image": "i", "restartPolicy": "OnFailure"}]}))
    with pytest.raises(Invalid):  # restartPolicy on an init container: only Always means sidecar; OnFailure is
        validate(obj, expect_kind="Pod")  # not a valid container restartPolicy in Kubernetes either
    obj["spec"]["initContainers"][0].pop("restartPolicy")
    validate(obj, expect_kind="Pod")


def _findings_by_full_scan(spec: dict[str, Any], status: str) -> list[tuple[str, str]]:
    """What ``findings`` gives, the slow way: every rule of the table walked over the spec and each container."""
    from protocol.podfields import _get, _volume_findings

    found = []
    for rule in RULES:
        if rule.status != status:
            continue
        names = {"pod": (), "container": ("containers", "initContainers"), "app": ("containers",),
                 "init": ("initContainers",)}[rule.scope]
        targets = [("", spec)] if rule.scope == "pod" else [
            (f"{n}[{i}].", c) for n in names for i, c in enumerate(spec.get(n) or []) if isinstance(c, dict)]
        for where, obj in targets:
            for sub, value, parent in _get(obj, rule.path):
                if rule.when(value) and (rule.parent is None or rule.parent(parent)):
                    found.append((f"spec.{where}{sub}", rule.path))
    if status == "refused":
        found += [(path, rule.path) for path, rule in _volume_findings(spec, "spec")]
    return found


def _with(obj: dict[str, Any], path: str, value: Any) -> None:
    *parents, last = path.split(".")
    for name in parents:
        obj = obj.setdefault(name, {})
    obj[last] = value


@pytest.mark.parametrize("status", ["honoured", "warned", "refused"])
def test_findings_are_those_of_every_rule_walked_in_table_order(status: str) -> None:
    """``findings`` walks only the rules whose first field is present: the same findings, in the same order,
    as walking every rule, for specs setting each rule's field (pod, app and init containers) to values that
    match and values that do not."""
    from protocol.podfields import findings

    values: list[Any] = [True, False, 0, 1, "Always", "Localhost", {"type": "Localhost"}, {"medium": "Memory"},
                         [{"name": "x"}], {"sizeLimit": "1Gi"}]
    specs = []
    for rule in RULES:
        for value in values:
            spec: dict[str, Any] = {"containers": [{"name": "a", "image": "i"}, {"name": "b", "image": "i"}],
                                    "initContainers": [{"name": "c", "image": "i"}]}
            if "[]" in rule.path or rule.path.split(".")[0] in ("containers", "initContainers"):
                continue
            if rule.scope == "pod":
                _with(spec, rule.path, value)
            else:
                for c in spec["containers"][1:] + spec["initContainers"]:
                    _with(c, rule.path, value)
            specs.append(spec)
    specs.append({"containers": [{"name": "a", "image": "i", "volumeMounts": [{"name": "v", "mountPath": "/v",
                                                                             "recursiveReadOnly": "Enabled"}]}],
                  "volumes": [{"name": "v", "nfs": {}}, {"name": "w", "emptyDir": {"sizeLimit": "1Gi"}}],
                  "hostPID": True, "ephemeralContainers": [{"name": "e"}]})
    found_any = 0
    for spec in specs:
        got = [(path, rule.path) for path, rule in findings(spec, "spec", status)]  # type: ignore[arg-type]
        assert got == _findings_by_full_scan(spec, status)
        found_any += len(got)
    assert found_any > len(RULES) // 3
