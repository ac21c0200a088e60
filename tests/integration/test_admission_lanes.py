"""Request admission: heartbeats first, user and system lanes apart, flows served in turn, stale and excess requests
refused, not served late."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import nats
import pytest

from actors.api.lanes import Admission, Lane, LaneSettings, lane_of
from actors.api.server import ApiActor
from protocol.errors import ShoalError, Unavailable
from runtime.client import ApiClient
from tests.conftest import ActorRunner, start_api


@pytest.mark.parametrize(("subject", "lane"), [
    ("shoal.node.n1.api.update.leases.kube-node-lease.n1", Lane.HEARTBEAT),
    ("shoal.node.n1.api.create.leases.kube-node-lease", Lane.HEARTBEAT),
    ("shoal.node.n1.api.status.nodes._.n1", Lane.HEARTBEAT),
    ("shoal.node.n1.api.create.nodes._", Lane.HEARTBEAT),
    ("shoal.api.update.leases.kube-system.shoal-scheduler", Lane.HEARTBEAT),  # leader election
    ("shoal.user.system:kube-scheduler.api.update.leases.kube-system.shoal-scheduler", Lane.HEARTBEAT),
    ("shoal.node.n1.api.status.pods.default.web", Lane.SYSTEM),  # a kubelet's pod status
    ("shoal.node.n1.api.create.events.default", Lane.SYSTEM),
    ("shoal.user.system:kube-scheduler.api.bind.pods._all", Lane.SYSTEM),  # the scheduler's binds
    ("shoal.user.system:kube-controller-manager.api.create.pods.default", Lane.SYSTEM),
    ("shoal.user.system:kube-controller-manager.api.list.pods._all", Lane.SYSTEM),
    ("shoal.api.status.nodes._.n1", Lane.USER),  # not a kubelet's own heartbeat
    ("shoal.api.list.leases.kube-node-lease", Lane.USER),
    ("shoal.api.get.leases.kube-node-lease.n1", Lane.HEARTBEAT),
    ("shoal.api.delete.leases.kube-node-lease.n1", Lane.USER),
    ("shoal.api.create.pods.default", Lane.USER),  # a person (the shoal tool, the gateway)
    ("shoal.api.update.configmaps.default.web", Lane.USER),
    ("shoal.api.bind.pods._all", Lane.USER),
    ("shoal.api", Lane.USER),
    ("garbage", Lane.USER),
])
def test_lane_of(subject: str, lane: Lane) -> None:
    assert lane_of(subject) == lane


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_lanes_have_their_own_budgets_and_stale_requests_are_refused() -> None:
    gates: dict[str, asyncio.Event] = {}
    served: list[str] = []
    refused: dict[str, ShoalError] = {}
    clock = Clock()

    async def serve(name: str) -> None:
        gate = gates.setdefault(name, asyncio.Event())
        await gate.wait()
        served.append(name)

    async def refuse(name: str, error: ShoalError) -> None:
        refused[name] = error

    admission: Admission[str] = Admission(serve, refuse, {Lane.HEARTBEAT: LaneSettings(1, 10),
                                                          Lane.SYSTEM: LaneSettings(1, 2)},
                                          max_wait=5.0, clock=clock)
    admission.submit(Lane.SYSTEM, "n1")  # runs, holding the only normal slot
    admission.submit(Lane.SYSTEM, "n2")  # queued
    clock.now = 1.0
    admission.submit(Lane.SYSTEM, "n3")  # queued
    admission.submit(Lane.SYSTEM, "n4")  # the normal queue is full: refused at once
    gates["h1"] = asyncio.Event()
    gates["h1"].set()
    admission.submit(Lane.HEARTBEAT, "h1")  # its own lane: served though the normal lane is full
    for _ in range(100):
        if "h1" in served and "n4" in refused:
            break
        await asyncio.sleep(0.01)
    assert served == ["h1"] and isinstance(refused["n4"], Unavailable)
    assert admission.queued(Lane.SYSTEM) == 2
    clock.now = 5.5  # n2 has waited 5.5 s (> max_wait), n3 4.5 s
    for name in ("n1", "n2", "n3"):
        gates.setdefault(name, asyncio.Event()).set()
    await admission.drain(2)
    assert served == ["h1", "n1", "n3"]
    assert isinstance(refused["n2"], Unavailable) and "waited" in refused["n2"].message
    assert admission.stats()["system"] == {"running": 0, "queued": 0, "served": 2, "shed": 2}


def gated(names: tuple[str, ...]) -> tuple[dict[str, asyncio.Event], list[str], Callable[[str], Awaitable[None]],
                                           Callable[[str, ShoalError], Awaitable[None]]]:
    """Requests that record their start and then hold their slot until their gate opens; none is refused."""
    gates = {name: asyncio.Event() for name in names}
    started: list[str] = []

    async def serve(name: str) -> None:
        started.append(name)
        await gates[name].wait()

    async def refuse(name: str, error: ShoalError) -> None:
        raise AssertionError(f"{name} refused: {error}")

    return gates, started, serve, refuse


async def test_normal_requests_wait_while_heartbeats_are_queued() -> None:
    gates, started, serve, refuse = gated(("h1", "h2", "n1", "n2"))
    admission: Admission[str] = Admission(serve, refuse, {Lane.HEARTBEAT: LaneSettings(1, 10),
                                                          Lane.SYSTEM: LaneSettings(2, 10)})
    admission.submit(Lane.HEARTBEAT, "h1")  # runs
    admission.submit(Lane.HEARTBEAT, "h2")  # waits for h1's slot
    admission.submit(Lane.SYSTEM, "n1")  # a normal slot is free, but a heartbeat is waiting
    await asyncio.sleep(0.01)
    assert started == ["h1"]
    gates["h1"].set()
    await asyncio.sleep(0.01)
    assert started == ["h1", "h2", "n1"]  # the heartbeat first, then the normal lane resumes
    admission.submit(Lane.SYSTEM, "n2")
    await asyncio.sleep(0.01)
    assert started == ["h1", "h2", "n1", "n2"]
    for gate in gates.values():
        gate.set()
    await admission.drain(2)


async def test_a_person_s_request_does_not_wait_for_a_heartbeat_backlog_a_script_s_does() -> None:
    gates, started, serve, refuse = gated(("h1", "h2", "n1", "u1", "s1", "s2", "s3"))
    admission: Admission[str] = Admission(serve, refuse, {Lane.HEARTBEAT: LaneSettings(1, 10),
                                                          Lane.USER: LaneSettings(3, 10),
                                                          Lane.SYSTEM: LaneSettings(2, 10)})
    admission.submit(Lane.USER, "s1", "script")  # a script's request runs
    admission.submit(Lane.HEARTBEAT, "h1")  # runs
    admission.submit(Lane.HEARTBEAT, "h2")  # waits for h1's slot: a heartbeat backlog
    admission.submit(Lane.SYSTEM, "n1")  # bulk work yields to it
    admission.submit(Lane.USER, "s2", "script")  # so does the script's next request: its flow is busy
    admission.submit(Lane.USER, "u1", "person")  # not a person's only request (the lane has room, it waits not)
    await asyncio.sleep(0.01)
    assert started == ["s1", "h1", "u1"]
    admission.submit(Lane.USER, "s3", "script")
    await asyncio.sleep(0.01)
    assert started == ["s1", "h1", "u1"]
    gates["h1"].set()
    await asyncio.sleep(0.01)
    assert started[:4] == ["s1", "h1", "u1", "h2"] and set(started[4:]) == {"s2", "n1"}
    for gate in gates.values():
        gate.set()
    await admission.drain(2)
    assert set(started) == set(gates)


async def test_a_long_queue_is_served_newest_first() -> None:
    gates, started, serve, refuse = gated(("r", "a", "b", "c", "d"))
    admission: Admission[str] = Admission(serve, refuse, {Lane.SYSTEM: LaneSettings(2, 10)})
    for name in ("r", "a", "b", "c", "d"):
        admission.submit(Lane.SYSTEM, name)  # r and a run; b, c, d wait (3 > the budget of 2)
    await asyncio.sleep(0.01)
    gates["r"].set()
    await asyncio.sleep(0.01)
    assert started == ["r", "a", "d"]  # overloaded: the newest first
    gates["a"].set()
    await asyncio.sleep(0.01)
    assert started == ["r", "a", "d", "b"]  # two waiting, within the budget: oldest first again
    for gate in gates.values():
        gate.set()
    await admission.drain(2)
    assert started == ["r", "a", "d", "b", "c"]


async def settle() -> None:
    """Let every task that can run do so (a start is a task; a finish starts the next one through callbacks)."""
    for _ in range(20):
        await asyncio.sleep(0)


async def test_a_single_request_of_another_flow_waits_for_one_turn_not_for_the_backlog() -> None:
    names = (*(f"a{i}" for i in range(10)), "b")
    gates, started, serve, refuse = gated(names)
    admission: Admission[str] = Admission(serve, refuse, {Lane.USER: LaneSettings(1, 100)})
    for i in range(5):
        admission.submit(Lane.USER, f"a{i}", "bench")  # a0 runs, a1..a4 wait
    admission.submit(Lane.USER, "b", "person")  # one write of another connection
    for i in range(5, 10):
        admission.submit(Lane.USER, f"a{i}", "bench")  # the backlog goes on growing
    await settle()
    assert started == ["a0"] and admission.queued(Lane.USER) == 10
    for name in ("a0", "a9"):
        gates[name].set()
        await settle()
    # one turn of the backlogged flow (its newest: the queue is longer than the budget), then the other flow;
    # one queue served newest first would have started a9..a5 before b
    assert started == ["a0", "a9", "b"]
    for gate in gates.values():
        gate.set()
    await admission.drain(2)
    assert sorted(started) == sorted(names)


async def test_flows_take_turns_in_a_lane() -> None:
    names = ("a0", "a1", "a2", "a3", "b0", "b1", "c0")
    gates, started, serve, refuse = gated(names)
    admission: Admission[str] = Admission(serve, refuse, {Lane.USER: LaneSettings(1, 100)})
    for name in names:
        admission.submit(Lane.USER, name, name[0])
    for gate in gates.values():
        gate.set()
    await admission.drain(2)
    # a0 at once; then round-robin a, b, c (a longer queue than the budget: each flow's newest first)
    assert started == ["a0", "a3", "b1", "c0", "a2", "b0", "a1"]


async def test_user_and_system_lanes_each_progress_within_their_budget() -> None:
    system = tuple(f"s{i}" for i in range(20))
    user = tuple(f"u{i}" for i in range(5))
    gates, started, serve, refuse = gated(system + user)
    admission: Admission[str] = Admission(serve, refuse, {Lane.HEARTBEAT: LaneSettings(1, 10),
                                                          Lane.USER: LaneSettings(1, 100),
                                                          Lane.SYSTEM: LaneSettings(2, 100)})
    for name in system:
        admission.submit(Lane.SYSTEM, name, "scheduler")  # bulk: s0 and s1 run, 18 wait
    admission.submit(Lane.USER, "u0", "person")  # not queued behind the scheduler's backlog
    await settle()
    assert started == ["s0", "s1", "u0"]
    for name in user[1:]:
        admission.submit(Lane.USER, name, "person")  # waits for u0's slot, not for the system lane's
    gates["s0"].set()
    await settle()
    assert started[3:] == ["s19"]  # the system lane goes on while user requests wait (its own budget)
    gates["u0"].set()
    await settle()
    assert started[4:] == ["u4"]  # and the user lane while 17 system requests wait (newest first)
    assert admission.stats()["system"]["queued"] == 17 and admission.stats()["user"]["queued"] == 3
    for gate in gates.values():
        gate.set()
    await admission.drain(2)
    assert sorted(started) == sorted(system + user)


class Backlog:
    """ConfigMap creates sent on one client: ``add`` starts more, ``done`` counts the answered ones."""

    def __init__(self, client: ApiClient) -> None:
        self.client = client
        self.done = 0
        self.tasks: list[asyncio.Task[None]] = []

    def add(self, start: int, count: int) -> None:
        self.tasks += [asyncio.create_task(self._create(i)) for i in range(start, start + count)]

    async def _create(self, i: int) -> None:
        await self.client.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"cm-{i}"},
                                  "data": {"k": "v" * 2000}})
        self.done += 1

    async def queued(self, api: ApiActor, lane: Lane, at_least: int) -> None:
        """Wait (generously) until ``lane`` has ``at_least`` requests waiting."""
        for _ in range(3000):
            if api._admission.queued(lane) >= at_least:
                return
            await asyncio.sleep(0.01)
        raise AssertionError(f"fewer than {at_least} {lane} requests ever waited")


async def test_a_person_s_write_overtakes_another_connection_s_backlog(runner: ActorRunner, nats_server) -> None:
    """Fair queuing by connection, end to end: a benchmark's creates on one connection, still arriving after one
    update sent on another; the update does not wait for them (newest first alone would serve them first)."""
    api = await start_api(runner, user_inflight=1)
    bench = await nats.connect(nats_server.url)
    person = await nats.connect(nats_server.url)
    try:
        client = ApiClient(bench, timeout=120)
        mine = await ApiClient(person).create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "mine"}})
        backlog = Backlog(client)
        backlog.add(0, 300)
        await backlog.queued(api, Lane.USER, 100)  # so at most 200 of the first 300 are done
        mine["data"] = {"k": "v"}
        update = asyncio.create_task(ApiClient(person, timeout=120).update(mine))
        backlog.add(300, 300)
        updated = await update
        creates_done_when_updated = backlog.done
        await asyncio.gather(*backlog.tasks)
        assert updated["data"] == {"k": "v"}
        assert creates_done_when_updated < 300  # it waited for neither backlog
    finally:
        await bench.close()
        await person.close()


async def test_a_lease_renewal_overtakes_a_backlog_of_pod_creates(runner: ActorRunner, nats_server) -> None:
    api = await start_api(runner, user_inflight=1)
    nc = await nats.connect(nats_server.url)
    try:
        client = ApiClient(nc, timeout=60)
        kubelet = ApiClient(nc, node_scope="n1")
        await kubelet.create({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"}})
        lease = await kubelet.create({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                                      "metadata": {"name": "n1", "namespace": "kube-node-lease"},
                                      "spec": {"holderIdentity": "n1"}})
        backlog = Backlog(client)
        backlog.add(0, 300)
        await backlog.queued(api, Lane.USER, 100)
        lease["spec"]["renewTime"] = "2026-11-27T00:00:00.000000Z"
        renewed = await kubelet.update(lease)
        creates_done_when_renewed = backlog.done
        await asyncio.gather(*backlog.tasks)
        assert renewed["spec"]["renewTime"] == "2026-11-27T00:00:00.000000Z"
        assert creates_done_when_renewed < len(backlog.tasks)  # it did not wait behind the queued creates
        assert api.health()["lanes"]["heartbeat"]["served"] >= 3
    finally:
        await nc.close()


async def test_the_datastore_is_told_whose_write_it_is(runner: ActorRunner, nats_server) -> None:
    """A person's write (the user lane) reaches group commit with its connection, and leaves at once when that
    connection has nothing else there; a kubelet's write (the system lane) is not a person's."""
    api = await start_api(runner)
    nc = await nats.connect(nats_server.url)
    try:
        assert api._store is not None and api._store.group is not None
        kubelet = ApiClient(nc, node_scope="n1")
        await kubelet.create({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"}})
        await kubelet.create({"apiVersion": "v1", "kind": "Event", "metadata": {"name": "e1", "namespace": "default"},
                              "involvedObject": {"kind": "Node", "name": "n1"}, "reason": "Test"})
        assert api._store.group.express == 0
        await ApiClient(nc).create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "mine"}})
        assert api._store.group.express == 1
    finally:
        await nc.close()
