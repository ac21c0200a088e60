"""The CronJob controller end to end (API, scheduler, Job and CronJob controllers, hollow kubelets).

A schedule of every minute would make these tests wait minutes, so the CronJob controller is given a
``ScaledClock`` (its ``cronjob_clock`` option) on which a minute lasts ``60 / SPEED`` real seconds. The
schedule arithmetic is the production code's; only the passing of time is faster (the pure plan's tests
cover exact times)."""

from __future__ import annotations

import time

from actors.controllers.cronjob_plan import job_name
from protocol.objects import Obj, condition, is_deleting, name_of
from runtime.client import ApiClient
from tests.conftest import ActorRunner
from tests.controllers.conftest import eventually
from tests.controllers.test_job import job_manifest, start_batch_cluster

SPEED = 30.0
"""Clock seconds per real second: a scheduled minute every two real seconds."""


class ScaledClock:
    def __init__(self, speed: float) -> None:
        self.speed = speed
        self.origin = time.time()

    def now(self) -> float:
        return self.origin + (time.time() - self.origin) * self.speed

    def real_seconds(self, seconds: float) -> float:
        return seconds / self.speed


def cronjob(name: str, policy: str, *, exit_after: float) -> Obj:
    template = job_manifest(name, exit_after=exit_after)
    return {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": name, "namespace": "default"},
            "spec": {"schedule": "*/1 * * * *", "concurrencyPolicy": policy, "startingDeadlineSeconds": 200,
                     "jobTemplate": {"metadata": {"labels": {"cron": name}}, "spec": template["spec"]}}}


async def jobs_of(client: ApiClient, name: str) -> list[Obj]:
    return [j for j in (await client.list("Job", "default", label_selector=f"cron={name}")).items
            if not is_deleting(j)]


async def start(runner: ActorRunner, client: ApiClient) -> ScaledClock:
    clock = ScaledClock(SPEED)
    await start_batch_cluster(runner, client, controllers=("job", "cronjob", "gc"), cronjob_clock=clock)
    return clock


async def test_creates_jobs_on_schedule_that_complete(runner: ActorRunner, client: ApiClient) -> None:
    clock = await start(runner, client)
    created = await client.create(cronjob("tick", "Allow", exit_after=0.2))

    async def two_completed() -> list[Obj]:
        jobs = [j for j in await jobs_of(client, "tick") if condition(j, "Complete")]
        return jobs if len(jobs) >= 2 else []

    jobs = await eventually(two_completed, timeout=60)
    for job in jobs:
        scheduled = float(name_of(job).rsplit("-", 1)[1]) * 60
        assert name_of(job) == job_name(created, scheduled)
        assert scheduled <= clock.now()
        assert job["metadata"]["ownerReferences"][0]["kind"] == "CronJob"
    cj = await client.get("CronJob", "tick", "default")
    assert cj["status"]["lastScheduleTime"] and cj["status"]["lastSuccessfulTime"]

    oldest = min(int(name_of(j).rsplit("-", 1)[1]) for j in jobs)

    async def history_kept() -> bool:  # successfulJobsHistoryLimit 3: older finished Jobs are deleted
        now = await jobs_of(client, "tick")
        minutes = [int(name_of(j).rsplit("-", 1)[1]) for j in now]
        done = [j for j in now if condition(j, "Complete")]
        return bool(minutes) and max(minutes) >= oldest + 4 and oldest not in minutes and len(done) <= 3

    await eventually(history_kept, timeout=60)


async def test_forbid_skips_while_the_job_runs(runner: ActorRunner, client: ApiClient) -> None:
    await start(runner, client)
    await client.create(cronjob("solo", "Forbid", exit_after=3600))
    first = (await eventually(lambda: jobs_of(client, "solo"), timeout=60))[0]

    async def skipped() -> bool:
        events = (await client.list("Event", "default")).items
        return any(e.get("reason") == "JobAlreadyActive" and e["involvedObject"]["name"] == "solo"
                   for e in events)

    await eventually(skipped, timeout=60)
    assert [name_of(j) for j in await jobs_of(client, "solo")] == [name_of(first)]
    cj = await client.get("CronJob", "solo", "default")
    assert [a["name"] for a in cj["status"]["active"]] == [name_of(first)]


async def test_replace_replaces_the_running_job(runner: ActorRunner, client: ApiClient) -> None:
    await start(runner, client)
    await client.create(cronjob("swap", "Replace", exit_after=3600))
    first = (await eventually(lambda: jobs_of(client, "swap"), timeout=60))[0]

    async def replaced() -> list[Obj]:
        jobs = await jobs_of(client, "swap")
        return jobs if jobs and name_of(first) not in {name_of(j) for j in jobs} else []

    jobs = await eventually(replaced, timeout=60)
    assert len(jobs) == 1  # the replaced Job went before its successor came
    assert name_of(jobs[0]) > name_of(first)  # a later schedule's
    cj = await client.get("CronJob", "swap", "default")
    assert len(cj["status"]["active"]) == 1  # (which one depends on how many minutes passed since)
