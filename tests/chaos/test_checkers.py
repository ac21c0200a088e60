"""The checkers on histories known to be good and known to be bad: hand-written tables, and
hypothesis-generated ones (sequential executions spread into overlapping intervals must pass; mutated
strictly sequential ones must fail)."""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from tests.chaos.checkers import (
    Event,
    EventType,
    LeaderClaim,
    LeaseRecord,
    Operation,
    PodObservation,
    RegisterState,
    WatchRecord,
    check_binds,
    check_lease_history,
    check_lost_creates,
    check_lost_writes,
    check_one_leader,
    check_register,
    check_watch_stream,
    deployment_lag,
    pair_events,
)
from tests.chaos.checkers.history import HistoryError
from tests.chaos.checkers.linearizability import observed, prepare, step

OK, FAIL, INFO = EventType.OK, EventType.FAIL, EventType.INFO
INIT = RegisterState("v0", 1, 1)


def op(i: int, f: str, arg: Any, outcome: EventType, result: Any, call: float, ret: float,
       error: str | None = None) -> Operation:
    return Operation(i, i, f, "k", arg, outcome, result, call, math.inf if outcome is INFO else ret, error)


def history(*rows: tuple[Any, ...]) -> list[Operation]:
    return [op(i, *row) for i, row in enumerate(rows)]


GOOD: dict[str, list[Operation]] = {
    "empty": [],
    "sequential read write read": history(
        ("read", None, OK, ("v0", 1), 0, 1), ("write", "a", OK, 5, 2, 3), ("read", None, OK, ("a", 5), 4, 5)),
    "cas hit then conflict": history(
        ("cas", (1, "a"), OK, 3, 0, 1), ("cas", (1, "b"), FAIL, None, 2, 3, "Conflict"),
        ("read", None, OK, ("a", 3), 4, 5)),
    "concurrent writes, read sees the later-ordered": history(
        ("write", "a", OK, 5, 0, 10), ("write", "b", OK, 4, 1, 9), ("read", None, OK, ("a", 5), 11, 12)),
    "read concurrent with a write may see either": history(
        ("write", "a", OK, 5, 0, 10), ("read", None, OK, ("v0", 1), 1, 2), ("read", None, OK, ("a", 5), 3, 4)),
    "info write that happened, seen later with its rv": history(
        ("write", "a", INFO, None, 0, 0), ("read", None, OK, ("a", 7), 5, 6)),
    "info write that never happened": history(
        ("write", "a", INFO, None, 0, 0), ("read", None, OK, ("v0", 1), 5, 6), ("write", "b", OK, 9, 7, 8),
        ("read", None, OK, ("b", 9), 10, 11)),
    "info cas then a cas on its unknown rv": history(
        ("cas", (1, "a"), INFO, None, 0, 0), ("cas", (6, "b"), OK, 8, 5, 6), ("read", None, OK, ("b", 8), 7, 9)),
    "info cas that could not match yet, then did after a concurrent cas": history(
        ("cas", (2, "b"), INFO, None, -81, 0), ("cas", (1, "a"), OK, 2, -46, 275),
        ("read", None, OK, ("b", 4), 49, 494)),
    "non-conflict failure did not happen": history(
        ("write", "a", FAIL, None, 0, 1, "Invalid"), ("read", None, OK, ("v0", 1), 2, 3)),
}

BAD: dict[str, list[Operation]] = {
    "stale read after an acknowledged write": history(
        ("write", "a", OK, 5, 0, 1), ("read", None, OK, ("v0", 1), 2, 3)),
    "lost write: read after two writes shows the first": history(
        ("write", "a", OK, 5, 0, 1), ("write", "b", OK, 6, 2, 3), ("read", None, OK, ("a", 5), 4, 5)),
    "two cas on the same rv both succeed": history(
        ("cas", (1, "a"), OK, 3, 0, 5), ("cas", (1, "b"), OK, 4, 1, 6)),
    "conflict although the rv matched": history(
        ("cas", (1, "a"), FAIL, None, 0, 1, "Conflict"), ("read", None, OK, ("v0", 1), 2, 3)),
    "revision goes backwards": history(("write", "a", OK, 5, 0, 1), ("write", "b", OK, 4, 2, 3)),
    "read of a value never written": history(("read", None, OK, ("zz", 1), 0, 1)),
    "read of the right value at the wrong rv": history(
        ("write", "a", OK, 5, 0, 1), ("read", None, OK, ("a", 6), 2, 3)),
    "info write seen, then the older value again": history(
        ("write", "a", INFO, None, 0, 0), ("read", None, OK, ("a", 7), 1, 2), ("read", None, OK, ("v0", 1), 3, 4)),
    "cas succeeds on a rv already replaced": history(
        ("write", "a", OK, 5, 0, 1), ("cas", (1, "b"), OK, 6, 2, 3)),
}


@pytest.mark.parametrize("name", sorted(GOOD))
def test_known_good_histories_are_linearizable(name: str) -> None:
    result = check_register("k", GOOD[name], INIT)
    assert result.linearizable is True, result


@pytest.mark.parametrize("name", sorted(BAD))
def test_known_bad_histories_are_not(name: str) -> None:
    result = check_register("k", BAD[name], INIT)
    assert result.linearizable is False, result
    assert result.stuck_at is not None


def test_the_search_bound_answers_unknown_not_a_guess() -> None:
    ops = history(*[("write", f"w{i}", INFO, None, i, 0) for i in range(14)],
                  ("read", None, OK, ("nope", 99), 20, 21))
    result = check_register("k", ops, INIT, max_steps=200)
    assert result.linearizable is None


def test_pair_events_makes_operations_and_open_calls_indeterminate() -> None:
    events = [Event(1, EventType.INVOKE, "write", "k", "a", 0.0), Event(2, EventType.INVOKE, "read", "k", None, 0.5),
              Event(1, EventType.OK, "write", "k", 5, 1.0), Event(3, EventType.INVOKE, "cas", "k", (5, "b"), 2.0),
              Event(3, EventType.FAIL, "cas", "k", None, 3.0, "Conflict")]
    ops = pair_events(events)
    assert [(o.f, o.outcome, o.call, o.ret) for o in ops] == [
        ("write", OK, 0.0, 1.0), ("cas", FAIL, 2.0, 3.0), ("read", INFO, 0.5, math.inf)]
    with pytest.raises(HistoryError):
        pair_events([Event(1, EventType.OK, "read", "k", None, 0.0)])
    with pytest.raises(HistoryError):
        pair_events([Event(1, EventType.INVOKE, "read", "k", None, 0.0),
                     Event(1, EventType.INVOKE, "read", "k", None, 1.0)])


# -- generated histories -----------------------------------------------------------------------
MOVES = st.sampled_from(["read", "write", "cas_hit", "cas_miss", "info_write_done", "info_write_lost",
                         "info_cas_done", "info_cas_lost"])


def simulate(moves: list[str], gaps: list[int], spread: list[tuple[int, int]] | None) -> list[Operation]:
    """A sequential execution of ``moves`` on a register; the i-th op takes effect at time 100*i, its
    interval is ``[100*i - a, 100*i + b]`` (``spread``) or ``[100*i, 100*i + 1]`` (strictly sequential)."""
    value, rv = INIT.value, INIT.rv
    assert rv is not None
    ops: list[Operation] = []
    for i, move in enumerate(moves):
        point = 100.0 * i
        a, b = spread[i] if spread else (0, 1)
        call, ret = point - a, point + b
        gap = gaps[i % len(gaps)]
        if move == "read":
            ops.append(op(i, "read", None, OK, (value, rv), call, ret))
        elif move in ("write", "info_write_done"):
            value, rv = f"w{i}", rv + gap
            ops.append(op(i, "write", value, OK if move == "write" else INFO, rv, call, ret))
        elif move == "info_write_lost":
            ops.append(op(i, "write", f"w{i}", INFO, None, call, ret))
        elif move in ("cas_hit", "info_cas_done"):
            expected = rv
            value, rv = f"w{i}", rv + gap
            ops.append(op(i, "cas", (expected, value), OK if move == "cas_hit" else INFO, rv, call, ret))
        elif move == "info_cas_lost":
            ops.append(op(i, "cas", (rv + 1000, f"w{i}"), INFO, None, call, ret))
        else:  # cas_miss
            ops.append(op(i, "cas", (rv - 1 if rv > 1 else rv + 1000, f"w{i}"), FAIL, None, call, ret, "Conflict"))
    return ops


@settings(max_examples=150, deadline=None)
@given(moves=st.lists(MOVES, max_size=40), gaps=st.lists(st.integers(1, 3), min_size=1, max_size=5),
       data=st.data())
def test_generated_linearizable_histories_pass(moves: list[str], gaps: list[int], data: st.DataObject) -> None:
    spread = data.draw(st.lists(st.tuples(st.integers(0, 250), st.integers(0, 250)),
                                min_size=len(moves), max_size=len(moves)))
    result = check_register("k", simulate(moves, gaps, spread), INIT)
    assert result.linearizable is True, result


SEQUENTIAL_MOVES = st.sampled_from(["read", "write", "cas_hit", "cas_miss"])


@settings(max_examples=150, deadline=None)
@given(moves=st.lists(SEQUENTIAL_MOVES, min_size=2, max_size=30), gaps=st.lists(st.integers(1, 3), min_size=1),
       mutation=st.sampled_from(["stale_read", "rv_backwards", "conflict_on_match", "cas_on_wrong_rv"]),
       data=st.data())
def test_mutated_sequential_histories_fail(moves: list[str], gaps: list[int], mutation: str,
                                           data: st.DataObject) -> None:
    ops = simulate(moves, gaps, None)
    assert INIT.rv is not None
    states: list[tuple[Any, int]] = [(INIT.value, INIT.rv)]  # the state before each op
    for o in ops:
        states.append(states[-1] if o.outcome is not OK or o.f == "read" else
                      (o.argument if o.f == "write" else o.argument[1], o.result))
    if mutation == "stale_read":
        candidates = [i for i, o in enumerate(ops) if o.f == "read" and len(set(states[:i + 1])) > 1]
        assume(candidates)
        i = data.draw(st.sampled_from(candidates))
        stale = data.draw(st.sampled_from([s for s in states[:i] if s != states[i]]))
        ops[i] = replace(ops[i], result=stale)
    elif mutation == "rv_backwards":
        candidates = [i for i, o in enumerate(ops) if o.f in ("write", "cas") and o.outcome is OK]
        assume(candidates)
        i = data.draw(st.sampled_from(candidates))
        ops[i] = replace(ops[i], result=states[i][1])
    elif mutation == "conflict_on_match":
        candidates = [i for i, o in enumerate(ops) if o.f == "cas" and o.outcome is FAIL]
        assume(candidates)
        i = data.draw(st.sampled_from(candidates))
        ops[i] = replace(ops[i], argument=(states[i][1], ops[i].argument[1]))
    else:
        candidates = [i for i, o in enumerate(ops) if o.f == "cas" and o.outcome is OK]
        assume(candidates)
        i = data.draw(st.sampled_from(candidates))
        ops[i] = replace(ops[i], argument=(states[i][1] - 1, ops[i].argument[1]))
    result = check_register("k", ops, INIT)
    assert result.linearizable is False, (mutation, result)


# -- the other promises ------------------------------------------------------------------------
def test_lost_writes() -> None:
    acked = {"a": [("x", 5), ("y", 9)], "b": [("p", 3)], "c": [("q", 4)], "d": [("r", 7)]}
    final = {"a": ("y", 9), "b": ("later", 12), "c": ("q-old", 2), "d": ("other", 7)}
    found = {(v.subject, v.promise) for v in check_lost_writes(acked, final)}
    assert found == {("c", "no-lost-write"), ("d", "no-lost-write")}
    assert [v.subject for v in check_lost_writes({"e": [("z", 1)]}, {})] == ["e"]
    assert [v.subject for v in check_lost_creates(["p", "q", "r"], ["q", "p", "s"])] == ["r"]


def test_binds() -> None:
    good = [PodObservation("ns/p", "u1", None, 3), PodObservation("ns/p", "u1", "n1", 5),
            PodObservation("ns/p", "u1", "n1", 8), PodObservation("ns/p", "u2", "n2", 9)]  # re-created: new uid
    assert check_binds(good) == []
    two_nodes = [*good, PodObservation("ns/p", "u1", "n3", 12, "watcher-2")]
    assert [v.detail.split(":")[0] for v in check_binds(two_nodes)] == ["bound to 2 nodes ['n1', 'n3']"]
    unbound = [*good, PodObservation("ns/p", "u2", None, 11)]
    assert len(check_binds(unbound)) == 1 and "unbound at rv 11" in check_binds(unbound)[0].detail


TRUTH = {4: ("a", "x"), 6: ("b", "y"), 7: ("a", "z"), 10: ("b", "w")}


def ev(rv: int) -> WatchRecord:
    key, value = TRUTH[rv]
    return WatchRecord("event", rv, key, value, "MODIFIED")


@pytest.mark.parametrize(("records", "end", "promises"), [
    ([WatchRecord("start", 1), ev(4), ev(6), ev(7), ev(10)], 10, []),
    ([WatchRecord("start", 5), ev(6), ev(7), ev(10)], 10, []),  # started after rv 4: not its business
    ([WatchRecord("start", 1), ev(4), WatchRecord("expired"), WatchRecord("relist", 7), ev(10)], 10, []),
    ([WatchRecord("start", 1), ev(4), ev(7), ev(10)], 10, ["watch-gap"]),  # rv 6 silently skipped
    ([WatchRecord("start", 1), ev(4), ev(6), ev(7)], 10, ["watch-gap"]),  # silence at the end
    ([WatchRecord("start", 1), ev(4), ev(7), ev(6), ev(10)], 10, ["watch-order", "watch-gap"]),
    ([WatchRecord("start", 1), ev(4), ev(4), ev(6), ev(7), ev(10)], 10, ["watch-order"]),  # duplicate
    ([WatchRecord("start", 1), ev(4), WatchRecord("relist", 7), ev(10)], 10, ["watch-order"]),  # no Expired
    ([WatchRecord("start", 1), ev(4), WatchRecord("event", 6, "b", "forged"), ev(7), ev(10)], 10,
     ["watch-content"]),
    ([ev(4)], 10, ["watch-order"]),
])
def test_watch_streams(records: list[WatchRecord], end: int, promises: list[str]) -> None:
    assert [v.promise for v in check_watch_stream("w", records, TRUTH, end)] == promises


# -- one leader at a time --------------------------------------------------------------------------
def claim(identity: str, start: float, end: float, *frozen: tuple[float, float], lease: str = "sched") -> LeaderClaim:
    return LeaderClaim(lease, identity, f"proc-{identity}", start, end, tuple(frozen))


@pytest.mark.parametrize(("claims", "violations"), [
    ([], 0),
    ([claim("a", 0, 10), claim("b", 10, 20), claim("a", 20, 30)], 0),  # hand-overs, back and forth
    ([claim("a", 0, 10.4), claim("b", 10, 20)], 0),  # 0.4 s: within the recorder's allowance
    ([claim("a", 0, 12), claim("b", 10, 20)], 1),  # the old leader kept acting 2 s after the takeover
    ([claim("a", 0, 10), claim("b", 5, 8)], 1),  # a second leader inside the first one's term
    ([claim("a", 0, 10), claim("a", 5, 12)], 0),  # one identity twice (two reports of one term)
    ([claim("a", 0, 30, (5, 25.2)), claim("b", 12, 25)], 0),  # frozen (SIGSTOP) while b led: not acting
    ([claim("a", 0, 30, (5, 20)), claim("b", 12, 25)], 1),  # resumed at 20, acted until 30 beside b
    ([claim("a", 0, 12), claim("b", 10, 20, lease="cm")], 0),  # two leases, one leader each
    ([claim("a", 0, 10), claim("b", 9.8, 20), claim("c", 19.7, 30)], 0),
    ([claim("a", 0, 10), claim("b", 9, 20), claim("c", 19, 30)], 2),
])
def test_one_leader(claims: list[LeaderClaim], violations: int) -> None:
    found = check_one_leader(claims, allowed_overlap=0.5)
    assert len(found) == violations, found
    assert all(v.promise == "one-leader" for v in found)


def test_one_leader_refuses_nonsense() -> None:
    with pytest.raises(ValueError, match="ends"):
        check_one_leader([claim("a", 5, 1)], 0.5)
    with pytest.raises(ValueError, match="allowed_overlap"):
        check_one_leader([], -1)


def lease(rv: int, holder: str, transitions: int, renew: float, gap: bool = False) -> LeaseRecord:
    return LeaseRecord("sched", rv, holder, transitions, renew, gap)


@pytest.mark.parametrize(("records", "promises"), [
    ([lease(1, "a", 0, 0), lease(4, "a", 0, 2), lease(9, "a", 0, 4), lease(12, "b", 1, 14.2)], []),
    ([lease(1, "a", 0, 0), lease(4, "a", 0, 2), lease(9, "", 0, 2), lease(12, "b", 1, 3)], []),  # released
    ([lease(4, "a", 0, 2), lease(1, "a", 0, 0), lease(12, "b", 1, 14.2), lease(12, "b", 1, 14.2)], []),
    ([lease(1, "a", 0, 0), lease(4, "a", 0, 2), lease(12, "b", 1, 5)], ["one-leader"]),  # took it too early
    ([lease(1, "a", 0, 0), lease(12, "b", 0, 30)], ["lease-history"]),  # holder changed, transitions did not
    ([lease(1, "a", 3, 0), lease(12, "a", 2, 2)], ["lease-history"]),  # transitions went back
    ([lease(1, "a", 0, 0), lease(12, "b", 2, 3, gap=True)], []),  # a relist: a release may hide before it
    ([lease(1, "a", 3, 0), lease(12, "b", 2, 30, gap=True)], ["lease-history"]),  # but never going back
])
def test_lease_history(records: list[LeaseRecord], promises: list[str]) -> None:
    assert [v.promise for v in check_lease_history(records, lease_duration=10, skew=0.5)] == promises


def test_a_long_concurrent_history_is_checked_within_the_bound() -> None:
    """5,000 operations, each overlapping its neighbours, some indeterminate: memoisation keeps the search
    near-linear (a deterministic count of steps, not a timing)."""
    import random

    rng = random.Random(5)
    moves = [rng.choice(["read", "read", "write", "cas_hit", "cas_miss", "info_write_lost", "info_cas_done"])
             for _ in range(5000)]
    spread = [(rng.randrange(0, 150), rng.randrange(0, 150)) for _ in moves]
    result = check_register("k", simulate(moves, [1, 2], spread), INIT, max_steps=200_000)
    assert result.linearizable is True, result
    assert result.steps < 100_000


def brute_force(ops: list[Operation]) -> bool:
    """Every order of the operations that respects real time, tried one by one (small histories only)."""
    prepared = prepare(ops)

    def extend(states: frozenset[RegisterState], left: frozenset[int]) -> bool:
        if not left:
            return True
        for i in left:
            o = prepared[i]
            if any(prepared[j].ret < o.call for j in left):
                continue  # an operation still left returned before this one was called
            after = step(states, o)
            if after and extend(after, left - {i}):
                return True
        return False

    return extend(frozenset([INIT]), frozenset(range(len(prepared))))


@settings(max_examples=400, deadline=None)
@given(moves=st.lists(MOVES, min_size=1, max_size=7), data=st.data())
def test_the_search_agrees_with_trying_every_order(moves: list[str], data: st.DataObject) -> None:
    """The search's prunings (a read or Conflict dominated where it first fits; no step past the revision a
    pending acknowledged op needs) change its cost, never its answer: checked against every order, on
    generated histories and the same with one result, revision or expectation altered."""
    spread = data.draw(st.lists(st.tuples(st.integers(0, 300), st.integers(0, 300)),
                                min_size=len(moves), max_size=len(moves)))
    ops = simulate(moves, [1, 2], spread)
    i = data.draw(st.integers(0, len(ops) - 1))
    if data.draw(st.booleans()):
        o, delta = ops[i], data.draw(st.sampled_from([-1, 1, 2]))
        if o.f == "read":
            ops[i] = replace(o, result=(o.result[0], o.result[1] + delta))
        elif o.f == "cas":
            ops[i] = replace(o, argument=(o.argument[0] + delta, o.argument[1]))
        elif o.result is not None:
            ops[i] = replace(o, result=o.result + delta)
    assert check_register("k", ops, INIT).linearizable is brute_force(ops)


def test_a_late_violation_among_indeterminate_writes_is_found_not_unknown() -> None:
    """300 overlapping operations, four of them indeterminate writes, then a stale read near the end: the
    unpruned search went through 0.4 to 2 million steps (past its bound: "unknown") before answering; the
    prunings answer in a few (a count of steps, not a timing)."""
    import random

    for seed in range(6):
        rng = random.Random(seed)
        moves = [rng.choice(["read", "read", "read", "cas_hit", "cas_miss", "cas_miss", "write"]) for _ in range(300)]
        for i in rng.sample(range(300), 4):
            moves[i] = "info_write_lost"
        ops = simulate(moves, [1, 2], [(rng.randrange(0, 400), rng.randrange(0, 400)) for _ in moves])
        assert check_register("k", ops, INIT).linearizable is True
        last = max(i for i, o in enumerate(ops) if o.f == "read")
        ops[last] = replace(ops[last], result=("v0", 1))
        result = check_register("k", ops, INIT, max_steps=10_000)
        assert result.linearizable is False, (seed, result.steps)


def test_an_unknown_revision_is_never_one_seen_holding_another_value() -> None:
    """After an indeterminate write of ``x`` the rv is unknown (above 5). A compare against 7 may match it
    only if nothing saw another value written at 7: each revision is one write's."""
    ops = prepare(history(
        ("read", None, OK, ("y", 7), 0, 1),  # revision 7 holds "y"
        ("cas", (7, "c"), INFO, None, 2, 3),
        ("cas", (9, "d"), INFO, None, 4, 5),  # revision 9: nobody saw it
    ))
    values = observed(ops, INIT)
    assert values == {1: "v0", 7: "y"}
    unknown = frozenset([RegisterState("x", None, 5)])
    assert step(unknown, ops[1], values) == unknown  # it did not happen: 7 is "y"'s, not "x"'s
    assert step(unknown, ops[1]) == unknown | {RegisterState("c", None, 7)}  # the plain model keeps both
    assert step(unknown, ops[2], values) == unknown | {RegisterState("d", None, 9)}
    assert step(frozenset([RegisterState("y", None, 5)]), ops[1], values) == {
        RegisterState("y", None, 5), RegisterState("c", None, 7)}  # "y" may be at 7: it may match


def test_checkers_do_no_io() -> None:
    """The checkers are pure: they import nothing that talks to the world (tests and the soak share them)."""
    import ast
    from pathlib import Path

    allowed = {"__future__", "collections", "collections.abc", "dataclasses", "enum", "math", "typing",
               "tests.chaos.checkers", "tests.chaos.checkers.history", "tests.chaos.checkers.linearizability",
               "tests.chaos.checkers.promises", "tests.chaos.checkers.leadership", "itertools"}
    for path in (Path(__file__).parent / "checkers").glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            assert set(names) <= allowed, f"{path.name} imports {names}"


def deployment(replicas: int, generation: int = 2, observed: int = 2, **status: int) -> dict[str, Any]:
    counts = {"replicas": replicas, "updatedReplicas": replicas, "availableReplicas": replicas, **status}
    return {"metadata": {"generation": generation}, "spec": {"replicas": replicas},
            "status": {"observedGeneration": observed, **counts}}


def dpod(node: str | None = "n1", phase: str = "Running", ready: str = "True",
         deleting: bool = False) -> dict[str, Any]:
    meta: dict[str, Any] = {"deletionTimestamp": "2026-12-02T00:00:00Z"} if deleting else {}
    return {"metadata": meta, "spec": {"nodeName": node} if node else {},
            "status": {"phase": phase, "conditions": [{"type": "Ready", "status": ready}]}}


@pytest.mark.parametrize(("d", "pods", "lag"), [
    (deployment(2), [dpod(), dpod("n2")], None),
    (deployment(2), [dpod(), dpod("n2"), dpod(deleting=True)], None),  # one going away counts for nothing
    (deployment(2, observed=1), [dpod(), dpod()], "observedGeneration"),  # the controller has not seen it
    (deployment(3, availableReplicas=2), [dpod(), dpod(), dpod()], "status"),
    (deployment(2), [dpod(), dpod(), dpod()], "3 live pods"),  # a pod too many (status says 2)
    (deployment(2), [dpod()], "1 live pods"),
    (deployment(2), [dpod(), dpod(node=None)], "1 bound"),
    (deployment(2), [dpod(), dpod(phase="Pending")], "1 bound"),
    (deployment(2), [dpod(), dpod(ready="False")], "1 bound"),
])
def test_deployment_lag(d: dict[str, Any], pods: list[dict[str, Any]], lag: str | None) -> None:
    found = deployment_lag(d, pods)
    assert (found is None) if lag is None else (found is not None and lag in found), found
