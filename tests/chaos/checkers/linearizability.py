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
from collections.abc import Iterable, Mapping, Sequence
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


Values = Mapping[int, Any]
"""What some operation saw written at a revision (``observed``): an unknown rv cannot be one whose write
wrote another value."""
UNSEEN: Values = {}
"""No revision's value known: the plain model (read only, as ``Values`` is)."""


def observed(ops: Iterable[CasOp], initial: RegisterState) -> dict[int, Any]:
    """Revision -> the value written there, as the acknowledged operations and the initial state tell."""
    out: dict[int, Any] = {} if initial.rv is None else {initial.rv: initial.value}
    for op in ops:
        if op.kind != "ok":
            continue
        if op.f == READ:
            out[int(op.result[1])] = op.result[0]
        elif op.f == WRITE:
            out[int(op.result)] = op.argument
        elif op.f == CAS:
            out[int(op.result)] = op.argument[1]
    return out


def _matches(state: RegisterState, expected: int, values: Values) -> tuple[bool, bool]:
    """(may match, may differ) for a compare against ``expected``. An unknown rv may be ``expected`` only
    if no operation saw another value written at ``expected`` (each revision is one write's)."""
    if state.rv is not None:
        return state.rv == expected, state.rv != expected
    return expected > state.floor and values.get(expected, state.value) == state.value, True


def step_one(state: RegisterState, op: CasOp, values: Values = UNSEEN) -> list[RegisterState]:
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
        may_match, may_differ = _matches(state, int(expected), values)
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


def step(states: States, op: CasOp, values: Values = UNSEEN) -> States:
    return frozenset(s for state in states for s in step_one(state, op, values))


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


def _known(state: RegisterState) -> int:
    """The least rv the register can have in ``state``."""
    return state.rv if state.rv is not None else state.floor + 1


def limit_of(op: CasOp) -> float:
    """The greatest least-rv (``_known``) of a state in which ``op`` can still be linearized: revisions only
    grow, so once every possible state is past it, ``op`` never fits again (infinite: no such bound)."""
    if op.kind == "ok":
        if op.f == READ:
            return float(op.result[1])
        if op.f == WRITE:
            return float(int(op.result) - 1)
        return float(op.argument[0])  # an acknowledged cas compared equal to its expected rv
    return math.inf


class _PendingLimits:
    """The least ``limit_of`` among the operations not linearized yet, kept as the search lifts and unlifts."""

    def __init__(self, ops: Sequence[CasOp]) -> None:
        self.order = sorted((op for op in ops if limit_of(op) != math.inf), key=limit_of)
        self.position = {op.id: i for i, op in enumerate(self.order)}
        self.done = [False] * len(self.order)
        self.first = 0

    def lift(self, op: CasOp) -> None:
        i = self.position.get(op.id)
        if i is None:
            return
        self.done[i] = True
        while self.first < len(self.order) and self.done[self.first]:
            self.first += 1

    def unlift(self, op: CasOp) -> None:
        i = self.position.get(op.id)
        if i is None:
            return
        self.done[i] = False
        self.first = min(self.first, i)

    def least(self, excluding: CasOp) -> float:
        """The least limit among pending operations other than ``excluding`` (being linearized now)."""
        for i in range(self.first, len(self.order)):
            if not self.done[i] and self.order[i].id != excluding.id:
                return limit_of(self.order[i])
        return math.inf


def _only_filters(op: CasOp) -> bool:
    """A read or a Conflict never adds a state, it only rules some out (an ``info`` op may add one)."""
    return op.kind == "conflict" or (op.kind == "ok" and op.f == READ)


def search(key: str, ops: Sequence[CasOp], initial: RegisterState, *, max_steps: int = 2_000_000) -> CheckResult:
    """Three prunings keep the search small on long histories with indeterminate operations, all sound:

    - a read or a Conflict whose step leaves the set of states as it was (seen in every possible state)
      is dominated at the first place it fits: any linearization placing it later stays one when it is
      moved there (applied later it can only rule states out, never add one). So when the search
      backtracks over such an operation it does not try others in its place; it backtracks further;
    - revisions only grow, so an operation that would move every possible state past the revision a
      pending acknowledged operation needs (``limit_of``) can never lead to a linearization: not tried;
    - each revision is one write's, so the unknown rv an indeterminate write left is never one at which an
      acknowledged operation saw another value (``observed``): a compare against it cannot match there.
      Without this the dead branch is found only later, once the revisions have passed it.
    """
    head = _build_list(ops)
    values = observed(ops, initial)
    state: States = frozenset([initial])
    linearized = 0
    cache: set[tuple[int, States]] = set()
    calls: list[tuple[_Node, States, bool]] = []
    limits = _PendingLimits(ops)
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
            new_state = step(state, op, values)
            if new_state and min(_known(s) for s in new_state) <= limits.least(op):
                new_linearized = linearized | (1 << op.id)
                memo = (new_linearized, new_state)
                if memo not in cache:
                    cache.add(memo)
                    calls.append((entry, state, _only_filters(op) and new_state == state))
                    state, linearized = new_state, new_linearized
                    limits.lift(op)
                    _lift(entry)
                    entry = head.next
                    continue
            entry = entry.next
        else:
            if len(calls) >= len(longest):
                longest = [c.op.id for c, _, _ in calls if c.op is not None]
                stuck = op
            while True:
                if not calls:
                    return CheckResult(key, False, len(ops), steps, longest, stuck)
                node, state, unchanged = calls.pop()
                assert node.op is not None
                linearized &= ~(1 << node.op.id)
                limits.unlift(node.op)
                _unlift(node)
                if not unchanged:
                    break
            entry = node.next
    return CheckResult(key, True, len(ops), steps, [c.op.id for c, _, _ in calls if c.op is not None])
