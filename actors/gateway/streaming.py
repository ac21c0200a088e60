"""``pods/exec`` and ``pods/portforward`` over websockets, relayed to the
pod's kubelet over NATS (``runtime.node_stream``).

Exec speaks the channel protocols kubectl (1.30+, ``KUBECTL_REMOTE_COMMAND_WEBSOCKETS``) and the official clients
use: ``v5.channel.k8s.io`` and ``v4.channel.k8s.io``. Every websocket message starts with its channel byte:
0 stdin, 1 stdout, 2 stderr, 3 error (a ``metav1.Status`` JSON, sent once at the end: ``Success``, or
``Failure`` with reason ``NonZeroExitCode`` and the exit code as the cause ``ExitCode``), 4 resize
(``{"Width", "Height"}``); v5 adds 255 close (``[255, channel]``: the client closed stdin).

Port-forward speaks ``v4.channel.k8s.io`` as the Python client does: for the i-th port of ``ports``, channel
2i carries data and 2i+1 errors; the first message the server sends on each channel is the port number
(2 bytes, little endian). One websocket is one TCP connection per port. kubectl (1.31+) tunnels SPDY/3.1 in the
websocket instead (subprotocol ``SPDY/3.1+portforward.k8s.io``, framing in ``spdy``): one pair of streams (error,
data) per forwarded connection, any number of them in one websocket.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import struct
from typing import Any

from aiohttp import WSMsgType, web

from actors.gateway import paths, spdy
from actors.gateway import status as statuses
from actors.gateway.http import flag
from protocol.errors import BadRequest, ShoalError
from runtime.client import ApiClient
from runtime.node_stream import CHUNK, StreamSession, open_stream

EXEC_PROTOCOLS = ("v5.channel.k8s.io", "v4.channel.k8s.io")
SPDY_TUNNEL = "SPDY/3.1+portforward.k8s.io"
PORTFORWARD_PROTOCOLS = (SPDY_TUNNEL, "v4.channel.k8s.io")
STDIN, STDOUT, STDERR, ERROR, RESIZE, CLOSE = 0, 1, 2, 3, 4, 255


def exit_status(code: int, command: list[str]) -> dict[str, Any]:
    """The channel-3 Status of a finished command, as the kubelet writes it."""
    if code == 0:
        return {"metadata": {}, "status": "Success"}
    return {"metadata": {}, "status": "Failure",
            "message": f"command terminated with non-zero exit code: error executing command {command}, "
                       f"exit code {code}",
            "reason": "NonZeroExitCode", "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]}}


def _payload(msg: Any) -> bytes | None:
    if msg.type == WSMsgType.BINARY:
        return bytes(msg.data)
    if msg.type == WSMsgType.TEXT:
        return str(msg.data).encode()
    return None


def _upgrade_required(request: web.Request, protocols: tuple[str, ...]) -> None:
    ws = web.WebSocketResponse(protocols=protocols)
    if not ws.can_prepare(request).ok:
        raise BadRequest(f"{request.path.rsplit('/', 1)[-1]} needs a websocket upgrade with one of the "
                         f"subprotocols {', '.join(protocols)} (SPDY is not served)")


async def exec_(client: ApiClient, request: web.Request, t: paths.Target) -> web.StreamResponse:
    """``GET pods/<name>/exec?command=...&container=&stdin=&stdout=&stderr=&tty=`` (or ``attach``, without a
    command) upgraded to a websocket."""
    _upgrade_required(request, EXEC_PROTOCOLS)
    verb = str(t.subresource)
    command = request.query.getall("command", [])
    if not command and verb == "exec":
        raise BadRequest("you must specify at least one command for the container")
    tty, stdin = flag(request, "tty"), flag(request, "stdin")
    want_out, want_err = flag(request, "stdout"), flag(request, "stderr")
    if not (stdin or want_out or want_err):
        raise BadRequest("you must specify at least one of stdin, stdout, stderr")
    session = await open_stream(client, verb, str(t.namespace), str(t.name),
                                container=request.query.get("container") or None, command=list(command),
                                stdin=stdin, tty=tty)
    try:
        await session.ready()
        ws = web.WebSocketResponse(protocols=EXEC_PROTOCOLS, max_msg_size=0, heartbeat=None)
        await ws.prepare(request)
        v5 = ws.ws_protocol == "v5.channel.k8s.io"
        pump_in = asyncio.create_task(_exec_input(ws, session, v5), name="exec-ws-in")
        try:
            await _exec_output(ws, session, list(command), want_out, want_err)
        finally:
            pump_in.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await pump_in
            await ws.close()
        return ws
    finally:
        await session.close()


async def _exec_output(ws: web.WebSocketResponse, session: StreamSession, command: list[str], want_out: bool,
                       want_err: bool) -> None:
    try:
        while True:
            message = await session.receive()
            if "exit" in message:
                status = exit_status(int(message["exit"]), command)
                await ws.send_bytes(bytes([ERROR]) + json.dumps(status).encode())
                return
            channel, data = int(message.get("ch", 1)), bytes(message.get("data") or b"")
            if (channel == STDOUT and want_out) or (channel == STDERR and want_err):
                await ws.send_bytes(bytes([channel]) + data)
    except ShoalError as exc:
        body = statuses.from_error(exc)
        with contextlib.suppress(Exception):
            await ws.send_bytes(bytes([ERROR]) + json.dumps(body).encode())
    except ConnectionError:
        pass


async def _exec_input(ws: web.WebSocketResponse, session: StreamSession, v5: bool) -> None:
    try:
        async for msg in ws:
            data = _payload(msg)
            if data is None or not data:
                continue
            channel, body = data[0], data[1:]
            if channel == STDIN and body:
                for offset in range(0, len(body), CHUNK):
                    await session.send(stdin=body[offset:offset + CHUNK])
            elif channel == RESIZE:
                with contextlib.suppress(ValueError, KeyError, TypeError):
                    size = json.loads(body)
                    await session.send(resize=[int(size["Width"]), int(size["Height"])])
            elif channel == CLOSE and v5 and body[:1] == bytes([STDIN]):
                await session.send(eof=True)
    except ShoalError:
        return
    # the client went away: tell the kubelet to end the process now (it would after the silence anyway)
    with contextlib.suppress(Exception):
        await session.send(close=True)


async def portforward(client: ApiClient, request: web.Request, t: paths.Target) -> web.StreamResponse:
    """``GET pods/<name>/portforward?ports=P[&ports=Q]`` upgraded to a ``v4.channel.k8s.io`` websocket."""
    _upgrade_required(request, PORTFORWARD_PROTOCOLS)
    offered = [p.strip() for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",")]
    if SPDY_TUNNEL in offered:
        return await _spdy_portforward(client, request, t)
    ports: list[int] = []
    for raw in request.query.getall("ports", []):
        for part in raw.split(","):
            if not part.strip().isdigit() or not 0 < int(part) < 65536:
                raise BadRequest(f"invalid port {part!r}: a port between 1 and 65535")
            ports.append(int(part))
    if not ports:
        raise BadRequest("query parameter 'ports' is required")
    sessions = [await open_stream(client, "portforward", str(t.namespace), str(t.name), port=port) for port in ports]
    try:
        for session in sessions:
            await session.ready()
        ws = web.WebSocketResponse(protocols=PORTFORWARD_PROTOCOLS, max_msg_size=0, heartbeat=None)
        await ws.prepare(request)
        for index, port in enumerate(ports):
            await ws.send_bytes(bytes([2 * index]) + struct.pack("<H", port))
            await ws.send_bytes(bytes([2 * index + 1]) + struct.pack("<H", port))
        outputs = [asyncio.create_task(_forward_output(ws, session, index)) for index, session in enumerate(sessions)]
        try:
            async for msg in ws:
                data = _payload(msg)
                if not data or data[0] % 2 or data[0] // 2 >= len(sessions) or len(data) < 2:
                    continue
                await sessions[data[0] // 2].send(data=data[1:])
                if all(task.done() for task in outputs):
                    break
        except ShoalError:
            pass
        finally:
            for session in sessions:
                with contextlib.suppress(Exception):
                    await session.send(close=True)
            for task in outputs:
                task.cancel()
            await asyncio.gather(*outputs, return_exceptions=True)
            await ws.close()
        return ws
    finally:
        for session in sessions:
            await session.close()


async def _forward_output(ws: web.WebSocketResponse, session: StreamSession, index: int) -> None:
    try:
        while True:
            message = await session.receive()
            if "failure" in message:
                await ws.send_bytes(bytes([2 * index + 1]) + str(message["failure"]).encode())
                break
            if message.get("eof"):
                break
            if "data" in message:
                await ws.send_bytes(bytes([2 * index]) + bytes(message["data"]))
    except (ShoalError, ConnectionError) as exc:
        with contextlib.suppress(Exception):
            await ws.send_bytes(bytes([2 * index + 1]) + str(exc).encode())
    if ws.closed:
        return
    with contextlib.suppress(Exception):
        await ws.close()



class _Tunnel:
    """One kubectl port-forward websocket: SPDY stream pairs, each relayed over its own NATS session."""

    def __init__(self, client: ApiClient, ws: web.WebSocketResponse, t: paths.Target) -> None:
        self.client, self.ws, self.t = client, ws, t
        self.codec = spdy.Codec()
        self.lock = asyncio.Lock()
        self.pairs: dict[str, dict[str, Any]] = {}
        self.by_stream: dict[int, str] = {}
        self.tasks: set[asyncio.Task[None]] = set()

    async def send(self, make: Any, *args: Any, **kwargs: Any) -> None:
        async with self.lock:  # frames are made and sent in one order: the header compressor is stateful
            await self.ws.send_bytes(make(*args, **kwargs))

    async def frame(self, frame: spdy.Frame) -> None:
        if frame.control and frame.type == spdy.SYN_STREAM:
            await self.send(self.codec.syn_reply, frame.stream_id)
            rid, kind = frame.headers.get("requestid", ""), frame.headers.get("streamtype", "")
            pair = self.pairs.setdefault(rid, {"queue": asyncio.Queue()})
            pair[kind] = frame.stream_id
            if kind == "data":
                pair["port"] = frame.headers.get("port", "")
            self.by_stream[frame.stream_id] = rid
            if "error" in pair and "data" in pair and "task" not in pair:
                task = asyncio.create_task(self.forward(rid, pair), name=f"portforward-{rid}")
                pair["task"] = task
                self.tasks.add(task)
                task.add_done_callback(self.tasks.discard)
        elif frame.control and frame.type == spdy.PING:
            await self.send(self.codec.ping, frame.value)
        elif frame.control and frame.type == spdy.RST_STREAM:
            reset = self.pairs.get(self.by_stream.get(frame.stream_id, ""))
            if reset is not None and "task" in reset:
                reset["task"].cancel()
        elif not frame.control:
            target = self.pairs.get(self.by_stream.get(frame.stream_id, ""))
            if target is not None and target.get("data") == frame.stream_id:
                if frame.data:
                    target["queue"].put_nowait(frame.data)
                if frame.flags & spdy.FLAG_FIN:
                    target["queue"].put_nowait(None)

    async def forward(self, rid: str, pair: dict[str, Any]) -> None:
        data_id, error_id = int(pair["data"]), int(pair["error"])
        port = str(pair.get("port", ""))
        try:
            if not port.isdigit() or not 0 < int(port) < 65536:
                raise BadRequest(f"invalid port {port!r}")
            session = await open_stream(self.client, "portforward", str(self.t.namespace), str(self.t.name),
                                        port=int(port))
            await session.ready()
        except ShoalError as exc:
            with contextlib.suppress(Exception):
                await self.send(self.codec.data, error_id, exc.message.encode(), fin=True)
                await self.send(self.codec.data, data_id, b"", fin=True)
            return

        async def upstream() -> None:
            while (data := await pair["queue"].get()) is not None:
                for offset in range(0, len(data), CHUNK):
                    await session.send(data=data[offset:offset + CHUNK])
            await session.send(eof=True)

        up = asyncio.create_task(upstream(), name=f"portforward-up-{rid}")
        try:
            while True:
                message = await session.receive()
                if "failure" in message:
                    await self.send(self.codec.data, error_id, str(message["failure"]).encode())
                    break
                if message.get("eof"):
                    break
                await self.send(self.codec.data, data_id, bytes(message.get("data") or b""))
        except (ShoalError, ConnectionError) as exc:
            with contextlib.suppress(Exception):
                await self.send(self.codec.data, error_id, str(exc).encode())
        finally:
            up.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await up
            if session.failure is None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(session.send(close=True), 1.0)
            await session.close()
            with contextlib.suppress(Exception):
                await self.send(self.codec.data, data_id, b"", fin=True)
                await self.send(self.codec.data, error_id, b"", fin=True)


async def _spdy_portforward(client: ApiClient, request: web.Request, t: paths.Target) -> web.StreamResponse:
    await client.get("Pod", str(t.name), t.namespace)  # a missing pod is a 404 before the upgrade
    ws = web.WebSocketResponse(protocols=(SPDY_TUNNEL,), max_msg_size=0, heartbeat=None)
    await ws.prepare(request)
    tunnel = _Tunnel(client, ws, t)
    try:
        async for msg in ws:
            data = _payload(msg)
            if data is None:
                continue
            for frame in tunnel.codec.feed(data):
                if frame.control and frame.type == spdy.GOAWAY:
                    return ws
                await tunnel.frame(frame)
    except spdy.ProtocolError:
        pass
    finally:
        for task in list(tunnel.tasks):
            task.cancel()
        await asyncio.gather(*tunnel.tasks, return_exceptions=True)
        await ws.close()
    return ws
