"""Table tests of what the pod-owning controllers share: the owner key of a dependent
(``claim_plan.controller_key``), the owners selecting an orphan (``NamespaceIndex.selecting``), and
slow-start creation (``podcontrol.create_in_batches`` / ``create_expected``)."""

from __future__ import annotations

import pytest

from actors.controllers.claim_plan import AdoptPod, ClaimPlan, ReleasePod, claim_actions, controller_key
from actors.controllers.expectations import Expectations
from actors.controllers.podcontrol import create_expected, create_in_batches
from actors.controllers.replication_index import NamespaceIndex
from protocol.errors import Conflict
from protocol.objects import Obj
from protocol.selectors import spec_selector


def rs(name: str, uid: str, selector: Obj | None = None, namespace: str = "default") -> Obj:
    return {"kind": "ReplicaSet", "metadata": {"name": name, "namespace": namespace, "uid": uid},
            "spec": {"selector": selector if selector is not None else {"matchLabels": {"app": name}}}}


def pod(name: str, *, owner: tuple[str, str, str] | None = None, labels: dict[str, str] | None = None) -> Obj:
    m: Obj = {"name": name, "namespace": "default", "labels": labels or {}}
    if owner is not None:
        kind, owner_name, uid = owner
        m["ownerReferences"] = [{"kind": kind, "name": owner_name, "uid": uid, "controller": True}]
    return {"kind": "Pod", "metadata": m}


INDEX = NamespaceIndex()
INDEX.handle("ADDED", None, rs("web", "u1"))
INDEX.handle("ADDED", None, rs("bad", "u2", {"matchExpressions": [{"key": "a", "operator": "Nope"}]}))
INDEX.handle("ADDED", None, rs("all", "u3", {"matchLabels": {"tier": "front"}}))
INDEX.handle("ADDED", None, rs("web", "u4", namespace="other"))


@pytest.mark.parametrize(("obj", "kind", "key"), [
    (pod("a", owner=("ReplicaSet", "web", "u1")), "ReplicaSet", "default/web"),
    (pod("a", owner=("ReplicaSet", "web", "stale-uid")), "ReplicaSet", None),  # a recreated owner is another
    (pod("a", owner=("ReplicaSet", "gone", "u9")), "ReplicaSet", None),
    (pod("a", owner=("DaemonSet", "web", "u1")), "ReplicaSet", None),
    (pod("a"), "ReplicaSet", None),
])
def test_controller_key(obj: Obj, kind: str, key: str | None) -> None:
    assert controller_key(obj, kind, INDEX.get) == key


@pytest.mark.parametrize(("labels", "keys"), [
    ({"app": "web"}, ["default/web"]),  # not other/web: another namespace; not bad: its selector is invalid
    ({"app": "web", "tier": "front"}, ["default/web", "default/all"]),
    ({"app": "db"}, []),
])
def test_selecting_matches_the_namespace_owners_with_valid_selectors(labels: dict[str, str], keys: list[str]) -> None:
    assert sorted(INDEX.selecting(pod("o", labels=labels), spec_selector)) == sorted(keys)


def test_claim_actions_adopt_then_release() -> None:
    claimed = ClaimPlan(kept=[pod("a")], adopt=[pod("a")], release=[pod("b")])
    assert claim_actions(claimed) == [AdoptPod("a"), ReleasePod("b")]


@pytest.mark.parametrize(("count", "fail_at", "missed", "calls"), [
    (7, None, 0, 7),         # batches 1, 2, 4
    (7, {0}, 7, 1),          # the first batch fails: nothing else is tried
    (7, {2}, 5, 3),          # the second batch (items 1, 2) has one failure: 1 failed + 4 skipped
    (0, None, 0, 0),
])
async def test_create_in_batches_stops_after_a_failing_batch(count: int, fail_at: set[int] | None, missed: int,
                                                             calls: int) -> None:
    called: list[int] = []

    async def create(i: int) -> None:
        called.append(i)
        if fail_at and i in fail_at:
            raise Conflict(f"item {i}")

    got_missed, failures = await create_in_batches(list(range(count)), create)
    assert (got_missed, len(called)) == (missed, calls)
    assert [str(f) for f in failures] == [str(Conflict(f"item {i}")) for i in sorted(fail_at or ())]


async def test_create_expected_observes_what_did_not_happen() -> None:
    expectations = Expectations()

    async def create(i: int) -> None:
        if i == 2:
            raise Conflict("no")

    missed, error = await create_expected(expectations, "default/web", list(range(7)), create)
    assert (missed, error) == (5, str(Conflict("no")))
    pending = expectations.pending("default/web")
    assert pending is not None and pending.adds == 2  # the two created are still to be seen
    assert not expectations.satisfied("default/web")
