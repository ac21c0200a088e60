"""Request admission: which requests an API actor serves first, how many at once, and which it sheds.

Three lanes, as Kubernetes' API Priority and Fairness (APF) gives its priority levels their own concurrency
shares and queues (``exempt``/``node-high``/``leader-election`` for heartbeats, ``system`` for nodes,
``workload-high`` for kube-controller-manager and kube-scheduler, ``global-default`` for everyone else):

* ``heartbeat``: writes and gets of Leases (a kubelet's renewal, a leader's) and a kubelet's writes to its own Node
  (registration, status). Served with strict priority: while one waits, no other lane starts anything (but a
  person's single request, ``SPARSE_FIRST``), so a busy API actor slows pods down, it does not make nodes look
  dead.
* ``system``: the rest of what kubelets (``shoal.node.<N>.api.>``) and control-plane components
  (``shoal.user.<U>.api.>``: scheduler, controller manager, cloud controller manager) ask: pod status writes,
  Events, binds, controllers' bulk writes and their reads. APF's ``system`` and ``workload-high`` in one lane.
* ``user``: the trusted subjects ``shoal.api.>``, where people's requests come (the ``shoal`` tool, the HTTP
  gateway acting ``as`` its users), with benchmarks and the agents' reads. APF's ``global-default``.

Each lane has its own in-flight budget and queue (APF's concurrency shares, without borrowing): ``user`` and
``system`` do not wait for each other, so a person's write is never queued behind the scheduler's binds or
10,000 pods' status writes, and bulk traffic is not starved by user traffic either: each progresses within
its budget. The subscription callbacks never block, so no request is stuck in NATS' per-subscription buffer.

Within a lane, requests are queued by flow (APF's "flow distinguisher": the connection, or the node of a
node-scoped subject) and flows are served round-robin, one request per turn (APF's fair queuing reduced to
equal shares of starts): a request of a flow with nothing queued waits for at most one request of each
other flow, so a client with 10,000 creates queued (a benchmark with 64 in flight on one connection, the
hollow kubelets of one process) does not delay another client's single write. A flow with ``max_per_flow``
requests queued or running gets ``TooManyRequests`` for the next one at once.

Shedding: a request that waited longer than ``max_wait`` (its client has given up by then) and a request
arriving at a full lane are answered ``Unavailable`` at once instead of being served, and while a lane's
queue is longer than its budget each flow's newest request is served first (adaptive LIFO): an overloaded
actor sheds stale work rather than doing everything late for nobody (what turns overload into collapse, as
thousands of kubelets retrying their lists showed).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Coroutine
from contextvars import ContextVar
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Generic, TypeVar

from protocol.errors import ShoalError, TooManyRequests, Unavailable
from protocol.subjects import scope_of

M = TypeVar("M")


class Lane(StrEnum):
    HEARTBEAT = "heartbeat"
    SYSTEM = "system"
    USER = "user"


SERVING: ContextVar[Lane | None] = ContextVar("shoal_serving_lane", default=None)
"""The lane of the request a task serves (set in the task ``Admission`` starts, inherited by the tasks it
spawns, e.g. a bind batch's writes): below admission, the datastore gives ``system`` writes a bounded share of
its write queue (``store.StoreSettings.bulk_writes``)."""
FLOW: ContextVar[str | None] = ContextVar("shoal_serving_flow", default=None)
"""The flow of the request a task serves (its connection, or its node), set with ``SERVING``: the datastore's
group commit sends a person's write at once when its flow has no other write waiting there."""

STRICT = frozenset({Lane.HEARTBEAT})
"""Lanes with strict priority: while one has requests waiting, the lanes after it start nothing, but for a
``SPARSE_FIRST`` lane's request of a flow with nothing else queued or running."""
SPARSE_FIRST = frozenset({Lane.USER})
"""Lanes whose sparse flows do not wait for a strict lane's backlog: a request whose flow has nothing else queued
or running starts at once when its lane has room (a person typing a command is no load; issue #20 item 4). A
busy flow (a script's or a benchmark's 64 in flight) still yields to heartbeats, as every other lane does."""
HEARTBEAT_RESOURCES = frozenset({"leases"})
WRITE_VERBS = frozenset({"create", "update", "status", "patch"})


def lane_of(subject: str) -> Lane:
    """``shoal[.node.<N>|.user.<U>].api.<verb>.<resource>...``: Lease writes and gets and a kubelet's writes to
    Nodes are heartbeats; the rest of a node's or a component's subjects is ``system``; ``shoal.api.>`` is
    ``user``."""
    node, user, tokens = scope_of(subject)
    scoped = Lane.SYSTEM if node is not None or user is not None else Lane.USER
    if len(tokens) < 4:
        return scoped
    verb, resource = tokens[2], tokens[3]
    if resource in HEARTBEAT_RESOURCES and (verb in WRITE_VERBS or verb == "get"):
        return Lane.HEARTBEAT
    if node is not None and resource == "nodes" and verb in WRITE_VERBS:
        return Lane.HEARTBEAT
    return scoped


@dataclass(frozen=True)
class LaneSettings:
    in_flight: int
    max_queued: int


class Waiting(Generic[M]):
    """A queued request: in its flow's queue and in its lane's arrival order (for shedding the stale)."""

    __slots__ = ("flow", "gone", "msg", "queued_at")

    def __init__(self, queued_at: float, msg: M, flow: str | None) -> None:
        self.queued_at = queued_at
        self.msg = msg
        self.flow = flow
        self.gone = False
        """Started or refused: still in the other of the two queues until it reaches that queue's end."""


@dataclass
class LaneState(Generic[M]):
    settings: LaneSettings
    strict: bool = False
    flows: dict[str | None, deque[Waiting[M]]] = field(default_factory=dict)
    """Each flow's waiting requests, oldest first (a flow whose last one was shed may be left empty)."""
    turns: deque[str | None] = field(default_factory=deque)
    """The flows of ``flows``, each once, in round-robin order: the next to start a request is first."""
    arrivals: deque[Waiting[M]] = field(default_factory=deque)
    queued: int = 0
    running: int = 0
    served: int = 0
    shed: int = 0

    def put(self, waiting: Waiting[M]) -> None:
        queue = self.flows.get(waiting.flow)
        if queue is None:
            queue = self.flows[waiting.flow] = deque()
            self.turns.append(waiting.flow)
        queue.append(waiting)
        self.arrivals.append(waiting)
        self.queued += 1

    def take(self) -> Waiting[M]:
        """The next request to start: from the flow whose turn it is, its newest while the lane's queue is
        longer than its budget (adaptive LIFO), else its oldest; that flow then goes to the back."""
        newest = self.queued > self.settings.in_flight
        flow = self.turns.popleft()
        queue = self.flows[flow]
        while not queue:
            del self.flows[flow]
            flow = self.turns.popleft()
            queue = self.flows[flow]
        waiting = queue.pop() if newest else queue.popleft()
        if queue:
            self.turns.append(flow)
        else:
            del self.flows[flow]
        self._remove(waiting)
        return waiting

    def stale(self, oldest: float) -> Waiting[M] | None:
        """The longest-waiting request if it was queued before ``oldest``, taken out of the lane."""
        while self.arrivals and self.arrivals[0].gone:
            self.arrivals.popleft()
        if not self.arrivals or self.arrivals[0].queued_at >= oldest:
            return None
        waiting = self.arrivals[0]
        self.flows[waiting.flow].popleft()  # the oldest of the lane is the oldest of its flow
        self._remove(waiting)
        return waiting

    def _remove(self, waiting: Waiting[M]) -> None:
        waiting.gone = True
        self.queued -= 1
        while self.arrivals and self.arrivals[0].gone:
            self.arrivals.popleft()


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
        self.lanes: dict[Lane, LaneState[M]] = {lane: LaneState(s, lane in STRICT)
                                                 for lane, s in lanes.items()}
        self.tasks: set[asyncio.Task[None]] = set()
        self.max_per_flow = max_per_flow
        """Requests one flow may have queued or running (0: no limit)."""
        self.flows: dict[str, int] = {}
        self.throttled = 0
        self._idle = asyncio.Event()
        self._idle.set()

    def submit(self, lane: Lane, msg: M, flow: str | None = None) -> None:
        """Start ``msg`` now if its lane has room and nothing waiting, and no strict lane before it has requests
        waiting; else queue it in its flow (or refuse it when the lane is full, or its flow has
        ``max_per_flow`` requests already). ``flow`` None: the lane's one unnamed flow, never throttled."""
        state = self.lanes[lane]
        if flow is not None and self.max_per_flow and self.flows.get(flow, 0) >= self.max_per_flow:
            self.throttled += 1
            self._spawn(self.refuse(msg, TooManyRequests(
                f"too many requests in flight from this client ({self.max_per_flow}); retry with back-off",
                {"limit": self.max_per_flow})))
            return
        if flow is not None:
            self.flows[flow] = self.flows.get(flow, 0) + 1
        room = state.running < state.settings.in_flight
        if room and not state.queued and not self._waiting_before(lane):
            self._start(lane, state, msg, flow)
        elif room and lane in SPARSE_FIRST and flow is not None and self.flows[flow] == 1:
            self._start(lane, state, msg, flow)  # a person's only request: no backlog of others holds it
        elif state.queued >= state.settings.max_queued:
            state.shed += 1
            self._spawn(self.refuse(msg, Unavailable(
                f"the API actor is overloaded ({state.queued} {lane} requests queued); retry with back-off")))
            self._done(flow)
        else:
            state.put(Waiting(self.clock(), msg, flow))
            self._idle.clear()

    def _done(self, flow: str | None) -> None:
        if flow is not None:
            left = self.flows.get(flow, 1) - 1
            if left > 0:
                self.flows[flow] = left
            else:
                self.flows.pop(flow, None)

    def _waiting_before(self, lane: Lane) -> bool:
        """A strict lane listed before ``lane`` (higher priority) has requests waiting."""
        for other, state in self.lanes.items():
            if other == lane:
                return False
            if state.strict and state.queued:
                return True
        return False

    def _start(self, lane: Lane, state: LaneState[M], msg: M, flow: str | None) -> None:
        state.running += 1
        state.served += 1
        task = self._spawn(self._serve_in(lane, msg, flow))
        task.add_done_callback(lambda _: self._finished(state, flow))

    async def _serve_in(self, lane: Lane, msg: M, flow: str | None) -> None:
        SERVING.set(lane)  # the task's own context: seen by this request's code and the tasks it spawns
        FLOW.set(flow)
        await self.serve(msg)

    def _spawn(self, work: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.create_task(work)
        self.tasks.add(task)
        self._idle.clear()
        task.add_done_callback(self._forget)
        return task

    def _forget(self, task: asyncio.Task[None]) -> None:
        self.tasks.discard(task)
        if not self.tasks and not any(s.queued for s in self.lanes.values()):
            self._idle.set()

    def _finished(self, state: LaneState[M], flow: str | None) -> None:
        state.running -= 1
        self._done(flow)
        self._dispatch()

    def _dispatch(self) -> None:
        """Start waiting requests, lanes in priority order; a strict lane's waiting requests stop every lane
        after it (heartbeats first), the others only use their own budgets.

        Within a lane: the requests that waited longer than ``max_wait`` are refused first (oldest first);
        then flows take turns (``LaneState.take``: round-robin, adaptive LIFO within a flow)."""
        now = self.clock()
        for lane, state in self.lanes.items():
            while (waiting := state.stale(now - self.max_wait)) is not None:
                state.shed += 1
                self._done(waiting.flow)
                self._spawn(self.refuse(waiting.msg, Unavailable(
                    f"the API actor is overloaded: the request waited {now - waiting.queued_at:.1f}s in its "
                    "queue; retry with back-off")))
            while state.queued and state.running < state.settings.in_flight:
                waiting = state.take()
                self._start(lane, state, waiting.msg, waiting.flow)
            if state.queued and state.strict:
                return

    def queued(self, lane: Lane) -> int:
        return self.lanes[lane].queued

    def stats(self) -> dict[str, dict[str, int]]:
        return {str(lane): {"running": s.running, "queued": s.queued, "served": s.served, "shed": s.shed}
                for lane, s in self.lanes.items()}

    async def drain(self, timeout: float) -> None:
        """Wait (at most ``timeout`` seconds) until nothing is queued or running."""
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except TimeoutError:
            pass
