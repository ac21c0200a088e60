"""The console's per-node pod sums (``actors.gateway.nodesums``), pure: a pod's facts, table-tested, and the
running sums checked against a sum from scratch after any sequence of creations, updates, bindings,
terminations and deletions (hypothesis), plus the changed-nodes answers a feed sends on."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actors.gateway.nodesums import FIELDS, Facts, NodeSums, facts, pod_key


def pod(name: str = "p", node: str | None = "n1", phase: str | None = "Running", *,
        containers: list[dict[str, Any]] | None = None, inits: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": containers if containers is not None else [requests("100m", "64Mi")]}
    if node is not None:
        spec["nodeName"] = node
    if inits is not None:
        spec["initContainers"] = inits
    return {"metadata": {"namespace": "default", "name": name}, "spec": spec,
            "status": {"phase": phase} if phase else {}}


def requests(cpu: Any = None, memory: Any = None) -> dict[str, Any]:
    wanted = {k: v for k, v in (("cpu", cpu), ("memory", memory)) if v is not None}
    return {"name": "c", "image": "i", "resources": {"requests": wanted}}


@pytest.mark.parametrize(("obj", "expected"), [
    (pod(), Facts("n1", 100, 64 * 2**20, True)),
    (pod(phase="Pending"), Facts("n1", 100, 64 * 2**20, False)),
    (pod(phase=None), Facts("n1", 100, 64 * 2**20, False)),
    (pod(phase="Unknown"), Facts("n1", 100, 64 * 2**20, False)),
    (pod(phase="Succeeded"), None),
    (pod(phase="Failed"), None),
    (pod(node=None, phase="Pending"), Facts("", 100, 64 * 2**20, False)),
    # containers add up; the largest init container wins when it is larger (per resource)
    (pod(containers=[requests("1", "1Gi"), requests("500m")]), Facts("n1", 1500, 2**30, True)),
    (pod(containers=[requests("1", "1Gi")], inits=[requests("2", "1Mi"), requests("100m", "2Gi")]),
     Facts("n1", 2000, 2 * 2**30, True)),
    (pod(containers=[{"name": "c", "image": "i"}]), Facts("n1", 0, 0, True)),
    (pod(containers=[requests(2, 1000)]), Facts("n1", 2000, 1000, True)),
    # what validation would refuse costs nothing rather than failing the feed
    (pod(containers=[requests("lots", True)]), Facts("n1", 0, 0, True)),
    ({"metadata": {"name": "x"}}, Facts("", 0, 0, False)),
])
def test_facts(obj: dict[str, Any], expected: Facts | None) -> None:
    assert facts(obj) == expected


def test_pod_key() -> None:
    assert pod_key(pod("web")) == "default/web"
    assert pod_key({"metadata": {"name": "n"}}) == "/n"


def test_sums_follow_a_pod_through_its_life() -> None:
    sums = NodeSums()
    assert sums.apply("default/a", facts(pod("a", node=None, phase="Pending"))) == ("",)
    assert sums.totals("") == (1, 100, 64 * 2**20, 1)
    changed = sums.apply("default/a", facts(pod("a", node="n1", phase="Pending")))  # bound
    assert sorted(changed) == ["", "n1"]
    assert sums.totals("") is None and sums.totals("n1") == (1, 100, 64 * 2**20, 1)
    assert sums.apply("default/a", facts(pod("a"))) == ("n1",)  # running
    assert sums.totals("n1") == (1, 100, 64 * 2**20, 0)
    assert sums.apply("default/a", facts(pod("a"))) == ()  # a status update that changes no figure
    sums.apply("default/b", facts(pod("b", containers=[requests("1", "1Gi")])))
    assert sums.totals("n1") == (2, 1100, 64 * 2**20 + 2**30, 0)
    assert sums.apply("default/a", facts(pod("a", phase="Succeeded"))) == ("n1",)  # terminated: costs nothing
    assert sums.totals("n1") == (1, 1000, 2**30, 0) and len(sums) == 1
    assert sums.apply("default/a", None) == ()  # its deletion changes nothing more
    assert sums.apply("default/b", None) == ("n1",)
    assert sums.totals("n1") is None and len(sums) == 0 and sums.snapshot() == {}


def test_replace_reports_only_the_nodes_that_differ() -> None:
    sums = NodeSums()
    for name, node in (("a", "n1"), ("b", "n2"), ("c", "n3")):
        sums.apply(f"default/{name}", facts(pod(name, node=node)))
    same, moved = facts(pod("a", node="n1")), facts(pod("b", node="n4"))
    assert same is not None and moved is not None
    assert sums.replace({"default/a": same, "default/b": moved}) == {"n2", "n3", "n4"}
    assert sums.snapshot() == {"n1": (1, 100, 64 * 2**20, 0), "n4": (1, 100, 64 * 2**20, 0)}
    assert sums.snapshot({"n2", "n4"}) == {"n2": None, "n4": (1, 100, 64 * 2**20, 0)}
    assert FIELDS == ("pods", "cpu", "memory", "notRunning")


NODES = st.sampled_from(["", "n1", "n2", "n3"])
PHASES = st.sampled_from([None, "Pending", "Running", "Succeeded", "Failed", "Unknown"])
CHANGE = st.tuples(st.sampled_from(["a", "b", "c", "d", "e"]), st.booleans(), NODES, PHASES,
                   st.integers(0, 4000), st.integers(0, 2**34))


@settings(max_examples=300, deadline=None)
@given(st.lists(CHANGE, max_size=60))
def test_running_sums_equal_a_sum_from_scratch(changes: list[tuple[str, bool, str, str | None, int, int]]) -> None:
    sums, alive, reported = NodeSums(), {}, {}
    for name, deleted, node, phase, cpu, memory in changes:
        key = f"default/{name}"
        obj = pod(name, node=node or None, phase=phase, containers=[requests(f"{cpu}m", memory)])
        before = sums.snapshot()
        if deleted:
            alive.pop(key, None)
            changed = sums.apply(key, None)
        else:
            alive[key] = obj
            changed = sums.apply(key, facts(obj))
        after = sums.snapshot()
        # exactly the nodes whose totals differ are reported changed
        assert {n for n in before.keys() | after.keys() if before.get(n) != after.get(n)} <= set(changed)
        reported.update(sums.snapshot(set(changed)))
    expected: dict[str, list[int]] = {}
    for obj in alive.values():
        found = facts(obj)
        if found is None:
            continue
        totals = expected.setdefault(found.node, [0, 0, 0, 0])
        for i, value in enumerate((1, found.cpu, found.memory, int(not found.running))):
            totals[i] += value
    assert sums.snapshot() == {n: tuple(t) for n, t in expected.items()}
    assert len(sums) == sum(1 for obj in alive.values() if facts(obj) is not None)
    # a subscriber that applied only the reported changes holds the same figures
    assert {n: t for n, t in reported.items() if t is not None} == sums.snapshot()
    fresh = NodeSums()
    fresh.replace({k: f for k, obj in alive.items() if (f := facts(obj)) is not None})
    assert fresh.snapshot() == sums.snapshot()
