"""Table tests of the StatefulSet controller's pure planning: order, identity, claims, rolling update, status."""

from __future__ import annotations

from typing import Any

import pytest

from actors.controllers.daemonset_plan import HASH_LABEL
from actors.controllers.statefulset_plan import (
    POD_INDEX_LABEL,
    POD_NAME_LABEL,
    AdoptPod,
    CreateClaims,
    CreatePod,
    DeleteClaims,
    DeletePod,
    claim_object,
    compute_status,
    ordinal_of,
    plan,
    stateful_pod,
    update_revision,
)
from protocol.objects import Obj, format_time, name_of

NOW = 1_700_000_000.0
UID = "sts-uid"


def sts(replicas: int = 3, *, policy: str = "OrderedReady", image: str = "db:1", partition: int = 0,
        strategy: str = "RollingUpdate", max_unavailable: Any = None, claims: bool = False,
        when_scaled: str = "Retain", when_deleted: str = "Retain", status: Obj | None = None,
        min_ready: int = 0) -> Obj:
    rolling: Obj = {"partition": partition}
    if max_unavailable is not None:
        rolling["maxUnavailable"] = max_unavailable
    spec: Obj = {"replicas": replicas, "serviceName": "db", "podManagementPolicy": policy,
                 "selector": {"matchLabels": {"app": "db"}}, "minReadySeconds": min_ready,
                 "updateStrategy": {"type": strategy, **({"rollingUpdate": rolling} if strategy == "RollingUpdate"
                                                         else {})},
                 "persistentVolumeClaimRetentionPolicy": {"whenDeleted": when_deleted, "whenScaled": when_scaled},
                 "template": {"metadata": {"labels": {"app": "db"}},
                              "spec": {"containers": [{"name": "db", "image": image}]}}}
    if claims:
        spec["volumeClaimTemplates"] = [{"metadata": {"name": "data"},
                                         "spec": {"accessModes": ["ReadWriteOnce"],
                                                  "resources": {"requests": {"storage": "1Gi"}}}}]
    return {"apiVersion": "apps/v1", "kind": "StatefulSet",
            "metadata": {"name": "web", "namespace": "default", "uid": UID, "generation": 2},
            "spec": spec, "status": status or {}}


def pod(owner: Obj, ordinal: int, *, ready: bool = True, phase: str = "Running", revision: str | None = None,
        deleting: bool = False, ready_at: float = NOW - 100) -> Obj:
    p = stateful_pod(owner, owner["spec"]["template"], ordinal, revision or update_revision(owner))
    p["metadata"]["uid"] = f"uid-{ordinal}"
    p["metadata"]["ownerReferences"][0]["uid"] = UID
    if deleting:
        p["metadata"]["deletionTimestamp"] = format_time(NOW)
    p["status"] = {"phase": phase, "conditions": [
        {"type": "Ready", "status": "True" if ready else "False", "lastTransitionTime": format_time(ready_at)}]}
    return p


def names(actions: list[Any], kind: type) -> list[str]:
    out = []
    for a in actions:
        if isinstance(a, kind):
            out.append(name_of(a.pod) if isinstance(a, CreatePod) else str(getattr(a, "name", "")))
    return out


def test_identity_of_a_pod_and_its_claim() -> None:
    owner = sts(claims=True)
    p = stateful_pod(owner, owner["spec"]["template"], 2, "web-abc")
    assert name_of(p) == "web-2" and p["spec"]["hostname"] == "web-2" and p["spec"]["subdomain"] == "db"
    labels = p["metadata"]["labels"]
    assert labels[POD_NAME_LABEL] == "web-2" and labels[POD_INDEX_LABEL] == "2" and labels[HASH_LABEL] == "web-abc"
    assert p["spec"]["volumes"] == [{"name": "data", "persistentVolumeClaim": {"claimName": "data-web-2"}}]
    claim = claim_object(owner, owner["spec"]["volumeClaimTemplates"][0], 2)
    assert name_of(claim) == "data-web-2" and claim["metadata"]["labels"] == {"app": "db"}
    assert "ownerReferences" not in claim["metadata"]
    deleted = claim_object(sts(claims=True, when_deleted="Delete"), owner["spec"]["volumeClaimTemplates"][0], 2)
    assert deleted["metadata"]["ownerReferences"][0]["uid"] == UID
    assert ordinal_of(owner, p) == 2 and ordinal_of(owner, {"metadata": {"name": "web-02"}}) is None
    assert ordinal_of(owner, {"metadata": {"name": "webx-1"}}) is None


@pytest.mark.parametrize(("policy", "existing", "created"), [
    ("OrderedReady", {}, ["web-0"]),
    ("OrderedReady", {0: {}}, ["web-1"]),
    ("OrderedReady", {0: {"ready": False}}, []),  # waits for web-0 to be ready
    ("OrderedReady", {0: {"phase": "Pending", "ready": False}, 2: {}}, []),
    ("OrderedReady", {0: {}, 1: {}}, ["web-2"]),
    ("Parallel", {}, ["web-0", "web-1", "web-2"]),
    ("Parallel", {1: {"ready": False}}, ["web-0", "web-2"]),
])
def test_creation_order(policy: str, existing: dict[int, Obj], created: list[str]) -> None:
    owner = sts(policy=policy)
    pods = [pod(owner, i, **kw) for i, kw in existing.items()]
    result = plan(owner, pods, None, {}, NOW)
    assert names(result.actions, CreatePod) == created


def test_min_ready_seconds_holds_the_next_ordinal_and_requeues() -> None:
    owner = sts(min_ready=10)
    result = plan(owner, [pod(owner, 0, ready_at=NOW - 4)], None, {}, NOW)
    assert names(result.actions, CreatePod) == [] and result.requeue_after == pytest.approx(6.05)
    assert names(plan(owner, [pod(owner, 0, ready_at=NOW - 11)], None, {}, NOW).actions, CreatePod) == ["web-1"]


@pytest.mark.parametrize(("policy", "existing", "deleted"), [
    ("OrderedReady", {0: {}, 1: {}, 2: {}, 3: {}, 4: {}}, ["web-4"]),  # scale 5 -> 3: highest first, one at a time
    ("OrderedReady", {0: {}, 1: {}, 2: {}, 3: {}, 4: {"deleting": True}}, []),  # waits for web-4 to go
    ("OrderedReady", {0: {}, 1: {}, 2: {}, 3: {"ready": False}, 4: {}}, []),  # an unhealthy lower one waits
    ("OrderedReady", {0: {}, 1: {}, 2: {}, 3: {}, 4: {"ready": False}}, ["web-4"]),  # the target itself may be
    ("OrderedReady", {0: {}, 1: {"ready": False}, 2: {}, 3: {}}, []),
    ("Parallel", {0: {}, 1: {}, 2: {}, 3: {}, 4: {}}, ["web-4", "web-3"]),
])
def test_scale_down_in_reverse(policy: str, existing: dict[int, Obj], deleted: list[str]) -> None:
    owner = sts(3, policy=policy)
    result = plan(owner, [pod(owner, i, **kw) for i, kw in existing.items()], None, {}, NOW)
    assert names(result.actions, DeletePod) == deleted


def test_failed_pod_is_deleted_and_recreated_with_same_name_and_claim() -> None:
    owner = sts(claims=True)
    pods = [pod(owner, 0), pod(owner, 1, phase="Failed", ready=False)]
    result = plan(owner, pods, {"data-web-0", "data-web-1"}, {}, NOW)
    assert names(result.actions, DeletePod) == ["web-1"] and names(result.actions, CreatePod) == []
    again = plan(owner, [pods[0]], {"data-web-0", "data-web-1"}, {}, NOW)
    assert names(again.actions, CreatePod) == ["web-1"]
    assert not [a for a in again.actions if isinstance(a, CreateClaims)]  # its claim is kept, mounted again


def test_claims_made_before_the_pod_only_when_served() -> None:
    owner = sts(claims=True)
    result = plan(owner, [], set(), {}, NOW)
    assert isinstance(result.actions[0], CreateClaims) and isinstance(result.actions[1], CreatePod)
    assert [name_of(c) for c in result.actions[0].claims] == ["data-web-0"]
    without = plan(owner, [], None, {}, NOW)  # no PersistentVolumeClaim kind on the server
    assert [type(a) for a in without.actions] == [CreatePod]


@pytest.mark.parametrize(("when_scaled", "pods", "deleted"), [
    ("Retain", [0, 1], []),
    ("Delete", [0, 1], ["data-web-2", "data-web-3"]),
    ("Delete", [0, 1, 2], []),  # web-2 is still there: deleted first, its claim after
])
def test_claims_of_scaled_away_ordinals(when_scaled: str, pods: list[int], deleted: list[str]) -> None:
    owner = sts(2, claims=True, when_scaled=when_scaled)
    existing = [pod(owner, i) for i in pods]
    claims = {"data-web-0", "data-web-1", "data-web-2", "data-web-3", "other-web-2"}
    result = plan(owner, existing, claims, {}, NOW)
    assert [n for a in result.actions if isinstance(a, DeleteClaims) for n in a.names] == deleted


def old_and_new(replicas: int = 3, **kw: Any) -> tuple[Obj, str, dict[str, Obj]]:
    old = sts(replicas, **kw)
    old_rev = update_revision(old)
    new = sts(replicas, image="db:2", status={"currentRevision": old_rev, "currentReplicas": replicas}, **kw)
    return new, old_rev, {old_rev: old["spec"]["template"]}


@pytest.mark.parametrize(("kw", "updated", "existing", "deleted"), [
    ({}, [], {}, ["web-2"]),  # highest ordinal first, one at a time
    ({}, [2], {}, ["web-1"]),
    ({}, [2], {2: {"ready": False}}, []),  # waits for the replacement to be healthy
    ({"partition": 2}, [2], {}, []),  # ordinals below the partition keep the old template
    ({"partition": 1}, [2], {}, ["web-1"]),
    ({"policy": "Parallel", "max_unavailable": 2}, [], {}, ["web-2", "web-1"]),
    ({"strategy": "OnDelete"}, [], {}, []),
])
def test_rolling_update(kw: dict[str, Any], updated: list[int], existing: dict[int, Obj], deleted: list[str]) -> None:
    owner, old_rev, templates = old_and_new(**kw)
    pods = [pod(owner, i, revision=None if i in updated else old_rev, **existing.get(i, {})) for i in range(3)]
    result = plan(owner, pods, None, templates, NOW)
    assert names(result.actions, DeletePod) == deleted


def test_recreated_pod_below_the_partition_keeps_the_old_template() -> None:
    owner, old_rev, templates = old_and_new(partition=2)
    pods = [pod(owner, 1, revision=old_rev), pod(owner, 2)]
    result = plan(owner, pods, None, templates, NOW)
    (create,) = [a for a in result.actions if isinstance(a, CreatePod)]
    assert name_of(create.pod) == "web-0" and create.pod["metadata"]["labels"][HASH_LABEL] == old_rev
    assert create.pod["spec"]["containers"][0]["image"] == "db:1"
    fresh = plan(owner, [pod(owner, 0, revision=old_rev), pod(owner, 1, revision=old_rev)], None, templates, NOW)
    (create,) = [a for a in fresh.actions if isinstance(a, CreatePod)]
    assert create.pod["spec"]["containers"][0]["image"] == "db:2"  # web-2 is above the partition


def test_status_counts_and_rollout_completion() -> None:
    owner, old_rev, _ = old_and_new()
    new_rev = update_revision(owner)
    mixed = [pod(owner, 0, revision=old_rev), pod(owner, 1, revision=old_rev), pod(owner, 2, ready=False)]
    status = compute_status(owner, mixed, old_rev, new_rev, NOW)
    assert status == {"observedGeneration": 2, "replicas": 3, "readyReplicas": 2, "availableReplicas": 2,
                      "currentReplicas": 2, "updatedReplicas": 1, "currentRevision": old_rev,
                      "updateRevision": new_rev, "collisionCount": 0}
    done = compute_status(owner, [pod(owner, i) for i in range(3)], old_rev, new_rev, NOW)
    assert done["currentRevision"] == new_rev and done["currentReplicas"] == 3 and done["updatedReplicas"] == 3


def test_orphans_adopted_and_deleting_set_does_nothing() -> None:
    owner = sts(1)
    orphan = pod(owner, 0)
    orphan["metadata"].pop("ownerReferences")
    assert [a for a in plan(owner, [orphan], None, {}, NOW).actions if isinstance(a, AdoptPod)] == [AdoptPod("web-0")]
    deleting = sts(1)
    deleting["metadata"]["deletionTimestamp"] = format_time(NOW)
    assert plan(deleting, [], None, {}, NOW).actions == []
