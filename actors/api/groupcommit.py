"""Group commit: datastore writes that wait for one another leave together, as one JetStream atomic batch.

The server stores each write with an fsync (``sync_interval: always``), one write after the other in the
stream: with 64 writes in flight that is ~2,700 writes/s on our machines, and a person's write waits behind
every write queued before it. An atomic batch (nats-server 2.12+, the stream's ``allow_atomic``) is stored
and acknowledged as one: batches of 64, one at a time, store 6,700 writes/s where the same writes alone, 64
in flight, store 2,700 (measured on a 2-core AMD EPYC VM).

How writes are grouped: at most ``slots`` sends are in flight. A write that finds a slot free leaves at once,
alone (nothing is added to a write's latency while the datastore keeps up). Writes that arrive while every
slot is busy wait, and leave together in the next slot that frees: up to ``max_messages`` writes and
``max_bytes`` per batch, never two writes of one key in one batch (the second waits for the next); fewer than
``min_batch`` leave each alone, side by side (a batch has a fixed cost).

Writes that wait are taken people's and heartbeats' first, bulk writes (binds, status, controllers') after
them; and while every slot is busy, one more send may carry waiting urgent writes only. A person's write never
waits in the API actor for a bulk send, only in the stream behind the few already sent (issue #20 item 4).
And a person's write whose flow (connection) has no other write here leaves at once, alone, beside the slots
(a sparse flow, served first as fair queuing serves a new flow): someone typing a command does not wait for
the next free slot behind a benchmark's or a script's 64 writes in flight, which are batched as before.

What a write is told is what it would be told alone. A batch keeps each write's compare-and-swap header: the
server stores all of it or none of it. When it refuses a batch (one write lost its race, a key had another
write in flight, a server limit), every write of the batch is sent again alone, with the same id, and gets
its own answer. A batch not answered in time gives each of its writes the timeout, as one write would get.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import secrets
from collections import deque
from dataclasses import dataclass

import nats.js.errors
from nats.aio.client import Client
from nats.errors import NoRespondersError
from nats.js import JetStreamContext

BATCH_ID = "Nats-Batch-Id"
BATCH_SEQUENCE = "Nats-Batch-Sequence"
BATCH_COMMIT = "Nats-Batch-Commit"
MAX_BATCH_MESSAGES = 1000
"""nats-server's bound on the messages of one atomic batch."""
MIN_BATCH = 16
"""Fewer writes than this leave each alone, side by side, not as a batch. An atomic batch costs the server
~4.5 ms however small (nats-server 2.15, measured: a batch of 4 took 4.6 ms, of 64 7.6 ms, one write alone
0.6 ms), and 16 writes alone cost about what a batch of 16 does (2,700 and 2,860 writes/s)."""


@dataclass(slots=True)
class _Write:
    subject: str
    value: bytes
    headers: dict[str, str]
    done: asyncio.Future[int]


class GroupCommit:
    def __init__(self, nc: Client, js: JetStreamContext, *, timeout: float, slots: int = 2, max_messages: int = 64,
                 max_bytes: int = 8 * 2**20, min_batch: int = MIN_BATCH) -> None:
        """``js``: what sends a write alone (the store's own JetStream context)."""
        if not 1 <= max_messages <= MAX_BATCH_MESSAGES:
            raise ValueError(f"max_messages must be 1..{MAX_BATCH_MESSAGES}, not {max_messages}")
        self.nc = nc
        self.js = js
        self.timeout = timeout
        self.slots = slots
        self.max_messages = max_messages
        self.max_bytes = max_bytes
        self.min_batch = min_batch
        self.batches = 0
        """Atomic batches sent (of two writes or more)."""
        self.batched = 0
        """Writes those batches carried."""
        self.refused = 0
        """Batches the server refused (their writes were sent again alone)."""
        self.express = 0
        """People's writes sent at once, alone, their flow having no other write here."""
        self._people: dict[str, int] = {}
        """A person's flow -> its writes here (waiting or in flight)."""
        self._urgent: deque[_Write] = deque()
        self._bulk: deque[_Write] = deque()
        self._in_flight = 0
        self._urgent_in_flight = False
        """A send of urgent writes only is in flight beyond ``slots`` (they never wait for a bulk send)."""
        self._sends: set[asyncio.Task[None]] = set()
        self._prefix = secrets.token_hex(4)
        self._ids = itertools.count(1)

    def stats(self) -> dict[str, int]:
        return {"batches": self.batches, "batched": self.batched, "refused": self.refused, "express": self.express}

    async def publish(self, subject: str, value: bytes, headers: dict[str, str], *, bulk: bool = False,
                      person: str | None = None) -> int:
        """The stream sequence the write got. Raises what ``JetStreamContext.publish`` raises for a refused
        write (``APIError``), an unanswered one (``TimeoutError``) or a missing stream (``NoStreamResponseError``).
        ``bulk``: a write that may wait for every other kind (binds, status writes, controllers' writes); the
        others (people's, heartbeats) leave first, in the next send. ``person``: the flow of a person's write,
        which leaves at once when that flow has no other write here."""
        write = _Write(subject, value, headers, asyncio.get_running_loop().create_future())
        if person is None:
            self._enqueue(write, bulk)
            return await write.done
        writes = self._people.get(person, 0)
        self._people[person] = writes + 1
        try:
            if writes == 0:
                self.express += 1
                await self._alone(write)
            else:
                self._enqueue(write, bulk)
            return await write.done
        finally:
            if self._people[person] > 1:
                self._people[person] -= 1
            else:
                del self._people[person]

    def _enqueue(self, write: _Write, bulk: bool) -> None:
        (self._bulk if bulk else self._urgent).append(write)
        self._pump()

    def _pump(self) -> None:
        while (self._urgent or self._bulk) and self._in_flight < self.slots:
            batch = self._take()
            if not batch:
                return
            self._start(batch, urgent_only=False)
        if self._urgent and not self._urgent_in_flight:  # every slot busy: urgent writes need not wait
            batch = []
            self._fill(batch, set(), self._urgent)
            if batch:
                self._start(batch, urgent_only=True)

    def _start(self, batch: list[_Write], *, urgent_only: bool) -> None:
        if urgent_only:
            self._urgent_in_flight = True
        else:
            self._in_flight += 1
        task = asyncio.get_running_loop().create_task(self._send(batch, urgent_only), name="group-commit")
        self._sends.add(task)
        task.add_done_callback(self._sends.discard)

    def _take(self) -> list[_Write]:
        """The next batch: the urgent writes first, then the bulk ones, each in arrival order. Writes given up on
        (cancelled) are dropped; a second write of a key in this batch stays queued, in its place."""
        batch: list[_Write] = []
        subjects: set[str] = set()
        self._fill(batch, subjects, self._urgent)
        self._fill(batch, subjects, self._bulk)
        return batch

    def _fill(self, batch: list[_Write], subjects: set[str], queue: deque[_Write]) -> None:
        """Move writes from the head of ``queue`` into ``batch`` while it has room (the rest of the queue is
        not touched: it may hold tens of thousands of binds)."""
        size = sum(len(write.value) for write in batch)
        passed: list[_Write] = []
        while queue and len(batch) < self.max_messages and len(passed) < self.max_messages:
            write = queue.popleft()
            if write.done.done():
                continue
            if write.subject in subjects:
                passed.append(write)
                continue
            if batch and size + len(write.value) > self.max_bytes:
                passed.append(write)
                break
            batch.append(write)
            subjects.add(write.subject)
            size += len(write.value)
        queue.extendleft(reversed(passed))

    async def _send(self, batch: list[_Write], urgent_only: bool) -> None:
        try:
            if len(batch) < self.min_batch:
                await asyncio.gather(*(self._alone(write) for write in batch))
            else:
                await self._together(batch)
        except asyncio.CancelledError:
            for write in batch:
                write.done.cancel()
            raise
        except Exception as exc:  # a send that failed (or an answer not understood): each write is told
            for write in batch:
                _fail(write, exc)
        finally:
            if urgent_only:
                self._urgent_in_flight = False
            else:
                self._in_flight -= 1
            self._pump()

    async def _alone(self, write: _Write) -> None:
        try:
            ack = await self.js.publish(write.subject, write.value, timeout=self.timeout, headers=write.headers)
        except (nats.js.errors.Error, nats.errors.Error, TimeoutError) as exc:
            _fail(write, exc)
        else:
            _resolve(write, int(ack.seq))

    async def _together(self, batch: list[_Write]) -> None:
        batch_id = f"{self._prefix}{next(self._ids):x}"
        last = len(batch)
        try:
            for n, write in enumerate(batch[:-1], 1):
                await self.nc.publish(write.subject, write.value,
                                      headers={**write.headers, BATCH_ID: batch_id, BATCH_SEQUENCE: str(n)})
            commit = batch[-1]
            msg = await self.nc.request(commit.subject, commit.value, timeout=self.timeout,
                                        headers={**commit.headers, BATCH_ID: batch_id, BATCH_SEQUENCE: str(last),
                                                 BATCH_COMMIT: "1"})
        except NoRespondersError:  # as ``JetStreamContext.publish`` tells it; other failures: ``_send``
            raise nats.js.errors.NoStreamResponseError from None
        reply = json.loads(msg.data)
        if "error" in reply or reply.get("count") != last:
            self.refused += 1
            await asyncio.gather(*(self._alone(write) for write in batch))
            return
        self.batches += 1
        self.batched += last
        first = int(reply["seq"]) - last + 1  # a batch is stored in order, in consecutive sequences
        for n, write in enumerate(batch):
            _resolve(write, first + n)


def _resolve(write: _Write, seq: int) -> None:
    if not write.done.done():
        write.done.set_result(seq)


def _fail(write: _Write, exc: BaseException) -> None:
    if not write.done.done():
        write.done.set_exception(exc)
