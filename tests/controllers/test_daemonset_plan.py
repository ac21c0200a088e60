"""Table tests of the DaemonSet controller's pure planning: eligibility, manage, rolling update, status."""

from __future__ import annotations

from typing import Any

import pytest

from actors.controllers.daemonset_plan import (
    HASH_LABEL,
    AdoptPod,
    CreatePods,
    DeletePods,
    NodeFit,
    ReleasePod,
    daemon_facts,
    daemon_hash,
    daemon_pod,
    daemon_tolerations,
    fenceposts,
    node_fit,
    oldest_first,
    plan,
)
from protocol.nodeaffinity import pinned_node
from protocol.objects import Obj, format_time, name_of

NOW = 1_700_000_000.0
DS_UID = "ds-uid"


def ds(*, node_selector: dict[str, str] | None = None, affinity: Obj | None = None,
       tolerations: list[Obj] | None = None, host_network: bool = False, strategy: Obj | None = None,
       min_ready: int = 0, image: str = "agent:1",
       deleting: bool = False, node_name: str = "") -> Obj:
    spec: Obj = {"containers": [{"name": "agent", "image": image}]}
    if node_selector:
        spec["nodeSelector"] = node_selector
    if affinity:
        spec["affinity"] = affinity
    if tolerations:
        spec["tolerations"] = tolerations
    if host_network:
        spec["hostNetwork"] = True
    if node_name:
        spec["nodeName"] = node_name
    m: Obj = {"name": "agent", "namespace": "kube-system", "uid": DS_UID, "generation": 3}
    if deleting:
        m["deletionTimestamp"] = format_time(NOW)
    return {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": m,
            "spec": {"selector": {"matchLabels": {"app": "agent"}}, "minReadySeconds": min_ready,
                     "updateStrategy": strategy or {"type": "RollingUpdate",
                                                    "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}},
                     "template": {"metadata": {"labels": {"app": "agent"}}, "spec": spec}}}


def node(name: str, *, labels: dict[str, str] | None = None, taints: list[Obj] | None = None,
         unschedulable: bool = False, ready: str = "True") -> Obj:
    spec: Obj = {}
    if taints:
        spec["taints"] = taints
    if unschedulable:
        spec["unschedulable"] = True
    return {"kind": "Node", "metadata": {"name": name, "labels": labels or {}}, "spec": spec,
            "status": {"conditions": [{"type": "Ready", "status": ready}]}}


def taint(key: str, effect: str = "NoSchedule", value: str = "") -> Obj:
    return {"key": key, "value": value, "effect": effect}


CURRENT = daemon_hash(ds())


def pod(name: str, on: str, *, hash_: str = CURRENT, owner: str | None = DS_UID, bound: bool = True,
        phase: str = "Running", ready: bool = True, ready_for: float = 3600, age: float = 3600,
        deleting: bool = False, labels: dict[str, str] | None = None) -> Obj:
    m: Obj = {"name": name, "namespace": "kube-system", "creationTimestamp": format_time(NOW - age),
              "labels": labels if labels is not None else {"app": "agent", HASH_LABEL: hash_}}
    if owner is not None:
        m["ownerReferences"] = [{"kind": "DaemonSet", "name": "agent", "uid": owner, "controller": True}]
    if deleting:
        m["deletionTimestamp"] = format_time(NOW)
    spec: Obj = {"nodeName": on} if bound else {"affinity": {"nodeAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchFields": [{"key": "metadata.name", "operator": "In", "values": [on]}]}]}}}}
    return {"kind": "Pod", "metadata": m, "spec": spec,
            "status": {"phase": phase, "conditions": [{"type": "Ready", "status": "True" if ready else "False",
                                                       "lastTransitionTime": format_time(NOW - ready_for)}]}}


def actions(result: Any) -> list[Any]:
    return list(result.actions)


# -- which nodes ------------------------------------------------------------------------------------
@pytest.mark.parametrize(("daemonset", "the_node", "fit"), [
    (ds(), node("n1"), NodeFit(True, True)),
    (ds(node_selector={"disk": "ssd"}), node("n1", labels={"disk": "ssd"}), NodeFit(True, True)),
    (ds(node_selector={"disk": "ssd"}), node("n1", labels={"disk": "hdd"}), NodeFit(False, False)),
    (ds(affinity={"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a", "b"]}]}]}}}),
     node("n1", labels={"zone": "b"}), NodeFit(True, True)),
    (ds(affinity={"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]}]}}}),
     node("n1", labels={"zone": "b"}), NodeFit(False, False)),
    (ds(affinity={"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchFields": [{"key": "metadata.name", "operator": "NotIn", "values": ["n1"]}]}]}}}),
     node("n1"), NodeFit(False, False)),
    (ds(node_name="n2"), node("n1"), NodeFit(False, False)),
    (ds(node_name="n1"), node("n1"), NodeFit(True, True)),
    # an untolerated NoSchedule taint: no new pod, an existing one stays
    (ds(), node("n1", taints=[taint("dedicated", value="db")]), NodeFit(False, True)),
    (ds(tolerations=[{"key": "dedicated", "operator": "Equal", "value": "db", "effect": "NoSchedule"}]),
     node("n1", taints=[taint("dedicated", value="db")]), NodeFit(True, True)),
    # an untolerated NoExecute taint: nothing may run there
    (ds(), node("n1", taints=[taint("dedicated", "NoExecute")]), NodeFit(False, False)),
    (ds(tolerations=[{"operator": "Exists"}]), node("n1", taints=[taint("dedicated", "NoExecute")]),
     NodeFit(True, True)),
    # PreferNoSchedule never keeps a daemon pod off
    (ds(), node("n1", taints=[taint("dedicated", "PreferNoSchedule")]), NodeFit(True, True)),
    # the default daemon tolerations
    (ds(), node("n1", taints=[taint("node.kubernetes.io/not-ready", "NoExecute")]), NodeFit(True, True)),
    (ds(), node("n1", taints=[taint("node.kubernetes.io/unreachable", "NoExecute")]), NodeFit(True, True)),
    (ds(), node("n1", taints=[taint("node.kubernetes.io/disk-pressure")]), NodeFit(True, True)),
    (ds(), node("n1", taints=[taint("node.kubernetes.io/memory-pressure")]), NodeFit(True, True)),
    (ds(), node("n1", taints=[taint("node.kubernetes.io/pid-pressure")]), NodeFit(True, True)),
    (ds(), node("n1", taints=[taint("node.kubernetes.io/unschedulable")]), NodeFit(True, True)),
    (ds(), node("n1", unschedulable=True), NodeFit(True, True)),  # a cordon does not stop daemons
    (ds(), node("n1", taints=[taint("node.kubernetes.io/network-unavailable")]), NodeFit(False, True)),
    (ds(host_network=True), node("n1", taints=[taint("node.kubernetes.io/network-unavailable")]),
     NodeFit(True, True)),
    # not tolerated by default: not-ready/unreachable NoSchedule, which an unready node implies
    (ds(), node("n1", ready="False"), NodeFit(False, True)),
    (ds(), node("n1", ready="Unknown"), NodeFit(False, True)),
    (ds(), node("n1", taints=[taint("node.kubernetes.io/not-ready")]), NodeFit(False, True)),
    (ds(tolerations=[{"key": "node.kubernetes.io/not-ready", "operator": "Exists"}]), node("n1", ready="False"),
     NodeFit(True, True)),
])
def test_node_fit(daemonset: Obj, the_node: Obj, fit: NodeFit) -> None:
    assert node_fit(daemon_facts(daemonset), the_node) == fit


def test_default_tolerations_are_added_once_and_replace_same_ones() -> None:
    spec: Obj = {"tolerations": [
        {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
        {"key": "gpu", "operator": "Exists"}]}
    result = daemon_tolerations(spec)
    keys = [(t.get("key"), t.get("effect")) for t in result]
    assert keys == [("node.kubernetes.io/not-ready", "NoExecute"), ("gpu", None),
                    ("node.kubernetes.io/unreachable", "NoExecute"), ("node.kubernetes.io/disk-pressure", "NoSchedule"),
                    ("node.kubernetes.io/memory-pressure", "NoSchedule"),
                    ("node.kubernetes.io/pid-pressure", "NoSchedule"),
                    ("node.kubernetes.io/unschedulable", "NoSchedule")]
    assert "tolerationSeconds" not in result[0]  # daemon pods are never evicted for not-ready
    assert daemon_tolerations({"tolerations": result}) == result  # idempotent
    assert ("node.kubernetes.io/network-unavailable", "NoSchedule") in [
        (t["key"], t["effect"]) for t in daemon_tolerations({"hostNetwork": True})]
    assert spec["tolerations"][0]["tolerationSeconds"] == 300  # the input is not changed


def test_daemon_pod_is_pinned_by_affinity_and_labelled_with_the_hash() -> None:
    affinity = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]}]},
        "preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 1, "preference": {}}]}}
    owner = ds(affinity=affinity)
    new = daemon_pod(owner, "n7", "h1")
    assert new["metadata"]["generateName"] == "agent-" and new["metadata"]["namespace"] == "kube-system"
    assert new["metadata"]["labels"] == {"app": "agent", HASH_LABEL: "h1"}
    assert new["metadata"]["ownerReferences"][0]["uid"] == DS_UID
    required = new["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert required == {"nodeSelectorTerms": [
        {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n7"]}]}]}
    assert "preferredDuringSchedulingIgnoredDuringExecution" in new["spec"]["affinity"]["nodeAffinity"]
    assert "nodeName" not in new["spec"] and pinned_node(new["spec"]) == "n7"
    assert len(new["spec"]["tolerations"]) == 6
    # the owner's template is untouched
    assert owner["spec"]["template"]["spec"]["affinity"] == affinity
    assert "tolerations" not in owner["spec"]["template"]["spec"]


def test_hash_follows_the_template_only() -> None:
    assert daemon_hash(ds()) == daemon_hash(ds(min_ready=5))
    assert daemon_hash(ds()) != daemon_hash(ds(image="agent:2"))


@pytest.mark.parametrize(("strategy", "desired", "expected"), [
    ({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}}, 10, (0, 1)),
    ({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": 0}}, 10, (0, 3)),  # up
    ({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": "10%"}}, 15, (2, 0)),
    ({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 0}}, 10, (0, 1)),
    ({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "0%", "maxSurge": "0%"}}, 10, (0, 1)),
    ({"type": "RollingUpdate"}, 10, (0, 1)),
    ({"type": "OnDelete"}, 10, (0, 0)),
])
def test_fenceposts(strategy: Obj, desired: int, expected: tuple[int, int]) -> None:
    assert fenceposts(daemon_facts(ds(strategy=strategy)), desired) == expected


def test_oldest_first_prefers_running_among_equals() -> None:
    a = pod("a", "n1", phase="Pending", age=10)
    b = pod("b", "n1", age=10)
    c = pod("c", "n1", age=20)
    assert [name_of(p) for p in oldest_first([a, b, c])] == ["c", "b", "a"]


# -- manage ---------------------------------------------------------------------------------------------
NODES = [node("n1"), node("n2"), node("n3")]


@pytest.mark.parametrize(("daemonset", "nodes", "pods", "expected"), [
    # one pod per node
    (ds(), NODES, [], [CreatePods(("n1", "n2", "n3"))]),
    (ds(), NODES, [pod("a", "n1"), pod("b", "n2")], [CreatePods(("n3",))]),
    (ds(), NODES, [pod("a", "n1"), pod("b", "n2"), pod("c", "n3", bound=False)], []),  # pinned counts
    # a pod being deleted still holds its node (no replacement until it is gone)
    (ds(), NODES, [pod("a", "n1", deleting=True), pod("b", "n2"), pod("c", "n3")], []),
    # ...unless it has finished
    (ds(), NODES, [pod("a", "n1", deleting=True, phase="Failed"), pod("b", "n2"), pod("c", "n3")],
     [CreatePods(("n1",))]),
    # extra pods on a node: the oldest stays
    (ds(), NODES, [pod("a", "n1", age=50), pod("b", "n1", age=100), pod("c", "n2"), pod("d", "n3")],
     [DeletePods(("a",))]),
    # a node that may not run it: no pod; one that may not continue: its pod goes
    (ds(node_selector={"role": "edge"}), [node("n1", labels={"role": "edge"}), node("n2")],
     [pod("a", "n2")], [CreatePods(("n1",)), DeletePods(("a",))]),
    (ds(), [node("n1", taints=[taint("x", "NoExecute")])], [pod("a", "n1")], [DeletePods(("a",))]),
    (ds(), [node("n1", taints=[taint("x")])], [pod("a", "n1")], []),  # NoSchedule: stays
    (ds(), [node("n1", taints=[taint("x")])], [], []),  # ... but none is created
    # a pod pinned to a node that is gone is deleted
    (ds(), [node("n1")], [pod("a", "n1"), pod("b", "gone"), pod("c", "gone2", bound=False)],
     [DeletePods(("b", "c"))]),
    # failed and succeeded pods are deleted (and replaced next pass)
    (ds(), [node("n1"), node("n2")], [pod("a", "n1", phase="Failed"), pod("b", "n2", phase="Succeeded")],
     [DeletePods(("a", "b"))]),
    # not ours: ignored; an orphan matching the selector is adopted
    (ds(), [node("n1")], [pod("a", "n1", owner="other")], [CreatePods(("n1",))]),
    (ds(), [node("n1")], [pod("a", "n1", owner=None)], [AdoptPod("a")]),
    (ds(), [node("n1")], [pod("a", "n1", labels={"app": "else"})], [ReleasePod("a"), CreatePods(("n1",))]),
    # a DaemonSet being deleted creates nothing
    (ds(deleting=True), NODES, [], []),
    (ds(node_name="n2"), NODES, [], [CreatePods(("n2",))]),
])
def test_manage(daemonset: Obj, nodes: list[Obj], pods: list[Obj], expected: list[Any]) -> None:
    assert actions(plan(daemonset, nodes, pods, NOW)) == expected


def test_nothing_is_created_or_deleted_while_expectations_wait() -> None:
    result = plan(ds(), NODES, [pod("a", "n1", owner=None)], NOW, expectations_satisfied=False)
    assert actions(result) == [AdoptPod("a")]
    assert result.status["desiredNumberScheduled"] == 3


def test_failed_pods_back_off_per_node() -> None:
    pods = [pod("a", "n1", phase="Failed"), pod("b", "n2", phase="Failed")]
    first = plan(ds(), [node("n1"), node("n2")], pods, NOW)
    assert actions(first) == [DeletePods(("a", "b"))] and first.failed_nodes == ["n1", "n2"]
    later = plan(ds(), [node("n1"), node("n2")], pods, NOW, backoff={"n1": NOW + 10})
    assert actions(later) == [DeletePods(("b",))] and later.failed_nodes == ["n2"]
    assert later.requeue_after is not None and 10 <= later.requeue_after < 11


def test_burst_limits_one_pass() -> None:
    nodes = [node(f"n{i}") for i in range(10)]
    result = plan(ds(), nodes, [], NOW, burst=4)
    assert actions(result) == [CreatePods(("n0", "n1", "n2", "n3"))]


# -- rolling update ----------------------------------------------------------------------------------------
OLD = "oldhash"
SURGE = {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}}


def five() -> list[Obj]:
    return [node(f"n{i}") for i in range(1, 6)]


@pytest.mark.parametrize(("daemonset", "pods", "expected"), [
    # all old and available: maxUnavailable 1 deletes one, in node order
    (ds(), [pod(f"p{i}", f"n{i}", hash_=OLD) for i in range(1, 6)], [DeletePods(("p1",))]),
    (ds(strategy={"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 2}}),
     [pod(f"p{i}", f"n{i}", hash_=OLD) for i in range(1, 6)], [DeletePods(("p1", "p2"))]),
    # one node is being replaced (its old pod deleting): nothing more
    (ds(), [pod("p1", "n1", hash_=OLD, deleting=True), *(pod(f"p{i}", f"n{i}", hash_=OLD) for i in range(2, 6))],
     []),
    # a new pod not yet ready counts as unavailable
    (ds(), [pod("p1", "n1", ready=False), *(pod(f"p{i}", f"n{i}", hash_=OLD) for i in range(2, 6))], []),
    # it became ready: the next node
    (ds(), [pod("p1", "n1"), *(pod(f"p{i}", f"n{i}", hash_=OLD) for i in range(2, 6))], [DeletePods(("p2",))]),
    # an unavailable old pod is replaced at once, whatever the budget
    (ds(), [pod("p1", "n1", ready=False), pod("p2", "n2", hash_=OLD, ready=False),
            *(pod(f"p{i}", f"n{i}", hash_=OLD) for i in range(3, 6))], [DeletePods(("p2",))]),
    # minReadySeconds: ready for 5 s of 30 is not available yet
    (ds(min_ready=30), [pod("p1", "n1", ready_for=5), *(pod(f"p{i}", f"n{i}", hash_=OLD) for i in range(2, 6))],
     []),
    # all updated: nothing
    (ds(), [pod(f"p{i}", f"n{i}") for i in range(1, 6)], []),
    # OnDelete never replaces a pod by itself
    (ds(strategy={"type": "OnDelete"}), [pod(f"p{i}", f"n{i}", hash_=OLD) for i in range(1, 6)], []),
    # surge: a new pod next to the old one, on maxSurge nodes
    (ds(strategy=SURGE), [pod(f"p{i}", f"n{i}", hash_=OLD) for i in range(1, 6)], [CreatePods(("n1",))]),
    # the surged pod is not available yet: wait
    (ds(strategy=SURGE), [pod("new1", "n1", ready=False, age=5), *(pod(f"p{i}", f"n{i}", hash_=OLD)
                                                                   for i in range(1, 6))], []),
    # it is available: the manage step drops the old one beside it
    (ds(strategy=SURGE), [pod("new1", "n1", age=5), *(pod(f"p{i}", f"n{i}", hash_=OLD) for i in range(1, 6))],
     [DeletePods(("p1",))]),
    # an unavailable old pod gets its replacement beside it at once
    (ds(strategy=SURGE), [pod("p1", "n1", hash_=OLD), pod("p2", "n2", hash_=OLD, ready=False),
                          *(pod(f"p{i}", f"n{i}", hash_=OLD) for i in range(3, 6))], [CreatePods(("n2", "n1"))]),
])
def test_rolling_update(daemonset: Obj, pods: list[Obj], expected: list[Any]) -> None:
    assert actions(plan(daemonset, five(), pods, NOW)) == expected


def test_surge_keeps_old_while_new_is_unready_and_drops_an_unready_old() -> None:
    surge = ds(strategy=SURGE)
    # old ready, new not: both stay
    assert actions(plan(surge, [node("n1")], [pod("old", "n1", hash_=OLD), pod("new", "n1", ready=False, age=1)],
                        NOW)) == []
    # old not ready: it goes even though the new one is not available yet
    assert actions(plan(surge, [node("n1")], [pod("old", "n1", hash_=OLD, ready=False),
                                              pod("new", "n1", ready=False, age=1)], NOW)) == [DeletePods(("old",))]
    # three pods: a second new one goes at once
    assert actions(plan(surge, [node("n1")], [pod("old", "n1", hash_=OLD), pod("new", "n1", ready=False, age=5),
                                              pod("new2", "n1", ready=False, age=1)], NOW)) == [DeletePods(("new2",))]


def test_a_full_rollout_converges() -> None:
    """Drive the plan to the end, as the controller and kubelets would: every node ends up updated and at
    no step are more than maxUnavailable nodes without an available pod."""
    nodes = [node(f"n{i}") for i in range(1, 8)]
    pods = [pod(f"old{i}", f"n{i}", hash_=OLD) for i in range(1, 8)]
    daemonset = ds(strategy={"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 2}})
    serial = 0
    for _ in range(40):
        result = plan(daemonset, nodes, pods, NOW)
        assert result.status["numberUnavailable"] <= 2
        if not result.actions:
            break
        for action in result.actions:
            if isinstance(action, DeletePods):
                pods = [p for p in pods if name_of(p) not in action.names]
            elif isinstance(action, CreatePods):
                for n in action.nodes:
                    serial += 1
                    pods.append(pod(f"new{serial}", n, bound=False, ready=True))
    assert result.status["updatedNumberScheduled"] == 7 and result.status["numberAvailable"] == 7
    assert len(pods) == 7 and all(p["metadata"]["labels"][HASH_LABEL] == CURRENT for p in pods)


# -- status --------------------------------------------------------------------------------------------------
def test_status_counts() -> None:
    nodes = [node("n1"), node("n2"), node("n3"), node("n4", taints=[taint("x", "NoExecute")]), node("n5")]
    pods = [pod("a", "n1"), pod("b", "n2", hash_=OLD), pod("c", "n3", ready=False), pod("d", "n4", deleting=True)]
    status = plan(ds(min_ready=10), nodes, pods, NOW, expectations_satisfied=False).status
    assert status == {"desiredNumberScheduled": 4, "currentNumberScheduled": 3, "numberMisscheduled": 1,
                      "numberReady": 2, "updatedNumberScheduled": 2, "numberAvailable": 2,
                      "numberUnavailable": 2, "observedGeneration": 3}


def test_requeue_when_a_pod_turns_available() -> None:
    result = plan(ds(min_ready=30), [node("n1")], [pod("a", "n1", ready_for=10)], NOW)
    assert result.requeue_after is not None and 20 <= result.requeue_after <= 21
