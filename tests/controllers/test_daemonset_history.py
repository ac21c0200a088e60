"""Table tests of a DaemonSet's revision history: create, renumber, prune."""

from __future__ import annotations

from typing import Any

import pytest

from actors.controllers.daemonset_history import HistoryPlan, history_plan, revision_object
from actors.controllers.daemonset_plan import HASH_LABEL
from protocol.objects import Obj
from tests.controllers.test_daemonset_plan import DS_UID, ds


def revision(hash_: str, number: int, owner: str = DS_UID) -> Obj:
    return {"kind": "ControllerRevision",
            "metadata": {"name": f"agent-{hash_}", "namespace": "kube-system", "labels": {HASH_LABEL: hash_},
                         "ownerReferences": [{"kind": "DaemonSet", "uid": owner, "controller": True}]},
            "revision": number, "data": {}}


def pod(hash_: str) -> Obj:
    return {"kind": "Pod", "metadata": {"name": f"p-{hash_}", "labels": {HASH_LABEL: hash_}}}


def limited(limit: int) -> Obj:
    owner = ds()
    owner["spec"]["revisionHistoryLimit"] = limit
    return owner


@pytest.mark.parametrize(("owner", "revisions", "pods", "expected"), [
    # no history yet: revision 1
    (ds(), [], [], {"create": 1}),
    # a new template: one above the highest, even when another owner's are higher
    (ds(), [revision("a", 1), revision("b", 2), revision("z", 9, owner="other")], [], {"create": 3}),
    # the current template has its revision, the newest: nothing to do
    (ds(), [revision("a", 1), revision("cur", 2)], [], {}),
    # rolled back to an older template: renumbered above the others
    (ds(), [revision("cur", 1), revision("b", 2)], [], {"bump": ("agent-cur", 3)}),
    # beyond the limit: the lowest numbers go, but not one a live pod still runs
    (limited(1), [revision("a", 1), revision("b", 2), revision("c", 3), revision("cur", 4)], [],
     {"delete": ("agent-a", "agent-b")}),
    (limited(1), [revision("a", 1), revision("b", 2), revision("c", 3), revision("cur", 4)], [pod("a")],
     {"delete": ("agent-b", "agent-c")}),  # a is kept for its pod (the limit counts it)
    (limited(0), [revision("a", 1), revision("cur", 2)], [pod("cur")], {"delete": ("agent-a",)}),
    (ds(), [revision(str(i), i) for i in range(1, 13)] + [revision("cur", 13)], [],
     {"delete": ("agent-1", "agent-2")}),  # default limit 10
])
def test_history_plan(owner: Obj, revisions: list[Obj], pods: list[Obj], expected: dict[str, Any]) -> None:
    plan = history_plan(owner, revisions, pods, "cur")
    created = plan.create["revision"] if plan.create is not None else None
    assert (created, plan.bump, plan.delete) == (expected.get("create"), expected.get("bump"),
                                                 expected.get("delete", ()))
    assert isinstance(plan, HistoryPlan)


def test_revision_object_snapshots_the_template() -> None:
    owner = ds(image="agent:7")
    obj = revision_object(owner, "h1", 4)
    assert obj["metadata"]["name"] == "agent-h1" and obj["metadata"]["namespace"] == "kube-system"
    assert obj["metadata"]["labels"] == {"app": "agent", HASH_LABEL: "h1"}
    assert obj["metadata"]["ownerReferences"][0]["uid"] == DS_UID
    assert obj["revision"] == 4
    assert obj["data"]["spec"]["template"]["spec"]["containers"][0]["image"] == "agent:7"
    obj["data"]["spec"]["template"]["spec"]["containers"][0]["image"] = "changed"
    assert owner["spec"]["template"]["spec"]["containers"][0]["image"] == "agent:7"  # a copy
