"""Node lifecycle decisions: heartbeats → conditions and taints; tolerations → eviction times; rate."""

from __future__ import annotations

from typing import Any

import pytest

from actors.controllers.nodelifecycle_plan import (
    UNKNOWN_REASON,
    TokenBucket,
    eviction_delay,
    force_delete_delay,
    node_plan,
)
from protocol.objects import Obj, condition
from protocol.tolerations import NOT_READY, UNREACHABLE


def node(ready: str | None = "True", *, reason: str = "KubeletReady", taints: list[Obj] | None = None) -> Obj:
    status: Obj = {}
    if ready is not None:
        status["conditions"] = [
            {"type": "Ready", "status": ready, "reason": reason, "lastHeartbeatTime": "2020-01-01T00:00:00Z"},
            {"type": "MemoryPressure", "status": "False"}]
    return {"kind": "Node", "metadata": {"name": "n1"}, "spec": {"taints": taints or []}, "status": status}


def keys(taints: list[Obj] | None) -> set[tuple[str, str]]:
    return {(t["key"], t["effect"]) for t in taints or []}


BOTH = {"NoSchedule", "NoExecute"}


@pytest.mark.parametrize(("ready", "reason", "silent", "unknown", "health", "taint_key"), [
    ("True", "KubeletReady", 10, False, "Ready", None),
    ("True", "KubeletReady", 41, True, "Unreachable", UNREACHABLE),
    (None, "", 41, True, "Unreachable", UNREACHABLE),
    ("False", "KubeletNotReady", 10, False, "NotReady", NOT_READY),
    ("False", "KubeletNotReady", 41, True, "Unreachable", UNREACHABLE),
    ("Unknown", UNKNOWN_REASON, 41, True, "Unreachable", UNREACHABLE),  # MemoryPressure turns Unknown
    # our own Unknown with a fresh lease: reachable again, the kubelet will rewrite Ready
    ("Unknown", UNKNOWN_REASON, 1, False, "Ready", None),
    # Unknown as reported by someone else: unreachable
    ("Unknown", "Other", 1, False, "Unreachable", UNREACHABLE),
    (None, "", 1, False, "Ready", None),
])
def test_node_plan(ready: str | None, reason: str, silent: float, unknown: bool, health: str,
                   taint_key: str | None) -> None:
    n = node(ready, reason=reason)
    p = node_plan(n, last_heartbeat=100.0, now=100.0 + silent, grace=40.0, wall_now=1e9)
    assert p.health == health
    assert (p.status is not None) == unknown
    if p.status is not None:
        cond = condition({"status": p.status}, "Ready")
        assert cond is not None and cond["status"] == "Unknown" and cond["reason"] == UNKNOWN_REASON
        assert all(c["status"] == "Unknown" for c in p.status["conditions"])
        if ready is not None:  # the kubelet's heartbeat time is kept
            assert cond["lastHeartbeatTime"] == "2020-01-01T00:00:00Z"
    expected = {(taint_key, e) for e in BOTH} if taint_key else set()
    assert keys(p.taints if p.taints is not None else n["spec"]["taints"]) == expected
    if silent <= 40:
        assert p.requeue_after == pytest.approx(40 - silent + 0.05)
    else:
        assert p.requeue_after is None


def test_taints_replace_each_other_and_keep_others() -> None:
    other = {"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}
    old = {"key": NOT_READY, "effect": "NoExecute", "timeAdded": "x"}
    n = node("False", taints=[other, old, {"key": NOT_READY, "effect": "NoSchedule"}])
    p = node_plan(n, last_heartbeat=0, now=1, grace=40, wall_now=0)
    assert p.taints is None  # already right
    p = node_plan(n, last_heartbeat=0, now=50, grace=40, wall_now=0)
    assert p.taints is not None
    assert other in p.taints and keys(p.taints) == {("dedicated", "NoSchedule"), (UNREACHABLE, "NoSchedule"),
                                                    (UNREACHABLE, "NoExecute")}
    recovered = node("True", taints=p.taints)
    p = node_plan(recovered, last_heartbeat=60, now=61, grace=40, wall_now=0)
    assert p.taints == [other]


def pod(*tolerations: Obj) -> Obj:
    return {"spec": {"tolerations": list(tolerations)}}


UNREACH_TAINT = {"key": UNREACHABLE, "effect": "NoExecute"}
DEFAULT_TOL = {"key": UNREACHABLE, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}


@pytest.mark.parametrize(("tolerations", "taints", "expected"), [
    ([DEFAULT_TOL], [UNREACH_TAINT], 300 - 5),
    ([{**DEFAULT_TOL, "tolerationSeconds": 2}], [UNREACH_TAINT], 0.0),
    ([{**DEFAULT_TOL, "tolerationSeconds": 10}], [UNREACH_TAINT], 5.0),
    ([{"key": UNREACHABLE, "operator": "Exists"}], [UNREACH_TAINT], None),  # tolerated forever
    ([{"operator": "Exists"}], [UNREACH_TAINT, {"key": "x", "effect": "NoExecute"}], None),
    ([], [UNREACH_TAINT], 120 - 5),  # no toleration: the pod_eviction_timeout default
    ([DEFAULT_TOL], [UNREACH_TAINT, {"key": "maintenance", "effect": "NoExecute"}], 0.0),  # untolerated
    ([DEFAULT_TOL], [{"key": "maintenance", "effect": "NoSchedule"}], None),  # not NoExecute
    ([DEFAULT_TOL, {"key": "m", "operator": "Equal", "value": "v", "tolerationSeconds": 1}],
     [UNREACH_TAINT, {"key": "m", "value": "v", "effect": "NoExecute"}], 0.0),
    ([DEFAULT_TOL, {"key": "m", "operator": "Equal", "value": "other"}],
     [UNREACH_TAINT, {"key": "m", "value": "v", "effect": "NoExecute"}], 0.0),
    # no key, operator Equal by default: every NoExecute taint without a value (Kubernetes' ToleratesTaint)
    ([{"effect": "NoExecute"}], [UNREACH_TAINT], None),
    ([{"effect": "NoExecute", "tolerationSeconds": 30}], [UNREACH_TAINT], 30 - 5),
    ([{"effect": "NoExecute"}], [UNREACH_TAINT, {"key": "m", "value": "v", "effect": "NoExecute"}], 0.0),
    # the smallest tolerationSeconds of the matching tolerations; 0 or less: at once
    ([DEFAULT_TOL, {"operator": "Exists", "tolerationSeconds": 60}], [UNREACH_TAINT], 60 - 5),
    ([{**DEFAULT_TOL, "tolerationSeconds": -1}], [UNREACH_TAINT], 0.0),
    # tolerationSeconds of a toleration that does not match the taint does not count
    ([DEFAULT_TOL, {"key": "m", "operator": "Exists", "tolerationSeconds": 1}], [UNREACH_TAINT], 300 - 5),
])
def test_eviction_delay(tolerations: list[Obj], taints: list[Obj], expected: float | None) -> None:
    observed = {(str(t["key"]), "NoExecute"): 100.0 for t in taints}
    got = eviction_delay(pod(*tolerations), taints, observed, 105.0, 120.0)
    assert got == (pytest.approx(expected) if expected is not None else None)


def test_eviction_counts_from_first_observation_of_each_taint() -> None:
    got = eviction_delay(pod(DEFAULT_TOL), [UNREACH_TAINT], {}, 50.0, 120.0)
    assert got == 300.0  # a taint we have not noted yet counts from now


def test_force_delete_delay() -> None:
    p: dict[str, Any] = {"metadata": {"deletionGracePeriodSeconds": 5}, "spec": {}}
    assert force_delete_delay(p, since=10, now=12) == 3
    assert force_delete_delay(p, since=10, now=20) == 0
    assert force_delete_delay({"metadata": {}, "spec": {"terminationGracePeriodSeconds": 1}}, since=0, now=0) == 1


def test_token_bucket() -> None:
    bucket = TokenBucket(2.0, now=0.0)
    assert bucket.take(0.0) == 0.0
    assert bucket.take(0.0) == pytest.approx(0.5)
    assert bucket.take(0.25) == pytest.approx(0.25)
    assert bucket.take(0.5) == 0.0
    assert bucket.take(10.0) == 0.0  # burst stays 1
    assert bucket.take(10.0) > 0
    assert TokenBucket(0.0).take(5.0) > 0  # rate 0: no evictions
