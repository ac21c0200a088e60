"""The Job controller end to end: a real API, scheduler, controller manager and hollow kubelets whose
in-memory runtime makes containers exit with a scripted code (``SHOAL_FAKE_EXIT_AFTER``/``_EXIT_CODE``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from agents.hollow.nodes import HollowNodes, HollowSettings
from agents.kubelet.fake_runtime import EXIT_AFTER_ENV, EXIT_CODE_ENV
from protocol.errors import Invalid, NotFound
from protocol.kinds.job import COMPLETION_INDEX, INDEX_ENV
from protocol.objects import Obj, condition, uid_of
from runtime.client import ApiClient
from tests.conftest import ActorRunner
from tests.controllers.conftest import eventually, start_manager
from tests.scheduler.test_scheduler_integration import start_scheduler


async def start_batch_cluster(runner: ActorRunner, client: ApiClient, *, nodes: int = 2,
                              controllers: tuple[str, ...] = ("job", "gc"), **options: Any) -> HollowNodes:
    """Hollow nodes, a scheduler and a controller manager running ``controllers``."""
    hollow = HollowNodes(HollowSettings(nodes=nodes, lease_interval=1.0, status_interval=1.0,
                                        relist_interval=0.1))
    await runner.start(hollow, lambda: len(hollow.agents) == nodes)

    async def registered() -> bool:
        return len((await client.list("Node")).items) == nodes

    await eventually(registered, timeout=20)
    await start_scheduler(runner)
    options.setdefault("job_backoff_base", 0.2)
    options.setdefault("job_backoff_max", 1.0)
    await start_manager(runner, list(controllers), **options)
    return hollow


@pytest.fixture
async def batch(runner: ActorRunner, client: ApiClient) -> AsyncIterator[HollowNodes]:
    yield await start_batch_cluster(runner, client)


def job_manifest(name: str, *, completions: int | None = 1, parallelism: int | None = 1, exit_code: int = 0,
                 exit_after: float = 0.3, backoff: int | None = None, indexed: bool = False,
                 ttl: int | None = None) -> Obj:
    env = [{"name": EXIT_AFTER_ENV, "value": str(exit_after)}, {"name": EXIT_CODE_ENV, "value": str(exit_code)}]
    spec: Obj = {"template": {"metadata": {"labels": {"app": name}},
                              "spec": {"restartPolicy": "Never", "terminationGracePeriodSeconds": 0,
                                       "containers": [{"name": "work", "image": "busybox", "env": env}]}}}
    for key, value in (("completions", completions), ("parallelism", parallelism), ("backoffLimit", backoff),
                       ("ttlSecondsAfterFinished", ttl)):
        if value is not None:
            spec[key] = value
    if indexed:
        spec["completionMode"] = "Indexed"
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name, "namespace": "default"},
            "spec": spec}


async def job_pods(client: ApiClient, name: str) -> list[Obj]:
    return list((await client.list("Pod", "default", label_selector=f"batch.kubernetes.io/job-name={name}")).items)


def finished(kind: str, client: ApiClient, name: str) -> Any:
    async def check() -> Obj | None:
        job = await client.get("Job", name, "default")
        cond = condition(job, kind)
        return job if cond is not None and cond.get("status") == "True" else None

    return check


async def test_job_of_three_completions_two_at_a_time(batch: HollowNodes, client: ApiClient) -> None:
    created = await client.create(job_manifest("pi", completions=3, parallelism=2))
    job = await eventually(finished("Complete", client, "pi"), timeout=30)
    status = job["status"]
    assert (status["succeeded"], status["failed"], status["active"]) == (3, 0, 0)
    assert status["startTime"] and status["completionTime"]
    assert condition(job, "SuccessCriteriaMet") is not None
    pods = await job_pods(client, "pi")
    assert len(pods) == 3  # one pod per completion: none failed, none was created twice
    for pod in pods:
        labels = pod["metadata"]["labels"]
        assert labels["job-name"] == "pi" and labels["controller-uid"] == uid_of(created)
        assert pod["metadata"]["ownerReferences"][0]["uid"] == uid_of(created)
        assert pod["status"]["phase"] == "Succeeded"


async def test_failing_job_stops_at_its_backoff_limit(batch: HollowNodes, client: ApiClient) -> None:
    await client.create(job_manifest("crash", exit_code=3, backoff=2))
    job = await eventually(finished("Failed", client, "crash"), timeout=30)
    failed = condition(job, "Failed")
    assert failed is not None and failed["reason"] == "BackoffLimitExceeded"
    assert job["status"]["failed"] == 3 and job["status"]["succeeded"] == 0
    assert condition(job, "Complete") is None
    pods = await job_pods(client, "crash")
    assert len(pods) == 3 and all(p["status"]["phase"] == "Failed" for p in pods)


async def test_indexed_job_runs_each_index_once(batch: HollowNodes, client: ApiClient) -> None:
    await client.create(job_manifest("idx", completions=5, parallelism=2, indexed=True))
    job = await eventually(finished("Complete", client, "idx"), timeout=30)
    assert job["status"]["completedIndexes"] == "0-4"
    pods = await job_pods(client, "idx")
    indexes = sorted(int(p["metadata"]["annotations"][COMPLETION_INDEX]) for p in pods)
    assert indexes == [0, 1, 2, 3, 4]
    for pod in pods:
        index = pod["metadata"]["annotations"][COMPLETION_INDEX]
        assert pod["metadata"]["labels"][COMPLETION_INDEX] == index
        assert pod["metadata"]["name"].startswith(f"idx-{index}-")
    # what each container was started with (the fake runtime's record; the kubelet resolved the fieldRef)
    started = sorted(c.env.get(INDEX_ENV, "") for c in batch.runtime._containers.values()
                     if c.sandbox.name.startswith("idx-"))
    assert started == ["0", "1", "2", "3", "4"]


async def test_deleting_a_job_deletes_its_pods(batch: HollowNodes, client: ApiClient) -> None:
    await client.create(job_manifest("long", completions=2, parallelism=2, exit_after=3600))

    async def running() -> bool:
        pods = await job_pods(client, "long")
        return len(pods) == 2 and all(p["status"].get("phase") == "Running" for p in pods)

    await eventually(running, timeout=30)
    await client.delete("Job", "long", "default")

    async def gone() -> bool:
        return not await job_pods(client, "long")

    await eventually(gone, timeout=30)


async def test_finished_job_is_deleted_after_its_ttl(batch: HollowNodes, client: ApiClient) -> None:
    await client.create(job_manifest("brief", ttl=0))

    async def deleted() -> bool:
        try:
            await client.get("Job", "brief", "default")
        except NotFound:
            return not await job_pods(client, "brief")
        return False

    await eventually(deleted, timeout=30)


async def test_the_api_defaults_and_refuses_jobs_as_kubernetes(client: ApiClient) -> None:
    manifest = job_manifest("plain", completions=None, parallelism=None)
    stored = await client.create(manifest)
    spec = stored["spec"]
    assert (spec["completions"], spec["parallelism"], spec["backoffLimit"]) == (1, 1, 6)
    assert (spec["completionMode"], spec["suspend"]) == ("NonIndexed", False)
    queue = await client.create(job_manifest("queue", completions=None, parallelism=3))
    assert "completions" not in queue["spec"]
    always = job_manifest("always")
    always["spec"]["template"]["spec"]["restartPolicy"] = "Always"
    with pytest.raises(Invalid) as caught:
        await client.create(always)
    assert "spec.template.spec.restartPolicy" in {c["field"] for c in caught.value.details["causes"]}
    cron: Obj = {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "bad", "namespace": "default"},
            "spec": {"schedule": "CRON_TZ=UTC * * * * *", "jobTemplate": {"spec": job_manifest("x")["spec"]}}}
    with pytest.raises(Invalid, match="use timeZone field"):
        await client.create(cron)
    stored_cron = await client.create({**cron, "spec": {**cron["spec"], "schedule": "@daily"}})
    assert stored_cron["spec"]["concurrencyPolicy"] == "Allow"
    assert stored_cron["spec"]["successfulJobsHistoryLimit"] == 3
