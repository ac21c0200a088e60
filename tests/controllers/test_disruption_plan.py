"""Table tests of PodDisruptionBudget arithmetic: the controller's status and the eviction check."""

from __future__ import annotations

from typing import Any

import pytest

from actors.controllers.disruption_plan import Scale, plan, status_changed
from protocol.disruption import DELETION_TIMEOUT, check_eviction, selects
from protocol.errors import Forbidden, InternalError, TooManyRequests
from protocol.objects import Obj, format_time

NOW = 1_700_000_000.0
RS = {"uid": "rs-1", "kind": "ReplicaSet", "name": "web-abc", "controller": True}
SCALES = {"rs-1": Scale("deploy-1", 5)}


def pdb(*, min_available: Any = None, max_unavailable: Any = None, selector: Obj | None = None,
        status: Obj | None = None, generation: int = 1, policy: str | None = None) -> Obj:
    spec: Obj = {"selector": {"matchLabels": {"app": "web"}} if selector is None else selector}
    if min_available is not None:
        spec["minAvailable"] = min_available
    if max_unavailable is not None:
        spec["maxUnavailable"] = max_unavailable
    if policy:
        spec["unhealthyPodEvictionPolicy"] = policy
    return {"kind": "PodDisruptionBudget", "metadata": {"name": "web-pdb", "namespace": "default",
                                                        "generation": generation},
            "spec": spec, "status": status or {}}


def pod(name: str, *, ready: bool = True, owner: Obj | None = RS, labels: dict[str, str] | None = None,
        deleting: bool = False, phase: str = "Running", namespace: str = "default") -> Obj:
    m: Obj = {"name": name, "namespace": namespace, "labels": {"app": "web"} if labels is None else labels}
    if owner is not None:
        m["ownerReferences"] = [owner]
    if deleting:
        m["deletionTimestamp"] = format_time(NOW)
    return {"kind": "Pod", "metadata": m,
            "status": {"phase": phase, "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}}


def pods(ready: int, unready: int = 0) -> list[Obj]:
    return [pod(f"r{i}") for i in range(ready)] + [pod(f"u{i}", ready=False) for i in range(unready)]


def counts(status: Obj) -> tuple[int, int, int, int]:
    return (status["expectedPods"], status["desiredHealthy"], status["currentHealthy"], status["disruptionsAllowed"])


@pytest.mark.parametrize(("budget", "the_pods", "expected"), [
    (pdb(min_available=3), pods(5), (5, 3, 5, 2)),
    (pdb(min_available=3), pods(3, 2), (5, 3, 3, 0)),
    (pdb(min_available=3), pods(2, 3), (5, 3, 2, 0)),  # never negative
    (pdb(min_available="50%"), pods(5), (5, 3, 5, 2)),  # 2.5 rounds up to 3, of the controller's scale
    (pdb(min_available="50%"), pods(2), (5, 3, 2, 0)),  # expected from the scale (5), not the pods seen
    (pdb(max_unavailable=1), pods(5), (5, 4, 5, 1)),
    (pdb(max_unavailable=1), pods(4, 1), (5, 4, 4, 0)),
    (pdb(max_unavailable="30%"), pods(5), (5, 3, 5, 2)),  # 1.5 rounds up to 2 unavailable
    (pdb(max_unavailable=10), pods(5), (5, 0, 5, 5)),
    (pdb(min_available=0), [], (0, 0, 0, 0)),  # nothing expected: nothing allowed
    (pdb(min_available=1, selector={}), [*pods(2), pod("other", labels={"app": "x"})], (3, 1, 3, 2)),  # {} is all
    (pdb(min_available=1, selector={"matchLabels": {"app": "none"}}), pods(3), (0, 1, 0, 0)),
    # pods being deleted are not healthy
    (pdb(min_available=2), [*pods(2), pod("d", deleting=True)], (3, 2, 2, 0)),
    # other namespaces are not covered
    (pdb(min_available=1), [*pods(2), pod("elsewhere", namespace="other")], (2, 1, 2, 1)),
])
def test_status(budget: Obj, the_pods: list[Obj], expected: tuple[int, int, int, int]) -> None:
    status = plan(budget, the_pods, SCALES, NOW).status
    assert counts(status) == expected
    assert status["observedGeneration"] == 1
    cond = status["conditions"][0]
    assert cond["type"] == "DisruptionAllowed"
    assert (cond["status"], cond["reason"]) == (("True", "SufficientPods") if expected[3] else
                                                ("False", "InsufficientPods"))


def test_no_selector_covers_nothing() -> None:
    budget = pdb(min_available=1)
    budget["spec"].pop("selector")
    assert not selects(budget, pod("a"))
    assert counts(plan(budget, pods(3), SCALES, NOW).status) == (0, 1, 0, 0)


def test_controllers_count_once_and_unmanaged_pods_add_nothing() -> None:
    other = {"uid": "rc-9", "kind": "ReplicationController", "name": "old", "controller": True}
    scales = {**SCALES, "rs-2": Scale("deploy-1", 5), "rc-9": Scale("rc-9", 2)}
    rs2 = {**RS, "uid": "rs-2"}
    the_pods = [*pods(3), pod("n", owner=rs2), pod("o", owner=other), pod("bare", owner=None)]
    result = plan(pdb(max_unavailable=1), the_pods, scales, NOW)
    assert counts(result.status) == (7, 6, 6, 0)  # deploy-1 once (5) + rc-9 (2)
    assert result.unmanaged == ["bare"]


def test_a_missing_controller_fails_safe() -> None:
    previous = {"currentHealthy": 5, "desiredHealthy": 4, "disruptionsAllowed": 1, "expectedPods": 5}
    result = plan(pdb(max_unavailable=1, status=previous, generation=2), pods(5), {}, NOW)
    assert result.status["disruptionsAllowed"] == 0 and result.status["observedGeneration"] == 2
    cond = result.status["conditions"][0]
    assert (cond["status"], cond["reason"]) == ("False", "SyncFailed") and "found no controllers" in cond["message"]
    # an integer minAvailable needs no controller
    assert counts(plan(pdb(min_available=4), pods(5), {}, NOW).status) == (5, 4, 5, 1)


def test_disrupted_pods_are_not_healthy_until_they_expire() -> None:
    recent, old = format_time(NOW - 10), format_time(NOW - DELETION_TIMEOUT - 5)
    status = {"disruptedPods": {"r0": recent, "r1": old, "gone": recent}}
    result = plan(pdb(min_available=2, status=status), [*pods(4), pod("d", deleting=True)], SCALES, NOW)
    assert counts(result.status) == (5, 2, 3, 1)  # r0 not counted; r1 expired; d deleting
    assert result.status["disruptedPods"] == {"r0": recent}
    assert result.expired == ["r1"]
    assert result.requeue_after is not None and 109 < result.requeue_after < 111


def test_status_changed_ignores_equal_conditions() -> None:
    first = plan(pdb(min_available=1), pods(2), SCALES, NOW).status
    again = plan(pdb(min_available=1, status=first), pods(2), SCALES, NOW + 60).status
    assert not status_changed(first, again)  # the transition time is kept
    assert status_changed(first, plan(pdb(min_available=1, status=first), pods(1), SCALES, NOW).status)


# -- the eviction check -----------------------------------------------------------------------------
def observed(allowed: int, healthy: int = 5, desired: int = 4) -> Obj:
    return {"observedGeneration": 1, "disruptionsAllowed": allowed, "currentHealthy": healthy,
            "desiredHealthy": desired, "expectedPods": 5}


def test_an_allowed_eviction_spends_the_budget() -> None:
    verdict = check_eviction(pod("r0"), [pdb(max_unavailable=1, status=observed(1))], NOW)
    assert verdict.status is not None
    assert verdict.status["disruptionsAllowed"] == 0 and verdict.status["disruptedPods"] == {"r0": format_time(NOW)}
    assert verdict.status["conditions"][0]["status"] == "False"


@pytest.mark.parametrize(("the_pod", "budgets", "error", "needs_write"), [
    (pod("r0"), [], None, False),  # no budget
    (pod("r0"), [pdb(min_available=4, status=observed(0))], TooManyRequests, False),
    (pod("r0"), [pdb(min_available=4, status=observed(2), generation=2)], TooManyRequests, False),  # not observed
    (pod("r0"), [pdb(min_available=4, status=observed(-1))], Forbidden, False),
    (pod("r0"), [pdb(min_available=4, status=observed(1)), pdb(min_available=1, status=observed(1))],
     InternalError, False),
    # finished, Pending or deleting pods ignore budgets
    (pod("r0", phase="Succeeded"), [pdb(min_available=4, status=observed(0))], None, False),
    (pod("r0", phase="Pending"), [pdb(min_available=4, status=observed(0))], None, False),
    (pod("r0", deleting=True), [pdb(min_available=4, status=observed(0))], None, False),
    # an unready pod: AlwaysAllow lets it go; IfHealthyBudget when the budget is healthy
    (pod("u", ready=False), [pdb(min_available=4, status=observed(0), policy="AlwaysAllow")], None, False),
    (pod("u", ready=False), [pdb(min_available=4, status=observed(0, healthy=4))], None, False),
    (pod("u", ready=False), [pdb(min_available=4, status=observed(0, healthy=3))], TooManyRequests, False),
    (pod("u", ready=False), [pdb(min_available=4, status=observed(1, healthy=3, desired=2))], None, False),
])
def test_eviction_check(the_pod: Obj, budgets: list[Obj], error: type[Exception] | None, needs_write: bool) -> None:
    if error is not None:
        with pytest.raises(error):
            check_eviction(the_pod, budgets, NOW)
        return
    verdict = check_eviction(the_pod, budgets, NOW)
    assert (verdict.status is not None) is needs_write


def test_refusal_says_what_the_budget_needs() -> None:
    with pytest.raises(TooManyRequests) as caught:
        check_eviction(pod("r0"), [pdb(min_available=4, status=observed(0, healthy=4))], NOW)
    assert caught.value.http_status == 429 and caught.value.retryable
    assert caught.value.details["causes"][0]["message"] == ("The disruption budget web-pdb needs 4 healthy pods "
                                                            "and has 4 currently")
