"""``shoal create job`` (``--from=cronjob/X``, ``--image``) and ``shoal wait`` as a subprocess against a real
cluster: API, scheduler, Job controller and hollow kubelets (containers that exit 0 after 0.3 s)."""

from __future__ import annotations

from protocol.objects import Obj
from runtime.client import ApiClient
from tests.cli.conftest import ShoalCli
from tests.conftest import ActorRunner
from tests.controllers.test_job import job_manifest, start_batch_cluster


def cronjob(name: str) -> Obj:
    template = job_manifest(name, exit_after=0.3)
    return {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": name, "namespace": "default"},
            "spec": {"schedule": "0 3 * * *", "suspend": True,
                     "jobTemplate": {"metadata": {"labels": {"cron": name}}, "spec": template["spec"]}}}


async def test_create_job_from_cronjob_and_wait_for_it(runner: ActorRunner, client: ApiClient,
                                                       cli: ShoalCli) -> None:
    await start_batch_cluster(runner, client, nodes=1)
    cj = await client.create(cronjob("nightly"))
    made = await cli("create", "job", "nightly-manual", "--from=cronjob/nightly")
    assert made.rc == 0, made
    assert "job.batch/nightly-manual created" in made.out
    job = await client.get("Job", "nightly-manual", "default")
    assert job["metadata"]["labels"] == {"cron": "nightly"}
    assert job["metadata"]["annotations"]["cronjob.kubernetes.io/instantiate"] == "manual"
    assert job["metadata"]["ownerReferences"][0]["uid"] == cj["metadata"]["uid"]

    waited = await cli("wait", "--for=condition=complete", "job/nightly-manual", "--timeout=60s")
    assert waited.rc == 0, waited
    assert waited.out.strip() == "job.batch/nightly-manual condition met"
    assert (await client.get("Job", "nightly-manual", "default"))["status"]["succeeded"] == 1

    table = await cli("get", "jobs")
    assert table.rc == 0, table
    header, row = table.out.splitlines()[:2]
    assert header.split() == ["NAME", "STATUS", "COMPLETIONS", "DURATION", "AGE"]
    assert row.split()[:3] == ["nightly-manual", "Complete", "1/1"]
    wide = await cli("get", "jobs", "-o", "wide")
    assert "CONTAINERS" in wide.out and f"batch.kubernetes.io/controller-uid={job['metadata']['uid']}" in wide.out
    crons = await cli("get", "cj")
    assert crons.rc == 0, crons
    header, row = crons.out.splitlines()[:2]
    assert header.split() == ["NAME", "SCHEDULE", "TIMEZONE", "SUSPEND", "ACTIVE", "LAST", "SCHEDULE", "AGE"]
    assert row.split()[:8] == ["nightly", "0", "3", "*", "*", "*", "<none>", "True"]

    described = await cli("describe", "job", "nightly-manual")
    assert described.rc == 0, described
    for line in ("Completions:", "Pods Statuses:", "0 Active (0 Ready) / 1 Succeeded / 0 Failed", "Completed At:",
                 "SuccessfulCreate"):
        assert line in described.out, described.out
    cron_text = await cli("describe", "cronjob", "nightly")
    assert cron_text.rc == 0 and "Schedule:" in cron_text.out and "0 3 * * *" in cron_text.out, cron_text

    never = await cli("wait", "--for=condition=failed", "job/nightly-manual", "--timeout=1s")
    assert never.rc != 0 and "timed out" in never.err and "job.batch/nightly-manual" in never.err, never

    deleted = await cli("delete", "job", "nightly-manual")
    assert deleted.rc == 0, deleted
    gone = await cli("wait", "--for=delete", "job/nightly-manual", "--timeout=30s")
    assert gone.rc == 0 and "deleted" in gone.out, gone


async def test_create_job_from_an_image_and_refusals(client: ApiClient, cli: ShoalCli) -> None:
    made = await cli("create", "job", "hello", "--image=busybox")
    assert made.rc == 0, made
    spec = (await client.get("Job", "hello", "default"))["spec"]["template"]["spec"]
    assert spec["restartPolicy"] == "Never"
    assert (spec["containers"][0]["name"], spec["containers"][0]["image"]) == ("hello", "busybox")
    for args, message in ((("create", "job", "x"), "--from=cronjob/NAME or --image"),
                          (("create", "job", "x", "--from=deploy/web"), "cannot be used here"),
                          (("create", "job", "x", "--from=cronjob/missing"), "not found"),
                          (("wait", "--for=ready", "job/hello"), "--for=condition=NAME")):
        result = await cli(*args)
        assert result.rc != 0 and message in result.err, result
