"""Table tests of the kind strategies (protocol.kinds): registry, defaults, validation, update checks,
warnings, deletion hooks, columns and schema, per kind. Pure: no server."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from protocol.errors import BadRequest, Invalid
from protocol.fielderrors import Errors
from protocol.kinds import KINDS, STRATEGIES, Field, by_kind, by_plural, resolve, strategy_for, warnings_for
from protocol.objects import Obj
from protocol.validation import validate

NOW = 1_800_000_000.0
CREATED = "2027-01-15T07:50:00Z"  # NOW - 10 minutes


def pod(**spec: Any) -> Obj:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "default"},
            "spec": {"containers": [{"name": "c", "image": "img"}], **spec}}


def template(kind: str, api_version: str, selector: Any, **spec: Any) -> Obj:
    return {"apiVersion": api_version, "kind": kind, "metadata": {"name": "w", "namespace": "default"},
            "spec": {"selector": selector, "template": {"metadata": {"labels": {"app": "w"}},
                                                        "spec": {"containers": [{"name": "c", "image": "i"}]}},
                     **spec}}


# -- registry ------------------------------------------------------------------------------------------
def test_every_kind_is_registered_once_with_unique_names() -> None:
    assert len({s.kind for s in STRATEGIES}) == len(STRATEGIES) == len(KINDS)
    assert len({k.plural for k in KINDS}) == len(KINDS)
    for info in KINDS:
        assert by_kind(info.kind) is info and by_plural(info.plural) is info
        assert resolve(info.singular) is info and strategy_for(info).info is info
        for short in info.short_names:
            assert resolve(short) is info


@pytest.mark.parametrize(("typed", "kind"), [
    ("po", "Pod"), ("Pod", "Pod"), ("deployments.apps", "Deployment"), ("pc", "PriorityClass"),
    ("priorityclasses.scheduling.k8s.io", "PriorityClass"), ("svc", "Service"), ("ev", "Event"),
    ("ds", "DaemonSet"), ("daemonsets.apps", "DaemonSet"), ("pdb", "PodDisruptionBudget"),
    ("poddisruptionbudgets.policy", "PodDisruptionBudget"), ("sts", "StatefulSet"),
    ("statefulsets.apps", "StatefulSet"), ("hpa", "HorizontalPodAutoscaler"),
    ("horizontalpodautoscalers.autoscaling", "HorizontalPodAutoscaler"),
])
def test_resolve(typed: str, kind: str) -> None:
    assert resolve(typed).kind == kind


def test_unknown_kinds_are_bad_requests() -> None:
    for lookup in (by_kind, by_plural, resolve, strategy_for):
        with pytest.raises(BadRequest):
            lookup("Frobnicator")


@pytest.mark.parametrize(("kind", "group", "version", "scope", "subresources"), [
    ("Pod", "", "v1", "Namespaced", {"status", "binding", "log", "eviction"}),
    ("Deployment", "apps", "v1", "Namespaced", {"status", "scale"}),
    ("Namespace", "", "v1", "Cluster", {"status"}),
    ("Lease", "coordination.k8s.io", "v1", "Namespaced", set()),
    ("PriorityClass", "scheduling.k8s.io", "v1", "Cluster", set()),
    ("DaemonSet", "apps", "v1", "Namespaced", {"status"}),
    ("ControllerRevision", "apps", "v1", "Namespaced", set()),
    ("PodDisruptionBudget", "policy", "v1", "Namespaced", {"status"}),
    ("StatefulSet", "apps", "v1", "Namespaced", {"status", "scale"}),
    ("HorizontalPodAutoscaler", "autoscaling", "v2", "Namespaced", {"status"}),
])
def test_identity(kind: str, group: str, version: str, scope: str, subresources: set[str]) -> None:
    info = by_kind(kind)
    assert (info.group, info.version, info.scope, set(info.subresources)) == (group, version, scope, subresources)
    assert info.has_status == ("status" in subresources)


# -- defaults ------------------------------------------------------------------------------------------
DEFAULTS = [
    ("Pod", pod(), {"spec.restartPolicy": "Always", "spec.terminationGracePeriodSeconds": 30,
                    "spec.dnsPolicy": "ClusterFirst", "spec.containers.0.imagePullPolicy": "IfNotPresent"}),
    ("ReplicationController",
     {"kind": "ReplicationController", "spec": {"template": {"metadata": {"labels": {"a": "b"}}, "spec": {}}}},
     {"spec.selector": {"a": "b"}, "spec.replicas": 1, "spec.template.spec.restartPolicy": "Always"}),
    ("ReplicaSet", {"kind": "ReplicaSet", "spec": {}}, {"spec.replicas": 1, "spec.minReadySeconds": 0}),
    ("Deployment", {"kind": "Deployment", "spec": {}},
     {"spec.strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
      "spec.revisionHistoryLimit": 10, "spec.progressDeadlineSeconds": 600}),
    ("Deployment", {"kind": "Deployment", "spec": {"strategy": {"type": "Recreate"}}},
     {"spec.strategy": {"type": "Recreate"}}),
    ("Service", {"kind": "Service", "spec": {"ports": [{"port": 80}]}},
     {"spec.type": "ClusterIP", "spec.sessionAffinity": "None",
      "spec.ports": [{"port": 80, "protocol": "TCP", "targetPort": 80}]}),
    ("Namespace", {"kind": "Namespace"}, {"spec.finalizers": ["kubernetes"], "status.phase": "Active"}),
    ("Secret", {"kind": "Secret", "stringData": {"k": "v"}}, {"type": "Opaque", "data": {"k": "dg=="}}),
    ("Node", {"kind": "Node"}, {"spec": {}}),
    ("PriorityClass", {"kind": "PriorityClass", "value": 1}, {"preemptionPolicy": "PreemptLowerPriority"}),
    ("ConfigMap", {"kind": "ConfigMap", "data": {"a": "b"}}, {"data": {"a": "b"}}),
    ("DaemonSet", {"kind": "DaemonSet", "spec": {"template": {"spec": {"containers": [{"name": "c"}]}}}},
     {"spec.updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}},
      "spec.revisionHistoryLimit": 10, "spec.minReadySeconds": 0, "spec.template.spec.restartPolicy": "Always"}),
    ("DaemonSet", {"kind": "DaemonSet", "spec": {"updateStrategy": {"type": "OnDelete"}}},
     {"spec.updateStrategy": {"type": "OnDelete"}}),
    ("DaemonSet", {"kind": "DaemonSet", "spec": {"updateStrategy": {"rollingUpdate": {"maxSurge": "10%"}}}},
     {"spec.updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": "10%"}}}),
    ("StatefulSet", {"kind": "StatefulSet", "spec": {"template": {"spec": {"containers": [{"name": "c"}]}}}},
     {"spec.replicas": 1, "spec.podManagementPolicy": "OrderedReady", "spec.revisionHistoryLimit": 10,
      "spec.updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}},
      "spec.persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Retain", "whenScaled": "Retain"},
      "spec.template.spec.restartPolicy": "Always"}),
    ("StatefulSet", {"kind": "StatefulSet", "spec": {"updateStrategy": {"type": "OnDelete"}}},
     {"spec.updateStrategy": {"type": "OnDelete"}}),
    ("HorizontalPodAutoscaler", {"kind": "HorizontalPodAutoscaler", "spec": {"maxReplicas": 3}},
     {"spec.minReplicas": 1, "spec.metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {
         "type": "Utilization", "averageUtilization": 80}}}],
      "spec.behavior.scaleDown.stabilizationWindowSeconds": 300, "spec.behavior.scaleUp.stabilizationWindowSeconds": 0,
      "spec.behavior.scaleUp.policies": [{"type": "Percent", "value": 100, "periodSeconds": 15},
                                         {"type": "Pods", "value": 4, "periodSeconds": 15}]}),
    ("HorizontalPodAutoscaler", {"kind": "HorizontalPodAutoscaler", "spec": {
        "behavior": {"scaleDown": {"stabilizationWindowSeconds": 5}}}},
     {"spec.behavior.scaleDown": {"stabilizationWindowSeconds": 5, "selectPolicy": "Max",
                                  "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}]}}),
]


def _at(obj: Any, path: str) -> Any:
    for part in path.split("."):
        obj = obj[int(part)] if isinstance(obj, list) else obj[part]
    return obj


@pytest.mark.parametrize(("kind", "obj", "expected"), DEFAULTS)
def test_defaults(kind: str, obj: Obj, expected: dict[str, Any]) -> None:
    obj = copy.deepcopy(obj)
    strategy_for(kind).default(obj)
    for path, value in expected.items():
        assert _at(obj, path) == value, path
    again = copy.deepcopy(obj)
    strategy_for(kind).default(again)
    assert again == obj, "defaulting twice changes nothing"


def test_secret_string_data_is_folded_not_kept() -> None:
    secret: Obj = {"kind": "Secret", "stringData": {"k": "v"}}
    strategy_for("Secret").default(secret)
    assert "stringData" not in secret


def test_pod_admission_adds_default_tolerations_once() -> None:
    p = pod(tolerations=[{"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute",
                          "tolerationSeconds": 5}])
    strategy_for("Pod").admit_new(p)
    keys = [(t["key"], t.get("tolerationSeconds")) for t in p["spec"]["tolerations"]]
    assert keys == [("node.kubernetes.io/unreachable", 5), ("node.kubernetes.io/not-ready", 300)]


@pytest.mark.parametrize(("kind", "obj", "status"), [
    ("Pod", pod(), {"phase": "Pending", "conditions": [], "qosClass": "BestEffort"}),
    ("Pod", pod(containers=[{"name": "c", "image": "i", "resources": {"limits": {"cpu": "1", "memory": "1Gi"}}}]),
     {"phase": "Pending", "conditions": [], "qosClass": "Guaranteed"}),
    ("Namespace", {"kind": "Namespace", "status": {"phase": "Terminating"}}, {"phase": "Active"}),
    ("Node", {"kind": "Node", "status": {"capacity": {"cpu": "2"}}}, {"capacity": {"cpu": "2"}}),
    ("Deployment", {"kind": "Deployment", "status": {"replicas": 3}}, {}),
    ("ConfigMap", {"kind": "ConfigMap"}, None),
])
def test_initial_status(kind: str, obj: Obj, status: Any) -> None:
    strategy_for(kind).initial_status(obj)
    assert obj.get("status") == status


# -- validation ----------------------------------------------------------------------------------------
VALID = [
    pod(),
    template("ReplicaSet", "apps/v1", {"matchLabels": {"app": "w"}}, replicas=2),
    template("Deployment", "apps/v1", {"matchLabels": {"app": "w"}},
             strategy={"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": "10%"}}),
    template("ReplicationController", "v1", {"app": "w"}),
    {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s", "namespace": "default"},
     "spec": {"ports": [{"port": 80, "targetPort": "http", "name": "web"}]}},
    {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"},
     "spec": {"taints": [{"key": "k", "effect": "NoSchedule"}]}},
    {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "l", "namespace": "default"},
     "spec": {"holderIdentity": "me", "leaseDurationSeconds": 15}},
    {"apiVersion": "v1", "kind": "Event", "metadata": {"name": "e", "namespace": "default"},
     "involvedObject": {"kind": "Pod", "name": "p"}, "type": "Warning", "count": 2},
    {"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "s", "namespace": "default"},
     "subsets": [{"addresses": [{"ip": "10.0.0.1"}], "ports": [{"port": 80}]}]},
    {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "namespace": "default"}, "data": {"a": "Yg=="}},
    {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "sa", "namespace": "default"},
     "secrets": [{"name": "t"}]},
    template("DaemonSet", "apps/v1", {"matchLabels": {"app": "w"}},
             updateStrategy={"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": "10%"}}),
    template("DaemonSet", "apps/v1", {"matchLabels": {"app": "w"}}, updateStrategy={"type": "OnDelete"}),
    {"apiVersion": "apps/v1", "kind": "ControllerRevision", "metadata": {"name": "w-1", "namespace": "default"},
     "revision": 1, "data": {"spec": {}}},
    {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "b", "namespace": "default"},
     "spec": {"minAvailable": "50%", "selector": {"matchLabels": {"app": "w"}},
              "unhealthyPodEvictionPolicy": "AlwaysAllow"}},
    {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "b", "namespace": "default"},
     "spec": {"maxUnavailable": 1, "selector": {}}},
    template("StatefulSet", "apps/v1", {"matchLabels": {"app": "w"}}, serviceName="w", replicas=3,
             podManagementPolicy="Parallel", updateStrategy={"type": "RollingUpdate", "rollingUpdate": {
                 "partition": 1, "maxUnavailable": "50%"}},
             volumeClaimTemplates=[{"metadata": {"name": "data"}, "spec": {"accessModes": ["ReadWriteOnce"]}}],
             persistentVolumeClaimRetentionPolicy={"whenDeleted": "Delete", "whenScaled": "Retain"}),
    {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
     "metadata": {"name": "h", "namespace": "default"},
     "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "w"}, "maxReplicas": 5,
              "metrics": [{"type": "Resource", "resource": {"name": "memory", "target": {
                  "type": "AverageValue", "averageValue": "64Mi"}}}],
              "behavior": {"scaleUp": {"selectPolicy": "Disabled"}}}},
    {"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass", "metadata": {"name": "high"}, "value": 10,
     "globalDefault": False, "preemptionPolicy": "Never", "description": "d"},
]


@pytest.mark.parametrize("obj", VALID, ids=lambda o: str(o["kind"]))
def test_valid_objects(obj: Obj) -> None:
    assert validate(obj).kind == obj["kind"]


INVALID = [
    (template("StatefulSet", "apps/v1", {"matchLabels": {"app": "w"}}, podManagementPolicy="Random"),
     "spec.podManagementPolicy"),
    (template("StatefulSet", "apps/v1", {"matchLabels": {"app": "w"}},
              updateStrategy={"type": "OnDelete", "rollingUpdate": {"partition": 1}}),
     "spec.updateStrategy.rollingUpdate"),
    (template("StatefulSet", "apps/v1", {"matchLabels": {"app": "w"}},
              updateStrategy={"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0}}),
     "spec.updateStrategy.rollingUpdate.maxUnavailable"),
    (template("StatefulSet", "apps/v1", {"matchLabels": {"app": "w"}}, volumeClaimTemplates=[{"spec": {}}]),
     "spec.volumeClaimTemplates[0].metadata.name"),
    (template("StatefulSet", "apps/v1", {"matchLabels": {"app": "w"}},
              persistentVolumeClaimRetentionPolicy={"whenDeleted": "Keep"}),
     "spec.persistentVolumeClaimRetentionPolicy.whenDeleted"),
    ({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "h", "namespace": "d"},
      "spec": {"scaleTargetRef": {"kind": "Pod", "name": "w"}, "maxReplicas": 5}}, "spec.scaleTargetRef.kind"),
    ({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "h", "namespace": "d"},
      "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "w"}, "minReplicas": 4, "maxReplicas": 2}},
     "spec.maxReplicas"),
    ({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "h", "namespace": "d"},
      "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "w"}, "maxReplicas": 2,
               "metrics": [{"type": "External"}]}}, "spec.metrics[0].type"),
    ({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "h", "namespace": "d"},
      "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "w"}, "maxReplicas": 2,
               "behavior": {"scaleDown": {"policies": [{"type": "Pods", "value": 0, "periodSeconds": 15}]}}}},
     "spec.behavior.scaleDown.policies[0].value"),
    (pod(containers=[]), "spec.containers"),
    (pod(containers=[{"name": "c"}]), "spec.containers[0].image"),
    (pod(restartPolicy="Sometimes"), "spec.restartPolicy"),
    (pod(tolerations=[{"effect": "NoExecute"}]), "spec.tolerations[0].operator"),  # empty key needs Exists
    (pod(tolerations=[{"key": "k", "operator": "Exists", "value": "v"}]), "spec.tolerations[0].operator"),
    (pod(containers=[{"name": "c", "image": "i", "resources": {"limits": {"cpu": "lots"}}}]),
     "spec.containers[0].resources.limits[cpu]"),
    (template("ReplicaSet", "apps/v1", {"matchLabels": {"app": "other"}}), "spec.template.metadata.labels"),
    (template("ReplicaSet", "apps/v1", {}), "spec.selector"),
    (template("Deployment", "apps/v1", {"matchLabels": {"app": "w"}},
              strategy={"rollingUpdate": {"maxSurge": "lots"}}), "spec.strategy.rollingUpdate.maxSurge"),
    (template("ReplicationController", "v1", {}), "spec.selector"),
    (template("ReplicationController", "v1", {"app": "w"}, replicas=-1), "spec.replicas"),
    ({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s.x", "namespace": "default"}, "spec": {}},
     "metadata.name"),
    ({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s", "namespace": "default"},
      "spec": {"ports": [{"port": 70000}]}}, "spec.ports[0].port"),
    ({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n"}, "spec": {"taints": [{"key": "k"}]}},
     "spec.taints[0].effect"),
    ({"apiVersion": "v1", "kind": "Event", "metadata": {"name": "e", "namespace": "default"}},
     "involvedObject"),
    ({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "default"}, "data": {"a": 1}},
     "data[a]"),
    ({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "default"}, "spec": []},
     "spec"),
    ({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "Upper"}}, "metadata.name"),
    (template("DaemonSet", "apps/v1", {"matchLabels": {"app": "other"}}), "spec.template.metadata.labels"),
    (template("DaemonSet", "apps/v1", {"matchLabels": {"app": "w"}}, updateStrategy={"type": "Sometimes"}),
     "spec.updateStrategy.type"),
    (template("DaemonSet", "apps/v1", {"matchLabels": {"app": "w"}},
              updateStrategy={"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "lots"}}),
     "spec.updateStrategy.rollingUpdate.maxUnavailable"),
    (template("DaemonSet", "apps/v1", {"matchLabels": {"app": "w"}},
              updateStrategy={"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 0}}),
     "spec.updateStrategy.rollingUpdate.maxUnavailable"),
    (template("DaemonSet", "apps/v1", {"matchLabels": {"app": "w"}},
              updateStrategy={"type": "OnDelete", "rollingUpdate": {"maxUnavailable": 1}}),
     "spec.updateStrategy.rollingUpdate"),
    ({**template("DaemonSet", "apps/v1", {"matchLabels": {"app": "w"}}),
      "spec": {"selector": {"matchLabels": {"app": "w"}}, "template": {
          "metadata": {"labels": {"app": "w"}},
          "spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "i"}]}}}},
     "spec.template.spec.restartPolicy"),
    ({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "b", "namespace": "default"},
      "spec": {"minAvailable": 1, "maxUnavailable": 1}}, "spec"),
    ({"apiVersion": "apps/v1", "kind": "ControllerRevision", "metadata": {"name": "r", "namespace": "default"}},
     "revision"),
    ({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "b", "namespace": "default"},
      "spec": {"maxUnavailable": -1}}, "spec.maxUnavailable"),
    ({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "b", "namespace": "default"},
      "spec": {"minAvailable": "150%"}}, "spec.minAvailable"),
    ({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "b", "namespace": "default"},
      "spec": {"minAvailable": "half"}}, "spec.minAvailable"),
    ({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "b", "namespace": "default"},
      "spec": {"minAvailable": 1, "unhealthyPodEvictionPolicy": "Never"}}, "spec.unhealthyPodEvictionPolicy"),
    ({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": [
        {"name": "c", "image": "i"}]}, "status": []}, "status"),
    ({"apiVersion": "apps/v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": [
        {"name": "c", "image": "i"}]}}, "apiVersion"),
]


@pytest.mark.parametrize(("obj", "field"), INVALID, ids=lambda x: x if isinstance(x, str) else x["kind"])
def test_invalid_objects(obj: Obj, field: str) -> None:
    with pytest.raises(Invalid) as err:
        validate(obj)
    assert field in [c["field"] for c in err.value.details["causes"]]


def test_update_checks_run_only_with_the_old_object() -> None:
    old = VALID[-1]
    new = dict(old, value=11)
    validate(new)
    with pytest.raises(Invalid) as err:
        validate(new, old=old)
    assert err.value.details["causes"] == [{"field": "value", "message": "field is immutable"}]
    validate(dict(old, description="other"), old=old)


def test_pod_node_name_is_kept_and_cannot_change() -> None:
    strategy = strategy_for("Pod")
    bound = pod(nodeName="n1")
    omitted = pod()
    strategy.prepare_update(bound, omitted)
    assert omitted["spec"]["nodeName"] == "n1"
    with pytest.raises(Invalid):
        strategy.prepare_update(bound, pod(nodeName="n2"))


def test_service_keeps_allocated_addresses() -> None:
    current = {"spec": {"clusterIP": "127.77.0.5", "ports": [{"name": "a", "port": 80, "nodePort": 30001,
                                                              "targetPort": 8080}]}}
    merged = {"spec": {"ports": [{"name": "a", "port": 80}]}}
    strategy_for("Service").prepare_update(current, merged)
    assert merged["spec"] == {"clusterIP": "127.77.0.5", "ports": [
        {"name": "a", "port": 80, "nodePort": 30001, "targetPort": 8080, "protocol": "TCP"}]}


def test_generation_part_is_everything_but_metadata_and_status() -> None:
    part = strategy_for("PriorityClass").generation_part
    a = {"kind": "PriorityClass", "metadata": {"labels": {"x": "y"}}, "value": 1, "status": {}}
    assert part(a) == {"value": 1}


# -- warnings ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("obj", "expected"), [
    (pod(nodeSelector={"beta.kubernetes.io/arch": "amd64"}),
     ['spec.nodeSelector[beta.kubernetes.io/arch]: deprecated since v1.14; use "kubernetes.io/arch" instead']),
    (pod(nodeSelector={"kubernetes.io/arch": "amd64"}), []),
    (template("ReplicaSet", "apps/v1", {"matchLabels": {"app": "w"}}), []),
    ({"kind": "ConfigMap"}, []),
    ({"kind": "NotAKind"}, []),
])
def test_warnings(obj: Obj, expected: list[str]) -> None:
    assert warnings_for(obj) == expected


def test_update_warnings() -> None:
    old = template("ReplicaSet", "apps/v1", {"matchLabels": {"app": "w"}})
    old["spec"]["template"]["spec"]["nodeSelector"] = {"beta.kubernetes.io/os": "linux"}
    relabelled = copy.deepcopy(old)
    relabelled["metadata"]["labels"] = {"a": "b"}
    scaled = copy.deepcopy(old)
    scaled["spec"]["replicas"] = 5
    rs = strategy_for("ReplicaSet")
    assert rs.update_warnings(relabelled, old) == []
    assert rs.update_warnings(scaled, old) == warnings_for(old) != []
    p = pod(nodeSelector={"beta.kubernetes.io/os": "linux"})
    changed = pod(nodeSelector={"beta.kubernetes.io/os": "linux"}, restartPolicy="Never")
    assert warnings_for(p) != [] and strategy_for("Pod").update_warnings(changed, p) == []


def test_template_warnings_name_the_template_path() -> None:
    rs = template("ReplicaSet", "apps/v1", {"matchLabels": {"app": "w"}})
    rs["spec"]["template"]["spec"]["nodeSelector"] = {"beta.kubernetes.io/os": "linux"}
    assert warnings_for(rs)[0].startswith("spec.template.spec.nodeSelector[beta.kubernetes.io/os]: deprecated")


# -- deletion ------------------------------------------------------------------------------------------
def test_namespace_deletion() -> None:
    strategy = strategy_for("Namespace")
    ns: Obj = {"kind": "Namespace", "metadata": {"name": "x", "finalizers": ["a"]},
               "spec": {"finalizers": ["kubernetes"]}}
    assert strategy.finalizers(ns) == ["a", "kubernetes"]
    strategy.mark_deleting(ns)
    assert ns["status"]["phase"] == "Terminating"
    assert {"default", "kube-system", "kube-node-lease"} <= strategy.protected_names
    assert strategy.grace_period is None


@pytest.mark.parametrize(("spec", "status", "grace", "awaits"), [
    ({"nodeName": "n1"}, {"phase": "Running"}, 30, True),
    ({"nodeName": "n1"}, {"phase": "Running"}, 0, False),
    ({"nodeName": "n1"}, {"phase": "Succeeded"}, 30, False),
    ({}, {"phase": "Pending"}, 30, False),
])
def test_pod_graceful_deletion(spec: Obj, status: Obj, grace: int, awaits: bool) -> None:
    strategy = strategy_for("Pod")
    p = pod(**spec, terminationGracePeriodSeconds=45)
    p["status"] = status
    p["metadata"]["deletionGracePeriodSeconds"] = grace
    assert strategy.grace_period is not None and strategy.grace_period(p) == 45
    assert strategy.awaits_confirmation(p) is awaits
    assert strategy_for("ConfigMap").awaits_confirmation(p) is False


# -- columns -------------------------------------------------------------------------------------------
COLUMNS = [
    ("Pod", False, ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]),
    ("Pod", True, ["NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE"]),
    ("Deployment", False, ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]),
    ("Deployment", True, ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE", "CONTAINERS", "IMAGES", "SELECTOR"]),
    ("ReplicaSet", False, ["NAME", "DESIRED", "CURRENT", "READY", "AGE"]),
    ("Service", False, ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"]),
    ("Node", False, ["NAME", "STATUS", "ROLES", "AGE", "VERSION"]),
    ("Event", False, ["LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]),
    ("ConfigMap", False, ["NAME", "DATA", "AGE"]),
    ("PriorityClass", False, ["NAME", "VALUE", "GLOBAL-DEFAULT", "AGE"]),
    ("PriorityClass", True, ["NAME", "VALUE", "GLOBAL-DEFAULT", "AGE", "PREEMPTIONPOLICY"]),
    ("DaemonSet", False, ["NAME", "DESIRED", "CURRENT", "READY", "UP-TO-DATE", "AVAILABLE", "NODE SELECTOR", "AGE"]),
    ("DaemonSet", True, ["NAME", "DESIRED", "CURRENT", "READY", "UP-TO-DATE", "AVAILABLE", "NODE SELECTOR", "AGE",
                         "CONTAINERS", "IMAGES", "SELECTOR"]),
    ("PodDisruptionBudget", False, ["NAME", "MIN AVAILABLE", "MAX UNAVAILABLE", "ALLOWED DISRUPTIONS", "AGE"]),
    ("ControllerRevision", False, ["NAME", "CONTROLLER", "REVISION", "AGE"]),
    ("StatefulSet", False, ["NAME", "READY", "AGE"]),
    ("StatefulSet", True, ["NAME", "READY", "AGE", "CONTAINERS", "IMAGES", "SELECTOR"]),
    ("HorizontalPodAutoscaler", False, ["NAME", "REFERENCE", "TARGETS", "MINPODS", "MAXPODS", "REPLICAS", "AGE"]),
    ("ClusterRole", False, ["NAME", "CREATED AT"]),
    ("RoleBinding", False, ["NAME", "ROLE", "AGE"]),
    ("RoleBinding", True, ["NAME", "ROLE", "AGE", "USERS", "GROUPS", "SERVICEACCOUNTS"]),
]


@pytest.mark.parametrize(("kind", "wide", "names"), COLUMNS)
def test_column_names(kind: str, wide: bool, names: list[str]) -> None:
    assert [c.name for c in strategy_for(kind).columns_for(wide=wide)] == names


def _meta(name: str, **extra: Any) -> Obj:
    return {"name": name, "namespace": "default", "creationTimestamp": CREATED, **extra}


ROWS = [
    ({"kind": "Pod", "metadata": _meta("web"), "spec": {"containers": [{}, {}], "nodeName": "n1"},
      "status": {"phase": "Running", "podIP": "10.1.0.2",
                 "containerStatuses": [{"ready": True, "restartCount": 0, "state": {"running": {}}},
                                       {"ready": False, "restartCount": 1, "state": {"running": {}}}]}},
     ["web", "1/2", "Running", "1", "10m", "10.1.0.2", "n1"]),
    ({"kind": "Pod", "metadata": _meta("gone", deletionTimestamp=CREATED), "spec": {"containers": [{}]},
      "status": {"phase": "Running"}}, ["gone", "0/1", "Terminating", "0", "10m", "<none>", "<none>"]),
    ({"kind": "Deployment", "metadata": _meta("d"),
      "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "d"}},
               "template": {"spec": {"containers": [{"name": "c", "image": "img"}]}}},
      "status": {"readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2}},
     ["d", "2/3", "3", "2", "10m", "c", "img", "app=d"]),
    ({"kind": "ReplicationController", "metadata": _meta("rc"), "spec": {"replicas": 2, "selector": {"app": "r"}},
      "status": {"replicas": 2}}, ["rc", "2", "2", "0", "10m", "<none>", "<none>", "app=r"]),
    ({"kind": "Service", "metadata": _meta("s"),
      "spec": {"type": "NodePort", "clusterIP": "127.77.0.9", "ports": [{"port": 80, "nodePort": 30080}]}},
     ["s", "NodePort", "127.77.0.9", "<none>", "80:30080/TCP", "10m", "<none>"]),
    ({"kind": "Service", "metadata": _meta("lb"), "spec": {"type": "LoadBalancer"}},
     ["lb", "LoadBalancer", "<none>", "<pending>", "<none>", "10m", "<none>"]),
    ({"kind": "Node", "metadata": {"name": "n1", "creationTimestamp": CREATED,
                                   "labels": {"node-role.kubernetes.io/control-plane": ""}},
      "spec": {"unschedulable": True},
      "status": {"conditions": [{"type": "Ready", "status": "True"}], "nodeInfo": {"kubeletVersion": "v1"},
                 "addresses": [{"type": "InternalIP", "address": "192.0.2.4"}]}},
     ["n1", "Ready,SchedulingDisabled", "control-plane", "10m", "v1", "192.0.2.4", "<none>", "<unknown>",
      "<unknown>", "<unknown>"]),
    ({"kind": "Endpoints", "metadata": _meta("s"), "subsets": [
        {"addresses": [{"ip": f"10.0.0.{i}"} for i in range(4)], "ports": [{"port": 80}]}]},
     ["s", "10.0.0.0:80,10.0.0.1:80,10.0.0.2:80 + 1 more...", "10m"]),
    ({"kind": "Event", "metadata": _meta("e"), "lastTimestamp": CREATED, "type": "Normal", "reason": "Pulled",
      "involvedObject": {"kind": "Pod", "name": "web"}, "message": "a\nb"},
     ["10m", "Normal", "Pulled", "pod/web", "a b"]),
    ({"kind": "Secret", "metadata": _meta("s"), "data": {"a": "", "b": ""}}, ["s", "Opaque", "2", "10m"]),
    ({"kind": "PriorityClass", "metadata": {"name": "high", "creationTimestamp": CREATED}, "value": 1000,
      "globalDefault": True, "preemptionPolicy": "Never"}, ["high", "1000", "true", "10m", "Never"]),
    ({"kind": "Lease", "metadata": _meta("l"), "spec": {"holderIdentity": "api-1"}}, ["l", "api-1", "10m"]),
    ({"kind": "DaemonSet", "metadata": _meta("agent"),
      "spec": {"selector": {"matchLabels": {"app": "a"}},
               "template": {"spec": {"nodeSelector": {"role": "edge", "disk": "ssd"},
                                     "containers": [{"name": "c", "image": "img"}]}}},
      "status": {"desiredNumberScheduled": 3, "currentNumberScheduled": 3, "numberReady": 2,
                 "updatedNumberScheduled": 1, "numberAvailable": 2}},
     ["agent", "3", "3", "2", "1", "2", "disk=ssd,role=edge", "10m", "c", "img", "app=a"]),
    ({"kind": "DaemonSet", "metadata": _meta("new"), "spec": {"selector": {"matchLabels": {"app": "a"}}}},
     ["new", "0", "0", "0", "0", "0", "<none>", "10m", "<none>", "<none>", "app=a"]),
    ({"kind": "PodDisruptionBudget", "metadata": _meta("b"), "spec": {"minAvailable": "50%"},
      "status": {"disruptionsAllowed": 2}}, ["b", "50%", "<none>", "2", "10m"]),
    ({"kind": "Namespace", "metadata": {"name": "ns", "creationTimestamp": CREATED},
      "status": {"phase": "Terminating"}}, ["ns", "Terminating", "10m"]),
    ({"kind": "StatefulSet", "metadata": _meta("web"),
      "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "w"}},
               "template": {"spec": {"containers": [{"name": "c", "image": "img"}]}}}, "status": {"readyReplicas": 2}},
     ["web", "2/3", "10m", "c", "img", "app=w"]),
    ({"kind": "HorizontalPodAutoscaler", "metadata": _meta("h"),
      "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"}, "minReplicas": 1, "maxReplicas": 5,
               "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {
                   "type": "Utilization", "averageUtilization": 50}}}]},
      "status": {"currentReplicas": 2, "currentMetrics": [{"type": "Resource", "resource": {
          "name": "cpu", "current": {"averageUtilization": 45}}}]}},
     ["h", "Deployment/web", "cpu: 45%/50%", "1", "5", "2", "10m"]),
    ({"kind": "HorizontalPodAutoscaler", "metadata": _meta("m"),
      "spec": {"scaleTargetRef": {"kind": "StatefulSet", "name": "db"}, "minReplicas": 1, "maxReplicas": 3,
               "metrics": [{"type": "Resource", "resource": {"name": "memory", "target": {
                   "type": "AverageValue", "averageValue": "64Mi"}}}]}},
     ["m", "StatefulSet/db", "memory: <unknown>/64Mi", "1", "3", "0", "10m"]),
    ({"kind": "RoleBinding", "metadata": _meta("rb"),
      "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
      "subjects": [{"kind": "User", "name": "alice"}, {"kind": "Group", "name": "devs"},
                   {"kind": "ServiceAccount", "name": "robot", "namespace": "team"}]},
     ["rb", "ClusterRole/view", "10m", "alice", "devs", "team/robot"]),
]


@pytest.mark.parametrize(("obj", "cells"), ROWS, ids=lambda x: x["kind"] if isinstance(x, dict) else "")
def test_rows(obj: Obj, cells: list[str]) -> None:
    assert strategy_for(obj["kind"]).row(obj, NOW, wide=True) == cells


def test_events_sort_by_time_others_by_namespace_and_name() -> None:
    early = {"kind": "Event", "metadata": {"name": "z"}, "lastTimestamp": "2027-01-01T00:00:00Z"}
    late = {"kind": "Event", "metadata": {"name": "a"}, "lastTimestamp": "2027-01-02T00:00:00Z"}
    assert sorted([late, early], key=strategy_for("Event").sort_key) == [early, late]
    b = {"metadata": {"name": "a", "namespace": "b"}}
    a = {"metadata": {"name": "z", "namespace": "a"}}
    assert sorted([b, a], key=strategy_for("Pod").sort_key) == [a, b]


# -- schema --------------------------------------------------------------------------------------------
TYPES = {"string", "integer", "boolean", "number", "object", "array"}


def _walk(field: Field, path: str) -> list[str]:
    problems = [] if field.type in TYPES else [f"{path}: type {field.type!r}"]
    for child in field.fields:
        problems += _walk(child, f"{path}.{child.name}")
    for inner in (field.items, field.values):
        if inner is not None:
            problems += _walk(inner, f"{path}[]")
    return problems


@pytest.mark.parametrize("strategy", STRATEGIES, ids=lambda s: s.kind)
def test_every_kind_describes_its_top_level_fields(strategy: Any) -> None:
    assert strategy.description
    assert strategy.schema, f"{strategy.kind} has no schema"
    for field in strategy.schema:
        assert field.name and field.name not in ("apiVersion", "kind", "metadata")
        assert _walk(field, field.name) == []


def _find(fields: tuple[Field, ...], path: str) -> Field:
    head, _, rest = path.partition(".")
    found = next(f for f in fields if f.name == head)
    if not rest:
        return found
    children = found.items.fields if found.items is not None else found.fields
    return _find(children, rest)


@pytest.mark.parametrize(("kind", "path", "type_"), [
    ("Pod", "spec.containers.image", "string"),
    ("Pod", "spec.containers.ports.containerPort", "integer"),
    ("Pod", "spec.restartPolicy", "string"),
    ("Deployment", "spec.template.spec.containers.name", "string"),
    ("Deployment", "spec.strategy.type", "string"),
    ("Deployment", "spec.selector.matchLabels", "object"),
    ("Service", "spec.ports.port", "integer"),
    ("Service", "spec.type", "string"),
    ("PriorityClass", "value", "integer"),
    ("DaemonSet", "spec.updateStrategy.rollingUpdate.maxUnavailable", "string"),
    ("DaemonSet", "spec.template.spec.containers.image", "string"),
    ("PodDisruptionBudget", "spec.minAvailable", "string"),
    ("PodDisruptionBudget", "status.disruptionsAllowed", "integer"),
    ("StatefulSet", "spec.updateStrategy.rollingUpdate.partition", "integer"),
    ("HorizontalPodAutoscaler", "spec.metrics.resource.target.averageUtilization", "integer"),
])
def test_schema_nested_fields(kind: str, path: str, type_: str) -> None:
    assert _find(strategy_for(kind).schema, path).type == type_


def test_schema_required_fields_match_validation() -> None:
    assert _find(strategy_for("Pod").schema, "spec.containers").required
    assert _find(strategy_for("PriorityClass").schema, "value").required


def test_errors_collector_types() -> None:
    e = Errors()
    assert not e.check(True, "x", int)
    assert e.causes == [{"field": "x", "message": "Invalid type: expected integer, got boolean"}]


@pytest.mark.parametrize("strategy", STRATEGIES, ids=lambda s: s.kind)
def test_columns_are_table_column_definitions(strategy: Any) -> None:
    """What the HTTP Table output needs: unique names, OpenAPI types, priority 0 or 1."""
    names = [c.name for c in strategy.columns]
    assert len(set(names)) == len(names)
    for column in strategy.columns:
        assert column.type in {"string", "integer", "number", "boolean"}, column.name
        assert column.priority in (0, 1)


def test_statefulset_immutable_fields() -> None:
    old = template("StatefulSet", "apps/v1", {"matchLabels": {"app": "w"}}, serviceName="w")
    mutable = copy.deepcopy(old)
    mutable["spec"].update(replicas=5, minReadySeconds=3, updateStrategy={"type": "OnDelete"},
                           persistentVolumeClaimRetentionPolicy={"whenScaled": "Delete"})
    mutable["spec"]["template"]["spec"]["containers"][0]["image"] = "i:2"
    validate(mutable, old=old)
    for field, value in (("serviceName", "other"), ("podManagementPolicy", "Parallel"),
                         ("volumeClaimTemplates", [{"metadata": {"name": "d"}, "spec": {}}])):
        changed = copy.deepcopy(old)
        changed["spec"][field] = value
        with pytest.raises(Invalid) as err:
            validate(changed, old=old)
        assert [c["field"] for c in err.value.details["causes"]] == ["spec"], field


def test_daemonset_selector_is_immutable() -> None:
    old = template("DaemonSet", "apps/v1", {"matchLabels": {"app": "w"}})
    new = copy.deepcopy(old)
    new["spec"]["selector"] = {"matchLabels": {"app": "w", "tier": "x"}}
    new["spec"]["template"]["metadata"]["labels"]["tier"] = "x"
    validate(new)
    with pytest.raises(Invalid) as err:
        validate(new, old=old)
    assert [c["field"] for c in err.value.details["causes"]] == ["spec.selector"]
    changed_image = copy.deepcopy(old)
    changed_image["spec"]["template"]["spec"]["containers"][0]["image"] = "i:2"
    validate(changed_image, old=old)


def test_controller_revision_data_is_immutable_and_revision_only_grows() -> None:
    old = {"apiVersion": "apps/v1", "kind": "ControllerRevision", "metadata": {"name": "r", "namespace": "default"},
           "revision": 2, "data": {"spec": {"template": {}}}}
    validate(dict(old, revision=3), old=old)
    for change, field in (({"data": {"spec": {}}}, "data"), ({"revision": 1}, "revision")):
        with pytest.raises(Invalid) as err:
            validate(dict(old, **change), old=old)
        assert [c["field"] for c in err.value.details["causes"]] == [field]
