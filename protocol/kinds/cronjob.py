"""CronJob (batch/v1): a Job made from ``jobTemplate`` on a cron schedule.

Defaults as Kubernetes: ``concurrencyPolicy`` Allow, ``suspend`` false, ``successfulJobsHistoryLimit`` 3,
``failedJobsHistoryLimit`` 1, the job template's spec as a Job's. Validation: the schedule (five fields
or a macro, no ``CRON_TZ=``) and ``timeZone`` through ``protocol.cron``; the name at most 52 characters
(the Jobs are named ``<name>-<11 digits>``); the job template as a Job's spec.
"""

from __future__ import annotations

from typing import Any

from protocol.cron import ScheduleError, check_schedule
from protocol.fielderrors import Errors
from protocol.humanize import since
from protocol.kinds.job import JOB_SPEC_FIELDS, job_spec_defaults, validate_job_spec
from protocol.kinds.strategy import AGE, NAME, NONE, Column, Field, KindInfo, Strategy, as_list, get_path
from protocol.objects import Obj, meta

INFO = KindInfo("CronJob", "batch/v1", "cronjobs", "cronjob", ("cj",), subresources=frozenset({"status"}),
                categories=("all",))
MAX_NAME = 52


def _default(obj: Obj) -> None:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return
    spec.setdefault("concurrencyPolicy", "Allow")
    spec.setdefault("suspend", False)
    spec.setdefault("successfulJobsHistoryLimit", 3)
    spec.setdefault("failedJobsHistoryLimit", 1)
    template = spec.get("jobTemplate")
    if isinstance(template, dict):
        job_spec_defaults(template.get("spec"))


def _validate(e: Errors, obj: Obj) -> None:
    name = meta(obj).get("name")
    if isinstance(name, str) and len(name) > MAX_NAME:
        e.add("metadata.name", f"must be no more than {MAX_NAME} characters")
    spec: Any = obj.get("spec")
    if not e.check(spec, "spec", dict, required=True):
        return
    schedule = spec.get("schedule")
    time_zone = spec.get("timeZone")
    schedule_ok = e.check(schedule, "spec.schedule", str, required=True)
    zone_ok = time_zone is None or e.check(time_zone, "spec.timeZone", str)
    if schedule_ok and zone_ok:
        try:
            check_schedule(schedule, time_zone if isinstance(time_zone, str) else None)
        except ScheduleError as exc:
            path = "spec.timeZone" if "time zone" in str(exc) else "spec.schedule"
            e.add(path, f"Invalid value: {exc}")
    e.enum(spec, "concurrencyPolicy", "spec.concurrencyPolicy", ("Allow", "Forbid", "Replace"))
    e.integer(spec, "startingDeadlineSeconds", "spec.startingDeadlineSeconds", 0)
    e.integer(spec, "successfulJobsHistoryLimit", "spec.successfulJobsHistoryLimit", 0)
    e.integer(spec, "failedJobsHistoryLimit", "spec.failedJobsHistoryLimit", 0)
    e.check(spec.get("suspend"), "spec.suspend", bool)
    template = spec.get("jobTemplate")
    if e.check(template, "spec.jobTemplate", dict, required=True):
        tmeta = template.get("metadata")
        if e.check(tmeta, "spec.jobTemplate.metadata", dict):
            e.string_map(tmeta.get("labels"), "spec.jobTemplate.metadata.labels")
            e.string_map(tmeta.get("annotations"), "spec.jobTemplate.metadata.annotations")
        validate_job_spec(e, template.get("spec"), "spec.jobTemplate.spec")


def _containers(obj: Obj, field: str) -> str:
    containers = as_list(get_path(obj, "spec", "jobTemplate", "spec", "template", "spec", "containers"))
    return ",".join(str(c.get(field)) for c in containers if isinstance(c, dict)) or NONE


def _bool(value: Any) -> str:
    return "<unset>" if value is None else str(bool(value))


COLUMNS = (
    NAME,
    Column("SCHEDULE", lambda o, now: str(get_path(o, "spec", "schedule") or ""), description="The cron schedule."),
    Column("TIMEZONE", lambda o, now: str(get_path(o, "spec", "timeZone") or NONE),
           description="The schedule's time zone (UTC when unset)."),
    Column("SUSPEND", lambda o, now: _bool(get_path(o, "spec", "suspend")), type="boolean",
           description="True: no new Jobs are made."),
    Column("ACTIVE", lambda o, now: str(len(as_list(get_path(o, "status", "active")))), type="integer",
           description="Jobs running."),
    Column("LAST SCHEDULE", lambda o, now: since(get_path(o, "status", "lastScheduleTime"), now)
           if get_path(o, "status", "lastScheduleTime") else NONE,
           description="How long ago a Job was last scheduled."),
    AGE,
    Column("CONTAINERS", lambda o, now: _containers(o, "name"), priority=1, description="The Jobs' containers."),
    Column("IMAGES", lambda o, now: _containers(o, "image"), priority=1, description="The Jobs' images."),
    Column("SELECTOR", lambda o, now: str(get_path(o, "spec", "jobTemplate", "spec", "selector") or NONE),
           priority=1, description="The Jobs' selector, when the template gives one."),
)

SCHEMA = (
    Field("spec", "object", "When to make Jobs and what they run.", required=True, fields=(
        Field("schedule", "string", "Five cron fields or @hourly, @daily, ...", required=True),
        Field("timeZone", "string", "An IANA time zone name (default UTC)."),
        Field("concurrencyPolicy", "string", "What to do when a Job is still running.",
              enum=("Allow", "Forbid", "Replace")),
        Field("startingDeadlineSeconds", "integer", "A schedule missed by more than this is skipped."),
        Field("suspend", "boolean", "True: no new Jobs."),
        Field("successfulJobsHistoryLimit", "integer", "Finished successful Jobs kept (default 3)."),
        Field("failedJobsHistoryLimit", "integer", "Failed Jobs kept (default 1)."),
        Field("jobTemplate", "object", "The Jobs to make.", required=True, fields=(
            Field("metadata", "object", "Labels and annotations of the Jobs."),
            Field("spec", "object", "A Job's spec.", required=True, fields=JOB_SPEC_FIELDS))),
    )),
    Field("status", "object", "What the controller last observed.", fields=(
        Field("active", "array", "References to the running Jobs.", items=Field("", "object")),
        Field("lastScheduleTime", "string"), Field("lastSuccessfulTime", "string"))),
)

STRATEGY = Strategy(
    INFO, description="Makes Jobs on a cron schedule.", schema=SCHEMA, columns=COLUMNS,
    default=_default, validate=_validate,
)
