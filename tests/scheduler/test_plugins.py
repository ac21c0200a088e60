"""Table tests of the pure parts: parsing, every filter, every score, sampling and the decision."""

from __future__ import annotations

import random
from typing import Any

import pytest

from actors.scheduler import filters as f
from actors.scheduler import scores as s
from actors.scheduler.decide import Scheduled, Unschedulable, decide, failure_message, nodes_to_find
from actors.scheduler.model import (
    NONZERO_CPU,
    NONZERO_MEMORY,
    HostPort,
    NodeInfo,
    NodeSelectorTerm,
    PodInfo,
    SelectorRequirement,
    add_usage,
    node_info,
    pod_info,
    responsible_for,
)
from protocol.tolerations import Taint, Toleration
from tests.scheduler.helpers import make_node, make_pod

Gi, Mi = 2**30, 2**20


def node(name: str = "n", **kw: Any) -> NodeInfo:
    kw.setdefault("alloc_cpu", 4000)
    kw.setdefault("alloc_memory", 8 * Gi)
    return NodeInfo(name, **kw)


def pod(**kw: Any) -> PodInfo:
    kw.setdefault("key", "default/p")
    kw.setdefault("uid", "u")
    return PodInfo(**kw)


def req(key: str, op: str, *values: str) -> SelectorRequirement:
    return SelectorRequirement(key, op, values)


def term(*exprs: SelectorRequirement, fields: tuple[SelectorRequirement, ...] = ()) -> NodeSelectorTerm:
    return NodeSelectorTerm(exprs, fields)


# -- parsing ------------------------------------------------------------------------------------

def test_pod_requests_sum_containers_max_init_plus_overhead() -> None:
    p = make_pod("p", cpu="250m", memory="100Mi")
    p["spec"]["containers"].append({"name": "side", "image": "x", "resources": {"requests": {"cpu": "0.5"}}})
    p["spec"]["initContainers"] = [{"name": "init", "image": "x",
                                    "resources": {"requests": {"cpu": "1", "memory": "50Mi", "example.com/gpu": "1"}}}]
    p["spec"]["overhead"] = {"cpu": "10m"}
    info = pod_info(p)
    assert info.cpu == 1010  # max(250 + 500, 1000) + 10
    assert info.memory == 100 * Mi  # max(100Mi, 50Mi)
    assert info.other == (("example.com/gpu", 1),)
    assert info.nonzero_cpu == 1000 and info.nonzero_memory == 100 * Mi + NONZERO_MEMORY
    bare = pod_info(make_pod("q", cpu=None, memory=None))
    assert (bare.cpu, bare.memory, bare.nonzero_cpu, bare.nonzero_memory) == (0, 0, NONZERO_CPU, NONZERO_MEMORY)


def test_pod_info_ports_group_tolerations_affinity() -> None:
    p = make_pod("p", owner={"name": "rs", "uid": "rs-1"}, labels={"app": "a"}, hostNetwork=True,
                 tolerations=[{"key": "k", "operator": "Exists", "effect": "NoSchedule"}],
                 nodeSelector={"disk": "ssd"},
                 affinity={"nodeAffinity": {
                     "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                         {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a", "b"]}]}]},
                     "preferredDuringSchedulingIgnoredDuringExecution": [
                         {"weight": 5, "preference": {"matchExpressions": [{"key": "fast", "operator": "Exists"}]}}]}})
    p["spec"]["containers"][0]["ports"] = [{"containerPort": 80}, {"containerPort": 53, "hostPort": 5353,
                                                                   "protocol": "UDP", "hostIP": "10.0.0.1"}]
    info = pod_info(p)
    assert info.host_ports == (HostPort("0.0.0.0", "TCP", 80), HostPort("10.0.0.1", "UDP", 5353))
    assert info.group == "owner/rs-1"
    assert info.tolerations == (Toleration("k", "Exists", "", "NoSchedule"),)
    assert info.node_selector == (("disk", "ssd"),)
    assert info.required_terms == (term(req("zone", "In", "a", "b")),)
    assert info.preferred_terms == ((5, term(req("fast", "Exists"))),)
    assert pod_info(make_pod("q", labels={"b": "2", "a": "1"})).group == "labels/default/a=1,b=2"
    assert pod_info(make_pod("r")).group is None


@pytest.mark.parametrize(("change", "expected"), [
    ({}, True),
    ({"spec": {"schedulerName": "default-scheduler"}}, True),
    ({"spec": {"schedulerName": "other"}}, False),
    ({"spec": {"nodeName": "n1"}}, False),
    ({"metadata": {"deletionTimestamp": "2024-01-01T00:00:00Z"}}, False),
    ({"status": {"phase": "Succeeded"}}, False),
    ({"status": {"phase": "Failed"}}, False),
    ({"status": {"phase": "Pending"}}, True),
])
def test_responsible_for(change: dict[str, Any], expected: bool) -> None:
    p = make_pod("p")
    for part, values in change.items():
        p.setdefault(part, {}).update(values)
    assert responsible_for(p) is expected


def test_node_info_parsing() -> None:
    n = node_info(make_node("a", cpu="2", memory="1Gi", pods="20", labels={"x": "y"},
                            taints=[{"key": "k", "value": "v", "effect": "NoSchedule"}], ready="False",
                            unschedulable=True))
    assert (n.alloc_cpu, n.alloc_memory, n.alloc_pods) == (2000, Gi, 20)
    assert n.labels["x"] == "y" and n.taints == (Taint("k", "v", "NoSchedule"),)
    assert n.ready == "False" and n.unschedulable
    bare = node_info({"kind": "Node", "metadata": {"name": "b"},
                      "status": {"capacity": {"cpu": "1", "memory": "1Mi"}}})
    assert (bare.alloc_cpu, bare.alloc_memory, bare.alloc_pods, bare.ready) == (1000, Mi, 110, None)


# -- filters ------------------------------------------------------------------------------------

@pytest.mark.parametrize(("unschedulable", "tolerations", "fits"), [
    (False, (), True),
    (True, (), False),
    (True, (Toleration("node.kubernetes.io/unschedulable", "Exists", "", "NoSchedule"),), True),
    (True, (Toleration("", "Exists"),), True),
    (True, (Toleration("other", "Exists"),), False),
])
def test_node_unschedulable(unschedulable: bool, tolerations: tuple[Toleration, ...], fits: bool) -> None:
    result = f.node_unschedulable(pod(tolerations=tolerations), node(unschedulable=unschedulable))
    assert result == (() if fits else (f.UNSCHEDULABLE,))


@pytest.mark.parametrize(("ready", "tolerations", "expected"), [
    ("True", (), ()),
    (None, (), ()),  # no Ready condition: judged by taints alone
    ("False", (), (f.NOT_READY,)),
    ("Unknown", (), (f.UNREACHABLE,)),
    ("False", (Toleration("node.kubernetes.io/not-ready", "Exists"),), ()),
    ("Unknown", (Toleration("node.kubernetes.io/not-ready", "Exists"),), (f.UNREACHABLE,)),
    ("Unknown", (Toleration("node.kubernetes.io/unreachable", "Exists", "", "NoSchedule"),), ()),
    ("False", (Toleration("node.kubernetes.io/not-ready", "Exists", "", "NoExecute"),), (f.NOT_READY,)),
])
def test_node_ready(ready: str | None, tolerations: tuple[Toleration, ...], expected: tuple[str, ...]) -> None:
    assert f.node_ready(pod(tolerations=tolerations), node(ready=ready)) == expected


# the toleration rule itself is tested in tests/protocol/test_tolerations.py


@pytest.mark.parametrize(("taints", "tolerations", "expected"), [
    ((), (), ()),
    ((Taint("k", "v", "NoSchedule"),), (), ("node(s) had untolerated taint {k: v}",)),
    ((Taint("k", "v", "NoExecute"),), (), ("node(s) had untolerated taint {k: v}",)),
    ((Taint("k", "v", "PreferNoSchedule"),), (), ()),  # only scored
    ((Taint("k", "v", "NoSchedule"),), (Toleration("k", "Equal", "v", "NoSchedule"),), ()),
    ((Taint("k", "v", "NoSchedule"), Taint("j", "", "NoExecute")),
     (Toleration("k", "Equal", "v", "NoSchedule"),), ("node(s) had untolerated taint {j: }",)),
    ((Taint("k", "v", "NoSchedule"), Taint("j", "", "NoExecute")), (Toleration("", "Exists"),), ()),
])
def test_taint_toleration(taints: tuple[Taint, ...], tolerations: tuple[Toleration, ...],
                          expected: tuple[str, ...]) -> None:
    assert f.taint_toleration(pod(tolerations=tolerations), node(taints=taints)) == expected


LABELS = {"zone": "a", "disk": "ssd", "cores": "8"}


@pytest.mark.parametrize(("requirement", "matches"), [
    (req("zone", "In", "a", "b"), True),
    (req("zone", "In", "b"), False),
    (req("missing", "In", "a"), False),
    (req("zone", "NotIn", "b"), True),
    (req("zone", "NotIn", "a"), False),
    (req("missing", "NotIn", "a"), True),
    (req("disk", "Exists"), True),
    (req("missing", "Exists"), False),
    (req("missing", "DoesNotExist"), True),
    (req("disk", "DoesNotExist"), False),
    (req("cores", "Gt", "4"), True),
    (req("cores", "Gt", "8"), False),
    (req("cores", "Lt", "16"), True),
    (req("cores", "Lt", "8"), False),
    (req("zone", "Gt", "1"), False),  # not an integer
    (req("cores", "Gt", "x"), False),
    (req("missing", "Lt", "5"), False),
    (req("zone", "Bogus", "a"), False),
])
def test_selector_requirements(requirement: SelectorRequirement, matches: bool) -> None:
    assert f.requirement_matches(requirement, LABELS) is matches


@pytest.mark.parametrize(("selector", "terms", "fits"), [
    ((), None, True),
    ((("disk", "ssd"),), None, True),
    ((("disk", "hdd"),), None, False),
    ((("disk", "ssd"), ("zone", "b")), None, False),
    ((), (term(req("zone", "In", "a")),), True),
    ((), (term(req("zone", "In", "b")), term(req("disk", "Exists"))), True),  # terms are ORed
    ((), (term(req("zone", "In", "a"), req("disk", "In", "hdd")),), False),  # expressions are ANDed
    ((), (), False),  # no terms match nothing
    ((), (term(),), False),  # an empty term matches nothing
    ((), (term(fields=(req("metadata.name", "In", "n"),)),), True),
    ((), (term(fields=(req("metadata.name", "NotIn", "n"),)),), False),
    ((("disk", "ssd"),), (term(req("zone", "In", "b")),), False),  # both must hold
])
def test_node_affinity(selector: tuple[tuple[str, str], ...], terms: tuple[NodeSelectorTerm, ...] | None,
                       fits: bool) -> None:
    result = f.node_affinity(pod(node_selector=selector, required_terms=terms), node(labels=LABELS))
    assert result == (() if fits else (f.AFFINITY_MISMATCH,))


@pytest.mark.parametrize(("used", "wanted", "fits"), [
    ((), (HostPort("0.0.0.0", "TCP", 80),), True),
    ((HostPort("0.0.0.0", "TCP", 80),), (HostPort("0.0.0.0", "TCP", 80),), False),
    ((HostPort("0.0.0.0", "TCP", 80),), (HostPort("0.0.0.0", "UDP", 80),), True),
    ((HostPort("0.0.0.0", "TCP", 80),), (HostPort("0.0.0.0", "TCP", 81),), True),
    ((HostPort("10.0.0.1", "TCP", 80),), (HostPort("10.0.0.2", "TCP", 80),), True),
    ((HostPort("10.0.0.1", "TCP", 80),), (HostPort("10.0.0.1", "TCP", 80),), False),
    ((HostPort("10.0.0.1", "TCP", 80),), (HostPort("0.0.0.0", "TCP", 80),), False),
    ((HostPort("0.0.0.0", "TCP", 80),), (HostPort("10.0.0.1", "TCP", 80),), False),
])
def test_node_ports(used: tuple[HostPort, ...], wanted: tuple[HostPort, ...], fits: bool) -> None:
    n = node()
    add_usage(n, pod(key="other", host_ports=used))
    assert f.node_ports(pod(host_ports=wanted), n) == (() if fits else (f.PORTS_TAKEN,))


@pytest.mark.parametrize(("requested", "pods", "wanted", "expected"), [
    ((0, 0), 0, dict(cpu=4000, memory=8 * Gi), ()),
    ((1000, 0), 0, dict(cpu=3000), ()),
    ((1000, 0), 0, dict(cpu=3001), ("Insufficient cpu",)),
    ((0, 7 * Gi), 0, dict(memory=Gi + 1), ("Insufficient memory",)),
    ((4000, 8 * Gi), 0, dict(cpu=1, memory=1), ("Insufficient cpu", "Insufficient memory")),
    ((4000, 8 * Gi), 0, dict(), ()),  # no requests always fit the resources
    ((0, 0), 110, dict(), ("Too many pods",)),
    ((0, 0), 109, dict(cpu=1), ()),
    ((0, 0), 0, dict(other=(("example.com/gpu", 1),)), ("Insufficient example.com/gpu",)),
])
def test_node_resources_fit(requested: tuple[int, int], pods: int, wanted: dict[str, Any],
                            expected: tuple[str, ...]) -> None:
    n = node(req_cpu=requested[0], req_memory=requested[1], pod_count=pods)
    assert f.node_resources_fit(pod(**wanted), n) == expected


def test_extended_resources_fit_when_allocatable() -> None:
    n = node(alloc_other={"example.com/gpu": 2}, req_other={"example.com/gpu": 1})
    assert f.node_resources_fit(pod(other=(("example.com/gpu", 1),)), n) == ()
    assert f.node_resources_fit(pod(other=(("example.com/gpu", 2),)), n) == ("Insufficient example.com/gpu",)


def test_run_filters_stops_at_first_failure_and_skips_absent_nodes() -> None:
    n = node(unschedulable=True, req_cpu=4000)
    assert f.run_filters(pod(cpu=1), n) == (f.UNSCHEDULABLE,)
    assert f.run_filters(pod(cpu=1), node(present=False)) == (f.NOT_FOUND,)
    assert f.run_filters(pod(cpu=1), node()) == ()


# -- scores -------------------------------------------------------------------------------------

@pytest.mark.parametrize(("used", "wanted", "expected"), [
    ((0, 0), (0, 0), 100),
    ((2000, 4 * Gi), (0, 0), 50),
    ((1000, 0), (1000, 4 * Gi), 50),
    ((1000, 0), (0, 0), 87),  # cpu 75% free, memory 100% free
    ((4000, 8 * Gi), (1, 1), 0),
])
def test_least_allocated(used: tuple[int, int], wanted: tuple[int, int], expected: int) -> None:
    n = node(nonzero_cpu=used[0], nonzero_memory=used[1])
    p = pod(nonzero_cpu=wanted[0], nonzero_memory=wanted[1])
    assert s.least_allocated(p, n) == expected


@pytest.mark.parametrize(("used", "expected"), [
    ((2000, 4 * Gi), 100),  # 50% / 50%
    ((4000, 0), 50),  # 100% / 0%
    ((1000, 6 * Gi), 75),  # 25% / 75%
])
def test_balanced_allocation(used: tuple[int, int], expected: int) -> None:
    n = node(nonzero_cpu=used[0], nonzero_memory=used[1])
    assert s.balanced_allocation(pod(nonzero_cpu=0, nonzero_memory=0), n) == expected


def test_siblings_and_prefer_no_schedule_and_preferred_affinity_raw_scores() -> None:
    n = node(groups={"g": 3}, labels={"fast": "yes", "zone": "a"},
             taints=(Taint("a", "", "PreferNoSchedule"), Taint("b", "", "PreferNoSchedule"),
                     Taint("c", "", "NoSchedule")))
    assert s.siblings(pod(group="g"), n) == 3
    assert s.siblings(pod(group="h"), n) == 0
    assert s.siblings(pod(), n) == 0
    assert s.intolerable_prefer_no_schedule(pod(), n) == 2
    assert s.intolerable_prefer_no_schedule(pod(tolerations=(Toleration("a", "Exists", "", "PreferNoSchedule"),)),
                                            n) == 1
    assert s.intolerable_prefer_no_schedule(pod(tolerations=(Toleration("a", "Exists", "", "NoSchedule"),)),
                                            n) == 2  # a NoSchedule toleration does not count
    p = pod(preferred_terms=((5, term(req("fast", "Exists"))), (3, term(req("zone", "In", "b"))),
                             (2, term(req("zone", "In", "a")))))
    assert s.preferred_affinity(p, n) == 7


@pytest.mark.parametrize(("raw", "reverse", "expected"), [
    ([0, 0], False, [0, 0]),
    ([0, 0], True, [100, 100]),
    ([1, 2, 4], False, [25, 50, 100]),
    ([0, 1, 2], True, [100, 50, 0]),
    ([], True, []),
])
def test_normalize(raw: list[int], reverse: bool, expected: list[int]) -> None:
    assert s.normalize(raw, reverse=reverse) == expected


def test_score_nodes_weights_spreading_over_free_space() -> None:
    empty_with_sibling = node("a", groups={"g": 1})
    busier_without = node("b", nonzero_cpu=1000, nonzero_memory=2 * Gi)
    totals = s.score_nodes(pod(group="g"), [empty_with_sibling, busier_without])
    assert totals[1] > totals[0]
    tainted = node("c", taints=(Taint("x", "", "PreferNoSchedule"),))
    assert s.score_nodes(pod(), [tainted, node("d")])[1] - s.score_nodes(pod(), [tainted, node("d")])[0] == 300


# -- sampling and decision ---------------------------------------------------------------------

@pytest.mark.parametrize(("total", "percentage", "expected"), [
    (0, 0, 0), (50, 0, 50), (99, 0, 99), (100, 0, 100), (200, 0, 100), (1000, 0, 420),
    (5000, 0, 500), (6000, 0, 300), (15000, 0, 750), (1000, 10, 100), (1000, 30, 300), (1000, 100, 1000),
])
def test_nodes_to_find(total: int, percentage: int, expected: int) -> None:
    assert nodes_to_find(total, percentage) == expected


def test_failure_message_is_sorted_like_kube_scheduler() -> None:
    reasons = {"Insufficient cpu": 2, "node(s) had untolerated taint {k: v}": 1}
    assert failure_message(3, reasons) == ("0/3 nodes are available: 1 node(s) had untolerated taint {k: v}, "
                                           "2 Insufficient cpu.")
    assert failure_message(0, {}) == "0/0 nodes are available: no nodes available to schedule pods."


def test_decide_picks_the_best_node_and_reports_failures() -> None:
    nodes = [node("full", req_cpu=4000), node("busy", nonzero_cpu=3000), node("idle"),
             node("tainted", taints=(Taint("k", "v", "NoSchedule"),))]
    decision = decide(pod(cpu=500), nodes, rng=random.Random(0))
    assert isinstance(decision, Scheduled) and decision.node == "idle"
    assert decision.feasible == 2 and decision.examined == 4
    nothing = decide(pod(cpu=5000), nodes)
    assert isinstance(nothing, Unschedulable)
    assert nothing.reasons == {"Insufficient cpu": 3, "node(s) had untolerated taint {k: v}": 1}
    assert nothing.message == ("0/4 nodes are available: 1 node(s) had untolerated taint {k: v}, "
                               "3 Insufficient cpu.")
    assert isinstance(decide(pod(), []), Unschedulable)


def test_decide_samples_from_a_rotating_start() -> None:
    nodes = [node(f"n{i}") for i in range(1000)]
    decision = decide(pod(), nodes, start=990, rng=random.Random(0))
    assert isinstance(decision, Scheduled)
    assert decision.examined == 420 and decision.feasible == 420
    index = int(decision.node[1:])
    assert index >= 990 or index < 410  # only the sampled window (wrapping around) was considered
    full = [node(f"n{i}", req_cpu=4000) for i in range(1000)]
    assert decide(pod(cpu=1), full).examined == 1000  # nothing fits: every node is examined


def test_decide_breaks_ties_randomly() -> None:
    nodes = [node(f"n{i}") for i in range(4)]
    rng = random.Random(3)
    chosen = {decide(pod(), nodes, rng=rng).node for _ in range(200)}  # type: ignore[union-attr]
    assert chosen == {"n0", "n1", "n2", "n3"}


def test_fast_paths_decide_exactly_as_the_plugins_do() -> None:
    """The inline resource fit and the fused resource scores are optimisations: same results as the plugins."""
    rng = random.Random(7)

    def random_node(i: int) -> NodeInfo:
        kw: dict[str, Any] = {"alloc_cpu": rng.choice([0, 1000, 4000, 8000]),
                              "alloc_memory": rng.choice([0, Gi, 8 * Gi]), "alloc_pods": rng.choice([0, 1, 110]),
                              "req_cpu": rng.randrange(0, 9000), "req_memory": rng.randrange(0, 9 * Gi),
                              "nonzero_cpu": rng.randrange(0, 9000), "nonzero_memory": rng.randrange(0, 9 * Gi),
                              "pod_count": rng.randrange(0, 3), "groups": {"g": rng.randrange(0, 3)}}
        if rng.random() < 0.1:
            kw["taints"] = (Taint("k", "v", rng.choice(["NoSchedule", "PreferNoSchedule"])),)
        if rng.random() < 0.05:
            kw["present"] = False
        return node(f"n{i}", **kw)

    for _ in range(300):
        nodes = [random_node(i) for i in range(rng.randrange(1, 40))]
        p = pod(cpu=rng.choice([0, 100, 2000]), memory=rng.choice([0, Mi, 4 * Gi]),
                nonzero_cpu=rng.choice([100, 2000]), nonzero_memory=rng.choice([200 * Mi, 4 * Gi]),
                group=rng.choice([None, "g"]))
        assert s.resource_scores(p, nodes) == [s.least_allocated(p, n) + s.balanced_allocation(p, n) for n in nodes]
        plugin_totals = [0] * len(nodes)
        for plugin in s.SCORES:  # the plugin-by-plugin definition, without the fused pass
            if plugin.relevant(p) and (plugin.node_relevant is None or any(map(plugin.node_relevant, nodes))):
                raw = [plugin.run(p, n) for n in nodes]
                if plugin.normalize is not None:
                    raw = s.normalize(raw, reverse=plugin.normalize == "reverse")
                plugin_totals = [t + plugin.weight * r for t, r in zip(plugin_totals, raw, strict=True)]
        assert s.score_nodes(p, nodes) == plugin_totals
        feasible = [n.name for n in nodes if not f.run_filters(p, n)]
        decision = decide(p, nodes, percentage=100, rng=random.Random(1))
        if feasible:
            assert isinstance(decision, Scheduled) and decision.node in feasible
            assert decision.feasible == len(feasible)
        else:
            assert isinstance(decision, Unschedulable)
            expected: dict[str, int] = {}
            for n in nodes:
                for reason in f.run_filters(p, n):
                    expected[reason] = expected.get(reason, 0) + 1
            assert decision.reasons == expected


def test_sampled_decisions_match_the_filter_by_filter_loop() -> None:
    """The chunked search for a common pod finds the same first feasible nodes from a rotating start, and
    examines as many nodes, as running every filter node by node; the memoized scores stay right as usage
    changes (the cache assumes each chosen pod, as the scheduler does)."""
    rng = random.Random(11)
    for _ in range(60):
        nodes = []
        for i in range(rng.randrange(1, 300)):
            kw: dict[str, Any] = {"alloc_cpu": rng.choice([1000, 4000]), "alloc_pods": rng.choice([1, 110]),
                                  "req_cpu": rng.choice([0, 0, 0, 900, 4000])}
            if rng.random() < 0.1:
                kw["taints"] = (Taint("k", "v", rng.choice(["NoSchedule", "PreferNoSchedule"])),)
            if rng.random() < 0.05:
                kw["unschedulable"] = True
            if rng.random() < 0.05:
                kw["present"] = False
            nodes.append(node(f"n{i}", **kw))
        tolerations = (Toleration("k", "Equal", "v", "NoSchedule"),) if rng.random() < 0.3 else ()
        start = rng.randrange(0, 1000)
        for step in range(20):
            p = pod(key=f"default/p{step}", cpu=rng.choice([0, 100, 500]), memory=rng.choice([0, Mi]),
                    nonzero_cpu=rng.choice([100, 500]), group=rng.choice([None, "g"]), tolerations=tolerations)
            percentage = rng.choice([0, 5, 30, 100])
            want = nodes_to_find(len(nodes), percentage)
            order = nodes[start % len(nodes):] + nodes[:start % len(nodes)]
            feasible, examined = [], 0
            for n in order:
                examined += 1
                if not f.run_filters(p, n):
                    feasible.append(n)
                    if len(feasible) >= want:
                        break
            decision = decide(p, nodes, start=start, percentage=percentage, rng=random.Random(step))
            if not feasible:
                assert isinstance(decision, Unschedulable) and decision.examined == len(nodes)
                break
            assert isinstance(decision, Scheduled)
            assert (decision.feasible, decision.examined) == (len(feasible), examined)
            totals = [0] * len(feasible)
            for plugin in s.SCORES:
                if plugin.relevant(p) and (plugin.node_relevant is None or any(map(plugin.node_relevant, feasible))):
                    raw = [plugin.run(p, n) for n in feasible]
                    if plugin.normalize is not None:
                        raw = s.normalize(raw, reverse=plugin.normalize == "reverse")
                    totals = [t + plugin.weight * r for t, r in zip(totals, raw, strict=True)]
            if len(feasible) > 1:
                assert decision.score == max(totals)
                assert decision.node in {n.name for n, t in zip(feasible, totals, strict=True) if t == max(totals)}
            chosen = next(n for n in nodes if n.name == decision.node)
            add_usage(chosen, p)
            start += examined


def test_memoized_resource_scores_follow_usage_and_allocatable() -> None:
    n = node("m")
    p = pod(nonzero_cpu=500, nonzero_memory=Gi)
    assert s.resource_scores(p, [n]) == [s.least_allocated(p, n) + s.balanced_allocation(p, n)]
    add_usage(n, pod(cpu=1000, memory=2 * Gi, nonzero_cpu=1000, nonzero_memory=2 * Gi))
    assert s.resource_scores(p, [n]) == [s.least_allocated(p, n) + s.balanced_allocation(p, n)]
    n.alloc_cpu = 16000
    n.refresh()
    assert s.resource_scores(p, [n]) == [s.least_allocated(p, n) + s.balanced_allocation(p, n)]
