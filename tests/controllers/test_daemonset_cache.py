"""The DaemonSet controller's handler-kept state against its references: ``NodeFits`` against ``node_fit`` of
every node, ``DaemonPodIndex`` against ``owned_by_node`` of the namespace's pods, and a pass planned from both
against ``plan`` planned afresh."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from actors.controllers.daemonset_cache import DaemonPodIndex, NodeFits
from actors.controllers.daemonset_plan import NodeFit, daemon_facts, node_fit, owned_by_node, plan, plan_pass
from protocol.objects import Obj, format_time, name_of, ref, uid_of
from tests.controllers.test_daemonset_plan import DS_UID, NOW, OLD, SURGE, ds, node, pod, taint

KEY = "kube-system/agent"


def feed(fits: NodeFits, nodes: list[Obj]) -> None:
    for n in nodes:
        fits.handle_node("ADDED", None, n)


def reference(daemonset: Obj, nodes: list[Obj]) -> dict[str, NodeFit]:
    facts = daemon_facts(daemonset)
    return {name_of(n): node_fit(facts, n) for n in nodes}


def changed(n: Obj, **edits: Any) -> Obj:
    new = copy.deepcopy(n)
    for path, value in edits.items():
        where = new
        *parents, last = path.split("__")
        for p in parents:
            where = where.setdefault(p, {})
        where[last] = value
    return new


# -- NodeFits ------------------------------------------------------------------------------------------------
SELECTING = ds(node_selector={"role": "edge"})


@pytest.mark.parametrize(("daemonset", "before", "edits", "fit_before", "fit_after"), [
    # a label that the nodeSelector reads, added and removed
    (SELECTING, node("n1"), {"metadata__labels": {"role": "edge"}}, NodeFit(False, False), NodeFit(True, True)),
    (SELECTING, node("n1", labels={"role": "edge"}), {"metadata__labels": {}}, NodeFit(True, True),
     NodeFit(False, False)),
    # an untolerated NoExecute taint, and a NoSchedule one (an existing pod may stay)
    (ds(), node("n1"), {"spec__taints": [taint("dedicated", "NoExecute")]}, NodeFit(True, True), NodeFit(False, False)),
    (ds(), node("n1"), {"spec__taints": [taint("dedicated")]}, NodeFit(True, True), NodeFit(False, True)),
    (ds(), node("n1", taints=[taint("dedicated", "NoExecute")]), {"spec__taints": []}, NodeFit(False, False),
     NodeFit(True, True)),
    # Ready turning False: the not-ready NoSchedule it implies is not tolerated by default
    (ds(), node("n1"), {"status__conditions": [{"type": "Ready", "status": "False"}]}, NodeFit(True, True),
     NodeFit(False, True)),
    (ds(), node("n1", ready="Unknown"), {"status__conditions": [{"type": "Ready", "status": "True"}]},
     NodeFit(False, True), NodeFit(True, True)),
    # a cordon is tolerated by daemons; a nodeName DaemonSet ignores other nodes whatever they carry
    (ds(), node("n1"), {"spec__unschedulable": True}, NodeFit(True, True), NodeFit(True, True)),
])
def test_a_node_change_flips_its_fit(daemonset: Obj, before: Obj, edits: dict[str, Any], fit_before: NodeFit,
                                     fit_after: NodeFit) -> None:
    fits = NodeFits()
    others = [node("n2"), node("n3", labels={"role": "edge"})]
    feed(fits, [before, *others])
    facts = daemon_facts(daemonset)
    assert dict(fits.fits(KEY, facts)) == reference(daemonset, [before, *others])
    assert fits.fits(KEY, facts)["n1"] == fit_before
    after = changed(before, **edits)
    assert fits.handle_node("MODIFIED", before, after) is True
    computed = fits.computed
    assert fits.fits(KEY, facts)["n1"] == fit_after
    assert fits.computed == computed + 1  # only the changed node was evaluated again
    assert dict(fits.fits(KEY, facts)) == reference(daemonset, [after, *others])


def test_a_heartbeat_changes_nothing() -> None:
    fits = NodeFits()
    n1 = node("n1")
    feed(fits, [n1, node("n2")])
    facts = daemon_facts(ds())
    fits.fits(KEY, facts)
    computed = fits.computed
    beat = changed(n1, status__conditions=[{"type": "Ready", "status": "True", "lastHeartbeatTime": format_time(NOW)}],
                   metadata__resourceVersion="9")
    assert fits.handle_node("MODIFIED", n1, beat) is False
    fits.fits(KEY, facts)
    assert fits.computed == computed


def test_nodes_coming_and_going() -> None:
    fits = NodeFits()
    feed(fits, [node("n1"), node("n2")])
    facts = daemon_facts(ds())
    assert set(fits.fits(KEY, facts)) == {"n1", "n2"}
    assert fits.handle_node("ADDED", None, node("n3", taints=[taint("x", "NoExecute")])) is True
    assert fits.handle_node("DELETED", node("n1"), None) is True
    assert dict(fits.fits(KEY, facts)) == {"n2": NodeFit(True, True), "n3": NodeFit(False, False)}


def test_a_daemonset_whose_eligibility_changed_is_evaluated_again_and_others_are_not() -> None:
    fits = NodeFits()
    nodes = [node("n1", labels={"role": "edge"}), node("n2")]
    feed(fits, nodes)
    fits.fits(KEY, daemon_facts(ds()))
    fits.fits("kube-system/other", daemon_facts(ds()))
    computed = fits.computed
    assert dict(fits.fits(KEY, daemon_facts(ds(image="agent:2")))) == reference(ds(), nodes)  # the image: no
    assert fits.computed == computed
    assert dict(fits.fits(KEY, daemon_facts(SELECTING))) == reference(SELECTING, nodes)
    assert fits.computed == computed + 2
    tolerating = ds(tolerations=[{"operator": "Exists"}])
    fits.handle_node("MODIFIED", nodes[1], changed(nodes[1], spec__taints=[taint("x", "NoExecute")]))
    assert fits.fits("kube-system/other", daemon_facts(tolerating))["n2"] == NodeFit(True, True)
    assert fits.fits(KEY, daemon_facts(SELECTING))["n2"] == NodeFit(False, False)
    fits.forget(KEY)
    computed = fits.computed
    fits.fits(KEY, daemon_facts(SELECTING))
    assert fits.computed == computed + 2


# -- DaemonPodIndex --------------------------------------------------------------------------------------------
def indexed(index: DaemonPodIndex, daemonset: Obj) -> tuple[dict[str, list[str]], list[str]]:
    by_node = {n: sorted(name_of(p) for p in pods) for n, pods in index.by_node(uid_of(daemonset)).items()}
    return by_node, sorted(name_of(p) for p in index.orphans("kube-system"))


def expected(daemonset: Obj, pods: dict[str, Obj]) -> tuple[dict[str, list[str]], list[str]]:
    owned, orphans = owned_by_node(daemonset, list(pods.values()))
    return {n: sorted(name_of(p) for p in ps) for n, ps in owned.items()}, sorted(name_of(p) for p in orphans)


def bound(p: Obj, node_name: str) -> Obj:
    new = copy.deepcopy(p)
    new["spec"]["nodeName"] = node_name
    return new


def without_controller(p: Obj) -> Obj:
    new = copy.deepcopy(p)
    new["metadata"].pop("ownerReferences")
    return new


def test_the_pod_index_follows_creates_binds_rebinds_adoptions_and_deletes() -> None:
    daemonset = ds()
    index = DaemonPodIndex()
    pods: dict[str, Obj] = {}

    def event(kind: str, new: Obj) -> None:
        old = pods.get(ref(new))
        if kind == "DELETED":
            pods.pop(ref(new))
            index.handle(kind, old, None)
        else:
            pods[ref(new)] = new
            index.handle(kind, old, new)
        assert indexed(index, daemonset) == expected(daemonset, pods)

    a = pod("a", "n1", bound=False)
    event("ADDED", a)  # created, pinned by affinity
    assert indexed(index, daemonset)[0] == {"n1": ["a"]}
    event("MODIFIED", bound(a, "n1"))  # bound where it was pinned
    event("MODIFIED", bound(a, "n2"))  # rebound elsewhere (never by our scheduler, but the index follows)
    assert indexed(index, daemonset)[0] == {"n2": ["a"]}
    event("ADDED", pod("b", "n1"))
    event("ADDED", pod("c", "n1", owner="another-ds"))  # another DaemonSet's
    event("ADDED", pod("web", "n1", owner=None, labels={"app": "web"}))  # an orphan
    orphan = pod("d", "n3", owner=None)
    event("ADDED", orphan)
    assert indexed(index, daemonset) == ({"n1": ["b"], "n2": ["a"]}, ["d", "web"])
    event("MODIFIED", pod("d", "n3"))  # adopted
    assert indexed(index, daemonset) == ({"n1": ["b"], "n2": ["a"], "n3": ["d"]}, ["web"])
    event("MODIFIED", without_controller(pod("d", "n3")))  # released
    event("DELETED", bound(a, "n2"))
    event("DELETED", pod("b", "n1"))
    assert indexed(index, daemonset) == ({}, ["d", "web"])
    assert index.by_node("another-ds") == {"n1": [pods["kube-system/c"]]}


def test_pods_of_other_kinds_of_controller_are_not_kept() -> None:
    index = DaemonPodIndex()
    rs_pod = pod("web-1", "n1")
    rs_pod["metadata"]["ownerReferences"] = [{"kind": "ReplicaSet", "name": "web", "uid": DS_UID, "controller": True}]
    index.handle("ADDED", None, rs_pod)
    assert index.by_node(DS_UID) == {} and index.orphans("kube-system") == []


# -- a pass planned from the handlers' state is the pass planned afresh ------------------------------------
THREE = [node("n1"), node("n2", labels={"role": "edge"}), node("n3", taints=[taint("x", "NoExecute")])]


@pytest.mark.parametrize(("daemonset", "pods"), [
    (ds(), []),
    (ds(), [pod("a", "n1"), pod("b", "n2", hash_=OLD), pod("c", "n3"), pod("d", "gone")]),
    (ds(), [pod("a", "n1", age=5), pod("b", "n1", age=50), pod("c", "n2", phase="Failed")]),
    (ds(), [pod("a", "n1", owner=None), pod("b", "n2", labels={"app": "else"}), pod("c", "n2", owner="x")]),
    (ds(), [pod("a", "n1", deleting=True, phase="Failed"), pod("b", "n2", deleting=True)]),
    (SELECTING, [pod("a", "n1"), pod("b", "n2", hash_=OLD)]),
    (ds(strategy=SURGE), [pod(f"p{i}", f"n{i}", hash_=OLD) for i in (1, 2)]),
    (ds(min_ready=30), [pod("a", "n1", ready_for=5), pod("b", "n2")]),
    (ds(deleting=True), [pod("a", "n1", labels={"app": "else"})]),
])
def test_a_pass_from_the_cache_and_index_equals_the_reference(daemonset: Obj, pods: list[Obj]) -> None:
    fits = NodeFits()
    feed(fits, THREE)
    index = DaemonPodIndex()
    for p in pods:
        index.handle("ADDED", None, p)
    facts = daemon_facts(daemonset)
    cached = plan_pass(daemonset, facts, fits.fits(KEY, facts), index.by_node(uid_of(daemonset)),
                       index.orphans("kube-system"), NOW)
    fresh = plan(daemonset, THREE, pods, NOW)
    assert (cached.actions, cached.status, cached.failed_nodes, cached.requeue_after) == (
        fresh.actions, fresh.status, fresh.failed_nodes, fresh.requeue_after)
