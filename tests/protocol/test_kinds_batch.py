"""Table tests of the batch kinds' strategies (Job, CronJob): identity, defaults, validation, update
checks, columns. Pure: no server (the end-to-end tests are in tests/controllers/test_job.py and
test_cronjob.py, the CLI in tests/cli/test_jobs.py)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from protocol.errors import Invalid
from protocol.kinds import by_kind, resolve, strategy_for
from protocol.objects import Obj
from protocol.validation import validate

NOW = 1_800_000_000.0
CREATED = "2027-01-15T07:50:00Z"  # NOW - 10 minutes


def job(**spec: Any) -> Obj:
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "pi", "namespace": "default"},
            "spec": {"template": {"metadata": {"labels": {"app": "pi"}},
                                  "spec": {"restartPolicy": "Never",
                                           "containers": [{"name": "c", "image": "busybox"}]}}, **spec}}


def cronjob(**spec: Any) -> Obj:
    template = job()["spec"]
    return {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "nightly", "namespace": "default"},
            "spec": {"schedule": "0 3 * * *", "jobTemplate": {"spec": template}, **spec}}


def defaulted(obj: Obj) -> Obj:
    out = copy.deepcopy(obj)
    strategy_for(out["kind"]).default(out)
    return out


def test_identity() -> None:
    for kind, plural, short in (("Job", "jobs", None), ("CronJob", "cronjobs", "cj")):
        info = by_kind(kind)
        assert (info.group, info.version, info.plural, info.namespaced) == ("batch", "v1", plural, True)
        assert info.has_status
        assert resolve(f"{plural}.batch") is info
        if short:
            assert resolve(short) is info


@pytest.mark.parametrize(("spec", "expected"), [
    ({}, {"completions": 1, "parallelism": 1}),
    ({"parallelism": 3}, {"completions": None, "parallelism": 3}),  # a work queue
    ({"completions": 5}, {"completions": 5, "parallelism": 1}),
])
def test_job_defaults(spec: Obj, expected: Obj) -> None:
    out = defaulted(job(**spec))["spec"]
    for key, value in expected.items():
        assert out.get(key) == value
    assert (out["backoffLimit"], out["completionMode"], out["suspend"]) == (6, "NonIndexed", False)
    assert out["podReplacementPolicy"] == "TerminatingOrFailed"
    assert out["template"]["spec"]["terminationGracePeriodSeconds"] == 30  # the pod template's defaults


def test_cronjob_defaults() -> None:
    out = defaulted(cronjob())["spec"]
    assert (out["concurrencyPolicy"], out["suspend"]) == ("Allow", False)
    assert (out["successfulJobsHistoryLimit"], out["failedJobsHistoryLimit"]) == (3, 1)
    assert out["jobTemplate"]["spec"]["backoffLimit"] == 6


@pytest.mark.parametrize("obj", [
    job(), job(completions=5, parallelism=2, completionMode="Indexed", backoffLimit=0, activeDeadlineSeconds=60,
               ttlSecondsAfterFinished=0, suspend=True),
    job(selector={"matchLabels": {"app": "pi"}}),
    cronjob(), cronjob(schedule="@hourly", timeZone="Europe/Paris", concurrencyPolicy="Forbid",
                       startingDeadlineSeconds=30, successfulJobsHistoryLimit=0, failedJobsHistoryLimit=0),
])
def test_valid(obj: Obj) -> None:
    validate(defaulted(obj))


def _restart(policy: str | None) -> Obj:
    obj = job()
    if policy is None:
        del obj["spec"]["template"]["spec"]["restartPolicy"]
    else:
        obj["spec"]["template"]["spec"]["restartPolicy"] = policy
    return obj


@pytest.mark.parametrize(("obj", "field"), [
    (_restart("Always"), "spec.template.spec.restartPolicy"),
    (_restart(None), "spec.template.spec.restartPolicy"),  # defaulted to Always, as Kubernetes: refused
    (job(completions=-1), "spec.completions"),
    (job(parallelism=-1), "spec.parallelism"),
    (job(backoffLimit=-1), "spec.backoffLimit"),
    (job(activeDeadlineSeconds=0), "spec.activeDeadlineSeconds"),
    (job(ttlSecondsAfterFinished=-5), "spec.ttlSecondsAfterFinished"),
    (job(completionMode="Sometimes"), "spec.completionMode"),
    (job(completionMode="Indexed", completions=None, parallelism=2), "spec.completions"),
    (job(completionMode="Indexed", completions=100_001), "spec.completions"),
    (job(selector={"matchLabels": {"app": "other"}}), "spec.template.metadata.labels"),
    (job(podReplacementPolicy="Failed"), "spec.podReplacementPolicy"),
    (job(podFailurePolicy={"rules": []}), "spec.podFailurePolicy"),
    (job(suspend="yes"), "spec.suspend"),
    ({**job(), "metadata": {"name": "j" * 64}}, "metadata.name"),
    (cronjob(schedule="CRON_TZ=UTC 0 3 * * *"), "spec.schedule"),
    (cronjob(schedule="0 3 * *"), "spec.schedule"),
    (cronjob(schedule="@every 1h"), "spec.schedule"),
    (cronjob(schedule=None), "spec.schedule"),
    (cronjob(timeZone="Mars/Olympus"), "spec.timeZone"),
    (cronjob(concurrencyPolicy="Sometimes"), "spec.concurrencyPolicy"),
    (cronjob(startingDeadlineSeconds=-1), "spec.startingDeadlineSeconds"),
    (cronjob(successfulJobsHistoryLimit=-1), "spec.successfulJobsHistoryLimit"),
    (cronjob(jobTemplate=None), "spec.jobTemplate"),
    (cronjob(jobTemplate={"spec": _restart("Always")["spec"]}), "spec.jobTemplate.spec.template.spec.restartPolicy"),
    ({**cronjob(), "metadata": {"name": "c" * 53}}, "metadata.name"),
])
def test_invalid(obj: Obj, field: str) -> None:
    if obj["spec"].get("completions", 0) is None:
        del obj["spec"]["completions"]
    if obj["kind"] == "CronJob" and obj["spec"].get("schedule", "") is None:
        del obj["spec"]["schedule"]
    with pytest.raises(Invalid) as caught:
        validate(defaulted(obj))
    assert field in {c["field"] for c in caught.value.details["causes"]}, caught.value.details


def test_job_update_checks() -> None:
    old = defaulted(job(completions=3, parallelism=3))
    validate(old, old=old)
    for change, field in ((lambda s: s.update(completions=4), "spec.completions"),
                          (lambda s: s.update(completionMode="Indexed"), "spec.completionMode"),
                          (lambda s: s["template"]["spec"]["containers"][0].update(image="other"), "spec.template")):
        new = copy.deepcopy(old)
        change(new["spec"])
        with pytest.raises(Invalid) as caught:
            validate(new, old=old)
        assert field in {c["field"] for c in caught.value.details["causes"]}
    parallel = copy.deepcopy(old)
    parallel["spec"]["parallelism"] = 1  # parallelism may change
    validate(parallel, old=old)
    suspended = copy.deepcopy(old)
    suspended["spec"]["suspend"] = True
    suspended["spec"]["template"]["spec"]["containers"][0]["image"] = "other"  # while suspended: allowed
    validate(suspended, old=old)
    elastic_old = defaulted(job(completions=3, parallelism=3, completionMode="Indexed"))
    elastic = copy.deepcopy(elastic_old)
    elastic["spec"].update(completions=5, parallelism=5)
    validate(elastic, old=elastic_old)


def _status(**status: Any) -> Obj:
    obj = defaulted(job(completions=3))
    obj["metadata"].update(creationTimestamp=CREATED, uid="u-1")
    obj["status"] = status
    return obj


@pytest.mark.parametrize(("obj", "cells"), [
    (_status(), ["pi", "Running", "0/3", "", "10m"]),
    (_status(succeeded=1, startTime="2027-01-15T07:55:00Z"), ["pi", "Running", "1/3", "5m", "10m"]),
    (_status(succeeded=3, startTime="2027-01-15T07:55:00Z", completionTime="2027-01-15T07:55:42Z",
             conditions=[{"type": "Complete", "status": "True"}]), ["pi", "Complete", "3/3", "42s", "10m"]),
    (_status(failed=7, conditions=[{"type": "Failed", "status": "True"}]), ["pi", "Failed", "0/3", "", "10m"]),
    (_status(conditions=[{"type": "Suspended", "status": "True"}]), ["pi", "Suspended", "0/3", "", "10m"]),
])
def test_job_rows(obj: Obj, cells: list[str]) -> None:
    strategy = strategy_for("Job")
    assert [c.name for c in strategy.columns_for()] == ["NAME", "STATUS", "COMPLETIONS", "DURATION", "AGE"]
    assert strategy.row(obj, NOW) == cells


def test_job_wide_and_work_queue() -> None:
    strategy = strategy_for("Job")
    obj = _status()
    assert [c.name for c in strategy.columns_for(wide=True)][5:] == ["CONTAINERS", "IMAGES", "SELECTOR"]
    assert strategy.row(obj, NOW, wide=True)[5:] == ["c", "busybox", "batch.kubernetes.io/controller-uid=u-1"]
    queue = defaulted(job(parallelism=4))
    assert strategy.row(queue, NOW)[2] == "0/1 of 4"


def test_cronjob_rows() -> None:
    strategy = strategy_for("CronJob")
    assert [c.name for c in strategy.columns_for()] == ["NAME", "SCHEDULE", "TIMEZONE", "SUSPEND", "ACTIVE",
                                                         "LAST SCHEDULE", "AGE"]
    obj = defaulted(cronjob(timeZone="Europe/Paris"))
    obj["metadata"]["creationTimestamp"] = CREATED
    assert strategy.row(obj, NOW) == ["nightly", "0 3 * * *", "Europe/Paris", "False", "0", "<none>", "10m"]
    obj["status"] = {"active": [{"name": "nightly-1"}], "lastScheduleTime": "2027-01-15T07:59:00Z"}
    assert strategy.row(obj, NOW)[4:6] == ["1", "60s"]
    assert strategy.row(obj, NOW, wide=True)[7:9] == ["c", "busybox"]
