"""Pure decisions of the CronJob controller (``batch/v1`` CronJob), after Kubernetes' ``syncCronJob``.

``plan(cronjob, jobs, now)`` looks at one CronJob, the Jobs of its namespace and the time, and returns
what to do: create the Job of the most recent missed schedule, delete active Jobs first under
``concurrencyPolicy: Replace``, delete finished Jobs past the history limits, the events to record,
the status to write and when the next schedule is due. Nothing here does I/O; ``cronjob.py`` executes.

As Kubernetes does:
- The schedule is five cron fields or a macro (``@yearly``/``@annually``, ``@monthly``, ``@weekly``,
  ``@daily``/``@midnight``, ``@hourly``), evaluated by ``cronsim`` in ``spec.timeZone`` (an IANA zone;
  UTC when unset, where Kubernetes would use the controller manager's local zone). ``CRON_TZ=``/``TZ=``
  in the schedule is refused, as Kubernetes' validation refuses it; so is ``@every``.
- Missed runs (controller down, Forbid, ...): only the *most recent* missed schedule since
  ``status.lastScheduleTime`` (or the CronJob's creation) is run, at most once; schedules older than
  ``startingDeadlineSeconds`` are not considered, and one that is already past the deadline is a
  ``MissSchedule`` warning; more than 100 missed schedules is a ``TooManyMissedTimes`` warning.
- A Job is named ``<cronjob>-<scheduled time in unix minutes>``, so the same schedule can never make
  two Jobs, whatever a stale cache says.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from dataclasses import dataclass, field

from actors.controllers.job_plan import finished_condition
from protocol.cron import MAX_MISSED, ScheduleError, cron_expression, local_time, most_recent, next_after, zone
from protocol.objects import (
    Obj,
    condition_true,
    controller_of,
    format_time,
    is_deleting,
    meta,
    name_of,
    owner_reference,
    parse_time,
    uid_of,
)

SCHEDULED_TIMESTAMP = "batch.kubernetes.io/cronjob-scheduled-timestamp"
"""Annotation of a Job created by a CronJob: the schedule time it runs for (RFC 3339)."""


# -- actions ------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class CreateJob:
    scheduled: float
    """The schedule time (epoch seconds) this Job runs for."""


@dataclass(frozen=True, slots=True)
class DeleteJob:
    name: str
    reason: str
    """"replace" (concurrencyPolicy Replace) or "history" (past a history limit)."""


@dataclass(frozen=True, slots=True)
class RecordEvent:
    type: str
    reason: str
    message: str


Action = CreateJob | DeleteJob | RecordEvent


@dataclass
class Plan:
    actions: list[Action] = field(default_factory=list)
    status: Obj = field(default_factory=dict)
    requeue_after: float | None = None


# -- reading -------------------------------------------------------------------------------------
def job_name(cronjob: Obj, scheduled: float) -> str:
    return f"{name_of(cronjob)}-{int(scheduled // 60)}"


def is_owned(job: Obj, cronjob: Obj) -> bool:
    owner = controller_of(job)
    return owner is not None and owner.get("uid") == uid_of(cronjob)


def job_reference(job: Obj) -> Obj:
    """An ObjectReference, as ``status.active`` lists Jobs."""
    m = meta(job)
    return {"apiVersion": job.get("apiVersion", "batch/v1"), "kind": "Job", "name": name_of(job),
            "namespace": m.get("namespace"), "uid": m.get("uid"), "resourceVersion": m.get("resourceVersion")}


def _started(job: Obj) -> float:
    status = job.get("status") or {}
    return parse_time(status.get("startTime")) or parse_time(meta(job).get("creationTimestamp")) or 0.0


# -- planning ------------------------------------------------------------------------------------
def plan(cronjob: Obj, jobs: Iterable[Obj], now: float, *, uncached: frozenset[str] = frozenset()) -> Plan:
    """Decide one pass for ``cronjob`` over the Jobs of its namespace.

    ``uncached``: names in ``status.active`` the Job cache does not hold but the API says exist (a Job
    just created); they stay active. Other active entries missing from the cache are dropped.
    """
    spec = cronjob.get("spec") or {}
    previous: Obj = cronjob.get("status") or {}
    all_jobs = {name_of(j): j for j in jobs}
    owned = [j for j in all_jobs.values() if is_owned(j, cronjob)]
    result = Plan()
    status: Obj = {k: v for k, v in previous.items() if k not in ("active",)}
    result.status = status

    # The active list: running Jobs we own, plus just-created ones the cache has not seen.
    was_active = {str(r.get("name")) for r in previous.get("active") or []}
    active: list[Obj] = []
    for job in sorted(owned, key=name_of):
        done = finished_condition(job)
        if done is None:
            if not is_deleting(job):
                active.append(job_reference(job))
        elif name_of(job) in was_active:
            result.actions.append(RecordEvent("Normal", "SawCompletedJob",
                                              f"Saw completed job: {name_of(job)}, condition: {done['type']}"))
    active.extend(dict(r) for r in previous.get("active") or []
                  if r.get("name") in uncached and r.get("name") not in all_jobs)
    successes = [t for j in owned if condition_true(j, "Complete")
                 and (t := parse_time((j.get("status") or {}).get("completionTime"))) is not None]
    last_success = max([*successes, parse_time(previous.get("lastSuccessfulTime")) or 0.0])
    if last_success:
        status["lastSuccessfulTime"] = format_time(last_success)
    status["active"] = active or None

    result.actions.extend(_history(spec, owned))
    if is_deleting(cronjob):
        return result
    try:
        expr = cron_expression(str(spec.get("schedule") or ""))
        tz = zone(spec.get("timeZone"))
    except ScheduleError as exc:
        reason = "UnknownTimeZone" if "time zone" in str(exc) else "UnparseableSchedule"
        result.actions.append(RecordEvent("Warning", reason, str(exc)))
        return result
    if spec.get("suspend"):
        return result

    earliest = parse_time(previous.get("lastScheduleTime")) or parse_time(meta(cronjob).get("creationTimestamp"))
    earliest = now if earliest is None else earliest
    deadline = spec.get("startingDeadlineSeconds")
    if deadline is not None:
        earliest = max(earliest, now - int(deadline))
    scheduled, missed = most_recent(expr, tz, earliest, now)
    result.requeue_after = next_after(expr, tz, now) - now + 0.1
    if missed > MAX_MISSED:
        result.actions.append(RecordEvent(
            "Warning", "TooManyMissedTimes",
            f"too many missed start times: > {MAX_MISSED}. Set or decrease .spec.startingDeadlineSeconds "
            "or check clock skew"))
    if scheduled is None:
        return result
    if deadline is not None and scheduled + int(deadline) < now:
        result.actions.append(RecordEvent("Warning", "MissSchedule",
                                          f"Missed scheduled time to start a job: {format_time(scheduled)}"))
        return result
    name = job_name(cronjob, scheduled)
    if name in all_jobs or any(r.get("name") == name for r in active):
        return result  # this schedule has its Job already
    policy = spec.get("concurrencyPolicy") or "Allow"
    if policy == "Forbid" and active:
        result.actions.append(RecordEvent(
            "Normal", "JobAlreadyActive",
            "Not starting job because prior execution is running and concurrency policy is Forbid"))
        return result
    if policy == "Replace":
        for entry in active:
            result.actions.append(DeleteJob(str(entry.get("name")), "replace"))
        active = []
        status["active"] = None
    result.actions.append(CreateJob(scheduled))
    status["lastScheduleTime"] = format_time(scheduled)
    return result


def _history(spec: Obj, owned: list[Obj]) -> list[Action]:
    """Delete the oldest finished Jobs past ``successfulJobsHistoryLimit`` / ``failedJobsHistoryLimit``."""
    actions: list[Action] = []
    for kind, key, default in (("Complete", "successfulJobsHistoryLimit", 3),
                               ("Failed", "failedJobsHistoryLimit", 1)):
        limit = spec.get(key)
        limit = default if limit is None else int(limit)
        done = sorted((j for j in owned if not is_deleting(j) and (finished_condition(j) or {}).get("type") == kind),
                      key=lambda j: (_started(j), name_of(j)))
        for job in done[: max(0, len(done) - limit)]:
            actions.append(DeleteJob(name_of(job), "history"))
    return actions


def job_for(cronjob: Obj, scheduled: float) -> Obj:
    """The Job a CronJob runs for the schedule time ``scheduled``, from its ``jobTemplate``."""
    template = copy.deepcopy((cronjob.get("spec") or {}).get("jobTemplate") or {})
    tmeta = template.get("metadata") or {}
    tz = zone((cronjob.get("spec") or {}).get("timeZone"))
    annotations = {**(tmeta.get("annotations") or {}),
                   SCHEDULED_TIMESTAMP: local_time(scheduled, tz).isoformat()}
    job_meta: Obj = {"name": job_name(cronjob, scheduled), "namespace": meta(cronjob).get("namespace") or "default",
                     "labels": dict(tmeta.get("labels") or {}), "annotations": annotations,
                     "ownerReferences": [owner_reference(cronjob, controller=True, block=True)]}
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": job_meta, "spec": template.get("spec") or {}}


def job_from_cronjob(cronjob: Obj, name: str) -> Obj:
    """A Job made by hand from a CronJob's template (``shoal create job NAME --from=cronjob/X``), as
    kubectl does: owned by the CronJob, annotated ``cronjob.kubernetes.io/instantiate: manual``."""
    template = copy.deepcopy((cronjob.get("spec") or {}).get("jobTemplate") or {})
    tmeta = template.get("metadata") or {}
    annotations = {**(tmeta.get("annotations") or {}), "cronjob.kubernetes.io/instantiate": "manual"}
    return {"apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": name, "namespace": meta(cronjob).get("namespace") or "default",
                         "labels": dict(tmeta.get("labels") or {}), "annotations": annotations,
                         "ownerReferences": [owner_reference(cronjob, controller=True, block=True)]},
            "spec": template.get("spec") or {}}


def status_changed(previous: Obj, status: Obj) -> bool:
    keys = set(previous) | set(status)
    return any((previous.get(k) or None) != (status.get(k) or None) for k in keys)
