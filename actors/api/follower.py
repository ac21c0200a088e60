"""The watch cache's feed: one snapshot of the KV bucket, then every change from ``SHOAL_CHANGES``, checked.

The KV bucket keeps one revision per key, so a consumer on the KV stream skips every revision superseded
before it reads it (a few ms of lag under load, or the seconds a consumer takes to be recreated after its
NATS server died). The bucket republishes every write to ``SHOAL_CHANGES`` (a limits stream that keeps
every revision for a while, ``streams.py``), so the feed follows that stream instead:

1. an ordered consumer on ``SHOAL_CHANGES`` starts first (new messages only) and is held back;
2. the snapshot: an ordered consumer on the KV stream delivers every key's latest record, up to revision R
   (its first ``num_pending == 0``); then it is dropped and ``on_loaded(R)`` is called;
3. the held-back changes after R, then every live change, are delivered in order. A republished message
   carries the KV revision (``Nats-Sequence``) and key (``Nats-Subject``), its value and its
   ``KV-Operation`` header (the DEL marker with the object's final state).

Every write to the bucket takes the next KV sequence and is republished, so consecutive changes have
consecutive revisions. A jump (a republish lost while a server died, or changes older than the stream
keeps) is a gap: ``on_gap(expected, got)`` is called (the API actor ends every watch with ``Expired``) and
the feed starts again from step 2 — never a silent skip.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from nats.aio.msg import Msg
from nats.js import JetStreamContext, api

from actors.api.streams import CHANGES_PREFIX
from protocol import keys

KV_OP = "KV-Operation"
IDLE_HEARTBEAT = 1.0
"""Seconds between the server's idle heartbeats: nats-py recreates an ordered consumer after two missed."""
RETRY = 1.0
"""Seconds between attempts to start a snapshot while JetStream does not answer."""
PENDING_MSGS, PENDING_BYTES = 1_000_000, 1024 * 1024 * 1024

OnRecord = Callable[[Any, int], Awaitable[None]]
OnLoaded = Callable[[int], Awaitable[None]]
OnGap = Callable[[int, int], Awaitable[None]]


class Follower:
    """Both subscriptions' callbacks only queue their messages; one task delivers them, so a snapshot's
    subscription can be dropped at any time (dropping it cancels its callback's task, never this one)."""

    def __init__(self, js: JetStreamContext, stream: str, make_record: Callable[[str, int, bytes, bool], Any],
                 on_record: OnRecord, *, on_loaded: OnLoaded | None = None, on_gap: OnGap | None = None) -> None:
        self.js = js
        self.stream = stream
        self._make = make_record
        self._on_record = on_record
        self._on_loaded = on_loaded
        self._on_gap = on_gap
        self._queue: asyncio.Queue[tuple[int, Msg]] = asyncio.Queue()
        """(generation, message): generation 0 for changes, a snapshot's own number for its records."""
        self._last = 0
        """The revision of the last record delivered: the next change must be ``_last + 1``."""
        self._held: list[Msg] | None = []
        """Changes received while a snapshot loads (None once live)."""
        self._generation = 0
        self._snapshot: Any = None
        self._changes: Any = None
        self._task: asyncio.Task[None] | None = None
        self.gaps = 0
        self.snapshots = 0

    async def start(self) -> None:
        self._changes = await self.js.subscribe(
            f"{CHANGES_PREFIX}.>", cb=self._enqueue(0), ordered_consumer=True,
            deliver_policy=api.DeliverPolicy.NEW, idle_heartbeat=IDLE_HEARTBEAT,
            pending_msgs_limit=PENDING_MSGS, pending_bytes_limit=PENDING_BYTES)
        await self._load()
        self._task = asyncio.get_running_loop().create_task(self._run(), name="watch-cache-feed")

    def _enqueue(self, generation: int) -> Callable[[Msg], Awaitable[None]]:
        async def cb(msg: Msg) -> None:
            self._queue.put_nowait((generation, msg))
        return cb

    async def consumer_info(self) -> Any:
        """The changes consumer's info (where it lives)."""
        return await self._changes.consumer_info()

    async def drain(self) -> None:
        await self.unsubscribe()

    async def unsubscribe(self) -> None:
        await self._drop_snapshot()
        if self._changes is not None:
            await _quietly(self._changes.unsubscribe())
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        while True:
            generation, msg = await self._queue.get()
            try:
                if generation == 0:
                    await self._on_change(msg)
                elif generation == self._generation and self._held is not None:
                    await self._on_snapshot(msg)
            except asyncio.CancelledError:
                raise
            except Exception:  # not applied (or no snapshot could start): no silent skip, reload instead
                await self._recover()

    async def _recover(self) -> None:
        while True:
            try:
                await self._gap(self._last + 1, self._last + 1)
                return
            except asyncio.CancelledError:
                raise
            except Exception:
                await asyncio.sleep(RETRY)

    # -- snapshot ----------------------------------------------------------------------------
    async def _load(self) -> None:
        """Start a snapshot; changes are held back until it is complete."""
        self.snapshots += 1
        self._generation += 1
        if self._held is None:
            self._held = []
        await self._drop_snapshot()
        info = await self.js.stream_info(self.stream)
        if info.state.messages == 0:
            await self._loaded(int(info.state.last_seq))
            return
        self._snapshot = await self.js.subscribe(
            keys.KV_SUBJECT_PREFIX + ">", cb=self._enqueue(self._generation), ordered_consumer=True,
            deliver_policy=api.DeliverPolicy.LAST_PER_SUBJECT, idle_heartbeat=IDLE_HEARTBEAT,
            pending_msgs_limit=PENDING_MSGS, pending_bytes_limit=PENDING_BYTES)

    async def _on_snapshot(self, msg: Msg) -> None:
        md = msg.metadata
        revision, pending = int(md.sequence.stream), int(md.num_pending)
        headers = msg.headers or {}
        self._last = max(self._last, revision)
        await self._on_record(self._make(msg.subject[len(keys.KV_SUBJECT_PREFIX):], revision, msg.data,
                                         headers.get(KV_OP) in ("DEL", "PURGE")), pending)
        if pending == 0:
            await self._loaded(self._last)

    async def _loaded(self, revision: int) -> None:
        """The snapshot is complete at ``revision``: deliver the changes held back, then go live."""
        self._last = max(self._last, revision)
        await self._drop_snapshot()
        if self._on_loaded is not None:
            await self._on_loaded(self._last)
        held, self._held = self._held or [], None
        for i, msg in enumerate(held):
            holding = self._holding()
            if holding is not None:  # a gap started another snapshot: hold the rest for it
                holding.extend(held[i:])
                return
            await self._apply(msg, len(held) - i - 1)

    def _holding(self) -> list[Msg] | None:
        return self._held

    async def _drop_snapshot(self) -> None:
        sub, self._snapshot = self._snapshot, None
        if sub is not None:
            await _quietly(sub.unsubscribe())

    # -- changes -----------------------------------------------------------------------------
    async def _on_change(self, msg: Msg) -> None:
        if self._held is not None:
            self._held.append(msg)
            return
        await self._apply(msg, int(msg.metadata.num_pending))

    async def _apply(self, msg: Msg, pending: int) -> None:
        headers = msg.headers or {}
        revision = int(headers.get("Nats-Sequence") or 0)
        if revision <= self._last:
            return  # already in the snapshot (or delivered twice)
        if revision != self._last + 1:
            await self._gap(self._last + 1, revision)  # this change is in the new snapshot: the bucket
            return                                     # stored it before republishing it
        self._last = revision
        subject = headers.get("Nats-Subject") or ""
        await self._on_record(self._make(subject[len(keys.KV_SUBJECT_PREFIX):], revision, msg.data,
                                         headers.get(KV_OP) in ("DEL", "PURGE")), pending)

    async def _gap(self, expected: int, got: int) -> None:
        self.gaps += 1
        if self._on_gap is not None:
            await self._on_gap(expected, got)
        self._held = []
        await self._load()


async def _quietly(awaitable: Awaitable[Any]) -> None:
    try:
        await awaitable
    except Exception:
        pass
