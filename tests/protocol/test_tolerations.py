"""The one toleration rule (Kubernetes' ToleratesTaint), and its two users agreeing on it."""

from __future__ import annotations

import random

import pytest

from actors.controllers.nodelifecycle_plan import eviction_delay
from actors.scheduler import filters
from actors.scheduler.model import NodeInfo, node_info, pod_info
from protocol.objects import Obj
from protocol.tolerations import (
    INVALID,
    NO_EXECUTE,
    NO_SCHEDULE,
    PREFER_NO_SCHEDULE,
    UNREACHABLE,
    Taint,
    Toleration,
    find_untolerated_taint,
    min_toleration_seconds,
    taints_of,
    tolerates_all,
    tolerates_taint,
    toleration_of,
    tolerations_of,
    tolerations_tolerate_taint,
)

# The cases of TestTolerationToleratesTaint in k8s.io/api core/v1 toleration_test.go, in its order.
KUBERNETES_CASES = [
    # same key and effect, Exists, taint without a value
    (Toleration("foo", "Exists", "", NO_SCHEDULE), Taint("foo", "", NO_SCHEDULE), True),
    # same key and effect, Exists, taint with a value
    (Toleration("foo", "Exists", "", NO_SCHEDULE), Taint("foo", "bar", NO_SCHEDULE), True),
    # same effect, empty key with Exists: matches all taints
    (Toleration("", "Exists", "", NO_SCHEDULE), Taint("foo", "bar", NO_SCHEDULE), True),
    # same key, effect and value, Equal
    (Toleration("foo", "Equal", "bar", NO_SCHEDULE), Taint("foo", "bar", NO_SCHEDULE), True),
    # same key and effect, different values, Equal
    (Toleration("foo", "Equal", "value1", NO_SCHEDULE), Taint("foo", "value2", NO_SCHEDULE), False),
    # same key and value, different effects, Equal
    (Toleration("foo", "Equal", "bar", NO_SCHEDULE), Taint("foo", "bar", NO_EXECUTE), False),
    # Gt and Lt exist only behind Kubernetes' TaintTolerationComparisonOperators gate (off by default):
    # without it, as here, an operator other than Exists or Equal tolerates nothing
    (Toleration("node.kubernetes.io/sla", "Gt", "750", NO_SCHEDULE), Taint("node.kubernetes.io/sla", "950",
                                                                            NO_SCHEDULE), False),
    (Toleration("node.kubernetes.io/sla", "Lt", "950", NO_SCHEDULE), Taint("node.kubernetes.io/sla", "800",
                                                                            NO_SCHEDULE), False),
]

SEMANTICS_CASES = [
    # an empty effect matches every effect
    (Toleration("k", "Exists"), Taint("k", "v", NO_EXECUTE), True),
    (Toleration("k", "Exists"), Taint("k", "v", PREFER_NO_SCHEDULE), True),
    (Toleration("k", "Exists", "", NO_EXECUTE), Taint("k", "v", NO_SCHEDULE), False),
    # an empty key matches every key, with either operator (Equal still compares the values)
    (Toleration("", "Exists"), Taint("anything", "v", NO_EXECUTE), True),
    (Toleration("", "Equal", "", NO_EXECUTE), Taint(UNREACHABLE, "", NO_EXECUTE), True),
    (Toleration("", "Equal", "", NO_EXECUTE), Taint("k", "v", NO_EXECUTE), False),
    (Toleration("j", "Exists"), Taint("k", "v", NO_SCHEDULE), False),
    # an empty operator means Equal
    (Toleration("k", "", "v"), Taint("k", "v", NO_SCHEDULE), True),
    (Toleration("k", "", "w"), Taint("k", "v", NO_SCHEDULE), False),
    (Toleration("k", "Equal", ""), Taint("k", "", NO_SCHEDULE), True),
    # tolerationSeconds plays no part in matching
    (Toleration("k", "Exists", "", NO_SCHEDULE, seconds=5), Taint("k", "", NO_SCHEDULE), True),
    (Toleration("k", "Exists", "", "", seconds=0), Taint("k", "", NO_EXECUTE), True),
    # an unknown operator, or a toleration that was not a map, tolerates nothing
    (Toleration("k", "Bigger", "v"), Taint("k", "v", NO_SCHEDULE), False),
    (Toleration(operator=INVALID), Taint("k", "", NO_SCHEDULE), False),
]


@pytest.mark.parametrize(("toleration", "taint", "tolerated"), KUBERNETES_CASES + SEMANTICS_CASES)
def test_tolerates_taint(toleration: Toleration, taint: Taint, tolerated: bool) -> None:
    assert tolerates_taint(toleration, taint) is tolerated
    assert toleration.tolerates(taint) is tolerated
    assert tolerations_tolerate_taint([toleration], taint) is tolerated


def test_several_tolerations_and_taints() -> None:
    a, b = Taint("a", "1", NO_SCHEDULE), Taint("b", "", NO_EXECUTE)
    soft = Taint("c", "", PREFER_NO_SCHEDULE)
    only_a = (Toleration("a", "Equal", "1"),)
    assert tolerations_tolerate_taint(only_a, a) and not tolerations_tolerate_taint(only_a, b)
    assert not tolerations_tolerate_taint((), a)
    assert find_untolerated_taint(only_a, (a, b)) == b
    assert find_untolerated_taint(only_a, (a, soft, b), {NO_SCHEDULE}) is None
    assert find_untolerated_taint(only_a, (soft, b), {NO_EXECUTE, NO_SCHEDULE}) == b
    assert find_untolerated_taint(only_a, (soft, b)) == soft  # no effect filter: the first one
    assert tolerates_all((Toleration(operator="Exists"),), (a, b, soft))
    assert tolerates_all((), ())
    assert not tolerates_all(only_a, (a, b))


@pytest.mark.parametrize(("seconds", "expected"), [
    ((), None),
    ((None,), None),  # no limit: forever
    ((None, 30), 30),
    ((60, 30, None), 30),
    ((60, 0), 0),
    ((60, -5), 0),  # zero or negative: not tolerated at all
])
def test_min_toleration_seconds(seconds: tuple[int | None, ...], expected: int | None) -> None:
    assert min_toleration_seconds([Toleration("k", "Exists", seconds=s) for s in seconds]) == expected


def test_parsing() -> None:
    assert toleration_of({"key": "k", "value": "v", "effect": NO_EXECUTE, "tolerationSeconds": 5}) == Toleration(
        "k", "Equal", "v", NO_EXECUTE, 5)
    assert toleration_of({"operator": "Exists"}) == Toleration("", "Exists")
    assert toleration_of({"key": "k", "operator": None, "value": None}) == Toleration("k", "Equal", "")
    assert toleration_of("not a map") == Toleration(operator=INVALID)
    assert toleration_of({"key": "k", "tolerationSeconds": True}).seconds is None
    assert tolerations_of({"spec": {"tolerations": [{"key": "a"}, 7]}}) == (
        Toleration("a"), Toleration(operator=INVALID))
    assert tolerations_of({"spec": {}}) == () == tolerations_of({})
    node = {"spec": {"taints": [{"key": "k", "value": "v", "effect": NO_SCHEDULE}, "junk", {"key": "j"}]}}
    assert taints_of(node) == (Taint("k", "v", NO_SCHEDULE), Taint("j", "", ""))
    assert taints_of({"spec": None}) == () == taints_of({})


# -- the scheduler and the node lifecycle controller agree ---------------------------------------

def _pod(*tolerations: Obj) -> Obj:
    return {"kind": "Pod", "metadata": {"name": "p", "namespace": "default", "uid": "u"},
            "spec": {"containers": [{"name": "c", "image": "x"}], "tolerations": list(tolerations)}}


def _node(*taints: Obj) -> NodeInfo:
    return node_info({"kind": "Node", "metadata": {"name": "n"}, "spec": {"taints": list(taints)},
                      "status": {"allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110"},
                                 "conditions": [{"type": "Ready", "status": "True"}]}})


def test_noexecute_toleration_without_a_key_is_one_verdict() -> None:
    """The reported disagreement: ``{effect: NoExecute}`` (no key, so operator Equal with an empty value)
    tolerates the unreachable taint (which has no value). The scheduler placed such a pod on an unreachable
    node, then the node lifecycle controller evicted it after pod_eviction_timeout: now both tolerate it."""
    toleration = {"effect": NO_EXECUTE}
    unreachable = {"key": UNREACHABLE, "effect": NO_EXECUTE}
    assert filters.taint_toleration(pod_info(_pod(toleration)), _node(unreachable)) == filters.FITS
    assert eviction_delay(_pod(toleration), [unreachable], {}, 100.0, 300.0) is None  # never evicted
    # and both refuse it where the taint has a value (Equal compares the values)
    valued = {"key": "dedicated", "value": "gpu", "effect": NO_EXECUTE}
    assert filters.taint_toleration(pod_info(_pod(toleration)), _node(valued)) != filters.FITS
    assert eviction_delay(_pod(toleration), [valued], {}, 100.0, 300.0) == 0.0


def test_scheduler_admits_exactly_the_pods_the_taint_manager_keeps() -> None:
    """Over random NoExecute taints and tolerations (without tolerationSeconds, and keys other than the
    condition taints', which have a default grace): a pod fits a node for the scheduler iff the node
    lifecycle controller would never evict it from there."""
    rng = random.Random(12)
    keys, values = ["", "a", "b"], ["", "x", "y"]
    for _ in range(2000):
        taints = [{"key": rng.choice(keys[1:]), "value": rng.choice(values), "effect": NO_EXECUTE}
                  for _ in range(rng.randrange(1, 3))]
        tolerations: list[Obj] = []
        for _ in range(rng.randrange(0, 3)):
            t: Obj = {"key": rng.choice(keys), "value": rng.choice(values)}
            for field, choices in (("operator", ["Exists", "Equal", ""]), ("effect", [NO_EXECUTE, NO_SCHEDULE, ""])):
                choice = rng.choice([*choices, None])
                if choice is not None:
                    t[field] = choice
            tolerations.append(t)
        fits = filters.taint_toleration(pod_info(_pod(*tolerations)), _node(*taints)) == filters.FITS
        kept = eviction_delay(_pod(*tolerations), taints, {}, 100.0, 300.0) is None
        assert fits == kept, (tolerations, taints)
