"""Table tests of the Deployment controller's pure planning: fenceposts, rollouts, revisions, history."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from actors.controllers.deployment_plan import (
    CreateReplicaSet,
    DeleteReplicaSet,
    Plan,
    RevisionNotFound,
    SetDeploymentRevision,
    UpdateReplicaSet,
    new_rs_replicas,
    plan,
    prune_history,
    revision_history,
    rollback_template,
)
from actors.controllers.deployment_revisions import (
    DESIRED_REPLICAS,
    HASH_LABEL,
    REVISION,
    REVISION_HISTORY,
    fenceposts,
    new_replicaset,
    resolve_int_or_percent,
    template_hash,
)
from actors.controllers.deployment_status import compute_status
from protocol.objects import Obj, format_time, name_of

NOW = 1_700_000_000.0
UID = "deploy-uid"


def deploy(replicas: int = 3, image: str = "v2", *, surge: Any = "25%", unavailable: Any = "25%",
           recreate: bool = False, paused: bool = False, history: int = 10, status: Obj | None = None) -> Obj:
    strategy: Obj = {"type": "Recreate"} if recreate else {
        "type": "RollingUpdate", "rollingUpdate": {"maxSurge": surge, "maxUnavailable": unavailable}}
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "default", "uid": UID, "generation": 1},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}}, "strategy": strategy,
                     "paused": paused, "revisionHistoryLimit": history, "progressDeadlineSeconds": 600,
                     "template": {"metadata": {"labels": {"app": "web"}},
                                  "spec": {"containers": [{"name": "c", "image": image}]}}},
            "status": status or {}}


def rs_for(d: Obj, replicas: int, available: int | None = None, *, revision: int = 1, age: float = 0) -> Obj:
    """A created ReplicaSet of ``d``'s template, with a status of ``available`` ready pods."""
    rs = new_replicaset(d, replicas, revision)
    rs["metadata"].update(uid=f"uid-{name_of(rs)}", generation=1,
                          creationTimestamp=format_time(NOW - 1000 + age))
    rs["metadata"]["ownerReferences"][0]["uid"] = UID
    n = replicas if available is None else available
    rs["status"] = {"replicas": n, "readyReplicas": n, "availableReplicas": n, "observedGeneration": 1}
    return rs


def updates(p: Plan) -> dict[str, int]:
    return {a.name: a.replicas for a in p.actions if isinstance(a, UpdateReplicaSet)}


# -- fenceposts -----------------------------------------------------------------------------------
@pytest.mark.parametrize(("value", "total", "up", "expected"), [
    (2, 10, True, 2), ("25%", 10, True, 3), ("25%", 10, False, 2), ("25%", 3, True, 1), ("25%", 3, False, 0),
    ("0%", 5, True, 0), ("100%", 7, False, 7), ("50%", 1, True, 1), ("50%", 1, False, 0), (None, 5, True, 0),
    ("3", 5, True, 3),
])
def test_resolve_int_or_percent(value: Any, total: int, up: bool, expected: int) -> None:
    assert resolve_int_or_percent(value, total, round_up=up) == expected


@pytest.mark.parametrize(("replicas", "surge", "unavailable", "expected"), [
    (10, "25%", "25%", (3, 2)),
    (3, "25%", "25%", (1, 0)),
    (4, "25%", "25%", (1, 1)),
    (1, "25%", "25%", (1, 0)),
    (5, 0, 0, (0, 1)),          # both zero would never progress
    (5, "0%", "0%", (0, 1)),
    (5, 2, 0, (2, 0)),
    (2, 0, 5, (0, 2)),          # never more unavailable than replicas
    (0, 1, 1, (1, 0)),
    (10, "100%", "0%", (10, 0)),
])
def test_fenceposts(replicas: int, surge: Any, unavailable: Any, expected: tuple[int, int]) -> None:
    assert fenceposts(deploy(replicas, surge=surge, unavailable=unavailable)) == expected


def test_recreate_has_no_fenceposts() -> None:
    assert fenceposts(deploy(3, recreate=True)) == (0, 0)


# -- hashes and new ReplicaSets -------------------------------------------------------------------
def test_template_hash_is_stable_and_ignores_its_own_label() -> None:
    template = deploy()["spec"]["template"]
    h = template_hash(template)
    assert h == template_hash(copy.deepcopy(template)) and len(h) == 10
    labelled = copy.deepcopy(template)
    labelled["metadata"]["labels"][HASH_LABEL] = h
    assert template_hash(labelled) == h
    assert template_hash(deploy(image="v3")["spec"]["template"]) != h
    assert template_hash(template, 1) != h


def test_new_replicaset_shape() -> None:
    rs = new_replicaset(deploy(), 2, 4)
    h = rs["metadata"]["labels"][HASH_LABEL]
    assert name_of(rs) == f"web-{h}"
    assert rs["spec"]["selector"]["matchLabels"] == {"app": "web", HASH_LABEL: h}
    assert rs["spec"]["template"]["metadata"]["labels"] == {"app": "web", HASH_LABEL: h}
    assert rs["metadata"]["annotations"][REVISION] == "4"
    assert rs["metadata"]["ownerReferences"][0]["controller"] is True
    assert deploy()["spec"]["template"]["metadata"]["labels"] == {"app": "web"}  # not mutated


@pytest.mark.parametrize(("replicas", "surge", "old", "new", "expected"), [
    (3, 1, [3], 0, 1),      # room for one surge pod
    (3, 1, [3], 1, 1),      # at 4 pods: wait
    (3, 1, [2], 1, 2),
    (3, 1, [0], 2, 3),
    (10, 3, [10], 0, 3),
    (10, 3, [5, 5], 0, 3),
    (3, 0, [3], 0, 0),      # no surge: old must shrink first
    (3, 0, [2], 0, 1),
])
def test_new_rs_replicas(replicas: int, surge: int, old: list[int], new: int, expected: int) -> None:
    d = deploy(replicas, surge=surge, unavailable=1)
    olds = [rs_for(deploy(replicas, image=f"v{i}"), n) for i, n in enumerate(old)]
    new_rs = rs_for(d, new)
    assert new_rs_replicas(d, [*olds, new_rs], new_rs) == expected


# -- rolling updates ------------------------------------------------------------------------------
def test_first_rollout_creates_the_replicaset_with_everything() -> None:
    p = plan(deploy(3), [], old_pods_running=False, now=NOW)
    [create] = [a for a in p.actions if isinstance(a, CreateReplicaSet)]
    assert create.replicaset["spec"]["replicas"] == 3
    assert SetDeploymentRevision(1) in p.actions
    assert p.status["conditions"][1]["reason"] == "NewReplicaSetCreated"


def _run_rollout(d: Obj, old: list[Obj], *, steps: int = 200) -> tuple[list[Obj], int, int]:
    """Plan, apply, let every scaled ReplicaSet become fully available, repeat; checks each step's
    spec totals against maxSurge and available totals against maxUnavailable."""
    replicas = d["spec"]["replicas"]
    surge, unavailable = fenceposts(d)
    rses = {name_of(rs): rs for rs in old}
    lowest, highest = replicas, 0
    for _ in range(steps):
        p = plan(d, list(rses.values()), old_pods_running=False, now=NOW)
        if not p.actions:
            break
        for action in p.actions:
            if isinstance(action, CreateReplicaSet):
                created = copy.deepcopy(action.replicaset)
                created["metadata"].update(uid="uid-new", generation=1, creationTimestamp=format_time(NOW))
                created["metadata"]["ownerReferences"][0]["uid"] = UID
                created["status"] = {}
                rses[name_of(created)] = created
            elif isinstance(action, UpdateReplicaSet):
                target = rses[action.name]
                target["spec"]["replicas"] = action.replicas
                target["metadata"]["annotations"].update(action.annotations)
            elif isinstance(action, DeleteReplicaSet):
                del rses[action.name]
            elif isinstance(action, SetDeploymentRevision):
                d["metadata"].setdefault("annotations", {})[REVISION] = str(action.revision)
        # pods go first, then new ones come up: check the low point between the two
        for rs in rses.values():
            have = rs["status"].get("availableReplicas", 0)
            rs["status"].update(availableReplicas=min(have, rs["spec"]["replicas"]))
        lowest = min(lowest, sum(rs["status"]["availableReplicas"] for rs in rses.values()))
        highest = max(highest, sum(rs["spec"]["replicas"] for rs in rses.values()))
        for rs in rses.values():
            n = rs["spec"]["replicas"]
            rs["status"] = {"replicas": n, "readyReplicas": n, "availableReplicas": n, "observedGeneration": 1}
    else:
        raise AssertionError("rollout did not finish")
    assert lowest >= replicas - unavailable, (lowest, replicas, unavailable)
    assert highest <= replicas + surge, (highest, replicas, surge)
    return list(rses.values()), lowest, highest


@pytest.mark.parametrize(("replicas", "surge", "unavailable"), [
    (3, "25%", "25%"), (3, 1, 0), (3, 0, 1), (4, 0, 1), (10, "25%", "25%"), (10, 3, 2), (10, "100%", 0),
    (10, 0, "100%"), (1, 0, 0), (1, 1, 0), (5, 2, 3), (7, "30%", "10%"),
])
def test_rolling_update_respects_fenceposts(replicas: int, surge: Any, unavailable: Any) -> None:
    d = deploy(replicas, surge=surge, unavailable=unavailable)
    old = rs_for(deploy(replicas, image="v1", surge=surge, unavailable=unavailable), replicas)
    final, _, _ = _run_rollout(d, [old])
    by_image = {rs["spec"]["template"]["spec"]["containers"][0]["image"]: rs for rs in final}
    assert by_image["v2"]["spec"]["replicas"] == replicas
    assert by_image["v1"]["spec"]["replicas"] == 0
    assert by_image["v2"]["metadata"]["annotations"][REVISION] == "2"


def test_rollout_over_several_old_replicasets() -> None:
    d = deploy(6, surge=1, unavailable=1)
    olds = [rs_for(deploy(6, image="v0", surge=1, unavailable=1), 2, revision=1, age=0),
            rs_for(deploy(6, image="v1", surge=1, unavailable=1), 4, revision=2, age=10)]
    final, _, _ = _run_rollout(d, olds)
    assert sorted(rs["spec"]["replicas"] for rs in final) == [0, 0, 6]


def test_unhealthy_old_pods_are_scaled_down_first() -> None:
    d = deploy(4, surge=0, unavailable=1)
    old = rs_for(deploy(4, image="v1"), 4, available=2)
    new = rs_for(d, 0, revision=2)
    p = plan(d, [old, new], old_pods_running=False, now=NOW)
    # the unavailable old pods go first, within maxScaledDown = 4 pods - 3 minAvailable - 0 = 1
    assert updates(p) == {name_of(old): 3}


def test_stale_available_count_is_capped_by_spec() -> None:
    """An old ReplicaSet just scaled down whose status still counts the pods above its spec."""
    d = deploy(3, surge=1, unavailable=0)
    old = rs_for(deploy(3, image="v1"), 2, available=3)
    new = rs_for(d, 2, available=2, revision=2)
    p = plan(d, [old, new], old_pods_running=False, now=NOW)
    # really 2 old + 2 new available and 3 needed: exactly one old pod may go
    assert updates(p) == {name_of(old): 1}


def test_new_rs_above_replicas_is_scaled_down() -> None:
    d = deploy(2)
    new = rs_for(d, 5)
    assert updates(plan(d, [new], old_pods_running=False, now=NOW)) == {name_of(new): 2}


# -- recreate -------------------------------------------------------------------------------------
def test_recreate_phases() -> None:
    d = deploy(3, recreate=True)
    old = rs_for(deploy(3, image="v1"), 3)
    p = plan(d, [old], old_pods_running=True, now=NOW)
    assert p.actions == [UpdateReplicaSet(name_of(old), 0, 3, p.actions[0].annotations)]  # type: ignore[union-attr]
    old["spec"]["replicas"] = 0
    assert plan(d, [old], old_pods_running=True, now=NOW).actions == []      # pods still there
    old["status"] = {"replicas": 0, "availableReplicas": 0, "observedGeneration": 1}
    assert plan(d, [old], old_pods_running=True, now=NOW).actions == []      # the pod cache says so
    p = plan(d, [old], old_pods_running=False, now=NOW)
    [create] = [a for a in p.actions if isinstance(a, CreateReplicaSet)]
    assert create.replicaset["spec"]["replicas"] == 3
    assert create.replicaset["metadata"]["annotations"][REVISION] == "2"


def test_recreate_status_unavailable_until_everything_is_up() -> None:
    d = deploy(3, recreate=True)
    status = compute_status(d, rs_for(d, 3, 2), [rs_for(d, 3, 2)], NOW)
    assert status["conditions"][0]["status"] == "False"


# -- revisions, rollback, history -----------------------------------------------------------------
def test_rolling_back_reuses_the_old_replicaset_with_a_new_revision() -> None:
    v1, v2 = deploy(image="v1"), deploy(image="v2")
    old = rs_for(v1, 0, revision=1)
    current = rs_for(v2, 3, revision=2)
    p = plan(v1, [old, current], old_pods_running=False, now=NOW)
    bump = next(a for a in p.actions if isinstance(a, UpdateReplicaSet) and a.name == name_of(old))
    assert bump.annotations[REVISION] == "3" and bump.annotations[REVISION_HISTORY] == "1"
    assert SetDeploymentRevision(3) in p.actions
    assert not any(isinstance(a, CreateReplicaSet) for a in p.actions)


def test_rollback_template_and_history() -> None:
    v1, v2, v3 = (deploy(image=f"v{i}") for i in (1, 2, 3))
    rses = [rs_for(v1, 0, revision=1), rs_for(v2, 0, revision=2), rs_for(v3, 3, revision=3)]
    rses[0]["metadata"]["annotations"]["kubernetes.io/change-cause"] = "first"
    assert [(h.revision, h.change_cause) for h in revision_history(v3, rses)] == [(1, "first"), (2, None), (3, None)]
    previous = rollback_template(v3, rses)
    assert previous["spec"]["template"] == v2["spec"]["template"]
    first = rollback_template(v3, rses, 1)
    assert first["spec"]["template"] == v1["spec"]["template"]
    assert first["metadata"]["annotations"]["kubernetes.io/change-cause"] == "first"
    assert v3["spec"]["template"]["spec"]["containers"][0]["image"] == "v3"  # input untouched
    with pytest.raises(RevisionNotFound):
        rollback_template(v3, rses, 9)
    with pytest.raises(RevisionNotFound):
        rollback_template(v1, [rs_for(v1, 3)])


@pytest.mark.parametrize(("limit", "old_count", "deleted"), [(10, 3, []), (2, 5, [1, 2, 3]), (0, 2, [1, 2])])
def test_prune_history(limit: int, old_count: int, deleted: list[int]) -> None:
    d = deploy(history=limit, image="new")
    new = rs_for(d, 3, revision=old_count + 1)
    old = [rs_for(deploy(image=f"v{i}"), 0, revision=i) for i in range(1, old_count + 1)]
    got = prune_history(d, new, old)
    expected = [name_of(old[i - 1]) for i in deleted]
    assert got == [DeleteReplicaSet(n) for n in expected]


def test_prune_history_keeps_replicasets_with_pods() -> None:
    d = deploy(history=0, image="new")
    busy = rs_for(deploy(image="v1"), 0, revision=1)
    busy["status"]["replicas"] = 1
    assert prune_history(d, rs_for(d, 3, revision=2), [busy]) == []


def test_complete_rollout_prunes_history() -> None:
    d = deploy(3, history=1)
    new = rs_for(d, 3, revision=3)
    old = [rs_for(deploy(image="v0"), 0, revision=1), rs_for(deploy(image="v1"), 0, revision=2)]
    d["metadata"]["annotations"] = {REVISION: "3"}
    p = plan(d, [*old, new], old_pods_running=False, now=NOW)
    assert p.actions == [DeleteReplicaSet(name_of(old[0]))]
    assert p.status["conditions"][1]["reason"] == "NewReplicaSetAvailable"


# -- scaling and pausing --------------------------------------------------------------------------
def test_scaling_a_settled_deployment() -> None:
    d = deploy(5)
    rs = rs_for(deploy(3), 3)
    d["metadata"]["annotations"] = {REVISION: "1"}
    assert updates(plan(d, [rs], old_pods_running=False, now=NOW)) == {name_of(rs): 5}


def test_scaling_mid_rollout_is_proportional() -> None:
    old_d = deploy(10, image="v1", surge=3, unavailable=2)
    d = deploy(20, image="v2", surge=3, unavailable=2)
    old = rs_for(old_d, 8, revision=1)
    new = rs_for(deploy(10, image="v2", surge=3, unavailable=2), 5, available=0, revision=2)
    assert old["metadata"]["annotations"][DESIRED_REPLICAS] == "10"
    got = updates(plan(d, [old, new], old_pods_running=False, now=NOW))
    # 13 pods for 10 replicas become 23 for 20: the 10 extra shared 8:5
    assert sum(got.values()) == 23
    assert got[name_of(old)] > 8 and got[name_of(new)] > 5


def test_paused_deployment_scales_but_does_not_roll() -> None:
    d = deploy(4, image="v2", paused=True)
    old = rs_for(deploy(3, image="v1"), 3)
    p = plan(d, [old], old_pods_running=False, now=NOW)
    assert not any(isinstance(a, CreateReplicaSet) for a in p.actions)
    assert updates(p) == {name_of(old): 4}
    assert p.status["conditions"][1]["reason"] == "DeploymentPaused"


def test_deployment_being_deleted_is_left_alone() -> None:
    d = deploy(3)
    d["metadata"]["deletionTimestamp"] = format_time(NOW)
    assert plan(d, [rs_for(deploy(image="v1"), 3)], old_pods_running=False, now=NOW).actions == []


# -- status ---------------------------------------------------------------------------------------
def test_status_mid_rollout() -> None:
    d = deploy(4, surge=1, unavailable=1)
    old = rs_for(deploy(4, image="v1"), 2)
    new = rs_for(d, 3, available=1, revision=2)
    status = compute_status(d, new, [old, new], NOW)
    assert {k: status[k] for k in ("replicas", "updatedReplicas", "readyReplicas", "availableReplicas",
                                   "unavailableReplicas", "observedGeneration")} == {
        "replicas": 3, "updatedReplicas": 1, "readyReplicas": 3, "availableReplicas": 3,
        "unavailableReplicas": 2, "observedGeneration": 1}
    available, progressing = status["conditions"]
    assert available["status"] == "True" and progressing["reason"] == "ReplicaSetUpdated"


def test_progress_deadline() -> None:
    stale = format_time(NOW - 700)
    d = deploy(3, status={"replicas": 3, "updatedReplicas": 1, "availableReplicas": 3, "readyReplicas": 3,
                          "conditions": [{"type": "Progressing", "status": "True", "reason": "ReplicaSetUpdated",
                                          "lastUpdateTime": stale, "lastTransitionTime": stale}]})
    new = rs_for(d, 1, revision=2)
    old = rs_for(deploy(image="v1"), 2)
    status = compute_status(d, new, [old, new], NOW)
    assert status["conditions"][1]["reason"] == "ProgressDeadlineExceeded"
    assert status["conditions"][1]["status"] == "False"
