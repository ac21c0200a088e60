"""Linearizability of one key's compare-and-swap register history: a Wing-Gong search with Lowe's
memoisation, as Porcupine does it (its ``checkSingle``), with a bound on the search.

The register is a Shoal object's data field and its resourceVersion:

- ``read`` returns ``(value, rv)``;
- ``write`` (no precondition) sets the value; its result is the new rv;
- ``cas`` with argument ``(expected_rv, value)`` sets the value if the rv is ``expected_rv``; its result is
  the new rv; a ``fail`` with error ``Conflict`` is an observation (the rv was not ``expected_rv``), any
  other ``fail`` did not take effect and is left out;
- an ``info`` operation may take effect at any moment after its call, or never; an ``info`` read is left
  out (it changes nothing).

Revisions are assigned by the datastore and only grow, so a state whose rv is unknown (after an ``info``
write) is ``(value, None, floor)``: "some rv above ``floor``"; the first observation of it pins it.
The model is non-deterministic (an ``info`` op happened or not; an unknown rv matches a compare or not),
so the search runs over sets of states (Porcupine's power-set model): a step maps a set of states to the
set of every possible next state, and is illegal when that set is empty.

The search: entries (calls and returns) in time order on a doubly linked list; repeatedly try to
linearize the first pending call whose step is legal and whose (linearized set, state) is new (the
memo), lifting its call and return out of the list; at a return entry nothing more can be linearized
before it, so backtrack. The history is linearizable when the list empties. ``max_steps`` bounds the
work: beyond it the answer is ``None`` (unknown), never a guess.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from tests.chaos.checkers.history import EventType, Operation

READ, WRITE, CAS = "read", "write", "cas"
CONFLICT = "Conflict"


class RegisterState(NamedTuple):
    value: Any
    rv: int | None
    """None: unknown, greater than ``floor`` (an indeterminate write may have happened)."""
    floor: int


States = frozenset[RegisterState]


@dataclass(frozen=True, slots=True)
class CasOp:
    """One operation prepared for the search: ``kind`` is ``ok``, ``conflict`` or ``info``."""

    id: int
    f: str
    argument: Any
    kind: str
    result: Any
    call: float
    ret: float


def _matches(state: RegisterState, expected: int) -> tuple[bool, bool]:
    """(may match, may differ) for a compare against ``expected``."""
    if state.rv is not None:
        return state.rv == expected, state.rv != expected
    return expected > state.floor, True


def step_one(state: RegisterState, op: CasOp) -> list[RegisterState]:
    """Every state the register may be in after ``op`` from ``state`` (empty: ``op`` is impossible here)."""
    value, rv, floor = state
    known = rv if rv is not None else floor + 1  # the least the current rv can be
    if op.f == READ:
        seen_value, seen_rv = op.result
        if seen_value != value:
            return []
        if rv is not None:
            return [state] if seen_rv == rv else []
        return [RegisterState(value, seen_rv, seen_rv)] if seen_rv > floor else []
    if op.f == WRITE:
        if op.kind == "ok":
            new_rv = int(op.result)
            return [RegisterState(op.argument, new_rv, new_rv)] if new_rv > known else []
        return [state, RegisterState(op.argument, None, known)]  # info: happened or not
    if op.f == CAS:
        expected, new_value = op.argument
        may_match, may_differ = _matches(state, int(expected))
        if op.kind == "ok":
            new_rv = int(op.result)
            return [RegisterState(new_value, new_rv, new_rv)] if may_match and new_rv > int(expected) else []
        if op.kind == "conflict":
            return [state] if may_differ else []
        out = [state]  # info: it may have compared unequal or never run
        if may_match:
            out.append(RegisterState(new_value, None, int(expected)))
        return out
    raise ValueError(f"unknown register operation {op.f!r}")


def step(states: States, op: CasOp) -> States:
    return frozenset(s for state in states for s in step_one(state, op))


def prepare(ops: Iterable[Operation]) -> list[CasOp]:
    """The operations the search considers: ok ones, Conflicts, and info ones that can change the state."""
    out: list[CasOp] = []
    for op in ops:
        if op.outcome is EventType.OK:
            kind = "ok"
        elif op.outcome is EventType.FAIL:
            if op.f != CAS or op.error != CONFLICT:
                continue  # definitely did not happen
            kind = "conflict"
        else:
            if op.f == READ:
                continue
            kind = "info"
        out.append(CasOp(len(out), op.f, op.argument, kind, op.result, op.call,
                         math.inf if kind == "info" else op.ret))
    return out


@dataclass
class CheckResult:
    key: str
    linearizable: bool | None
    """None: the search hit ``max_steps`` before an answer (unknown, not a pass)."""
    operations: int
    steps: int
    longest_prefix: list[int] = field(default_factory=list)
    """Ids (in the prepared list) of the longest linearized prefix found: where a failure begins."""
    stuck_at: CasOp | None = None
    """The operation that returned before anything more could be linearized, at the deepest point."""

    def explain(self, ops: Sequence[CasOp]) -> str:
        if self.linearizable:
            return f"{self.key}: linearizable ({self.operations} ops, {self.steps} steps)"
        if self.linearizable is None:
            return f"{self.key}: unknown after {self.steps} steps ({self.operations} ops)"
        tail = [ops[i] for i in self.longest_prefix[-5:]]
        return (f"{self.key}: NOT linearizable ({self.operations} ops); longest linearized prefix "
                f"{len(self.longest_prefix)} ops ending {tail}; nothing fits before {self.stuck_at}")


class _Node:
    __slots__ = ("is_call", "match", "next", "op", "prev")

    def __init__(self, op: CasOp | None, is_call: bool) -> None:
        self.op = op
        self.is_call = is_call
        self.match: _Node | None = None
        self.prev: _Node | None = None
        self.next: _Node | None = None


def _build_list(ops: Sequence[CasOp]) -> _Node:
    entries: list[tuple[float, int, _Node]] = []
    for op in ops:
        call, ret = _Node(op, True), _Node(op, False)
        call.match = ret
        entries.append((op.call, 0, call))  # at equal times calls come first: such ops are concurrent
        entries.append((op.ret, 1, ret))
    entries.sort(key=lambda e: (e[0], e[1]))
    head = _Node(None, False)
    prev = head
    for _, _, node in entries:
        prev.next = node
        node.prev = prev
        prev = node
    return head


def _lift(node: _Node) -> None:
    assert node.prev is not None and node.match is not None
    node.prev.next = node.next
    if node.next is not None:
        node.next.prev = node.prev
    ret = node.match
    assert ret.prev is not None
    ret.prev.next = ret.next
    if ret.next is not None:
        ret.next.prev = ret.prev


def _unlift(node: _Node) -> None:
    ret = node.match
    assert ret is not None and ret.prev is not None and node.prev is not None
    ret.prev.next = ret
    if ret.next is not None:
        ret.next.prev = ret
    node.prev.next = node
    if node.next is not None:
        node.next.prev = node


def check_register(key: str, ops: Iterable[Operation], initial: RegisterState, *,
                   max_steps: int = 2_000_000) -> CheckResult:
    """Is this key's history linearizable from ``initial``? See the module docstring."""
    prepared = prepare(ops)
    return search(key, prepared, initial, max_steps=max_steps)


def search(key: str, ops: Sequence[CasOp], initial: RegisterState, *, max_steps: int = 2_000_000) -> CheckResult:
    head = _build_list(ops)
    state: States = frozenset([initial])
    linearized = 0
    cache: set[tuple[int, States]] = set()
    calls: list[tuple[_Node, States]] = []
    longest: list[int] = []
    stuck: CasOp | None = None
    steps = 0
    entry = head.next
    while head.next is not None:
        steps += 1
        if steps > max_steps:
            return CheckResult(key, None, len(ops), steps, longest, stuck)
        assert entry is not None
        op = entry.op
        assert op is not None
        if entry.is_call:
            new_state = step(state, op)
            if new_state:
                new_linearized = linearized | (1 << op.id)
                memo = (new_linearized, new_state)
                if memo not in cache:
                    cache.add(memo)
                    calls.append((entry, state))
                    state, linearized = new_state, new_linearized
                    _lift(entry)
                    entry = head.next
                    continue
            entry = entry.next
        else:
            if len(calls) >= len(longest):
                longest = [c.op.id for c, _ in calls if c.op is not None]
                stuck = op
            if not calls:
                return CheckResult(key, False, len(ops), steps, longest, stuck)
            node, state = calls.pop()
            assert node.op is not None
            linearized &= ~(1 << node.op.id)
            _unlift(node)
            entry = node.next
    return CheckResult(key, True, len(ops), steps, [c.op.id for c, _ in calls if c.op is not None])
