"""Job (batch/v1): pods run to completion -- ``completions`` successes, ``parallelism`` at a time.

Defaults and validation as Kubernetes' (``pkg/apis/batch``): both counts unset means one pod once;
``parallelism`` alone is a work queue (``completions`` stays unset); ``backoffLimit`` 6, ``completionMode``
NonIndexed, ``suspend`` false, ``podReplacementPolicy`` TerminatingOrFailed (the one our controller
implements: a terminating pod is replaced at once; ``Failed`` is refused rather than ignored). The pod
template must say ``restartPolicy: Never`` or ``OnFailure``. The controller finds a Job's pods by their
controller ownerReference; they carry the labels below, so ``SELECTOR`` (and ``shoal logs job/x``) use
``batch.kubernetes.io/controller-uid``. Kubernetes generates ``spec.selector`` from the uid; we do not
(the uid is assigned after defaulting), and a ``spec.selector`` given by hand must match the template.
"""

from __future__ import annotations

from typing import Any

from protocol.fielderrors import Errors
from protocol.humanize import duration
from protocol.kinds.pod import pod_spec_defaults, validate_pod_spec
from protocol.kinds.strategy import AGE, NAME, Column, Field, KindInfo, Strategy, get_path
from protocol.kinds.workload import CONTAINERS, IMAGES, LABEL_SELECTOR, TEMPLATE_SCHEMA, template_warnings
from protocol.objects import Obj, condition_true, is_deleting, meta, parse_time, uid_of
from protocol.selectors import Selector, from_label_selector, from_match_labels

INFO = KindInfo("Job", "batch/v1", "jobs", "job", (), subresources=frozenset({"status"}),
                categories=("all",))

JOB_NAME_LABEL = "batch.kubernetes.io/job-name"
LEGACY_JOB_NAME_LABEL = "job-name"
CONTROLLER_UID_LABEL = "batch.kubernetes.io/controller-uid"
LEGACY_CONTROLLER_UID_LABEL = "controller-uid"
COMPLETION_INDEX = "batch.kubernetes.io/job-completion-index"
"""Annotation and label of an Indexed Job's pod."""
INDEX_ENV = "JOB_COMPLETION_INDEX"
MAX_INDEXED = 100_000
"""Most completions (and parallelism) of an Indexed Job, as Kubernetes."""


def job_spec_defaults(spec: Any) -> None:
    """The defaults of a Job's spec (also a CronJob's ``jobTemplate.spec``)."""
    if not isinstance(spec, dict):
        return
    if spec.get("completions") is None and spec.get("parallelism") is None:
        spec["completions"] = 1
    spec.setdefault("parallelism", 1)
    spec.setdefault("backoffLimit", 6)
    spec.setdefault("completionMode", "NonIndexed")
    spec.setdefault("suspend", False)
    spec.setdefault("podReplacementPolicy", "TerminatingOrFailed")
    template = spec.get("template")
    if isinstance(template, dict):
        pod_spec_defaults(template.get("spec"))


def _default(obj: Obj) -> None:
    job_spec_defaults(obj.get("spec"))


def validate_job_spec(e: Errors, spec: Any, path: str) -> None:
    """A Job's spec at ``path`` (``spec``, or ``spec.jobTemplate.spec`` of a CronJob)."""
    if not e.check(spec, path, dict, required=True):
        return
    e.integer(spec, "parallelism", f"{path}.parallelism", 0)
    e.integer(spec, "completions", f"{path}.completions", 0)
    e.integer(spec, "backoffLimit", f"{path}.backoffLimit", 0)
    e.integer(spec, "activeDeadlineSeconds", f"{path}.activeDeadlineSeconds", 1)
    e.integer(spec, "ttlSecondsAfterFinished", f"{path}.ttlSecondsAfterFinished", 0)
    e.check(spec.get("suspend"), f"{path}.suspend", bool)
    e.enum(spec, "completionMode", f"{path}.completionMode", ("NonIndexed", "Indexed"))
    policy = spec.get("podReplacementPolicy")
    if e.check(policy, f"{path}.podReplacementPolicy", str) and policy != "TerminatingOrFailed":
        e.add(f"{path}.podReplacementPolicy", f"Unsupported value: {policy!r}: supported values: "
                                              "TerminatingOrFailed (Failed is not implemented)")
    for unsupported in ("podFailurePolicy", "successPolicy", "backoffLimitPerIndex", "maxFailedIndexes",
                        "managedBy"):
        if spec.get(unsupported) is not None:
            e.add(f"{path}.{unsupported}", "Forbidden: not supported by this server yet")
    if spec.get("completionMode") == "Indexed":
        completions = spec.get("completions")
        if completions is None:
            e.add(f"{path}.completions", "Required value: when completion mode is Indexed")
        elif isinstance(completions, int) and completions > MAX_INDEXED:
            e.add(f"{path}.completions", f"must be less than or equal to {MAX_INDEXED} when completion mode "
                                         "is Indexed")
        parallelism = spec.get("parallelism")
        if isinstance(parallelism, int) and parallelism > MAX_INDEXED:
            e.add(f"{path}.parallelism", f"must be less than or equal to {MAX_INDEXED} when completion mode "
                                         "is Indexed")
    template = spec.get("template")
    if not e.check(template, f"{path}.template", dict, required=True):
        return
    tmeta = template.get("metadata") or {}
    labels = tmeta.get("labels") if isinstance(tmeta, dict) else None
    e.string_map(labels, f"{path}.template.metadata.labels")
    selector = spec.get("selector")
    if e.check(selector, f"{path}.selector", dict):
        try:
            parsed = from_label_selector(selector)
        except Exception as exc:
            e.add(f"{path}.selector", str(exc))
        else:
            if not parsed.matches(labels if isinstance(labels, dict) else {}):
                e.add(f"{path}.template.metadata.labels",
                      "Invalid value: selector does not match template labels")
    pod_spec = template.get("spec")
    validate_pod_spec(e, pod_spec, f"{path}.template.spec")
    if isinstance(pod_spec, dict):
        restart = pod_spec.get("restartPolicy")
        if restart not in ("OnFailure", "Never"):
            e.add(f"{path}.template.spec.restartPolicy",
                  f"Unsupported value: {restart!r}: supported values: \"OnFailure\", \"Never\"")


def _validate(e: Errors, obj: Obj) -> None:
    name = meta(obj).get("name")
    if isinstance(name, str) and len(name) > 63:
        e.add("metadata.name", "must be no more than 63 characters (it is the value of the job-name label)")
    validate_job_spec(e, obj.get("spec"), "spec")


def _validate_update(e: Errors, new: Obj, old: Obj) -> None:
    """As Kubernetes: the completion mode and selector never change; the pod template only while the
    Job is suspended; completions only for an Indexed Job scaled elastically (completions = parallelism)."""
    new_spec, old_spec = new.get("spec") or {}, old.get("spec") or {}
    for field in ("completionMode", "selector", "podReplacementPolicy"):
        if new_spec.get(field) != old_spec.get(field):
            e.add(f"spec.{field}", "field is immutable")
    if new_spec.get("template") != old_spec.get("template") and not new_spec.get("suspend"):
        e.add("spec.template", "field is immutable (unless the Job is suspended)")
    if new_spec.get("completions") != old_spec.get("completions"):
        elastic = new_spec.get("completionMode") == "Indexed" and \
            new_spec.get("completions") == new_spec.get("parallelism")
        if not elastic:
            e.add("spec.completions", "field is immutable (an Indexed Job may change it together with "
                                      "parallelism, kept equal)")


def job_selector(obj: Obj) -> Selector:
    """The pods of the Job: its ``spec.selector`` when given, else the controller-uid label."""
    selector = get_path(obj, "spec", "selector")
    if selector:
        return from_label_selector(selector)
    return from_match_labels({CONTROLLER_UID_LABEL: uid_of(obj)})


def job_status(obj: Obj) -> str:
    """kubectl's STATUS of a Job."""
    if condition_true(obj, "Complete"):
        return "Complete"
    if condition_true(obj, "Failed"):
        return "Failed"
    if is_deleting(obj):
        return "Terminating"
    for kind in ("Suspended", "FailureTarget", "SuccessCriteriaMet"):
        if condition_true(obj, kind):
            return kind
    return "Running"


def job_completions(obj: Obj) -> str:
    """kubectl's COMPLETIONS: ``2/3``; a work queue shows ``0/1 of 3`` (parallelism > 1)."""
    succeeded = int(get_path(obj, "status", "succeeded") or 0)
    completions, parallelism = get_path(obj, "spec", "completions"), get_path(obj, "spec", "parallelism")
    if completions is not None:
        return f"{succeeded}/{completions}"
    if parallelism is not None and int(parallelism) > 1:
        return f"{succeeded}/1 of {parallelism}"
    return f"{succeeded}/1"


def job_duration(obj: Obj, now: float) -> str:
    """kubectl's DURATION: start to completion, or start to now while it runs; empty before it starts."""
    start = parse_time(get_path(obj, "status", "startTime"))
    if start is None:
        return ""
    end = parse_time(get_path(obj, "status", "completionTime"))
    return duration((end if end is not None else now) - start)


def _selector_cell(obj: Obj, now: float) -> str:
    try:
        return str(job_selector(obj))
    except Exception:
        return str(get_path(obj, "spec", "selector"))


COLUMNS = (
    NAME,
    Column("STATUS", lambda o, now: job_status(o), description="Complete, Failed, Running, Suspended..."),
    Column("COMPLETIONS", lambda o, now: job_completions(o), description="Succeeded pods / wanted completions."),
    Column("DURATION", job_duration, description="From start to completion (or to now)."),
    AGE, CONTAINERS, IMAGES,
    Column("SELECTOR", _selector_cell, priority=1, description="The label selector of the Job's pods."),
)

_INT = "integer"
JOB_SPEC_FIELDS = (
    Field("parallelism", _INT, "Pods running at once (default 1)."),
    Field("completions", _INT, "Successful pods needed; unset with parallelism set: a work queue."),
    Field("completionMode", "string", "Indexed: each index 0..completions-1 needs one success.",
          enum=("NonIndexed", "Indexed")),
    Field("backoffLimit", _INT, "Failed pods before the Job fails (default 6)."),
    Field("activeDeadlineSeconds", _INT, "Seconds the Job may run before it fails."),
    Field("ttlSecondsAfterFinished", _INT, "Seconds after finishing before the Job is deleted."),
    Field("suspend", "boolean", "True: no pods run (active ones are deleted)."),
    Field("podReplacementPolicy", "string", "When a replacement pod starts.", enum=("TerminatingOrFailed",)),
    Field("selector", "object", "Optional: which pods it counts; must match the template's labels.",
          fields=LABEL_SELECTOR.fields),
    TEMPLATE_SCHEMA,
)
JOB_STATUS_SCHEMA = Field("status", "object", "What the controller last observed.", fields=(
    Field("active", _INT), Field("ready", _INT), Field("terminating", _INT), Field("succeeded", _INT),
    Field("failed", _INT), Field("startTime", "string"), Field("completionTime", "string"),
    Field("completedIndexes", "string", "Indexes done, as 1,3-5."),
    Field("conditions", "array", items=Field("", "object", fields=(
        Field("type", "string", enum=("Complete", "Failed", "Suspended", "FailureTarget", "SuccessCriteriaMet")),
        Field("status", "string"), Field("reason", "string"), Field("message", "string"),
        Field("lastTransitionTime", "string")))),
))

STRATEGY = Strategy(
    INFO, description="Runs pods until a number of them succeed.",
    schema=(Field("spec", "object", "The pods to run to completion.", required=True, fields=JOB_SPEC_FIELDS),
            JOB_STATUS_SCHEMA),
    columns=COLUMNS, default=_default, validate=_validate, validate_update=_validate_update,
    warnings=template_warnings, pod_selector=job_selector,
)
