"""Table tests of controller expectations (Kubernetes' UIDTrackingControllerExpectations), on a fake clock."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from actors.controllers.expectations import EXPECTATIONS_TIMEOUT, Expectations


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


Step = Callable[[Expectations, Clock], object]


def creations(n: int) -> Step:
    return lambda e, _c: e.expect_creations("ns/rs", n)


def deletions(*pods: str) -> Step:
    return lambda e, _c: e.expect_deletions("ns/rs", [f"ns/{p}" for p in pods])


def added() -> Step:
    return lambda e, _c: e.creation_observed("ns/rs")


def gone(pod: str) -> Step:
    return lambda e, _c: e.deletion_observed("ns/rs", f"ns/{pod}")


def later(seconds: float) -> Step:
    def step(_e: Expectations, clock: Clock) -> None:
        clock.now += seconds
    return step


@pytest.mark.parametrize(("steps", "satisfied"), [
    pytest.param([], True, id="nothing recorded"),
    pytest.param([creations(0)], True, id="zero creations"),
    pytest.param([creations(2)], False, id="creations pending"),
    pytest.param([creations(2), added()], False, id="one of two creations seen"),
    pytest.param([creations(2), added(), added()], True, id="all creations seen"),
    pytest.param([creations(1), added(), added()], True, id="extra observation does not go negative"),
    pytest.param([creations(1), creations(1), added()], False, id="raising adds up"),
    pytest.param([deletions("a", "b")], False, id="deletions pending"),
    pytest.param([deletions("a", "b"), gone("a")], False, id="one of two deletions seen"),
    pytest.param([deletions("a", "b"), gone("a"), gone("a")], False, id="one pod seen twice counts once"),
    pytest.param([deletions("a", "b"), gone("a"), gone("b")], True, id="all deletions seen"),
    pytest.param([deletions("a"), gone("stranger")], False, id="a pod not asked for lowers nothing"),
    pytest.param([creations(1), deletions("a"), added()], False, id="adds seen, deletions not"),
    pytest.param([creations(1), deletions("a"), added(), gone("a")], True, id="both seen"),
    pytest.param([creations(3), later(EXPECTATIONS_TIMEOUT)], False, id="pending up to the ttl"),
    pytest.param([creations(3), later(EXPECTATIONS_TIMEOUT + 1)], True, id="expired after the ttl"),
    pytest.param([creations(3), later(EXPECTATIONS_TIMEOUT - 1), creations(1), later(2)], False,
                 id="raising again restarts the ttl"),
])
def test_satisfied(steps: list[Step], satisfied: bool) -> None:
    clock = Clock()
    expectations = Expectations(clock=clock)
    for step in steps:
        step(expectations, clock)
    assert expectations.satisfied("ns/rs") is satisfied


def test_keys_are_independent_and_forget_drops_one() -> None:
    e = Expectations(clock=Clock())
    e.expect_creations("ns/a", 1)
    e.expect_creations("ns/b", 1)
    e.creation_observed("ns/b")
    assert not e.satisfied("ns/a") and e.satisfied("ns/b")
    e.forget("ns/a")
    assert e.satisfied("ns/a") and e.pending("ns/a") is None


def test_a_satisfied_key_starts_again_from_zero() -> None:
    clock = Clock()
    e = Expectations(clock=clock)
    e.expect_creations("k", 5)
    clock.now += EXPECTATIONS_TIMEOUT + 1
    assert e.satisfied("k")  # expired: the five unseen creations are dropped
    e.expect_creations("k", 1)
    e.creation_observed("k")
    assert e.satisfied("k")


def test_deletion_observed_says_whether_it_was_expected() -> None:
    e = Expectations(clock=Clock())
    e.expect_deletions("k", ["ns/a"])
    assert e.deletion_observed("k", "ns/a") is True
    assert e.deletion_observed("k", "ns/a") is False
    assert e.deletion_observed("other", "ns/a") is False


def test_custom_ttl() -> None:
    clock = Clock()
    e = Expectations(ttl=60.0, clock=clock)
    e.expect_creations("k", 1)
    clock.now += 61
    assert e.satisfied("k")


@pytest.mark.parametrize("bad", [
    lambda: Expectations(ttl=0),
    lambda: Expectations(clock=Clock()).expect_creations("k", -1),
])
def test_bad_input_is_a_value_error(bad: Callable[[], object]) -> None:
    with pytest.raises(ValueError):
        bad()
