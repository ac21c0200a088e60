"""The per-node summary of pods that the console's cluster view draws (``nodesums``), kept by each gateway from
one pods watch and served at ``PATH``: a JSON snapshot for a GET, or over a websocket the snapshot then the
changes, live.

Why: the cluster view needs, per node, the pods' count and requests. Summed in the browser, that meant listing
every pod (150,000 in pages: ~9 s before the counts were complete). Here the gateway lists and watches pods
once (as itself, reducing each pod to a few numbers as it arrives, list chunk by list chunk:
``nodesums.Facts``) and every tab gets
~40 bytes per node instead of ~1 KB per pod. The feed starts with its first subscriber and stops ``IDLE``
seconds after its last one leaves, so a gateway nobody looks at holds nothing; a gateway started with
``--keep-node-summary`` starts it at once and keeps it (no slow first page after a start or a quiet spell).

Authorization is that of the pods the summary is made of: the user must be allowed to ``list`` and ``watch``
pods in every namespace (asked once, before the upgrade: ``Forbidden`` in Kubernetes' words otherwise); the
console then falls back to summing the pods the user may list.

The sums cost the gateway ~200 bytes per non-terminated pod (``nodesums``).

Messages (JSON, one per websocket text message): ``{"type": "SNAPSHOT", "fields": [...], "nodes": {node:
[pods, cpu millicores, memory bytes, notRunning]}, "pods": N, "resourceVersion": "rv"}`` first, then
``{"type": "CHANGED", "nodes": {node: [...] or null}, "pods": N, "resourceVersion": "rv"}`` with only the
nodes whose totals changed (null: no pod left on it). Changes are gathered for ``BATCH`` seconds and
coalesced per node, so a subscriber costs at most one pending entry per node whatever the event rate, and a
slow client gets fewer, fuller messages instead of a growing queue.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from actors.gateway import jsonbody, watching
from actors.gateway.access import AccessReviews
from actors.gateway.auth import USER
from actors.gateway.http import json_response
from actors.gateway.nodesums import FIELDS, Facts, NodeSums, Totals, facts, pod_key
from actors.gateway.watchslots import WatchSlots
from protocol.errors import Unavailable
from protocol.objects import Obj
from protocol.rbac import Attributes
from runtime.client import ApiClient
from runtime.informer import Reflector
from runtime.logs import Throttle

PATH = "/console/v1/nodesummary"
IDLE = 300.0
"""Seconds the feed keeps running after its last subscriber left (a reload or a view switch finds it warm)."""
BATCH = 0.1
"""Seconds of changes gathered into one message to a subscriber."""
SYNC_TIMEOUT = 120.0
"""How long a first subscriber waits for the feed's first list (150,000 pods: a few seconds)."""
FAILURE_LOG = Throttle(5.0)


class Subscriber:
    """One tab's view of the feed: the nodes changed since its last message (at most one entry a node)."""

    def __init__(self) -> None:
        self.dirty: set[str] = set()
        self.wake = asyncio.Event()

    def mark(self, nodes: tuple[str, ...] | set[str]) -> None:
        self.dirty.update(nodes)
        self.wake.set()

    def take(self) -> set[str]:
        taken, self.dirty = self.dirty, set()
        self.wake.clear()
        return taken


class NodeSummaryFeed(Reflector):
    """The gateway's one pods list-and-watch, reduced to ``NodeSums``, shared by every subscriber."""

    relist_on_error = True  # a bug or a lost connection: the sums may be wrong, so list again

    def __init__(self, client: ApiClient, *, idle: float | None = IDLE, log: Any = None) -> None:
        """``idle``: seconds the feed runs on without subscribers; None: started now and never stopped."""
        super().__init__(client, "Pod", log=log)
        self.failure_log = FAILURE_LOG
        self.idle = idle
        self.sums = NodeSums()
        self.subscribers: set[Subscriber] = set()
        self._task: asyncio.Task[None] | None = None
        self._stopper: asyncio.TimerHandle | None = None
        if idle is None:
            self._start()

    def snapshot(self, nodes: set[str] | None = None) -> dict[str, Any]:
        return {"nodes": self.sums.snapshot(nodes), "pods": len(self.sums),
                "resourceVersion": str(self.resource_version)}

    @contextlib.asynccontextmanager
    async def subscribe(self) -> AsyncIterator[Subscriber]:
        """A subscriber for the ``with`` block, once the feed holds a complete list (``Unavailable`` if that
        takes longer than ``SYNC_TIMEOUT``)."""
        subscriber = Subscriber()
        self.subscribers.add(subscriber)
        if self._stopper is not None:
            self._stopper.cancel()
            self._stopper = None
        self._start()
        try:
            try:
                async with asyncio.timeout(SYNC_TIMEOUT):
                    await self.synced.wait()
            except TimeoutError:
                raise Unavailable(f"the gateway could not list pods within {SYNC_TIMEOUT:.0f}s to summarize "
                                  "them per node; retry") from None
            yield subscriber
        finally:
            self.subscribers.discard(subscriber)
            if not self.subscribers and self.idle is not None:
                self._stopper = asyncio.get_running_loop().call_later(self.idle, self.stop)

    def _start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self.run(), name="gateway/node-summary")

    def stop(self) -> None:
        """Stop the watch and forget the sums (nobody has looked for ``idle`` seconds, or the gateway stops)."""
        if self._stopper is not None:
            self._stopper.cancel()
            self._stopper = None
        if self._task is not None:
            self._task.cancel()
            self._task = None
        self.sums = NodeSums()
        self.synced = asyncio.Event()
        self.resource_version = 0

    def _changed(self, nodes: tuple[str, ...] | set[str]) -> None:
        if nodes:
            for subscriber in self.subscribers:
                subscriber.mark(nodes)

    async def _relist(self) -> None:
        """Every pod's facts and the list's version, chunk by chunk: the objects of one chunk at a time are held,
        never the whole list (150,000 pods: hundreds of MB as objects, ~30 MB as facts)."""
        pods: dict[str, Facts] = {}
        version = 0
        chunks = self.client.list_chunks("Pod", min_resource_version=self.resource_version or None)
        async with contextlib.aclosing(chunks):
            async for chunk, last in chunks:
                for pod in chunk:
                    found = facts(pod)
                    if found is not None:
                        pods[pod_key(pod)] = found
                version = last or version
        self._changed(self.sums.replace(pods))
        self.resource_version = version

    def apply(self, event: str, obj: Obj) -> None:
        found = None if event == "DELETED" else facts(obj)
        self._changed(self.sums.apply(pod_key(obj), found))


def _message(kind: str, body: dict[str, Any]) -> str:
    nodes: dict[str, Totals | None] = body["nodes"]
    return jsonbody.dumps({"type": kind, **({"fields": FIELDS} if kind == "SNAPSHOT" else {}), **body,
                           "nodes": {n: list(t) if t is not None else None for n, t in nodes.items()}}).decode()


class NodeSummaryRoute:
    """``GET PATH``: the snapshot as JSON, or the snapshot then the changes over a websocket."""

    def __init__(self, feed: NodeSummaryFeed, access: AccessReviews, watch_slots: WatchSlots) -> None:
        self.feed = feed
        self.access = access
        self.watch_slots = watch_slots

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get(PATH, self._serve)

    async def _serve(self, request: web.Request) -> web.StreamResponse:
        user = request[USER]
        for verb in ("list", "watch"):  # the pods of every namespace: what the summary is made of
            await self.access.require(user, Attributes(verb, "pods"))
        ws = web.WebSocketResponse(protocols=(watching.WEBSOCKET_PROTOCOL,), max_msg_size=4096, heartbeat=30)
        if not ws.can_prepare(request).ok:
            async with self.feed.subscribe():
                return json_response(self._plain(self.feed.snapshot()))
        with self.watch_slots.hold(user.name):
            async with self.feed.subscribe() as subscriber:
                await ws.prepare(request)
                sender = asyncio.create_task(self._send(ws, subscriber), name="gateway/node-summary-send")
                reader = asyncio.create_task(_until_closed(ws), name="gateway/node-summary-read")
                try:
                    await asyncio.wait({sender, reader}, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    await watching.cancel(reader)
                    await watching.cancel(sender)
                    with contextlib.suppress(Exception):
                        await ws.close()
        return ws

    def _plain(self, body: dict[str, Any]) -> dict[str, Any]:
        return {"kind": "NodeSummary", "fields": FIELDS, "resourceVersion": body["resourceVersion"],
                "pods": body["pods"], "nodes": {n: list(t) for n, t in body["nodes"].items() if t is not None}}

    async def _send(self, ws: web.WebSocketResponse, subscriber: Subscriber) -> None:
        subscriber.take()  # the snapshot covers what was marked before it
        await ws.send_str(_message("SNAPSHOT", self.feed.snapshot()))
        while True:
            await subscriber.wake.wait()
            await asyncio.sleep(BATCH)  # gather what else changes meanwhile
            changed = subscriber.take()
            if changed:
                await ws.send_str(_message("CHANGED", self.feed.snapshot(changed)))


async def _until_closed(ws: web.WebSocketResponse) -> None:
    async for _ in ws:  # the client sends nothing; reading sees its close
        pass
