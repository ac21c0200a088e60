"""Table tests of the CronJob controller's pure planning and of cron schedules (protocol/cron.py)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from actors.controllers.cronjob_plan import (
    SCHEDULED_TIMESTAMP,
    CreateJob,
    DeleteJob,
    RecordEvent,
    job_for,
    job_from_cronjob,
    job_name,
    plan,
)
from protocol.cron import ScheduleError, check_schedule, cron_expression, most_recent, next_after, zone
from protocol.objects import Obj, format_time

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC).timestamp()
"""A minute boundary: the CronJob was created one second before."""
UID = "cj-uid"


def cronjob(schedule: str = "* * * * *", *, policy: str | None = None, deadline: int | None = None,
            suspend: bool = False, tz: str | None = None, status: Obj | None = None,
            history: tuple[int | None, int | None] = (None, None)) -> Obj:
    spec: Obj = {"schedule": schedule, "concurrencyPolicy": policy, "startingDeadlineSeconds": deadline,
                 "suspend": suspend, "timeZone": tz, "successfulJobsHistoryLimit": history[0],
                 "failedJobsHistoryLimit": history[1],
                 "jobTemplate": {"metadata": {"labels": {"app": "report"}},
                                 "spec": {"template": {"spec": {"restartPolicy": "Never",
                                                                "containers": [{"name": "c",
                                                                                "image": "busybox"}]}}}}}
    return {"apiVersion": "batch/v1", "kind": "CronJob",
            "metadata": {"name": "report", "namespace": "default", "uid": UID,
                         "creationTimestamp": format_time(T0 - 1)},
            "spec": {k: v for k, v in spec.items() if v is not None}, "status": status or {}}


def job(name: str, state: str = "running", *, started: float = T0, owner: str = UID,
        deleting: bool = False) -> Obj:
    status: Obj = {"startTime": format_time(started)}
    if state in ("Complete", "Failed"):
        status["conditions"] = [{"type": state, "status": "True"}]
        if state == "Complete":
            status["completionTime"] = format_time(started + 5)
    m: Obj = {"name": name, "namespace": "default", "uid": f"uid-{name}",
              "ownerReferences": [{"kind": "CronJob", "name": "report", "uid": owner, "controller": True}]}
    if deleting:
        m["deletionTimestamp"] = format_time(started)
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": m, "status": status}


def active_ref(name: str) -> Obj:
    return {"apiVersion": "batch/v1", "kind": "Job", "name": name, "namespace": "default", "uid": f"uid-{name}",
            "resourceVersion": None}


def created(result: Any) -> list[float]:
    return [a.scheduled for a in result.actions if isinstance(a, CreateJob)]


def deleted(result: Any) -> list[tuple[str, str]]:
    return [(a.name, a.reason) for a in result.actions if isinstance(a, DeleteJob)]


def events(result: Any) -> list[str]:
    return [a.reason for a in result.actions if isinstance(a, RecordEvent)]


# -- schedules ------------------------------------------------------------------------------------
@pytest.mark.parametrize(("schedule", "expr"), [("*/5 * * * *", "*/5 * * * *"), ("@hourly", "0 * * * *"),
                                                ("@daily", "0 0 * * *"), ("@midnight", "0 0 * * *"),
                                                ("@weekly", "0 0 * * 0"), ("@monthly", "0 0 1 * *"),
                                                ("@yearly", "0 0 1 1 *"), ("@annually", "0 0 1 1 *"),
                                                ("0 9 * * MON-FRI", "0 9 * * MON-FRI")])
def test_schedules_accepted(schedule: str, expr: str) -> None:
    assert cron_expression(schedule) == expr


@pytest.mark.parametrize(("schedule", "message"), [
    ("CRON_TZ=UTC 0 * * * *", "use timeZone field"), ("TZ=Europe/Paris 0 * * * *", "use timeZone field"),
    ("@every 5m", "unsupported schedule macro"), ("0 * * *", "5 fields"), ("0 0 * * * *", "5 fields"),
    ("61 * * * *", "invalid schedule"), ("", "5 fields")])
def test_schedules_refused(schedule: str, message: str) -> None:
    with pytest.raises(ScheduleError, match=message):
        cron_expression(schedule)


def test_time_zones() -> None:
    check_schedule("0 9 * * *", "Europe/Paris")
    with pytest.raises(ScheduleError, match="unknown time zone"):
        check_schedule("0 9 * * *", "Mars/Olympus")
    nine_paris = next_after("0 9 * * *", zone("Europe/Paris"), T0)  # 12:00 UTC is 14:00 in Paris (CEST)
    assert nine_paris == datetime(2024, 5, 2, 7, 0, tzinfo=UTC).timestamp()


def test_most_recent_counts_missed_schedules() -> None:
    assert most_recent("* * * * *", UTC, T0 - 1, T0 - 0.5) == (None, 0)
    assert most_recent("* * * * *", UTC, T0 - 1, T0 + 150) == (T0 + 120, 3)
    latest, count = most_recent("* * * * *", UTC, T0 - 86400, T0 + 30)
    assert latest == T0 and count > 100


# -- planning -------------------------------------------------------------------------------------
def test_nothing_before_the_first_schedule() -> None:
    result = plan(cronjob(), [], T0 - 0.5)
    assert not created(result)
    assert result.requeue_after == pytest.approx(0.6)


def test_creates_the_job_of_the_schedule() -> None:
    result = plan(cronjob(), [], T0 + 2)
    assert created(result) == [T0]
    assert result.status["lastScheduleTime"] == format_time(T0)
    assert result.requeue_after == pytest.approx(58.1)
    new = job_for(cronjob(), T0)
    assert new["metadata"]["name"] == job_name(cronjob(), T0) == f"report-{int(T0 // 60)}"
    assert new["metadata"]["ownerReferences"][0]["uid"] == UID
    assert new["metadata"]["labels"] == {"app": "report"}
    assert new["metadata"]["annotations"][SCHEDULED_TIMESTAMP] == "2024-05-01T12:00:00+00:00"
    assert new["spec"]["template"]["spec"]["restartPolicy"] == "Never"


def test_same_schedule_twice_creates_once() -> None:
    status = {"lastScheduleTime": format_time(T0)}
    assert not created(plan(cronjob(status=status), [], T0 + 5))
    name = job_name(cronjob(), T0)  # a stale status, but the Job of that schedule exists
    assert not created(plan(cronjob(), [job(name)], T0 + 5))


def test_after_downtime_only_the_most_recent_missed_run() -> None:
    result = plan(cronjob(status={"lastScheduleTime": format_time(T0)}), [], T0 + 600 + 3)
    assert created(result) == [T0 + 600]
    assert "TooManyMissedTimes" not in events(result)


def test_too_many_missed_runs_warn() -> None:
    result = plan(cronjob(status={"lastScheduleTime": format_time(T0)}), [], T0 + 3 * 3600 + 3)
    assert created(result) == [T0 + 3 * 3600]
    assert "TooManyMissedTimes" in events(result)


def test_starting_deadline_bounds_the_look_back() -> None:
    # 3 hours down with a 200 s deadline: no warning, the last schedule is within the deadline
    result = plan(cronjob(deadline=200, status={"lastScheduleTime": format_time(T0)}), [], T0 + 3 * 3600 + 3)
    assert created(result) == [T0 + 3 * 3600] and "TooManyMissedTimes" not in events(result)
    # an hourly schedule missed by more than the deadline is not run
    late = plan(cronjob("@hourly", deadline=30), [], T0 + 45)
    assert not created(late) and events(late) == []


def test_forbid_skips_while_a_job_runs() -> None:
    running = job("report-1", started=T0 - 60)
    status = {"lastScheduleTime": format_time(T0 - 60), "active": [active_ref("report-1")]}
    result = plan(cronjob(policy="Forbid", status=status), [running], T0 + 2)
    assert not created(result)
    assert events(result) == ["JobAlreadyActive"]
    assert result.status["lastScheduleTime"] == format_time(T0 - 60)  # the run is still owed
    done = job("report-1", "Complete", started=T0 - 60)
    later = plan(cronjob(policy="Forbid", status=status), [done], T0 + 20)
    assert created(later) == [T0]
    assert "SawCompletedJob" in events(later)
    assert later.status["active"] is None


def test_allow_runs_alongside() -> None:
    status = {"lastScheduleTime": format_time(T0 - 60), "active": [active_ref("report-1")]}
    result = plan(cronjob(policy="Allow", status=status), [job("report-1", started=T0 - 60)], T0 + 2)
    assert created(result) == [T0] and not deleted(result)


def test_replace_deletes_the_running_job() -> None:
    status = {"lastScheduleTime": format_time(T0 - 60), "active": [active_ref("report-1")]}
    result = plan(cronjob(policy="Replace", status=status), [job("report-1", started=T0 - 60)], T0 + 2)
    assert deleted(result) == [("report-1", "replace")]
    assert created(result) == [T0]
    kinds = [type(a).__name__ for a in result.actions]
    assert kinds.index("DeleteJob") < kinds.index("CreateJob")


def test_suspended_creates_nothing() -> None:
    assert not created(plan(cronjob(suspend=True), [], T0 + 2))


def test_active_list_follows_the_jobs() -> None:
    jobs = [job("a", started=T0 - 100), job("b", "Complete", started=T0 - 200), job("x", owner="other"),
            job("d", started=T0 - 50, deleting=True)]
    status = {"lastScheduleTime": format_time(T0), "active": [active_ref("b"), active_ref("new"),
                                                               active_ref("gone")]}
    result = plan(cronjob(status=status), jobs, T0 + 5, uncached=frozenset({"new"}))
    assert [r["name"] for r in result.status["active"]] == ["a", "new"]
    assert result.status["lastSuccessfulTime"] == format_time(T0 - 195)


@pytest.mark.parametrize(("limits", "jobs", "expected"), [
    ((None, None), [job(f"s{i}", "Complete", started=T0 - 100 + i) for i in range(5)]
     + [job(f"f{i}", "Failed", started=T0 - 100 + i) for i in range(3)],
     [("s0", "history"), ("s1", "history"), ("f0", "history"), ("f1", "history")]),
    ((0, 0), [job("s", "Complete"), job("f", "Failed"), job("r")], [("s", "history"), ("f", "history")]),
    ((1, 1), [job("s", "Complete"), job("f", "Failed"), job("r")], []),
])
def test_history_limits(limits: tuple[int | None, int | None], jobs: list[Obj],
                        expected: list[tuple[str, str]]) -> None:
    result = plan(cronjob(history=limits, status={"lastScheduleTime": format_time(T0)}), jobs, T0 + 5)
    assert deleted(result) == expected


def test_unusable_schedule_is_an_event() -> None:
    result = plan(cronjob("not a schedule"), [], T0 + 2)
    assert events(result) == ["UnparseableSchedule"] and not created(result)


def test_time_zone_schedule() -> None:
    # 14:00 Paris (CEST) is 12:00 UTC
    result = plan(cronjob("0 14 * * *", tz="Europe/Paris"), [], T0 + 2)
    assert created(result) == [T0]
    assert job_for(cronjob(tz="Europe/Paris"), T0)["metadata"]["annotations"][SCHEDULED_TIMESTAMP] \
        == "2024-05-01T14:00:00+02:00"


def test_job_from_cronjob_by_hand() -> None:
    new = job_from_cronjob(cronjob(), "manual-1")
    assert new["metadata"]["name"] == "manual-1"
    assert new["metadata"]["annotations"]["cronjob.kubernetes.io/instantiate"] == "manual"
    assert new["metadata"]["ownerReferences"][0]["kind"] == "CronJob"
