"""Jepsen-style history records: a process invokes an operation, which then completes ``ok`` (it took
effect, with this result), ``fail`` (it definitely did not take effect) or ``info`` (indeterminate: a
timeout, a lost connection; it may or may not have taken effect, at any moment after its invocation).

``pair_events`` turns the flat event log into ``Operation``s with a call time and a return time; an
``info`` operation (or one never completed) returns at +infinity, as in Knossos and Porcupine.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class EventType(StrEnum):
    INVOKE = "invoke"
    OK = "ok"
    FAIL = "fail"
    INFO = "info"


class HistoryError(ValueError):
    """The history itself is malformed (a completion without an invocation, two open calls of one process)."""


@dataclass(frozen=True, slots=True)
class Event:
    process: int
    type: EventType
    f: str
    key: str
    value: Any
    time: float
    error: str | None = None
    """For ``fail``: the error's name (e.g. ``Conflict``: a compare that did not match is an observation)."""


@dataclass(frozen=True, slots=True)
class Operation:
    id: int
    process: int
    f: str
    key: str
    argument: Any
    outcome: EventType  # OK, FAIL or INFO
    result: Any
    call: float
    ret: float
    error: str | None = None


def pair_events(events: Iterable[Event]) -> list[Operation]:
    """Match each process's invocation with its completion (events in time order, one open call per process)."""
    open_calls: dict[int, Event] = {}
    ops: list[Operation] = []
    for event in events:
        if event.type is EventType.INVOKE:
            if event.process in open_calls:
                raise HistoryError(f"process {event.process} invoked {event.f} with a call still open")
            open_calls[event.process] = event
            continue
        call = open_calls.pop(event.process, None)
        if call is None:
            raise HistoryError(f"process {event.process} completed {event.f} without invoking it")
        if (call.f, call.key) != (event.f, event.key):
            raise HistoryError(f"process {event.process} invoked {call.f} {call.key} but completed {event.f}")
        ret = math.inf if event.type is EventType.INFO else event.time
        ops.append(Operation(len(ops), event.process, call.f, call.key, call.value, event.type, event.value,
                             call.time, ret, event.error))
    for call in open_calls.values():  # never completed: indeterminate
        ops.append(Operation(len(ops), call.process, call.f, call.key, call.value, EventType.INFO, None,
                             call.time, math.inf))
    return ops
