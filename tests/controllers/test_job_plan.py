"""Table tests of the Job controller's pure planning."""

from __future__ import annotations

from typing import Any

import pytest

from actors.controllers.job_plan import (
    CreatePods,
    DeleteJob,
    DeletePods,
    RecordEvent,
    backoff_delay,
    format_indexes,
    job_spec,
    parse_indexes,
    plan,
    pod_for,
    status_changed,
)
from protocol.kinds.job import COMPLETION_INDEX, INDEX_ENV
from protocol.objects import Obj, format_time

NOW = 1_700_000_000.0
UID = "job-uid"


def job(*, completions: int | None = 1, parallelism: int | None = 1, indexed: bool = False,
        backoff: int | None = 6, deadline: int | None = None, ttl: int | None = None, suspend: bool = False,
        restart: str = "Never", status: Obj | None = None, unset: tuple[str, ...] = ()) -> Obj:
    spec: Obj = {"completions": completions, "parallelism": parallelism, "backoffLimit": backoff,
                 "completionMode": "Indexed" if indexed else "NonIndexed", "suspend": suspend,
                 "activeDeadlineSeconds": deadline, "ttlSecondsAfterFinished": ttl,
                 "template": {"metadata": {"labels": {"app": "batch"}},
                              "spec": {"restartPolicy": restart,
                                       "containers": [{"name": "c", "image": "busybox",
                                                       "env": [{"name": "A", "value": "1"}]}]}}}
    for key in unset:
        spec.pop(key)
    return {"apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": "pi", "namespace": "default", "uid": UID, "generation": 1},
            "spec": {k: v for k, v in spec.items() if v is not None}, "status": status or {}}


def pod(name: str, phase: str = "Running", *, index: int | None = None, ready: bool = True,
        finished: float | None = None, deleting: bool = False, restarts: int = 0,
        owner: str = UID) -> Obj:
    m: Obj = {"name": name, "namespace": "default", "creationTimestamp": format_time(NOW - 100),
              "ownerReferences": [{"kind": "Job", "name": "pi", "uid": owner, "controller": True}]}
    if index is not None:
        m["annotations"] = {COMPLETION_INDEX: str(index)}
    if deleting:
        m["deletionTimestamp"] = format_time(NOW)
    state: Obj = {"running": {}}
    if finished is not None:
        state = {"terminated": {"finishedAt": format_time(finished),
                                "exitCode": 0 if phase == "Succeeded" else 1}}
    return {"kind": "Pod", "metadata": m, "spec": {},
            "status": {"phase": phase,
                       "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
                       "containerStatuses": [{"name": "c", "restartCount": restarts, "state": state}]}}


def creates(result: Any) -> tuple[int | None, ...]:
    return next((a.indexes for a in result.actions if isinstance(a, CreatePods)), ())


def deletes(result: Any) -> set[str]:
    return {n for a in result.actions if isinstance(a, DeletePods) for n in a.names}


def cond(status: Obj, kind: str) -> Obj | None:
    return next((c for c in status.get("conditions") or [] if c["type"] == kind), None)


def events(result: Any) -> list[str]:
    return [a.reason for a in result.actions if isinstance(a, RecordEvent)]


# -- defaults -----------------------------------------------------------------------------------
@pytest.mark.parametrize(("unset", "completions", "parallelism"), [
    (("completions", "parallelism"), 1, 1),   # both unset: one pod, once
    (("completions",), None, 3),              # parallelism only: work queue
    (("parallelism",), 5, 1),                 # completions only: one at a time
])
def test_spec_defaults(unset: tuple[str, ...], completions: int | None, parallelism: int) -> None:
    spec = job_spec(job(completions=5, parallelism=3, unset=unset))
    assert (spec.completions, spec.parallelism, spec.backoff_limit) == (completions, parallelism, 6)


# -- NonIndexed ---------------------------------------------------------------------------------
@pytest.mark.parametrize(("completions", "parallelism", "pods", "created", "deleted"), [
    (3, 2, [], 2, set()),                                                       # start: parallelism
    (3, 2, [pod("a")], 1, set()),                                               # one more
    (3, 2, [pod("a"), pod("b", "Succeeded", finished=NOW - 5)], 1, set()),      # 2 left, 1 running
    (3, 2, [pod("a"), pod("b"), pod("c", "Succeeded", finished=NOW - 5),
            pod("d", "Succeeded", finished=NOW - 5)], 0, {"a"}),                # 1 left: a surplus pod
    (3, 5, [], 3, set()),                                                       # never more than remain
    (3, 2, [pod("a", deleting=True)], 2, set()),                                # a terminating pod is not active
])
def test_non_indexed_scaling(completions: int, parallelism: int, pods: list[Obj], created: int,
                             deleted: set[str]) -> None:
    result = plan(job(completions=completions, parallelism=parallelism), pods, NOW)
    assert creates(result) == (None,) * created
    assert deletes(result) == deleted


def test_other_jobs_pods_do_not_count() -> None:
    result = plan(job(completions=2, parallelism=2), [pod("x", owner="other")], NOW)
    assert len(creates(result)) == 2


def test_completes_and_reports_counters_and_times() -> None:
    started = format_time(NOW - 60)
    pods = [pod("a", "Succeeded", finished=NOW - 2), pod("b", "Succeeded", finished=NOW - 1),
            pod("c", "Failed", finished=NOW - 30)]
    result = plan(job(completions=2, parallelism=2, status={"startTime": started}), pods, NOW)
    assert not creates(result)
    status = result.status
    assert (status["succeeded"], status["failed"], status["active"]) == (2, 1, 0)
    assert cond(status, "SuccessCriteriaMet")["reason"] == "CompletionsReached"  # type: ignore[index]
    assert cond(status, "Complete")["status"] == "True"  # type: ignore[index]
    assert status["completionTime"] == format_time(NOW)
    assert status["startTime"] == started
    assert events(result) == ["Completed"]


def test_success_deletes_remaining_pods_then_completes() -> None:
    pods = [pod("a", "Succeeded", finished=NOW - 2), pod("b")]
    first = plan(job(completions=1, parallelism=2), pods, NOW)
    assert deletes(first) == {"b"}
    assert cond(first.status, "SuccessCriteriaMet") is not None
    assert cond(first.status, "Complete") is None  # b is still terminating
    second = plan(job(completions=1, parallelism=2, status=first.status),
                  [pods[0], pod("b", deleting=True)], NOW + 1)
    assert cond(second.status, "Complete") is None and second.status["terminating"] == 1
    third = plan(job(completions=1, parallelism=2, status=second.status), [pods[0]], NOW + 2)
    assert cond(third.status, "Complete")["status"] == "True"  # type: ignore[index]


def test_counters_never_go_down_when_finished_pods_are_deleted() -> None:
    result = plan(job(completions=3, parallelism=1, status={"succeeded": 2, "failed": 1}), [], NOW)
    assert (result.status["succeeded"], result.status["failed"]) == (2, 1)
    assert creates(result) == (None,)


# -- work queue ---------------------------------------------------------------------------------
def test_work_queue_runs_parallelism_until_one_succeeds() -> None:
    assert creates(plan(job(completions=None, parallelism=3), [pod("a")], NOW)) == (None, None)
    done = pod("a", "Succeeded", finished=NOW - 1)
    result = plan(job(completions=None, parallelism=3), [done, pod("b"), pod("c")], NOW)
    assert not creates(result) and not deletes(result)  # the others finish on their own
    assert cond(result.status, "Complete") is None
    result = plan(job(completions=None, parallelism=3), [done, pod("b", "Succeeded", finished=NOW)], NOW)
    assert cond(result.status, "Complete")["status"] == "True"  # type: ignore[index]


# -- Indexed ------------------------------------------------------------------------------------
def test_indexed_creates_lowest_pending_indexes() -> None:
    pods = [pod("a", "Succeeded", index=0, finished=NOW - 1), pod("b", index=2)]
    result = plan(job(completions=5, parallelism=3, indexed=True), pods, NOW)
    assert creates(result) == (1, 3)
    assert result.status["completedIndexes"] == "0"


def test_indexed_deletes_duplicates_and_completed_indexes() -> None:
    pods = [pod("a", index=1), pod("b", index=1, ready=False), pod("c", "Succeeded", index=2, finished=NOW),
            pod("d", index=2)]
    result = plan(job(completions=3, parallelism=3, indexed=True), pods, NOW)
    assert deletes(result) == {"b", "d"}
    assert creates(result) == (0,)


def test_indexed_completes_when_every_index_succeeded() -> None:
    pods = [pod(f"p{i}", "Succeeded", index=i, finished=NOW - 1) for i in (0, 2)]
    result = plan(job(completions=3, parallelism=2, indexed=True, status={"completedIndexes": "1"}), pods, NOW)
    assert result.status["completedIndexes"] == "0-2"
    assert result.status["succeeded"] == 3
    assert cond(result.status, "Complete") is not None


def test_indexed_pod_carries_its_index() -> None:
    new = pod_for(job(completions=3, indexed=True), 2)
    m = new["metadata"]
    assert m["generateName"] == "pi-2-"
    assert m["labels"][COMPLETION_INDEX] == "2" and m["annotations"][COMPLETION_INDEX] == "2"
    assert {"name": INDEX_ENV, "valueFrom": {"fieldRef": {
        "fieldPath": "metadata.annotations['batch.kubernetes.io/job-completion-index']"}}} \
        in new["spec"]["containers"][0]["env"]
    assert {"name": "A", "value": "1"} in new["spec"]["containers"][0]["env"]
    assert new["spec"]["hostname"] == "pi-2"


def test_pod_labels_and_owner() -> None:
    new = pod_for(job(), None)
    labels = new["metadata"]["labels"]
    assert labels["app"] == "batch"
    assert labels["batch.kubernetes.io/job-name"] == labels["job-name"] == "pi"
    assert labels["batch.kubernetes.io/controller-uid"] == labels["controller-uid"] == UID
    owner = new["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["uid"], owner["controller"]) == ("Job", UID, True)
    assert new["metadata"]["generateName"] == "pi-"
    assert "JOB_COMPLETION_INDEX" not in str(new["spec"])


@pytest.mark.parametrize(("text", "indexes"), [("", set()), ("3", {3}), ("0,2-4,7", {0, 2, 3, 4, 7}),
                                               ("1-2,5-6", {1, 2, 5, 6})])
def test_index_format_round_trip(text: str, indexes: set[int]) -> None:
    assert parse_indexes(text) == indexes
    assert format_indexes(indexes) == text


# -- failures -----------------------------------------------------------------------------------
@pytest.mark.parametrize(("failures", "delay"), [(0, 0), (1, 10), (2, 20), (3, 40), (6, 320), (7, 360),
                                                 (40, 360)])
def test_backoff_delay(failures: int, delay: float) -> None:
    assert backoff_delay(failures) == delay


def test_replacement_waits_for_backoff() -> None:
    pods = [pod("a", "Failed", finished=NOW - 5), pod("b", "Failed", finished=NOW - 30)]
    result = plan(job(completions=1), pods, NOW)
    assert not creates(result)
    assert result.requeue_after == pytest.approx(15)  # 2 failures: 20 s after the last one
    assert creates(plan(job(completions=1), pods, NOW + 16)) == (None,)


def test_failures_before_the_last_success_do_not_back_off() -> None:
    pods = [pod("a", "Failed", finished=NOW - 50), pod("b", "Succeeded", finished=NOW - 40)]
    assert creates(plan(job(completions=2), pods, NOW)) == (None,)


def test_backoff_limit_exceeded() -> None:
    pods = [pod(f"f{i}", "Failed", finished=NOW - 100 + i) for i in range(3)] + [pod("r")]
    ok = plan(job(completions=1, backoff=3), pods, NOW)
    assert cond(ok.status, "FailureTarget") is None
    result = plan(job(completions=1, backoff=2), pods, NOW)
    assert cond(result.status, "FailureTarget")["reason"] == "BackoffLimitExceeded"  # type: ignore[index]
    assert deletes(result) == {"r"}
    assert cond(result.status, "Failed") is None  # r is still terminating
    final = plan(job(completions=1, backoff=2, status=result.status), pods[:3], NOW + 1)
    failed = cond(final.status, "Failed")
    assert failed is not None and failed["reason"] == "BackoffLimitExceeded"
    assert failed["message"] == "Job has reached the specified backoff limit"
    assert events(final) == ["BackoffLimitExceeded"]
    assert final.status.get("completionTime") is None
    assert not creates(final)


def test_backoff_limit_zero_fails_on_first_failure() -> None:
    result = plan(job(backoff=0), [pod("a", "Failed", finished=NOW)], NOW)
    assert cond(result.status, "Failed")["reason"] == "BackoffLimitExceeded"  # type: ignore[index]


def test_on_failure_counts_container_restarts() -> None:
    assert cond(plan(job(restart="OnFailure", backoff=3), [pod("a", restarts=2)], NOW).status,
                "FailureTarget") is None
    result = plan(job(restart="OnFailure", backoff=3), [pod("a", restarts=3)], NOW)
    assert cond(result.status, "FailureTarget")["reason"] == "BackoffLimitExceeded"  # type: ignore[index]


def test_active_deadline() -> None:
    started = {"startTime": format_time(NOW - 50)}
    running = plan(job(deadline=60, status=started), [pod("a")], NOW)
    assert cond(running.status, "FailureTarget") is None
    assert running.requeue_after == pytest.approx(10)
    late = plan(job(deadline=60, status=started), [pod("a")], NOW + 10)
    assert cond(late.status, "FailureTarget")["reason"] == "DeadlineExceeded"  # type: ignore[index]
    assert deletes(late) == {"a"}
    final = plan(job(deadline=60, status=late.status), [], NOW + 11)
    assert cond(final.status, "Failed")["reason"] == "DeadlineExceeded"  # type: ignore[index]


def test_start_time_set_on_first_pass() -> None:
    assert plan(job(), [], NOW).status["startTime"] == format_time(NOW)


# -- suspend ------------------------------------------------------------------------------------
def test_suspend_deletes_active_pods_and_clears_start_time() -> None:
    result = plan(job(suspend=True, status={"startTime": format_time(NOW - 5)}), [pod("a")], NOW)
    assert deletes(result) == {"a"} and not creates(result)
    assert cond(result.status, "Suspended")["status"] == "True"  # type: ignore[index]
    assert result.status["startTime"] is None
    assert events(result) == ["Suspended"]
    resumed = plan(job(status=result.status), [], NOW + 10)
    assert cond(resumed.status, "Suspended")["status"] == "False"  # type: ignore[index]
    assert resumed.status["startTime"] == format_time(NOW + 10)
    assert creates(resumed) == (None,)
    assert events(resumed) == ["Resumed"]


def test_no_creations_while_expectations_pending() -> None:
    result = plan(job(completions=3, parallelism=3), [], NOW, expectations_satisfied=False)
    assert not creates(result) and not deletes(result)


# -- finished -----------------------------------------------------------------------------------
def finished_status(at: float) -> Obj:
    return {"succeeded": 1, "conditions": [{"type": "Complete", "status": "True",
                                            "lastTransitionTime": format_time(at)}]}


def test_ttl_after_finished() -> None:
    waiting = plan(job(ttl=30, status=finished_status(NOW - 10)), [], NOW)
    assert not any(isinstance(a, DeleteJob) for a in waiting.actions)
    assert waiting.requeue_after == pytest.approx(20)
    expired = plan(job(ttl=30, status=finished_status(NOW - 30)), [], NOW)
    assert DeleteJob() in expired.actions


def test_finished_job_does_nothing_more() -> None:
    result = plan(job(status=finished_status(NOW - 10)), [pod("a", "Succeeded", finished=NOW - 11)], NOW)
    assert result.actions == [] and result.requeue_after is None
    assert not status_changed(finished_status(NOW - 10) | {"active": 0, "ready": 0, "terminating": 0,
                                                            "failed": 0}, result.status)


def test_status_counts_the_pods_being_created_as_active() -> None:
    result = plan(job(completions=5, parallelism=3), [pod("a")], NOW)
    assert creates(result) == (None, None)
    assert result.status["active"] == 3  # as Kubernetes: the creations of this pass count at once
    assert plan(job(completions=5, parallelism=3), [pod("a")], NOW,
                expectations_satisfied=False).status["active"] == 1


def test_owner_index_follows_controller_references() -> None:
    from actors.controllers.job import OwnerIndex

    index = OwnerIndex()
    mine, other = pod("a"), pod("b", owner="other-uid")
    index.handle("ADDED", None, mine)
    index.handle("ADDED", None, other)
    assert [p["metadata"]["name"] for p in index.owned_by(UID)] == ["a"]
    orphaned = {**mine, "metadata": {**mine["metadata"], "ownerReferences": []}}
    index.handle("MODIFIED", mine, orphaned)  # released: no longer the Job's
    assert index.owned_by(UID) == []
    index.handle("MODIFIED", orphaned, mine)
    index.handle("DELETED", mine, None)
    assert index.owned_by(UID) == [] and len(index.owned_by("other-uid")) == 1
