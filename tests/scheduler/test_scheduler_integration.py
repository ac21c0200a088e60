"""The scheduler against a real nats-server and API actor, with hollow nodes (no kubelet needed)."""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter, defaultdict
from typing import Any

from actors.scheduler.actor import LEASE_NAME, SchedulerActor, SchedulerSettings
from protocol.objects import Obj, condition, name_of
from protocol.quantity import cpu_millis, memory_bytes
from runtime.client import ApiClient
from runtime.informer import Informer
from tests.conftest import ActorRunner, cancel_and_wait
from tests.scheduler.helpers import make_node, make_pod, wait_until


async def start_scheduler(runner: ActorRunner, **settings: Any) -> tuple[SchedulerActor, asyncio.Event]:
    settings.setdefault("leader_elect", False)
    actor = SchedulerActor(SchedulerSettings(**settings), seed=7)
    stop = await runner.start(actor, ready=actor.cache.ready.is_set)
    return actor, stop


async def create_all(client: ApiClient, objects: list[Obj], batch: int = 100) -> None:
    for i in range(0, len(objects), batch):
        await asyncio.gather(*(client.create(o) for o in objects[i:i + batch]))


async def pods_by_name(client: ApiClient, namespace: str = "default") -> dict[str, Obj]:
    return {name_of(p): p for p in (await client.list("Pod", namespace)).items}


async def test_schedules_1000_pods_on_100_nodes(client: ApiClient, runner: ActorRunner) -> None:
    await create_all(client, [make_node(f"node-{i:03d}") for i in range(100)])
    scheduler, _ = await start_scheduler(runner)
    assert len(scheduler.cache.schedulable_nodes()) == 100

    # every binding the cluster ever reports, to prove no pod moves or is bound twice
    seen: dict[str, set[str]] = defaultdict(set)
    watcher = Informer(client, "Pod", field_selector="spec.nodeName!=")
    watcher.add_handler(lambda _e, _o, new: seen[name_of(new)].add(new["spec"]["nodeName"]) if new else None)
    watch_task = asyncio.create_task(watcher.run())
    await watcher.synced.wait()

    rng = random.Random(1)
    owner = {"name": "web-rs", "uid": "rs-uid-web"}
    pods = []
    for i in range(1000):
        if i % 7 == 0:  # 143 pods of one ReplicaSet, interleaved with the rest
            pods.append(make_pod(f"web-{i}", cpu="100m", memory="64Mi", owner=owner, labels={"app": "web"}))
        else:
            pods.append(make_pod(f"pod-{i}", cpu=f"{rng.choice([50, 100, 200, 300])}m",
                                 memory=f"{rng.choice([64, 128, 256, 512])}Mi"))
    started = time.monotonic()
    await create_all(client, pods)

    async def all_bound() -> bool:
        return len(seen) == 1000
    await wait_until(all_bound, 120, "all 1000 pods bound", interval=0.25)
    elapsed = time.monotonic() - started
    await cancel_and_wait(watch_task)

    assert all(len(nodes) == 1 for nodes in seen.values()), "a pod was bound to two nodes"
    assert scheduler.counters.bind_conflicts == 0 and scheduler.counters.bind_failures == 0
    current = await pods_by_name(client)
    cpu: Counter[str] = Counter()
    mem: Counter[str] = Counter()
    count: Counter[str] = Counter()
    web: Counter[str] = Counter({f"node-{i:03d}": 0 for i in range(100)})
    for name, pod in current.items():
        node = pod["spec"]["nodeName"]
        assert {node} == seen[name]
        assert condition(pod, "PodScheduled")["status"] == "True"  # type: ignore[index]
        req = pod["spec"]["containers"][0]["resources"]["requests"]
        cpu[node] += cpu_millis(req["cpu"])
        mem[node] += memory_bytes(req["memory"])
        count[node] += 1
        if name.startswith("web-"):
            web[node] += 1
    assert max(cpu.values()) <= 4000 and max(mem.values()) <= 8 * 2**30 and max(count.values()) <= 110
    assert max(web.values()) - min(web.values()) <= 2, f"ReplicaSet pods not spread: {sorted(web.values())}"
    # the watch can show a binding before the scheduler has read the bind's reply, which it counts
    await wait_until(lambda: scheduler.counters.scheduled >= 1000, 10, "the scheduler to count 1000 bind replies")
    health = scheduler.health()
    assert health["scheduled"] == 1000 and health["pending"] == 0 and health["nodes"] == 100
    print(f"1000 pods scheduled in {elapsed:.1f}s ({1000 / elapsed:.0f} pods/s)")


async def test_unschedulable_pod_reported_then_scheduled_when_node_added(
        client: ApiClient, runner: ActorRunner) -> None:
    await create_all(client, [
        make_node("small-1", cpu="1"), make_node("small-2", cpu="1"),
        make_node("gpu-1", cpu="8", taints=[{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}]),
    ])
    scheduler, _ = await start_scheduler(runner, initial_backoff=0.2, max_backoff=1.0)
    await client.create(make_pod("big", cpu="2"))
    expected = "0/3 nodes are available: 1 node(s) had untolerated taint {dedicated: gpu}, 2 Insufficient cpu."

    async def reported() -> Obj | None:
        pod = await client.get("Pod", "big", "default")
        cond = condition(pod, "PodScheduled")
        return pod if cond and cond.get("status") == "False" else None
    pod = await wait_until(reported, 10, "PodScheduled=False")
    cond = condition(pod, "PodScheduled")
    assert cond is not None and cond["reason"] == "Unschedulable" and cond["message"] == expected

    async def event() -> list[Obj]:
        return [e for e in (await client.list("Event", "default")).items
                if e["reason"] == "FailedScheduling" and e["involvedObject"]["name"] == "big"]
    events = await wait_until(event, 10, "a FailedScheduling event")
    assert events[0]["type"] == "Warning" and events[0]["message"] == expected
    assert events[0]["source"]["component"] == "default-scheduler"
    assert scheduler.queue.state("default/big") == "unschedulable"

    await client.create(make_node("large-1", cpu="4"))

    async def bound() -> str | None:
        return (await client.get("Pod", "big", "default"))["spec"].get("nodeName")  # type: ignore[no-any-return]
    assert await wait_until(bound, 10, "the pod bound to the new node") == "large-1"
    pod = await client.get("Pod", "big", "default")
    assert condition(pod, "PodScheduled")["status"] == "True"  # type: ignore[index]


async def test_taints_selectors_affinity_and_readiness_end_to_end(client: ApiClient, runner: ActorRunner) -> None:
    await create_all(client, [
        make_node("ssd", labels={"disk": "ssd"}),
        make_node("db", labels={"role": "db"}, taints=[{"key": "dedicated", "value": "db", "effect": "NoSchedule"}]),
        make_node("cordoned", unschedulable=True),
        make_node("down", ready="False"),
        make_node("away", ready="Unknown"),
    ])
    await start_scheduler(runner)
    db_affinity = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": "role", "operator": "In", "values": ["db"]}]}]}}}
    pods = [
        make_pod("on-ssd", nodeSelector={"disk": "ssd"}),
        make_pod("on-db", affinity=db_affinity,
                 tolerations=[{"key": "dedicated", "operator": "Equal", "value": "db", "effect": "NoSchedule"}]),
        make_pod("tolerates-all", nodeSelector={"kubernetes.io/hostname": "down"},
                 tolerations=[{"operator": "Exists"}]),
        make_pod("nowhere", nodeSelector={"disk": "hdd"}),
        make_pod("other-scheduler", scheduler="my-scheduler"),
        *(make_pod(f"plain-{i}") for i in range(6)),
    ]
    await create_all(client, pods)

    async def settled() -> dict[str, Obj] | None:
        current = await pods_by_name(client)
        placed = sum(1 for p in current.values() if p["spec"].get("nodeName"))
        nowhere = condition(current["nowhere"], "PodScheduled")
        return current if placed == 9 and nowhere and nowhere["status"] == "False" else None
    current = await wait_until(settled, 15, "9 pods bound and one unschedulable")
    node_of = {name: p["spec"].get("nodeName") for name, p in current.items()}
    assert node_of["on-ssd"] == "ssd"
    assert node_of["on-db"] == "db"
    assert node_of["tolerates-all"] == "down"
    assert node_of["nowhere"] is None and node_of["other-scheduler"] is None
    assert {node_of[f"plain-{i}"] for i in range(6)} == {"ssd"}
    message = condition(current["nowhere"], "PodScheduled")["message"]  # type: ignore[index]
    assert message == ("0/5 nodes are available: 1 node(s) didn't match Pod's node affinity/selector, "
                       "1 node(s) had untolerated taint {dedicated: db}, 1 node(s) were not ready, "
                       "1 node(s) were unreachable, 1 node(s) were unschedulable.")
    await asyncio.sleep(1.0)
    assert "spec" in (await client.get("Pod", "other-scheduler", "default"))
    assert not (await client.get("Pod", "other-scheduler", "default"))["spec"].get("nodeName")


async def test_leader_election_one_scheduler_acts_and_the_other_takes_over(
        client: ApiClient, runner: ActorRunner) -> None:
    await create_all(client, [make_node(f"n-{i}") for i in range(5)])
    first, first_stop = await start_scheduler(runner, leader_elect=True)
    second, second_stop = await start_scheduler(runner, leader_elect=True)
    actors = {first.instance: (first, first_stop), second.instance: (second, second_stop)}
    leader_actor = await wait_until(lambda: next((a for a in (first, second) if a.leading), None), 15,
                                    "a leader")
    lease = await client.get("Lease", LEASE_NAME, "kube-system")
    assert lease["spec"]["holderIdentity"] == leader_actor.instance
    leader, leader_stop = actors[leader_actor.instance]
    follower = second if leader is first else first
    assert not follower.leading

    await create_all(client, [make_pod(f"a-{i}") for i in range(40)])

    async def bound(prefix: str, n: int) -> bool:
        pods = await pods_by_name(client)
        return sum(1 for name, p in pods.items() if name.startswith(prefix) and p["spec"].get("nodeName")) == n
    await wait_until(lambda: bound("a-", 40), 20, "40 pods bound by the leader")
    # the API shows a pod bound before the scheduler has read the bind's reply (which it counts): wait for
    # the count to catch up, then check it did not overshoot
    await wait_until(lambda: leader.counters.scheduled >= 40, 10, "the leader to count its 40 bind replies")
    assert leader.counters.scheduled == 40
    assert follower.counters.attempts == 0 and follower.counters.scheduled == 0 and not follower.leading

    leader_stop.set()
    stopped = time.monotonic()
    await wait_until(lambda: follower.leading, 15, "the follower to take over")
    print(f"takeover after {time.monotonic() - stopped:.1f}s")
    lease = await client.get("Lease", LEASE_NAME, "kube-system")
    assert lease["spec"]["holderIdentity"] == follower.instance
    await create_all(client, [make_pod(f"b-{i}") for i in range(20)])
    await wait_until(lambda: bound("b-", 20), 20, "20 pods bound by the new leader")
    await wait_until(lambda: follower.counters.scheduled >= 20, 10, "the new leader to count its 20 bind replies")
    assert follower.counters.scheduled == 20


async def test_scheduled_events_by_default_and_off_on_request(client: ApiClient, runner: ActorRunner) -> None:
    """Every bound pod gets kube-scheduler's ``Scheduled`` event; ``scheduled_events=False``
    (``--no-scheduled-events``) records none."""
    await client.create(make_node("node-ev", cpu="4"))
    _, stop = await start_scheduler(runner)
    await client.create(make_pod("told", cpu="100m"))

    async def scheduled() -> list[Obj]:
        return [e for e in (await client.list("Event", "default", field_selector="involvedObject.name=told")).items
                if e["reason"] == "Scheduled"]
    [event] = await wait_until(scheduled, 10, "a Scheduled event")
    assert event["message"] == "Successfully assigned default/told to node-ev"
    assert event["type"] == "Normal" and event["source"] == {"component": "default-scheduler"}
    stop.set()
    await asyncio.gather(*(task for event, task in runner.running if event is stop))

    quiet, _ = await start_scheduler(runner, scheduled_events=False)
    await client.create(make_pod("untold", cpu="100m"))

    async def bound() -> bool:
        return bool((await client.get("Pod", "untold", "default"))["spec"].get("nodeName"))
    await wait_until(bound, 10, "the untold pod bound")
    # the bind is visible before its reply reaches the scheduler (seen on a loaded 2-core machine)
    await wait_until(lambda: quiet.counters.scheduled >= 1, 10, "the scheduler to count its bind reply")
    await asyncio.sleep(0.5)  # an event would have been recorded with the bind
    events = (await client.list("Event", "default", field_selector="involvedObject.name=untold")).items
    assert [e["reason"] for e in events] == []
