"""A Kubernetes watch stream (``?watch=true``) over a Shoal watch: one JSON event per line,
``{"type": "ADDED"|"MODIFIED"|"DELETED"|"BOOKMARK"|"ERROR", "object": ...}``.

The NATS watch (``runtime.watch.Watch``) resumes by itself across API actors; only a version older than the
API actors' event window ends it, which is answered as Kubernetes does: an ``ERROR`` event carrying a
``410 Expired`` Status ("too old resource version"), after which clients list again. With
``allowWatchBookmarks`` a ``BOOKMARK`` event carries the newest version the watch is known to be current at,
every ``BOOKMARK_EVERY`` seconds of quiet (the same version again if nothing changed). ``timeoutSeconds``
ends the stream cleanly.

The same watch is served over a websocket (``websocket``) when the request asks for an upgrade, as the
Kubernetes API server does: one event per text message. A browser keeps at most six HTTP/1.1 connections to a
server and a streamed watch holds one for its whole life, so a page with more watches than that (the console's
workloads view has eight) would wait forever for the seventh; websockets do not count against that limit.
The client offers the subprotocol ``WEBSOCKET_PROTOCOL`` (browsers refuse an upgrade that selects none of the
subprotocols they offered, and the bearer token subprotocol is never selected: ``auth``).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from actors.gateway import jsonbody, table
from actors.gateway import status as statuses
from protocol.errors import Expired, ShoalError
from protocol.kinds import KindInfo
from runtime.watch import Watch, WatchEvent

BOOKMARK_EVERY = 5.0
WEBSOCKET_PROTOCOL = "watch.shoal.v1"
_END = object()


def expired_event(message: str) -> dict[str, Any]:
    return {"type": "ERROR", "object": statuses.status(410, "Expired", message)}


def bookmark(info: KindInfo, resource_version: int) -> dict[str, Any]:
    return {"type": "BOOKMARK", "object": {"kind": info.kind, "apiVersion": info.api_version,
                                           "metadata": {"resourceVersion": str(resource_version)}}}


async def stream(watch: Watch, info: KindInfo, write: Callable[[bytes], Awaitable[None]], *,
                 bookmarks: bool, timeout: float | None, as_table: bool, include_object: str) -> None:
    """Copy ``watch``'s events to ``write`` until the client leaves, the timeout passes or the watch expires."""
    queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=10_000)  # a slow client holds its watch back

    async def pump() -> None:
        try:
            async for event in watch:
                await queue.put(event)
        except ShoalError as exc:
            await queue.put(exc)
        await queue.put(_END)

    pumper = asyncio.create_task(pump(), name="gateway-watch-pump")
    deadline = time.monotonic() + timeout if timeout else None
    last_bookmark = watch.resource_version or 0
    headers = True
    try:
        while True:
            if queue.empty():
                wait = BOOKMARK_EVERY
                if deadline is not None:
                    wait = min(wait, deadline - time.monotonic())
                    if wait <= 0:
                        return
                try:  # not wait_for: in 3.11 it returns an item that meets a cancellation and loses the cancel
                    async with asyncio.timeout(wait):
                        items = [await queue.get()]
                except TimeoutError:
                    last_bookmark = max(last_bookmark, watch.resource_version or 0)
                    if bookmarks and last_bookmark:
                        await write(_line(bookmark(info, last_bookmark)))
                    continue
            else:
                items = []
            while not queue.empty():  # every event already here goes out in the same write
                items.append(queue.get_nowait())
            lines: list[bytes] = []
            ended = False
            for item in items:
                if item is _END:
                    ended = True
                    break
                if isinstance(item, ShoalError):
                    lines.append(_line(expired_event(f"too old resource version: {item.message}")
                                       if isinstance(item, Expired)
                                       else {"type": "ERROR", "object": statuses.from_error(item)}))
                    ended = True
                    break
                event: WatchEvent = item
                obj: Any = event.object
                if as_table:
                    obj = table.table(info.kind, [event.object], resource_version=str(event.resource_version),
                                      include_object=include_object, headers=headers)
                    headers = False
                last_bookmark = max(last_bookmark, event.resource_version)
                lines.append(_line({"type": event.type, "object": obj}))
            if lines:
                await write(b"".join(lines))
            if ended:
                return
    finally:
        await cancel(pumper)
        await watch.close()


async def websocket(ws: web.WebSocketResponse, watch: Watch, info: KindInfo, *, bookmarks: bool,
                    timeout: float | None, as_table: bool, include_object: str) -> None:
    """``stream`` to a prepared websocket, one event per text message, until the watch ends (then the socket
    is closed normally) or the client closes it or goes away (then the watch is closed)."""

    async def write(data: bytes) -> None:
        for line in data.splitlines():
            await ws.send_str(line.decode())

    async def until_closed() -> None:  # the client sends nothing; reading sees its close
        async for _ in ws:
            pass

    streamer = asyncio.create_task(stream(watch, info, write, bookmarks=bookmarks, timeout=timeout,
                                          as_table=as_table, include_object=include_object),
                                   name="gateway-watch-websocket")
    reader = asyncio.create_task(until_closed(), name="gateway-watch-websocket-reader")
    try:
        await asyncio.wait({streamer, reader}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        await cancel(reader)
        await cancel(streamer)
        with contextlib.suppress(Exception):
            await ws.close()


async def cancel(task: asyncio.Task[Any]) -> None:
    """Cancel ``task`` and wait until it has ended, cancelling it again every second: Python 3.11's
    ``asyncio.wait_for`` (in the NATS watch) swallows a cancellation that races with its inner result, and
    a watch's pump then ran on for ever, holding its HTTP handler, its watch and the user's watch slot."""
    while not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=1.0)
    if not task.cancelled():
        with contextlib.suppress(BaseException):
            task.result()


def _line(event: dict[str, Any]) -> bytes:
    return jsonbody.dumps(event) + b"\n"
