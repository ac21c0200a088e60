"""Request admission: which requests an API actor serves first, how many at once, and which it sheds.

Two lanes, as Kubernetes' API Priority and Fairness keeps node heartbeats and leader election in their own
priority levels:

* ``heartbeat``: writes and gets of Leases (a kubelet's renewal, a leader's) and a kubelet's writes to its own Node
  (registration, status). They have their own in-flight budget and queue, so they never wait behind pod
  creates, binds or lists: a busy API actor slows pods down, it does not make nodes look dead.
* ``normal``: everything else.

A request arriving while its lane's budget is spent waits in that lane's FIFO, and the normal lane starts
nothing while heartbeats are waiting (strict priority). The subscription callbacks never block, so a
heartbeat is never stuck in NATS' per-subscription buffer behind pod writes. A request that waited longer
than ``max_wait`` (its client has given up by then) and a request arriving at a full queue are answered
``Unavailable`` at once instead of being served, and a queue longer than its lane's budget is served newest
first (adaptive LIFO): an overloaded actor sheds stale work rather than doing everything late for nobody
(what turns overload into collapse, as thousands of kubelets retrying their lists showed).

Flows: each request may name its flow (the connection it came from, or the node of a node-scoped subject:
Kubernetes' APF "flow distinguisher"). A flow with ``max_per_flow`` requests queued or running gets
``TooManyRequests`` for the next one at once, so one client cannot fill a lane's queue and starve the others.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Generic, TypeVar

from protocol.errors import ShoalError, TooManyRequests, Unavailable
from protocol.subjects import split_api_subject

M = TypeVar("M")


class Lane(StrEnum):
    HEARTBEAT = "heartbeat"
    NORMAL = "normal"


HEARTBEAT_RESOURCES = frozenset({"leases"})
WRITE_VERBS = frozenset({"create", "update", "status", "patch"})


def lane_of(subject: str) -> Lane:
    """``shoal[.node.<N>].api.<verb>.<resource>...``: Lease writes and gets, and a kubelet's writes to Nodes."""
    node, tokens = split_api_subject(subject)
    if len(tokens) < 4:
        return Lane.NORMAL
    verb, resource = tokens[2], tokens[3]
    if resource in HEARTBEAT_RESOURCES and (verb in WRITE_VERBS or verb == "get"):
        return Lane.HEARTBEAT
    if node is not None and resource == "nodes" and verb in WRITE_VERBS:
        return Lane.HEARTBEAT
    return Lane.NORMAL


@dataclass(frozen=True)
class LaneSettings:
    in_flight: int
    max_queued: int


@dataclass
class LaneState(Generic[M]):
    settings: LaneSettings
    queue: deque[tuple[float, M, str | None]]
    running: int = 0
    served: int = 0
    shed: int = 0


class Admission(Generic[M]):
    """``lanes`` in priority order, highest first."""

    def __init__(self, serve: Callable[[M], Coroutine[Any, Any, None]],
                 refuse: Callable[[M, ShoalError], Coroutine[Any, Any, None]],
                 lanes: dict[Lane, LaneSettings], *, max_wait: float = 8.0,
                 clock: Callable[[], float] = time.monotonic, max_per_flow: int = 0) -> None:
        self.serve = serve
        self.refuse = refuse
        self.max_wait = max_wait
        self.clock = clock
        self.lanes: dict[Lane, LaneState[M]] = {lane: LaneState(s, deque()) for lane, s in lanes.items()}
        self.tasks: set[asyncio.Task[None]] = set()
        self.max_per_flow = max_per_flow
        """Requests one flow may have queued or running (0: no limit)."""
        self.flows: dict[str, int] = {}
        self.throttled = 0
        self._idle = asyncio.Event()
        self._idle.set()

    def submit(self, lane: Lane, msg: M, flow: str | None = None) -> None:
        """Start ``msg`` now if its lane has room and no lane before it has requests waiting; else queue it
        (or refuse it when the queue is full, or its flow has ``max_per_flow`` requests already)."""
        state = self.lanes[lane]
        if flow is not None and self.max_per_flow and self.flows.get(flow, 0) >= self.max_per_flow:
            self.throttled += 1
            self._spawn(self.refuse(msg, TooManyRequests(
                f"too many requests in flight from this client ({self.max_per_flow}); retry with back-off",
                {"limit": self.max_per_flow})))
            return
        if flow is not None:
            self.flows[flow] = self.flows.get(flow, 0) + 1
        if state.running < state.settings.in_flight and not state.queue and not self._waiting_before(lane):
            self._start(state, msg, flow)
        elif len(state.queue) >= state.settings.max_queued:
            state.shed += 1
            self._spawn(self.refuse(msg, Unavailable(
                f"the API actor is overloaded ({len(state.queue)} {lane} requests queued); retry with back-off")))
            self._done(flow)
        else:
            state.queue.append((self.clock(), msg, flow))
            self._idle.clear()

    def _done(self, flow: str | None) -> None:
        if flow is not None:
            left = self.flows.get(flow, 1) - 1
            if left > 0:
                self.flows[flow] = left
            else:
                self.flows.pop(flow, None)

    def _waiting_before(self, lane: Lane) -> bool:
        """A lane listed before ``lane`` (higher priority) has requests waiting."""
        for other, state in self.lanes.items():
            if other == lane:
                return False
            if state.queue:
                return True
        return False

    def _start(self, state: LaneState[M], msg: M, flow: str | None) -> None:
        state.running += 1
        state.served += 1
        task = self._spawn(self.serve(msg))
        task.add_done_callback(lambda _: self._finished(state, flow))

    def _spawn(self, work: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.create_task(work)
        self.tasks.add(task)
        self._idle.clear()
        task.add_done_callback(self._forget)
        return task

    def _forget(self, task: asyncio.Task[None]) -> None:
        self.tasks.discard(task)
        if not self.tasks and not any(s.queue for s in self.lanes.values()):
            self._idle.set()

    def _finished(self, state: LaneState[M], flow: str | None) -> None:
        state.running -= 1
        self._done(flow)
        self._dispatch()

    def _dispatch(self) -> None:
        """Start waiting requests, lanes in priority order: a lane's queue is served only when every lane
        before it has nothing waiting (strict priority: heartbeats first).

        Within a lane: the requests that waited longer than ``max_wait`` are refused first (oldest first);
        then, while the queue is short, the oldest waiting request starts (FIFO), but once it is longer than
        the lane's in-flight budget, the newest does (adaptive LIFO): under overload the requests whose
        clients are still waiting are served in time, instead of every request being served too late."""
        now = self.clock()
        for state in self.lanes.values():
            queue = state.queue
            while queue and now - queue[0][0] > self.max_wait:
                queued_at, msg, flow = queue.popleft()
                state.shed += 1
                self._done(flow)
                self._spawn(self.refuse(msg, Unavailable(
                    f"the API actor is overloaded: the request waited {now - queued_at:.1f}s in its queue; "
                    "retry with back-off")))
            while queue and state.running < state.settings.in_flight:
                _, msg, flow = queue.pop() if len(queue) > state.settings.in_flight else queue.popleft()
                self._start(state, msg, flow)
            if queue:
                return

    def queued(self, lane: Lane) -> int:
        return len(self.lanes[lane].queue)

    def stats(self) -> dict[str, dict[str, int]]:
        return {str(lane): {"running": s.running, "queued": len(s.queue), "served": s.served, "shed": s.shed}
                for lane, s in self.lanes.items()}

    async def drain(self, timeout: float) -> None:
        """Wait (at most ``timeout`` seconds) until nothing is queued or running."""
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except TimeoutError:
            pass
