"""Table tests of ``claim_plan`` (which objects an owner keeps, adopts and releases), and of the patches
``ControllerRefManager`` sends for it against a real API."""

from __future__ import annotations

from typing import Any

import pytest

from actors.controllers.claim_plan import claim_plan, is_controlled_by
from actors.controllers.controllerref import ControllerRefManager, owner_patch
from protocol.objects import Obj, controller_of, format_time, name_of, uid_of
from protocol.selectors import from_label_selector
from runtime.client import ApiClient

OWNER_UID = "owner-uid"
SELECTOR = from_label_selector({"matchLabels": {"app": "web"}})


def owner(*, deleting: bool = False, namespace: str = "default") -> Obj:
    m: Obj = {"name": "web", "namespace": namespace, "uid": OWNER_UID}
    if deleting:
        m["deletionTimestamp"] = format_time(1_700_000_000)
    return {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": m}


def dependent(name: str, *, owner_uid: str | None = OWNER_UID, controller: bool = True, app: str = "web",
              deleting: bool = False, namespace: str = "default") -> Obj:
    m: Obj = {"name": name, "namespace": namespace, "labels": {"app": app}}
    if owner_uid is not None:
        m["ownerReferences"] = [{"kind": "ReplicaSet", "name": "x", "uid": owner_uid, "controller": controller}]
    if deleting:
        m["deletionTimestamp"] = format_time(1_700_000_000)
    return {"kind": "Pod", "metadata": m}


def names(objs: list[Obj]) -> list[str]:
    return [name_of(o) for o in objs]


@pytest.mark.parametrize(("candidate", "owner_deleting", "kept", "adopt", "release"), [
    pytest.param(dependent("mine"), False, ["mine"], [], [], id="owned and matching: kept"),
    pytest.param(dependent("moved", app="other"), False, [], [], ["moved"], id="owned, no longer matching: released"),
    pytest.param(dependent("orphan", owner_uid=None), False, ["orphan"], ["orphan"], [], id="matching orphan: adopted"),
    pytest.param(dependent("stranger", owner_uid=None, app="other"), False, [], [], [], id="orphan not matching"),
    pytest.param(dependent("foreign", owner_uid="other"), False, [], [], [], id="owned by another: ignored"),
    pytest.param(dependent("foreign-moved", owner_uid="other", app="x"), False, [], [], [], id="another's, unmatched"),
    pytest.param(dependent("dying", owner_uid=None, deleting=True), False, [], [], [], id="orphan being deleted"),
    pytest.param(dependent("dying-mine", deleting=True), False, ["dying-mine"], [], [], id="owned being deleted: kept"),
    pytest.param(dependent("weak", controller=False), False, ["weak"], ["weak"], [],
                 id="a non-controller reference is no controller: adopted"),
    pytest.param(dependent("elsewhere", owner_uid=None, namespace="other"), False, [], [], [],
                 id="orphan of another namespace"),
    pytest.param(dependent("mine"), True, ["mine"], [], [], id="owner deleting: owned kept"),
    pytest.param(dependent("moved", app="other"), True, ["moved"], [], [], id="owner deleting: nothing released"),
    pytest.param(dependent("orphan", owner_uid=None), True, [], [], [], id="owner deleting: nothing adopted"),
])
def test_claim_plan(candidate: Obj, owner_deleting: bool, kept: list[str], adopt: list[str],
                    release: list[str]) -> None:
    got = claim_plan(owner(deleting=owner_deleting), SELECTOR, [candidate])
    assert (names(got.kept), names(got.adopt), names(got.release)) == (kept, adopt, release)


def test_claim_plan_keeps_input_order() -> None:
    got = claim_plan(owner(), SELECTOR, [dependent("b"), dependent("a", owner_uid=None), dependent("c")])
    assert names(got.kept) == ["b", "a", "c"] and names(got.adopt) == ["a"]


def test_is_controlled_by_compares_uids() -> None:
    assert is_controlled_by(dependent("p"), owner())
    assert not is_controlled_by(dependent("p", owner_uid="recreated"), owner())
    assert not is_controlled_by(dependent("p", controller=False), owner())


@pytest.mark.parametrize(("refs", "adopt", "expected"), [
    pytest.param([], True, [OWNER_UID], id="adopt an orphan"),
    pytest.param([{"uid": "gc-only", "controller": False}], True, ["gc-only", OWNER_UID], id="others kept"),
    pytest.param([{"uid": OWNER_UID, "controller": True}], False, None, id="release: no references left"),
    pytest.param([{"uid": "gc-only"}, {"uid": OWNER_UID, "controller": True}], False, ["gc-only"],
                 id="release keeps other references"),
])
def test_owner_patch(refs: list[Obj], adopt: bool, expected: list[str] | None) -> None:
    obj: Obj = {"metadata": {"name": "p", "resourceVersion": "7", "ownerReferences": refs}}
    patch = owner_patch(owner(), obj, adopt=adopt)
    got = patch["metadata"]["ownerReferences"]
    assert (None if got is None else [r["uid"] for r in got]) == expected
    assert patch["metadata"]["resourceVersion"] == "7"  # a precondition: never overwrite a newer object


class Log:
    def debug(self, *_args: Any, **_kw: Any) -> None:
        return None


def replicaset(name: str) -> Obj:
    return {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": name, "namespace": "default"},
            "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web"}},
                                  "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}}


def pod(name: str, app: str = "web") -> Obj:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default",
                                                             "labels": {"app": app}},
            "spec": {"containers": [{"name": "c", "image": "busybox"}]}}


async def test_manager_adopts_releases_and_respects_preconditions(client: ApiClient) -> None:
    rs = await client.create(replicaset("web"))
    orphan = await client.create(pod("orphan"))
    stale = await client.create(pod("stale"))
    await client.patch("Pod", "stale", {"metadata": {"labels": {"touched": "yes"}}}, "default")  # cache is behind
    refs = ControllerRefManager(client, "Pod", Log())

    claimed = await refs.claim(rs, claim_plan(rs, SELECTOR, [orphan, stale]))
    assert names(claimed) == ["orphan"]  # the stale one's adoption failed its precondition
    assert controller_of(claimed[0]) is not None and is_controlled_by(claimed[0], rs)
    assert controller_of(await client.get("Pod", "stale", "default")) is None

    moved = await client.patch("Pod", "orphan", {"metadata": {"labels": {"app": "other"}}}, "default")
    assert await refs.claim(rs, claim_plan(rs, SELECTOR, [moved])) == []
    assert controller_of(await client.get("Pod", "orphan", "default")) is None


async def test_manager_adopts_nothing_for_a_deleted_or_recreated_owner(client: ApiClient) -> None:
    rs = await client.create(replicaset("web"))
    orphan = await client.create(pod("orphan"))
    refs = ControllerRefManager(client, "Pod", Log())
    assert await refs.can_adopt(rs)
    await client.delete("ReplicaSet", "web", "default")
    recreated = await client.create(replicaset("web"))
    assert uid_of(recreated) != uid_of(rs)
    assert not await refs.can_adopt(rs)
    assert await refs.claim(rs, claim_plan(rs, SELECTOR, [orphan])) == []
    assert controller_of(await client.get("Pod", "orphan", "default")) is None
