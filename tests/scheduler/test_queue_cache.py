"""The scheduling queue's timing rules (fake clock) and the cache's assume / confirm / forget accounting."""

from __future__ import annotations

from actors.scheduler.cache import SchedulerCache
from actors.scheduler.model import NodeInfo, PodInfo
from actors.scheduler.queue import SchedulingQueue


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def make_queue() -> tuple[SchedulingQueue, Clock]:
    clock = Clock()
    return SchedulingQueue(initial_backoff=1.0, max_backoff=4.0, unschedulable_timeout=60.0, clock=clock), clock


def drain(q: SchedulingQueue) -> list[str]:
    out = []
    while (key := q.pop_nowait()) is not None:
        out.append(key)
    return out


def test_active_is_deduplicated_and_ordered_by_priority_then_age() -> None:
    q, _ = make_queue()
    q.add("a")
    q.add("b", priority=10)
    q.add("a")
    q.add("c")
    assert len(q) == 3
    assert drain(q) == ["b", "a", "c"]


def test_deleted_pod_is_never_popped() -> None:
    q, _ = make_queue()
    q.add("a")
    q.add("b")
    q.delete("a")
    assert drain(q) == ["b"]


def test_unschedulable_waits_for_cluster_change_and_honours_backoff() -> None:
    q, clock = make_queue()
    q.add("a")
    assert q.pop_nowait() == "a"
    q.mark_unschedulable("a")
    q.flush()
    assert q.state("a") == "unschedulable" and q.pop_nowait() is None
    q.move_all()  # a node came, but the first back-off (1 s) is not over
    assert q.state("a") == "backoff"
    clock.now += 1.0
    q.flush()
    assert drain(q) == ["a"]
    q.mark_unschedulable("a")  # second failure: 2 s back-off
    clock.now += 1.5
    q.move_all()
    assert q.state("a") == "backoff"
    clock.now += 0.5
    q.flush()
    assert q.state("a") == "active"


def test_unschedulable_is_retried_after_the_timeout_without_any_change() -> None:
    q, clock = make_queue()
    q.add("a")
    q.pop_nowait()
    q.mark_unschedulable("a")
    clock.now += 59
    q.flush()
    assert q.state("a") == "unschedulable"
    clock.now += 1
    q.flush()
    assert q.state("a") == "active"


def test_backoff_doubles_up_to_the_cap_and_resets_once_scheduled() -> None:
    q, clock = make_queue()
    delays = []
    for _ in range(5):
        q.backoff("a")
        start = clock.now
        while q.state("a") != "active":
            clock.now += 0.25
            q.flush()
        delays.append(clock.now - start)
        q.pop_nowait()
    assert delays == [1.0, 2.0, 4.0, 4.0, 4.0]
    q.scheduled("a")
    q.add("a")
    assert q.state("a") == "active"


def test_update_moves_an_unschedulable_pod_and_add_keeps_its_backoff() -> None:
    q, clock = make_queue()
    q.add("a")
    q.pop_nowait()
    q.mark_unschedulable("a")
    clock.now += 5
    q.update("a")
    assert q.state("a") == "active"
    q.pop_nowait()
    q.backoff("a")
    q.add("a")  # seen again by the informer: still owes its back-off
    assert q.state("a") == "backoff"


def pod(key: str, cpu: int = 100, uid: str = "u", group: str | None = "g") -> PodInfo:
    return PodInfo(key=key, uid=uid, cpu=cpu, nonzero_cpu=cpu, group=group)


def test_assume_counts_at_once_and_confirmation_keeps_a_single_count() -> None:
    c = SchedulerCache()
    c.set_node(NodeInfo("n1", alloc_cpu=1000))
    c.assume(pod("ns/a"), "n1")
    n1 = c.nodes["n1"]
    assert (n1.req_cpu, n1.pod_count, n1.groups) == (100, 1, {"g": 1})
    assert c.is_placed("ns/a", "u") and c.assumed_keys() == ["ns/a"]
    assert c.add_bound(pod("ns/a"), "n1") is False  # the informer confirms
    assert (n1.req_cpu, n1.pod_count) == (100, 1) and c.assumed_keys() == []
    assert c.forget("ns/a") is False  # a late bind error cannot undo a confirmed pod
    assert c.remove_pod("ns/a", "u") and (n1.req_cpu, n1.pod_count, n1.groups) == (0, 0, {})


def test_forget_and_expiry_release_an_assumption() -> None:
    c = SchedulerCache()
    c.set_node(NodeInfo("n1", alloc_cpu=1000))
    c.assume(pod("ns/a"), "n1")
    assert c.forget("ns/a") and c.nodes["n1"].req_cpu == 0 and not c.is_placed("ns/a", "u")
    c.assume(pod("ns/b"), "n1")
    c.finish_binding("ns/b", now=10.0)
    assert c.expire_assumed(now=30.0, ttl=30) == []
    assert c.expire_assumed(now=41.0, ttl=30) == ["ns/b"]
    assert c.nodes["n1"].req_cpu == 0


def test_bound_elsewhere_moves_the_accounting_and_unknown_nodes_get_placeholders() -> None:
    c = SchedulerCache()
    c.set_node(NodeInfo("n1", alloc_cpu=1000))
    c.assume(pod("ns/a"), "n1")
    c.add_bound(pod("ns/a"), "n2")  # another scheduler won: n2 is not known yet
    assert c.nodes["n1"].req_cpu == 0 and c.nodes["n2"].req_cpu == 100
    assert [n.name for n in c.schedulable_nodes()] == ["n1"]
    assert c.set_node(NodeInfo("n2", alloc_cpu=2000)) is True
    assert c.nodes["n2"].req_cpu == 100 and [n.name for n in c.schedulable_nodes()] == ["n1", "n2"]
    c.remove_node("n2")
    assert [n.name for n in c.schedulable_nodes()] == ["n1"] and "n2" in c.nodes
    c.remove_pod("ns/a")
    assert "n2" not in c.nodes


def test_node_heartbeat_is_not_a_change_but_new_allocatable_is() -> None:
    c = SchedulerCache()
    assert c.set_node(NodeInfo("n1", alloc_cpu=1000)) is True
    assert c.set_node(NodeInfo("n1", alloc_cpu=1000)) is False
    assert c.set_node(NodeInfo("n1", alloc_cpu=2000)) is True


def test_pod_recreated_with_a_new_uid_replaces_the_old_one() -> None:
    c = SchedulerCache()
    c.set_node(NodeInfo("n1", alloc_cpu=1000))
    c.add_bound(pod("ns/a", uid="1"), "n1")
    assert not c.remove_pod("ns/a", uid="2")
    assert c.add_bound(pod("ns/a", uid="2", cpu=300), "n1") is False
    assert c.nodes["n1"].req_cpu == 300 and c.nodes["n1"].pod_count == 1
