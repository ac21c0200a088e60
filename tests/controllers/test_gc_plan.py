"""Garbage collector decisions and its ownership graph."""

from __future__ import annotations

from actors.controllers.gc_graph import Graph, key_of, split_key
from actors.controllers.gc_plan import (
    DeleteObject,
    Dependent,
    RemoveFinalizer,
    RemoveOwnerRefs,
    plan_dependent,
    plan_owner,
    without_finalizer,
    without_owners,
)
from protocol.objects import Obj


def obj(kind: str, name: str, uid: str, *, owners: list[tuple[str, bool]] | None = None,
        deleting: bool = False, finalizers: list[str] | None = None, namespace: str | None = "ns") -> Obj:
    m: Obj = {"name": name, "uid": uid}
    if namespace:
        m["namespace"] = namespace
    if owners:
        m["ownerReferences"] = [{"apiVersion": "v1", "kind": "ConfigMap", "name": f"o-{u}", "uid": u,
                                 "blockOwnerDeletion": b} for u, b in owners]
    if deleting:
        m["deletionTimestamp"] = "2024-01-01T00:00:00Z"
    if finalizers:
        m["finalizers"] = finalizers
    return {"kind": kind, "metadata": m}


def test_keys() -> None:
    assert split_key("Pod:ns/a") == ("Pod", "ns", "a")
    assert split_key("Node:n1") == ("Node", None, "n1")
    assert key_of(obj("Node", "n1", "u", namespace=None)) == "Node:n1"


def test_dependent_with_all_owners_gone_is_deleted() -> None:
    d = obj("Pod", "p", "pu", owners=[("a", True), ("b", False)])
    assert plan_dependent(d, "Pod:ns/p", {"a": False, "b": False}) == DeleteObject("Pod:ns/p", "pu",
                                                                                  owners_gone=True)
    assert plan_dependent(d, "Pod:ns/p", {"a": True, "b": False}) == RemoveOwnerRefs("Pod:ns/p", "pu", ("b",))
    assert plan_dependent(d, "Pod:ns/p", {"a": True, "b": True}) is None
    assert plan_dependent(obj("Pod", "p", "pu"), "Pod:ns/p", {}) is None
    gone = obj("Pod", "p", "pu", owners=[("a", True)], deleting=True)
    assert plan_dependent(gone, "Pod:ns/p", {"a": False}) is None


def test_orphan_owner() -> None:
    owner = obj("ConfigMap", "o", "ou", deleting=True, finalizers=["orphan"])
    deps = [Dependent("Secret:ns/s", "su", blocking=True, deleting=False)]
    assert plan_owner(owner, "ConfigMap:ns/o", deps) == [RemoveOwnerRefs("Secret:ns/s", "su", ("ou",)),
                                                         RemoveFinalizer("ConfigMap:ns/o", "ou", "orphan")]
    assert plan_owner(obj("ConfigMap", "o", "ou", finalizers=["orphan"]), "k", deps) == []  # not deleting


def test_foreground_owner_deletes_blocking_first_and_waits_for_them() -> None:
    owner = obj("ConfigMap", "o", "ou", deleting=True, finalizers=["foregroundDeletion"])
    deps = [Dependent("Secret:ns/a", "a", blocking=False, deleting=False),
            Dependent("Secret:ns/b", "b", blocking=True, deleting=False),
            Dependent("Secret:ns/c", "c", blocking=True, deleting=True)]
    assert plan_owner(owner, "ConfigMap:ns/o", deps) == [DeleteObject("Secret:ns/b", "b", "Foreground"),
                                                         DeleteObject("Secret:ns/a", "a", "Background")]
    # only non-blocking dependents left: the owner may go
    assert plan_owner(owner, "ConfigMap:ns/o", deps[:1]) == [DeleteObject("Secret:ns/a", "a", "Background"),
                                                             RemoveFinalizer("ConfigMap:ns/o", "ou",
                                                                             "foregroundDeletion")]
    assert plan_owner(owner, "ConfigMap:ns/o", []) == [RemoveFinalizer("ConfigMap:ns/o", "ou",
                                                                       "foregroundDeletion")]


def test_edits() -> None:
    d = obj("Pod", "p", "pu", owners=[("a", True), ("b", False)], finalizers=["x", "orphan"])
    assert [r["uid"] for r in (without_owners(d, ("a",)) or {})["metadata"]["ownerReferences"]] == ["b"]
    assert "ownerReferences" not in (without_owners(d, ("b",)) or {})["metadata"]
    assert without_owners(d, ("zzz",)) is None
    assert (without_finalizer(d, "orphan") or {})["metadata"]["finalizers"] == ["x"]
    assert without_finalizer(d, "orphan") is None


def test_graph_tracks_owners_dependents_and_identity() -> None:
    g = Graph()
    owner = obj("ConfigMap", "o", "u1")
    dep = obj("Secret", "s", "d1", owners=[("u1", True)])
    assert g.observe("ADDED", None, dep) == {"Secret:ns/s"}  # owner not seen yet: check it
    assert g.observe("ADDED", None, owner) == {"Secret:ns/s"}
    assert [n.key for n in g.dependents_of("u1")] == ["Secret:ns/s"]
    # an unrelated update of the dependent: nothing to do
    assert g.observe("MODIFIED", dep, {**dep, "data": {}}) == set()
    # owner deleted: its dependents are looked at
    assert g.observe("DELETED", owner, owner) == {"Secret:ns/s"}
    assert "u1" not in g
    # recreated under the same name with a new uid: a different owner
    g.observe("ADDED", None, owner)
    touched = g.observe("MODIFIED", owner, obj("ConfigMap", "o", "u2"))
    assert touched == {"Secret:ns/s"} and "u1" not in g and "u2" in g
    # an owner being deleted with a GC finalizer is looked at; dependents' changes wake it up
    waiting = obj("ConfigMap", "o", "u2", deleting=True, finalizers=["foregroundDeletion"])
    assert "ConfigMap:ns/o" in g.observe("MODIFIED", None, waiting)
    dep2 = obj("Secret", "t", "d2", owners=[("u2", True)])
    g.observe("ADDED", None, dep2)
    assert g.observe("DELETED", dep2, dep2) == {"ConfigMap:ns/o"}
    assert "ConfigMap:ns/o" in g.observe("MODIFIED", dep2, obj("Secret", "s", "d1", owners=[("u2", False)]))
