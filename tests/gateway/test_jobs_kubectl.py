"""Jobs and CronJobs with the real kubectl through the gateway, on hollow kubelets whose containers exit 0
(scheduler, Job, CronJob and garbage-collector controllers running): ``apply``, ``wait --for=condition=
complete``, ``get jobs`` (the columns kubectl prints from our Table), ``create job --from=cronjob/X``
(done by kubectl itself: it reads the CronJob and posts the Job) and a cascading delete."""

from __future__ import annotations

import yaml

from runtime.client import ApiClient
from tests.conftest import ActorRunner
from tests.controllers.test_job import job_manifest, start_batch_cluster
from tests.gateway.conftest import Gateway


async def test_jobs_through_kubectl(gateway: Gateway, api_client: ApiClient, runner: ActorRunner) -> None:
    await start_batch_cluster(runner, api_client, nodes=1, controllers=("job", "cronjob", "gc"))
    await gateway.ok("apply", "-f", "-", stdin=yaml.safe_dump(job_manifest("pi", completions=2, parallelism=2)))
    await gateway.ok("wait", "--for=condition=complete", "job/pi", "--timeout=60s")
    table = (await gateway.ok("get", "jobs")).splitlines()
    assert table[0].split() == ["NAME", "STATUS", "COMPLETIONS", "DURATION", "AGE"], table
    assert table[1].split()[:3] == ["pi", "Complete", "2/2"], table
    pods = await gateway.ok("get", "pods", "-l", "job-name=pi", "-o", "name")
    assert len(pods.split()) == 2, pods

    template = job_manifest("nightly")["spec"]
    cronjob = {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "nightly"},
               "spec": {"schedule": "0 3 * * *", "suspend": True, "jobTemplate": {"spec": template}}}
    await gateway.ok("apply", "-f", "-", stdin=yaml.safe_dump(cronjob))
    crons = (await gateway.ok("get", "cronjobs")).splitlines()
    assert crons[1].split()[:7] == ["nightly", "0", "3", "*", "*", "*", "<none>"], crons
    await gateway.ok("create", "job", "nightly-now", "--from=cronjob/nightly")
    await gateway.ok("wait", "--for=condition=complete", "job/nightly-now", "--timeout=60s")
    job = await api_client.get("Job", "nightly-now", "default")
    assert job["metadata"]["ownerReferences"][0]["kind"] == "CronJob"

    await gateway.ok("delete", "job", "pi")  # the garbage collector takes its pods
    await gateway.ok("wait", "--for=delete", "pod", "-l", "job-name=pi", "--timeout=60s")
