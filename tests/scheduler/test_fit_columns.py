"""The cache's fit columns (``FitColumns``) give ``decide`` the same answers as computing every node afresh,
through usage added and removed, allocatable changed, nodes cordoned, soft-tainted, removed and added: a
node's change marks its slot unknown in every column, and its groups' sibling counts and its soft taint
follow it."""

from __future__ import annotations

import random

from actors.scheduler.cache import SchedulerCache
from actors.scheduler.decide import Scheduled, Unschedulable, decide
from actors.scheduler.model import (
    MAX_FIT_COLUMNS,
    MAX_GROUP_COLUMNS,
    UNKNOWN_FIT,
    FitColumns,
    NodeInfo,
    PodInfo,
    node_info,
    pod_info,
)
from tests.scheduler.helpers import make_node, make_pod


def afresh(cache: SchedulerCache, pod: PodInfo, seed: int) -> Scheduled | Unschedulable:
    nodes = cache.schedulable_nodes()
    for node in nodes:
        node.memo.clear()
    return decide(pod, nodes, start=cache.next_start, rng=random.Random(seed), named=cache.nodes)


SOFT = [{"key": "spot", "value": "yes", "effect": "PreferNoSchedule"}]


def test_decisions_with_columns_match_decisions_computed_afresh() -> None:
    rng = random.Random(3)
    cache = SchedulerCache()
    for i in range(300):  # above 100 nodes: a decision samples some of them, from a rotating start
        cache.set_node(node_info(make_node(f"n{i:03d}", cpu="1", memory="4Gi", pods="20")))
    placed: list[str] = []
    outcomes = set()
    soft_seen = False
    for i in range(3000):
        group = rng.choice([None, "a", "b", f"many-{rng.randrange(2 * MAX_GROUP_COLUMNS)}"])  # more than kept
        owner = None if group is None else {"name": f"rs-{group}", "uid": group}
        pod = make_pod(f"p{i}", cpu=f"{rng.choice([100, 250, 500])}m", memory=f"{rng.choice([128, 512])}Mi",
                       owner=owner)
        pod["metadata"]["uid"] = f"u{i}"
        info = pod_info(pod)
        expected = afresh(cache, info, i)
        got = decide(info, cache.schedulable_nodes(), start=cache.next_start, rng=random.Random(i),
                     named=cache.nodes, fits=cache.fits)
        assert got == expected, f"pod {i}"
        outcomes.add(type(got))
        cache.next_start = (cache.next_start + got.examined) % len(cache.schedulable_nodes())
        if isinstance(got, Scheduled):
            cache.assume(info, got.node)
            placed.append(info.key)
        if i % 97 == 0 and placed:  # pods finish: usage removed
            for key in rng.sample(placed, min(40, len(placed))):
                cache.remove_pod(key)
                placed.remove(key)
        if i % 301 == 0:  # a node's allocatable changes, one is cordoned, one goes, one comes
            name = f"n{rng.randrange(300):03d}"
            cache.set_node(node_info(make_node(name, cpu=rng.choice(["1", "2", "4"]), memory="4Gi", pods="20")))
            cache.set_node(node_info(make_node(f"n{rng.randrange(300):03d}", unschedulable=True)))
            cache.remove_node(f"n{rng.randrange(300):03d}")
            cache.set_node(node_info(make_node(f"extra{i}", cpu="2", memory="4Gi", pods="20")))
            soft = rng.random() < 0.5  # a PreferNoSchedule taint comes on one node, or goes from every node
            chosen = f"n{rng.randrange(300):03d}"
            for node in list(cache.schedulable_nodes()):
                if node.name == chosen if soft else node.soft_tainted:
                    cache.set_node(node_info(make_node(node.name, cpu="2", memory="4Gi", pods="20",
                                                       taints=SOFT if soft else None)))
        tainted = {node.slot for node in cache.schedulable_nodes() if node.soft_tainted}
        assert cache.fits.soft_tainted == tainted
        soft_seen |= bool(tainted)
    assert outcomes == {Scheduled, Unschedulable}  # the cluster filled up and emptied along the way
    assert soft_seen


def test_a_changed_node_is_forgotten_in_every_column_and_columns_are_bounded() -> None:
    nodes = [NodeInfo(f"n{i}", alloc_cpu=1000, alloc_memory=2**30) for i in range(3)]
    fits = FitColumns(nodes)
    for slot, node in enumerate(nodes):
        node.slot, node.fits = slot, fits
    a, b = fits.column("a"), fits.column("b")
    a[:] = b[:] = [7, 7, 7]
    nodes[1].changed()
    assert a == b == [7, UNKNOWN_FIT, 7]
    for i in range(MAX_FIT_COLUMNS):
        fits.column(f"k{i}")
    assert fits.column("a") is not a  # the oldest was dropped, and starts over unknown
    assert fits.column("a") == [UNKNOWN_FIT] * 3
