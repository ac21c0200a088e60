"""Namespace decisions: delete the contents, report what remains, finalize when empty."""

from __future__ import annotations

from actors.controllers.namespace_plan import NAMESPACED_KINDS, finalized, plan, status_with_conditions
from protocol.objects import Obj


def ns(deleting: bool = True, finalizers: list[str] | None = None) -> Obj:
    m: Obj = {"name": "team"}
    if deleting:
        m["deletionTimestamp"] = "2024-01-01T00:00:00Z"
    return {"kind": "Namespace", "metadata": m,
            "spec": {"finalizers": ["kubernetes"] if finalizers is None else finalizers},
            "status": {"phase": "Terminating" if deleting else "Active"}}


def obj(name: str, *, deleting: bool = False, finalizers: list[str] | None = None) -> Obj:
    m: Obj = {"name": name, "namespace": "team"}
    if deleting:
        m["deletionTimestamp"] = "x"
    if finalizers:
        m["finalizers"] = finalizers
    return {"metadata": m}


def test_every_namespaced_kind_and_only_those() -> None:
    kinds = {k.kind for k in NAMESPACED_KINDS}
    assert {"Pod", "Service", "Endpoints", "Secret", "Event", "Lease", "Deployment"} <= kinds
    assert not kinds & {"Namespace", "Node"}


def test_plan_deletes_what_is_not_yet_deleting() -> None:
    p = plan(ns(), {"Pod": [obj("a"), obj("b", deleting=True, finalizers=["x/y"])], "Secret": [obj("s")],
                    "Service": []})
    assert p.deletes == [("Pod", "a"), ("Secret", "s")]
    assert p.remaining == {"pods": 2, "secrets": 1}
    assert p.finalizers == {"x/y": 1}
    assert not p.finalize


def test_plan_finalizes_when_empty_and_only_when_ours() -> None:
    assert plan(ns(), {"Pod": []}).finalize
    assert not plan(ns(deleting=False), {}).finalize
    assert not plan(ns(finalizers=[]), {}).finalize
    done = finalized(ns(finalizers=["kubernetes", "other"]))
    assert done["spec"]["finalizers"] == ["other"]


def test_conditions_change_only_when_content_changes() -> None:
    namespace = ns()
    p = plan(namespace, {"Pod": [obj("a")]})
    status = status_with_conditions(namespace, p, 0)
    assert status is not None and status["phase"] == "Terminating"
    by_type = {c["type"]: c for c in status["conditions"]}
    assert by_type["NamespaceContentRemaining"]["status"] == "True"
    assert "pods has 1 resource instances" in by_type["NamespaceContentRemaining"]["message"]
    assert by_type["NamespaceFinalizersRemaining"]["status"] == "False"
    assert status_with_conditions({**namespace, "status": status}, p, 100) is None
