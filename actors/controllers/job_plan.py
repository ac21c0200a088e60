"""Pure decisions of the Job controller (``batch/v1`` Job), after Kubernetes' ``syncJob``.

``plan(job, pods, now)`` looks at one Job and the pods of its namespace and returns the actions that
move it on: create pods (one per pending completion index in ``Indexed`` mode), delete surplus pods or
every active pod once the Job is finished, suspended or failing, delete the Job itself when its
``ttlSecondsAfterFinished`` has run out, the events to record, the status to write, and when to look
again (back-off, deadline, TTL). Nothing here does I/O; ``job.py`` executes the actions.

What a Job's fields mean here, as in Kubernetes 1.31:

- ``completions`` unset (with ``parallelism`` set) is a *work queue*: pods run until one succeeds, no new
  pod starts after that, and the Job completes when a pod succeeded and none is still running.
- ``completionMode: Indexed``: indexes ``0..completions-1`` each need one succeeded pod; a pod carries
  its index in the ``batch.kubernetes.io/job-completion-index`` annotation and label and in the
  ``JOB_COMPLETION_INDEX`` environment variable (from the annotation, through the downward API).
- ``backoffLimit``: the Job fails once more pods failed than the limit (``OnFailure`` pods: once their
  container restarts reach it). Replacement pods wait 10 s doubled per failure since the last success,
  capped at 6 minutes (``BACKOFF_BASE``/``BACKOFF_MAX``, both passed in so tests can shorten them).
- ``activeDeadlineSeconds`` counts from ``status.startTime``; ``suspend`` deletes the active pods and
  clears ``startTime`` (set again on resume, so the deadline restarts as in Kubernetes).
- Finishing is two-step as in 1.31: the interim condition (``SuccessCriteriaMet`` or ``FailureTarget``)
  is written at once and the active pods are deleted; the terminal one (``Complete`` or ``Failed``, with
  ``completionTime`` for success) once no pod of the Job is running or terminating.

Counting: Kubernetes tracks finished pods with a finalizer; we count the terminal pods that exist and
never lower a counter already written, so a finished pod deleted by hand is not forgotten (completed
indexes are a set and are exact).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from actors.controllers.replication_plan import DeletePods, deletion_order
from protocol.kinds.job import (
    COMPLETION_INDEX,
    CONTROLLER_UID_LABEL,
    INDEX_ENV,
    JOB_NAME_LABEL,
    LEGACY_CONTROLLER_UID_LABEL,
    LEGACY_JOB_NAME_LABEL,
)
from protocol.objects import (
    Obj,
    condition,
    format_time,
    is_deleting,
    labels_of,
    meta,
    name_of,
    owner_reference,
    parse_time,
    pod_is_ready,
    uid_of,
)

INDEX_FIELD_PATH = f"metadata.annotations['{COMPLETION_INDEX}']"
"""Where ``JOB_COMPLETION_INDEX`` comes from (the downward API, as Kubernetes sets it)."""

BACKOFF_BASE = 10.0
BACKOFF_MAX = 360.0
BURST = 500
"""Most pods created in one pass (the replication controllers' ``burstReplicas``)."""

# Reasons, as Kubernetes writes them.
BACKOFF_LIMIT_EXCEEDED = "BackoffLimitExceeded"
DEADLINE_EXCEEDED = "DeadlineExceeded"
COMPLETIONS_REACHED = "CompletionsReached"
_FAILURE_MESSAGES = {BACKOFF_LIMIT_EXCEEDED: "Job has reached the specified backoff limit",
                     DEADLINE_EXCEEDED: "Job was active longer than specified deadline"}


# -- actions ------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class CreatePods:
    indexes: tuple[int | None, ...]
    """One entry per pod to create: its completion index, or None for a NonIndexed Job."""


@dataclass(frozen=True, slots=True)
class DeleteJob:
    """``ttlSecondsAfterFinished`` has run out: delete the Job (its pods go with it, by the GC)."""


@dataclass(frozen=True, slots=True)
class RecordEvent:
    type: str
    reason: str
    message: str


Action = CreatePods | DeletePods | DeleteJob | RecordEvent


@dataclass
class Plan:
    actions: list[Action] = field(default_factory=list)
    status: Obj = field(default_factory=dict)
    """``active`` counts the pods this plan creates, as Kubernetes counts them (the controller takes back
    the creations that fail)."""
    requeue_after: float | None = None

    def later(self, seconds: float) -> None:
        """Ask to be reconciled again in ``seconds`` (the earliest of several wishes wins)."""
        seconds = max(0.05, seconds)
        self.requeue_after = seconds if self.requeue_after is None else min(self.requeue_after, seconds)


# -- reading a Job ------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class JobSpec:
    parallelism: int
    completions: int | None
    """None: work-queue semantics."""
    backoff_limit: int
    indexed: bool
    suspend: bool
    active_deadline: int | None
    ttl_after_finished: int | None
    on_failure: bool
    """The pod template restarts failed containers in place (``restartPolicy: OnFailure``)."""


def job_spec(job: Obj) -> JobSpec:
    """The Job's spec with Kubernetes' defaults for what is absent."""
    spec = job.get("spec") or {}
    parallelism = spec.get("parallelism")
    completions = spec.get("completions")
    if completions is None and parallelism is None:
        completions = 1
    template_spec = (spec.get("template") or {}).get("spec") or {}
    return JobSpec(
        parallelism=1 if parallelism is None else int(parallelism),
        completions=None if completions is None else int(completions),
        backoff_limit=6 if spec.get("backoffLimit") is None else int(spec["backoffLimit"]),
        indexed=spec.get("completionMode") == "Indexed",
        suspend=bool(spec.get("suspend")),
        active_deadline=_optional_int(spec.get("activeDeadlineSeconds")),
        ttl_after_finished=_optional_int(spec.get("ttlSecondsAfterFinished")),
        on_failure=template_spec.get("restartPolicy") == "OnFailure",
    )


def _optional_int(value: Any) -> int | None:
    return None if value is None else int(value)


def finished_condition(job: Obj) -> Obj | None:
    """The Job's terminal condition (Complete or Failed, status True), if it has finished."""
    for kind in ("Complete", "Failed"):
        cond = condition(job, kind)
        if cond is not None and cond.get("status") == "True":
            return cond
    return None


def is_finished(job: Obj) -> bool:
    return finished_condition(job) is not None


def pod_index(pod: Obj) -> int | None:
    """The completion index a pod of an Indexed Job carries (annotation first, then label)."""
    value = (meta(pod).get("annotations") or {}).get(COMPLETION_INDEX)
    if value is None:
        value = labels_of(pod).get(COMPLETION_INDEX)
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def parse_indexes(text: str | None) -> set[int]:
    """``"1,3-5"`` -> {1, 3, 4, 5} (Kubernetes' ``completedIndexes`` format); bad parts are skipped."""
    found: set[int] = set()
    for part in (text or "").split(","):
        lo, sep, hi = part.strip().partition("-")
        try:
            if sep:
                found.update(range(int(lo), int(hi) + 1))
            elif lo:
                found.add(int(lo))
        except ValueError:
            continue
    return found


def format_indexes(indexes: set[int]) -> str:
    """{1, 3, 4, 5} -> ``"1,3-5"``."""
    parts: list[str] = []
    ordered = sorted(indexes)
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1] == ordered[j] + 1:
            j += 1
        parts.append(str(ordered[i]) if i == j else f"{ordered[i]}-{ordered[j]}")
        i = j + 1
    return ",".join(parts)


def finished_at(pod: Obj) -> float:
    """When a terminal pod finished: its containers' latest ``finishedAt`` (else its creation)."""
    times = [parse_time(((c.get("state") or {}).get("terminated") or {}).get("finishedAt"))
             for c in (pod.get("status") or {}).get("containerStatuses") or []]
    known = [t for t in times if t is not None]
    if known:
        return max(known)
    return parse_time(meta(pod).get("creationTimestamp")) or 0.0


def restarts(pod: Obj) -> int:
    status = pod.get("status") or {}
    return sum(int(c.get("restartCount") or 0)
               for c in (status.get("containerStatuses") or []) + (status.get("initContainerStatuses") or []))


def backoff_delay(failures: int, base: float = BACKOFF_BASE, cap: float = BACKOFF_MAX) -> float:
    """Delay before a new pod after ``failures`` failures since the last success: 0, 10, 20, 40 ... cap."""
    if failures <= 0:
        return 0.0
    return float(min(cap, base * 2 ** min(failures - 1, 30)))


def _phase(pod: Obj) -> str:
    return str((pod.get("status") or {}).get("phase") or "Pending")


# -- planning -----------------------------------------------------------------------------------
def plan(job: Obj, pods: list[Obj], now: float, *, backoff_base: float = BACKOFF_BASE,
         backoff_max: float = BACKOFF_MAX, expectations_satisfied: bool = True, burst: int = BURST) -> Plan:
    """Decide one pass for ``job`` over the pods of its namespace (only the pods it controls count)."""
    spec = job_spec(job)
    active, terminating, succeeded_pods, failed_pods = _sort_pods(job, pods)
    previous: Obj = job.get("status") or {}
    result = Plan()
    deleting_job = is_deleting(job)

    finished = finished_condition(job)
    if finished is not None:
        _after_finish(job, spec, finished, active, now, result)
        result.status = _status(previous, active, terminating, previous.get("succeeded"),
                                previous.get("failed"), previous.get("completedIndexes"), spec)
        return result

    completed: set[int] = set()
    if spec.indexed and spec.completions is not None:
        completed = {i for i in parse_indexes(previous.get("completedIndexes")) if i < spec.completions}
        completed.update(i for p in succeeded_pods
                         if (i := pod_index(p)) is not None and 0 <= i < spec.completions)
        succeeded = len(completed)
    else:
        succeeded = max(int(previous.get("succeeded") or 0), len(succeeded_pods))
    failed = max(int(previous.get("failed") or 0), len(failed_pods))

    conditions: list[Obj] = [dict(c) for c in previous.get("conditions") or []]
    start_time = previous.get("startTime")
    completion_time = previous.get("completionTime")

    # Has the Job failed or succeeded (the interim conditions are sticky)?
    failure = _true(conditions, "FailureTarget")
    success = _true(conditions, "SuccessCriteriaMet")
    if failure is None and success is None:
        reason = _failure_reason(spec, failed, active, start_time, now)
        if reason is not None:
            failure = _set(conditions, "FailureTarget", reason, _FAILURE_MESSAGES[reason], now)
        elif _succeeded(spec, succeeded, succeeded_pods, active):
            success = _set(conditions, "SuccessCriteriaMet", COMPLETIONS_REACHED,
                           "Reached expected number of succeeded pods", now)

    if failure is not None or success is not None:
        if active:
            result.actions.append(DeletePods(tuple(name_of(p) for p in active)))
            terminating = terminating + active
            active = []
        if not terminating:
            if failure is not None:
                reason, message = str(failure.get("reason")), str(failure.get("message"))
                _set(conditions, "Failed", reason, message, now)
                result.actions.append(RecordEvent("Warning", reason, message))
            else:
                _set(conditions, "Complete", COMPLETIONS_REACHED, "Reached expected number of succeeded pods",
                     now)
                completion_time = format_time(now)
                result.actions.append(RecordEvent("Normal", "Completed", "Job completed"))
            if spec.ttl_after_finished is not None and not deleting_job:
                result.later(spec.ttl_after_finished)
    elif spec.suspend:
        if active:
            result.actions.append(DeletePods(tuple(name_of(p) for p in active)))
            active = []
        if _true(conditions, "Suspended") is None:
            _set(conditions, "Suspended", "JobSuspended", "Job suspended", now)
            result.actions.append(RecordEvent("Normal", "Suspended", "Job suspended"))
        start_time = None
    else:
        if _true(conditions, "Suspended") is not None:
            _set(conditions, "Suspended", "JobResumed", "Job resumed", now, status="False")
            result.actions.append(RecordEvent("Normal", "Resumed", "Job resumed"))
        if start_time is None:
            start_time = format_time(now)
        if spec.active_deadline is not None:
            started = parse_time(start_time) or now
            result.later(started + spec.active_deadline - now)
        if expectations_satisfied and not deleting_job:
            active = _scale(spec, active, succeeded_pods, failed_pods, completed, succeeded, now, result,
                            backoff_base=backoff_base, backoff_max=backoff_max, burst=burst)

    result.status = _status(previous, active, terminating, succeeded, failed,
                            format_indexes(completed) if spec.indexed else None, spec)
    result.status["active"] += sum(len(a.indexes) for a in result.actions if isinstance(a, CreatePods))
    result.status["startTime"] = start_time
    result.status["completionTime"] = completion_time
    result.status["conditions"] = conditions or None
    return result


def _sort_pods(job: Obj, pods: list[Obj]) -> tuple[list[Obj], list[Obj], list[Obj], list[Obj]]:
    """The Job's pods (by controller uid) as active, terminating, succeeded and failed, in one pass:
    a Job of 10,000 completions keeps 10,000 pods, and every pass reads them all."""
    uid = uid_of(job)
    active: list[Obj] = []
    terminating: list[Obj] = []
    succeeded: list[Obj] = []
    failed: list[Obj] = []
    for pod in pods:
        m = pod.get("metadata") or {}
        if not any(r.get("controller") and r.get("uid") == uid for r in m.get("ownerReferences") or ()):
            continue
        phase = (pod.get("status") or {}).get("phase")
        if phase == "Succeeded":
            succeeded.append(pod)
        elif phase == "Failed":
            failed.append(pod)
        elif m.get("deletionTimestamp"):
            terminating.append(pod)
        else:
            active.append(pod)
    return active, terminating, succeeded, failed


def _after_finish(job: Obj, spec: JobSpec, finished: Obj, active: list[Obj], now: float, result: Plan) -> None:
    """A finished Job: delete stragglers, and the Job itself once its TTL has run out."""
    if active:
        result.actions.append(DeletePods(tuple(name_of(p) for p in active)))
    if spec.ttl_after_finished is None or is_deleting(job):
        return
    done = parse_time(finished.get("lastTransitionTime")) or now
    expires = done + spec.ttl_after_finished
    if expires <= now:
        result.actions.append(DeleteJob())
    else:
        result.later(expires - now)


def _failure_reason(spec: JobSpec, failed: int, active: list[Obj], start_time: str | None,
                    now: float) -> str | None:
    if failed > spec.backoff_limit:
        return BACKOFF_LIMIT_EXCEEDED
    if spec.on_failure:
        restarted = sum(restarts(p) for p in active)
        if restarted > 0 if spec.backoff_limit == 0 else restarted >= spec.backoff_limit:
            return BACKOFF_LIMIT_EXCEEDED
    if spec.active_deadline is not None and start_time is not None and not spec.suspend:
        started = parse_time(start_time)
        if started is not None and now - started >= spec.active_deadline:
            return DEADLINE_EXCEEDED
    return None


def _succeeded(spec: JobSpec, succeeded: int, succeeded_pods: list[Obj], active: list[Obj]) -> bool:
    if spec.completions is None:  # work queue: one success, and everyone else has finished
        return (succeeded > 0 or bool(succeeded_pods)) and not active
    return succeeded >= spec.completions


def _scale(spec: JobSpec, active: list[Obj], succeeded_pods: list[Obj], failed_pods: list[Obj],
           completed: set[int], succeeded: int, now: float, result: Plan, *, backoff_base: float,
           backoff_max: float, burst: int) -> list[Obj]:
    """Create or delete pods towards the wanted number of active ones; returns the active pods kept."""
    delete: list[Obj] = []
    create: list[int | None] = []
    if spec.indexed and spec.completions is not None:
        seen: set[int] = set()
        keep: list[Obj] = []
        for pod in sorted(active, key=lambda p: (not pod_is_ready(p), name_of(p))):
            index = pod_index(pod)
            if index is None or not 0 <= index < spec.completions or index in completed or index in seen:
                delete.append(pod)
            else:
                seen.add(index)
                keep.append(pod)
        room = spec.parallelism - len(keep)
        if room < 0:
            delete.extend(sorted(keep, key=lambda p: -(pod_index(p) or 0))[:-room])
        pending = [i for i in range(spec.completions) if i not in completed and i not in seen]
        create = list(pending[:max(0, min(room, burst))])
    elif spec.completions is None:
        if not succeeded_pods and succeeded == 0:
            diff = spec.parallelism - len(active)
            if diff > 0:
                create = [None] * min(diff, burst)
            elif diff < 0:
                delete = deletion_order(active)[:-diff]
    else:
        want = max(0, min(spec.parallelism, spec.completions - succeeded))
        diff = want - len(active)
        if diff > 0:
            create = [None] * min(diff, burst)
        elif diff < 0:
            delete = deletion_order(active)[:-diff]

    if delete:
        result.actions.append(DeletePods(tuple(name_of(p) for p in delete)))
    if create:
        wait = _backoff_remaining(succeeded_pods, failed_pods, now, backoff_base, backoff_max)
        if wait > 0:
            result.later(wait)
        else:
            result.actions.append(CreatePods(tuple(create)))
    gone = {name_of(p) for p in delete}
    return [p for p in active if name_of(p) not in gone]


def _backoff_remaining(succeeded_pods: list[Obj], failed_pods: list[Obj], now: float, base: float,
                       cap: float) -> float:
    """Seconds until a new pod may start, after the failures since the last success."""
    if not failed_pods:
        return 0.0  # (the common case, without reading every succeeded pod's finish time)
    last_success = max((finished_at(p) for p in succeeded_pods), default=0.0)
    failures = [t for p in failed_pods if (t := finished_at(p)) >= last_success]
    if not failures:
        return 0.0
    return max(failures) + backoff_delay(len(failures), base, cap) - now


def _status(previous: Obj, active: list[Obj], terminating: list[Obj], succeeded: Any, failed: Any,
            completed_indexes: str | None, spec: JobSpec) -> Obj:
    status: Obj = {k: v for k, v in previous.items()
                   if k not in ("active", "ready", "terminating", "succeeded", "failed", "completedIndexes")}
    status.update({"active": len(active), "ready": sum(1 for p in active if pod_is_ready(p)),
                   "terminating": len(terminating), "succeeded": int(succeeded or 0),
                   "failed": int(failed or 0)})
    if spec.indexed:
        status["completedIndexes"] = completed_indexes or ""
    return status


def _true(conditions: list[Obj], kind: str) -> Obj | None:
    for cond in conditions:
        if cond.get("type") == kind and cond.get("status") == "True":
            return cond
    return None


def _set(conditions: list[Obj], kind: str, reason: str, message: str, now: float, *,
         status: str = "True") -> Obj:
    """Add or update the condition ``kind`` in place; returns it."""
    stamp = format_time(now)
    new = {"type": kind, "status": status, "reason": reason, "message": message,
           "lastProbeTime": stamp, "lastTransitionTime": stamp}
    for i, cond in enumerate(conditions):
        if cond.get("type") == kind:
            if cond.get("status") == status:
                new["lastTransitionTime"] = cond.get("lastTransitionTime") or stamp
            conditions[i] = new
            return new
    conditions.append(new)
    return new


def status_changed(previous: Obj, status: Obj) -> bool:
    """Whether writing ``status`` changes the stored one (absent, None and empty values are equal)."""
    keys = set(previous) | set(status)
    return any((previous.get(k) or None) != (status.get(k) or None) for k in keys)


# -- pods ---------------------------------------------------------------------------------------
def job_labels(job: Obj) -> dict[str, str]:
    """The labels every pod of the Job carries, as Kubernetes sets them."""
    return {JOB_NAME_LABEL: name_of(job), LEGACY_JOB_NAME_LABEL: name_of(job),
            CONTROLLER_UID_LABEL: uid_of(job), LEGACY_CONTROLLER_UID_LABEL: uid_of(job)}


def pod_for(job: Obj, index: int | None) -> Obj:
    """A new pod of ``job`` from its template (``<job>-xxxxx``, or ``<job>-<index>-xxxxx`` when Indexed)."""
    template = copy.deepcopy((job.get("spec") or {}).get("template") or {})
    tmeta = template.get("metadata") or {}
    labels = {**(tmeta.get("labels") or {}), **job_labels(job)}
    annotations = dict(tmeta.get("annotations") or {})
    pod_spec: Obj = template.get("spec") or {}
    generate = f"{name_of(job)}-"
    if index is not None:
        generate = f"{name_of(job)}-{index}-"
        labels[COMPLETION_INDEX] = str(index)
        annotations[COMPLETION_INDEX] = str(index)
        pod_spec.setdefault("hostname", f"{name_of(job)}-{index}")
        for c in (pod_spec.get("containers") or []) + (pod_spec.get("initContainers") or []):
            env = [e for e in c.get("env") or [] if e.get("name") != INDEX_ENV]
            c["env"] = [*env, {"name": INDEX_ENV, "valueFrom": {"fieldRef": {"fieldPath": INDEX_FIELD_PATH}}}]
    pod_meta: Obj = {"generateName": generate, "namespace": meta(job).get("namespace") or "default",
                     "labels": labels, "ownerReferences": [owner_reference(job, controller=True, block=True)]}
    if annotations:
        pod_meta["annotations"] = annotations
    if tmeta.get("finalizers"):
        pod_meta["finalizers"] = list(tmeta["finalizers"])
    return {"apiVersion": "v1", "kind": "Pod", "metadata": pod_meta, "spec": pod_spec}
