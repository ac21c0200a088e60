"""Serving container logs over NATS on ``shoal.node.<node>.logs`` (``protocol.subjects.node_agent``).

Request (msgpack envelope): ``{"v": 1, "namespace", "pod", "container"?, "tail"?, "follow"?, "previous"?,
"timestamps"?, "since"? (Unix time: lines written at or after it), "limit_bytes"? (the stream ends after that
many bytes of log, the last line cut there, as Kubernetes' ``limitBytes``), "inbox"}``, published with
``reply`` set to the same inbox (so that "no responders" reaches the caller when no kubelet serves the node).
The answer is a stream of messages on ``inbox``:
``{"v": 1, "ok": true, "lines": [...], "seq": n, "more": bool}`` with ``seq`` counting from 1 and the
last message carrying ``more: false``; or one ``{"v": 1, "ok": false, "error": {...}}`` (NotFound: no
such pod or container on this node; BadRequest: container omitted for a pod with several, or not started).
While following, an empty ``lines`` message is sent every ``KEEPALIVE`` seconds of silence so that the
caller can tell a quiet container from a dead kubelet. The caller stops a follow by publishing
``{"v": 1, "cancel": inbox}`` on the same subject. The client side is ``runtime/node_logs.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

from nats.aio.client import Client
from nats.aio.msg import Msg

from agents.kubelet.cri import ContainerRuntime, ContainerRuntimeError, RuntimeContainer
from agents.kubelet.podspec import containers_of, init_containers_of
from protocol import codec, subjects
from protocol.errors import BadRequest, NotFound, ShoalError, Unavailable
from protocol.objects import Obj, uid_of

KEEPALIVE = 5.0
BATCH_LINES = 256
BATCH_BYTES = 64 * 1024
MAX_STREAMS = 64

PodLookup = Callable[[str, str], Obj | None]
Attempts = Callable[[str], Awaitable[list[RuntimeContainer]]]


class LogServer:
    def __init__(self, nc: Client, node_name: str, runtime: ContainerRuntime, *, find_pod: PodLookup,
                 attempts: Attempts, log: Any) -> None:
        self.nc = nc
        self.node_name = node_name
        self.runtime = runtime
        self.find_pod = find_pod
        self.attempts = attempts
        self.log = log
        self._streams: dict[str, asyncio.Task[None]] = {}
        self._sub: Any = None

    @property
    def subject(self) -> str:
        return subjects.node_agent(self.node_name, "logs")

    async def start(self) -> None:
        self._sub = await self.nc.subscribe(self.subject, cb=self._on_request)

    async def close(self) -> None:
        if self._sub is not None:
            with contextlib.suppress(Exception):
                await self._sub.unsubscribe()
        for task in list(self._streams.values()):
            task.cancel()
        if self._streams:
            await asyncio.gather(*self._streams.values(), return_exceptions=True)
        self._streams.clear()

    def streams(self) -> int:
        return len(self._streams)

    async def _on_request(self, msg: Msg) -> None:
        try:
            request = codec.decode(msg.data)
        except ShoalError:
            return
        cancel = request.get("cancel")
        if isinstance(cancel, str):
            task = self._streams.get(cancel)
            if task is not None:
                task.cancel()
            return
        inbox = request.get("inbox") or msg.reply
        if not isinstance(inbox, str) or not inbox:
            return
        if inbox in self._streams:
            return
        if len(self._streams) >= MAX_STREAMS:
            await self.nc.publish(inbox, codec.error(Unavailable(f"too many log streams on {self.node_name}")))
            return
        task = asyncio.create_task(self._serve(request, inbox), name=f"logs-{inbox[-8:]}")
        self._streams[inbox] = task
        task.add_done_callback(lambda _t: self._streams.pop(inbox, None))

    async def _resolve(self, request: dict[str, Any]) -> RuntimeContainer:
        namespace, name = request.get("namespace"), request.get("pod")
        if not isinstance(namespace, str) or not isinstance(name, str):
            raise BadRequest("a logs request needs 'namespace' and 'pod' strings")
        pod = self.find_pod(namespace, name)
        if pod is None:
            raise NotFound(f'pod "{name}" not found on node {self.node_name} in namespace "{namespace}"',
                           {"kind": "Pod", "name": name, "namespace": namespace})
        names = [str(c.get("name")) for c in containers_of(pod)]
        container = request.get("container")
        if container is None:
            if len(names) != 1:
                raise BadRequest(f'a container name must be specified for pod {name}, choose one of: '
                                 f"[{' '.join(names)}]", {"containers": names})
            container = names[0]
        if container not in names and container not in [str(c.get("name")) for c in init_containers_of(pod)]:
            raise NotFound(f'container "{container}" not found in pod "{name}"',
                           {"kind": "Pod", "name": name, "container": container})
        attempts = sorted((c for c in await self.attempts(uid_of(pod)) if c.name == container),
                          key=lambda c: c.attempt)
        if request.get("previous"):
            if len(attempts) < 2:
                raise BadRequest(f'previous terminated container "{container}" in pod "{name}" not found')
            return attempts[-2]
        if not attempts:
            raise BadRequest(f'container "{container}" in pod "{name}" is waiting to start')
        return attempts[-1]

    async def _serve(self, request: dict[str, Any], inbox: str) -> None:
        seq = 0

        async def send(lines: list[str], more: bool) -> None:
            nonlocal seq
            seq += 1
            await self.nc.publish(inbox, codec.ok(lines=lines, seq=seq, more=more))

        try:
            container = await self._resolve(request)
            tail = request.get("tail")
            tail = int(tail) if isinstance(tail, int) and not isinstance(tail, bool) and tail >= 0 else None
            follow = bool(request.get("follow"))
            timestamps = request.get("timestamps") is True
            since = request.get("since")
            since = float(since) if isinstance(since, int | float) and not isinstance(since, bool) else None
            limit = request.get("limit_bytes")
            left = int(limit) if isinstance(limit, int) and not isinstance(limit, bool) and limit > 0 else None
            queue: asyncio.Queue[str | None] = asyncio.Queue(maxsize=4 * BATCH_LINES)

            async def produce() -> None:
                nonlocal left
                try:
                    async for line in self.runtime.logs(container.id, tail=tail, follow=follow,
                                                        timestamps=timestamps, since=since):
                        if left is not None:  # counted with its newline; the last line is cut at the limit
                            line = line[:left]
                            left -= len(line.encode()) + 1
                        await queue.put(line)
                        if left is not None and left <= 0:
                            break
                except Exception:
                    await queue.put(None)
                    raise
                await queue.put(None)

            producer = asyncio.create_task(produce(), name=f"logs-read-{inbox[-8:]}")
            try:
                finished = False
                while not finished:
                    try:  # not wait_for: in 3.11 it may return an item and lose a cancellation
                        async with asyncio.timeout(KEEPALIVE):
                            item = await queue.get()
                    except TimeoutError:
                        await send([], True)
                        continue
                    batch: list[str] = []
                    size = 0
                    while item is not None:
                        batch.append(item)
                        size += len(item)
                        if len(batch) >= BATCH_LINES or size >= BATCH_BYTES or queue.empty():
                            break
                        item = queue.get_nowait()
                    if item is None:
                        finished = True
                        if not producer.done():
                            await producer
                        producer.result()  # a failed read ends the stream with its error instead
                    await send(batch, not finished)
            finally:
                producer.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await producer
        except ShoalError as exc:
            await self.nc.publish(inbox, codec.error(exc))
        except ContainerRuntimeError as exc:
            await self.nc.publish(inbox, codec.error(NotFound(f"logs unavailable: {exc}")))
