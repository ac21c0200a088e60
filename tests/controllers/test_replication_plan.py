"""Table tests of the replication controllers' pure planning."""

from __future__ import annotations

from typing import Any

import pytest

from actors.controllers.replication_plan import (
    AdoptPod,
    CreatePods,
    DeletePods,
    ReleasePod,
    deletion_order,
    plan,
    pod_from_template,
    replica_diff,
    selector_of,
    slow_start_batches,
    status_changed,
)
from protocol.objects import Obj, format_time, name_of

NOW = 1_700_000_000.0
OWNER_UID = "rs-uid"


def rs(replicas: int = 3, *, deleting: bool = False, min_ready: int = 0, generation: int = 2,
       status: Obj | None = None) -> Obj:
    m: Obj = {"name": "web", "namespace": "default", "uid": OWNER_UID, "generation": generation}
    if deleting:
        m["deletionTimestamp"] = format_time(NOW)
    return {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": m, "status": status or {},
            "spec": {"replicas": replicas, "minReadySeconds": min_ready,
                     "selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web", "tier": "fe"}},
                                  "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}}


def pod(name: str, *, owner: str | None = OWNER_UID, labels: dict[str, str] | None = None, node: str = "",
        phase: str = "Running", ready: bool = True, ready_for: float = 3600, restarts: int = 0,
        age: float = 3600, deleting: bool = False) -> Obj:
    m: Obj = {"name": name, "namespace": "default", "labels": labels if labels is not None else {"app": "web"},
              "creationTimestamp": format_time(NOW - age)}
    if owner is not None:
        m["ownerReferences"] = [{"kind": "ReplicaSet", "name": "web", "uid": owner, "controller": True}]
    if deleting:
        m["deletionTimestamp"] = format_time(NOW)
    conditions = [{"type": "Ready", "status": "True" if ready else "False",
                   "lastTransitionTime": format_time(NOW - ready_for)}]
    return {"kind": "Pod", "metadata": m, "spec": {"nodeName": node} if node else {},
            "status": {"phase": phase, "conditions": conditions,
                       "containerStatuses": [{"name": "c", "restartCount": restarts}]}}


def names(pods: list[Obj]) -> list[str]:
    return [name_of(p) for p in pods]


# -- selectors ------------------------------------------------------------------------------------
def test_selector_of_both_kinds() -> None:
    rc = {"kind": "ReplicationController", "spec": {"selector": {"app": "x"}}}
    assert selector_of(rc).matches({"app": "x", "more": "y"})
    assert not selector_of(rc).matches({"app": "z"})
    rc_default = {"kind": "ReplicationController", "spec": {"template": {"metadata": {"labels": {"a": "b"}}}}}
    assert selector_of(rc_default).matches({"a": "b"})
    rs_expr = {"kind": "ReplicaSet", "spec": {"selector": {"matchExpressions": [
        {"key": "app", "operator": "In", "values": ["x", "y"]}]}}}
    assert selector_of(rs_expr).matches({"app": "y"}) and not selector_of(rs_expr).matches({"app": "q"})


# -- adopt / release (the decision itself is table-tested in test_claim_plan) ----------------------
def test_plan_adopts_and_releases_what_claim_plan_says() -> None:
    result = plan(rs(3), [pod("mine"), pod("orphan", owner=None), pod("moved", labels={"app": "other"})], NOW)
    assert AdoptPod("orphan") in result.actions and ReleasePod("moved") in result.actions
    assert names(result.active) == ["mine", "orphan"]


# -- counts ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(("desired", "active", "expected"), [
    (3, 0, CreatePods(3)),
    (3, 2, CreatePods(1)),
    (3, 3, None),
    (0, 0, None),
    (1, 3, 2),
    (0, 2, 2),
    (1000, 0, CreatePods(500)),
])
def test_replica_diff(desired: int, active: int, expected: Any) -> None:
    got = replica_diff(desired, [pod(f"p{i}") for i in range(active)])
    if isinstance(expected, int):
        assert isinstance(got, DeletePods) and len(got.names) == expected
    else:
        assert got == expected


def test_deletions_are_capped_by_burst() -> None:
    got = replica_diff(0, [pod(f"p{i}") for i in range(20)], burst=7)
    assert isinstance(got, DeletePods) and len(got.names) == 7


def test_terminal_and_deleting_pods_do_not_count() -> None:
    pods = [pod("ok"), pod("done", phase="Succeeded"), pod("failed", phase="Failed"), pod("going", deleting=True)]
    result = plan(rs(3), pods, NOW)
    assert CreatePods(2) in result.actions
    assert result.status["replicas"] == 1


def test_unsatisfied_expectations_and_deleting_owner_block_creates() -> None:
    assert not any(isinstance(a, CreatePods) for a in plan(rs(3), [], NOW, expectations_satisfied=False).actions)
    assert plan(rs(3, deleting=True), [], NOW).actions == []
    # adoption still goes ahead while expectations are pending
    assert AdoptPod("o") in plan(rs(3), [pod("o", owner=None)], NOW, expectations_satisfied=False).actions


# -- deletion ranking -----------------------------------------------------------------------------
@pytest.mark.parametrize(("first", "second", "why"), [
    (pod("a"), pod("b", node="n1"), "unscheduled before scheduled"),
    (pod("a", node="n", phase="Pending"), pod("b", node="n2", phase="Running"), "pending before running"),
    (pod("a", node="n", phase="Unknown"), pod("b", node="n2", phase="Running"), "unknown before running"),
    (pod("a", node="n", ready=False), pod("b", node="n2"), "not ready before ready"),
    (pod("a", node="n", ready_for=10), pod("b", node="n2", ready_for=1000), "ready for less time first"),
    (pod("a", node="n", restarts=5), pod("b", node="n2", restarts=1), "more restarts first"),
    (pod("a", node="n", age=10), pod("b", node="n2", age=1000), "newer first"),
])
def test_deletion_order(first: Obj, second: Obj, why: str) -> None:
    assert names(deletion_order([second, first])) == ["a", "b"], why
    assert names(deletion_order([first, second])) == ["a", "b"], why


def test_deletion_prefers_pods_on_crowded_nodes() -> None:
    pods = [pod("lonely", node="n1"), pod("crowd1", node="n2"), pod("crowd2", node="n2")]
    assert names(deletion_order(pods))[0].startswith("crowd")


def test_plan_deletes_the_lowest_ranked() -> None:
    pods = [pod("ready", node="n1"), pod("pending", node="n2", phase="Pending", ready=False), pod("unbound")]
    result = plan(rs(1), pods, NOW)
    assert DeletePods(("unbound", "pending")) in result.actions


# -- status ---------------------------------------------------------------------------------------
def test_status_counts_and_min_ready_seconds() -> None:
    owner = rs(4, min_ready=30, generation=7)
    pods = [pod("a", ready_for=100), pod("b", ready_for=10), pod("c", ready=False),
            pod("d", labels={"app": "web", "tier": "fe"}, ready_for=100)]
    result = plan(owner, pods, NOW)
    assert result.status == {"replicas": 4, "fullyLabeledReplicas": 1, "readyReplicas": 3,
                             "availableReplicas": 2, "observedGeneration": 7}
    assert result.requeue_after is not None and 20 <= result.requeue_after <= 21


def test_failed_create_sets_replica_failure_condition() -> None:
    result = plan(rs(1), [], NOW, create_error="quota exceeded")
    cond = result.status["conditions"][0]
    assert cond["type"] == "ReplicaFailure" and cond["reason"] == "FailedCreate"
    cleared = plan(rs(1, status=result.status), [pod("a")], NOW)
    assert "conditions" not in cleared.status


def test_status_changed() -> None:
    status = {"replicas": 1, "observedGeneration": 1}
    assert not status_changed({**status, "conditions": []}, status)
    assert status_changed({"replicas": 0, "observedGeneration": 1}, status)
    assert status_changed({**status, "conditions": [{"type": "ReplicaFailure"}]}, status)


# -- creation -------------------------------------------------------------------------------------
def test_pod_from_template() -> None:
    new = pod_from_template(rs())
    assert new["metadata"]["generateName"] == "web-"
    assert new["metadata"]["labels"] == {"app": "web", "tier": "fe"}
    assert new["metadata"]["ownerReferences"] == [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web",
                                                   "uid": OWNER_UID, "controller": True,
                                                   "blockOwnerDeletion": True}]
    assert new["spec"]["containers"][0]["image"] == "nginx"


@pytest.mark.parametrize(("count", "batches"), [
    (0, []), (1, [1]), (2, [1, 1]), (3, [1, 2]), (7, [1, 2, 4]), (10, [1, 2, 4, 3]), (500, [1, 2, 4, 8, 16, 32,
                                                                                           64, 128, 245]),
])
def test_slow_start_batches(count: int, batches: list[int]) -> None:
    assert slow_start_batches(count) == batches
    assert sum(batches) == count
