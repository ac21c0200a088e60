"""A pod whose required affinity names its nodes (a DaemonSet pod) is decided among those nodes alone,
with the same result as filtering every node (Kubernetes' NodeAffinity PreFilter result)."""

from __future__ import annotations

import random
from typing import Any

import pytest

from actors.scheduler.decide import Scheduled, Unschedulable, decide
from actors.scheduler.model import NodeInfo, pod_info
from protocol.nodeaffinity import NodeSelectorTerm, SelectorRequirement, named_nodes, pin_to_node
from protocol.tolerations import Taint
from tests.scheduler.helpers import make_pod

Gi = 2**30


def name_in(*names: str) -> SelectorRequirement:
    return SelectorRequirement("metadata.name", "In", names)


@pytest.mark.parametrize(("terms", "names"), [
    (None, None),
    ((NodeSelectorTerm(fields=(name_in("a"),)),), frozenset({"a"})),
    ((NodeSelectorTerm(fields=(name_in("a", "b"), name_in("b", "c"))),), frozenset({"b"})),  # ANDed
    ((NodeSelectorTerm(fields=(name_in("a"),)), NodeSelectorTerm(fields=(name_in("b"),))), frozenset({"a", "b"})),
    # a term without a name requirement lets every node through (terms are ORed)
    ((NodeSelectorTerm(fields=(name_in("a"),)), NodeSelectorTerm((SelectorRequirement("z", "Exists"),))), None),
    ((NodeSelectorTerm(fields=(SelectorRequirement("metadata.name", "NotIn", ("a",)),)),), None),
    ((), frozenset()),
])
def test_named_nodes(terms: tuple[NodeSelectorTerm, ...] | None, names: frozenset[str] | None) -> None:
    assert named_nodes(terms) == names


def cluster(count: int) -> list[NodeInfo]:
    nodes = [NodeInfo(f"node-{i}", alloc_cpu=4000, alloc_memory=8 * Gi) for i in range(count)]
    nodes[7].taints = (Taint("dedicated", "db", "NoSchedule"),)
    nodes[7].refresh()
    nodes[9].alloc_cpu = 100
    return nodes


def daemon_pod(node: str, cpu: str = "200m") -> dict[str, object]:
    pod = make_pod("d", cpu=cpu)
    pin_to_node(pod["spec"], node)
    return pod


@pytest.mark.parametrize("target", ["node-3", "node-7", "node-9", "node-404"])
def test_named_decision_equals_the_full_scan(target: str) -> None:
    nodes = cluster(300)
    named = {n.name: n for n in nodes}
    info = pod_info(daemon_pod(target))
    assert info.node_names == frozenset({target})
    fast = decide(info, nodes, named=named, rng=random.Random(1))
    full = decide(info, nodes, rng=random.Random(1))
    if isinstance(full, Scheduled):
        assert isinstance(fast, Scheduled) and fast.node == full.node == target and fast.examined == 1
    else:
        # the same verdict; the other nodes are all put down to affinity (the full scan may name another
        # filter that failed first on some of them)
        assert isinstance(fast, Unschedulable) and fast.total == 300 and fast.examined <= 1


def test_messages_of_a_named_pod_that_fits_nowhere() -> None:
    nodes = cluster(300)
    named = {n.name: n for n in nodes}
    tainted = decide(pod_info(daemon_pod("node-7")), nodes, named=named)
    assert isinstance(tainted, Unschedulable)
    assert tainted.message == ("0/300 nodes are available: 1 node(s) had untolerated taint {dedicated: db}, "
                               "299 node(s) didn't match Pod's node affinity/selector.")
    small = decide(pod_info(daemon_pod("node-9")), nodes, named=named)
    assert isinstance(small, Unschedulable)
    assert small.message == ("0/300 nodes are available: 1 Insufficient cpu, "
                             "299 node(s) didn't match Pod's node affinity/selector.")
    gone = decide(pod_info(daemon_pod("node-404")), nodes, named=named)
    assert isinstance(gone, Unschedulable)
    assert gone.message == "0/300 nodes are available: 300 node(s) didn't match Pod's node affinity/selector."


def _spec(*terms: Any, node_name: str | None = None) -> dict[str, object]:
    spec: dict[str, object] = {"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": list(terms)}}}}
    if node_name:
        spec["nodeName"] = node_name
    return spec


NAME_A: dict[str, Any] = {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["a"]}]}


@pytest.mark.parametrize(("spec", "pinned"), [
    (_spec(NAME_A), "a"),
    (_spec(NAME_A, node_name="b"), "b"),  # bound: the binding wins
    (_spec({"matchExpressions": [{"key": "z", "operator": "Exists"}], **NAME_A}), "a"),  # the slow path
    (_spec({"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["a", "b"]}]}), None),
    (_spec({"matchFields": [{"key": "metadata.name", "operator": "NotIn", "values": ["a"]}]}), None),
    (_spec(), None),
    ({}, None),
])
def test_pinned_node(spec: dict[str, object], pinned: str | None) -> None:
    from protocol.nodeaffinity import pinned_node

    assert pinned_node(spec) == pinned


def test_pin_to_node_replaces_required_terms_and_keeps_the_rest() -> None:
    spec: dict[str, object] = {"affinity": {"podAntiAffinity": {"x": 1}, "nodeAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{"matchExpressions": []}]},
        "preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 1}]}}}
    pin_to_node(spec, "n9")
    affinity = spec["affinity"]
    assert isinstance(affinity, dict) and affinity["podAntiAffinity"] == {"x": 1}
    assert affinity["nodeAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"] == [{"weight": 1}]
    assert named_nodes(pod_info({"metadata": {"name": "p"}, "spec": spec}).required_terms) == frozenset({"n9"})
