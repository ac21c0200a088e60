"""Serving ``exec``, ``attach`` and ``port-forward`` over NATS on ``shoal.node.<node>.exec`` / ``.attach`` /
``.portforward`` (attach: the output of the container's main process from now on, as exec's messages, then
its exit code; with ``"stdin": true`` — for a container with ``stdin: true`` — the client's stdin messages go
to it, ``eof`` ends the container's stdin; a container with ``tty: true`` gives raw terminal output and
takes ``resize``; closing the session detaches and leaves the container running).

Opening request (msgpack, published with ``reply`` = the client's inbox so that "no responders" reaches it):
``{"namespace", "pod", "session", "inbox", "credit", ...}`` plus, for exec, ``"container"?``, ``"command"``
(a non-empty list of strings), ``"stdin"``, ``"tty"``, ``"size"?`` ([width, height]); for port-forward,
``"port"``. The kubelet answers on the inbox with ``{"ok": false, "error"}`` (NotFound, BadRequest,
Unavailable) or starts a ``runtime.node_stream.StreamSession`` (kubelet -> inbox, client ->
``shoal.node.<node>.stream.<session>``) whose data messages are:

- exec, kubelet -> client: ``{"ch": 1|2, "data"}`` (stdout, stderr), then one ``{"exit": code}`` (or
  ``{"failure": message}``) last; client -> kubelet: ``{"stdin": bytes}``, ``{"eof": true}``,
  ``{"resize": [width, height]}``, ``{"close": true}``;
- port-forward, both ways: ``{"data"}``, ``{"eof": true}``; kubelet -> client ``{"failure": message}`` when the
  connection to the pod's port cannot be made or breaks.

When the client is silent for ``SILENCE`` seconds (no keep-alive) the kubelet kills the exec's process (or closes
the pod connection): nothing is left running. The client side is ``runtime/node_stream.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

from nats.aio.client import Client
from nats.aio.msg import Msg

from agents.kubelet.cri import ContainerRuntimeError, RuntimeContainer
from agents.kubelet.podman_streams import ExecProcess, PodmanStreams
from agents.kubelet.podspec import containers_of
from protocol import codec, subjects
from protocol.errors import BadRequest, NotFound, ShoalError, Unavailable
from protocol.objects import Obj, uid_of
from runtime.node_stream import CHUNK, StreamSession, session_subject

MAX_SESSIONS = 64

PodLookup = Callable[[str, str], Obj | None]
Attempts = Callable[[str], Awaitable[list[RuntimeContainer]]]


class StreamServer:
    def __init__(self, nc: Client, node_name: str, streams: PodmanStreams | None, *, find_pod: PodLookup,
                 attempts: Attempts, log: Any) -> None:
        self.nc = nc
        self.node_name = node_name
        self.streams = streams
        self.find_pod = find_pod
        self.attempts = attempts
        self.log = log
        self._sessions: dict[str, asyncio.Task[None]] = {}
        self._subs: list[Any] = []

    async def start(self) -> None:
        for verb in ("exec", "attach", "portforward"):
            self._subs.append(await self.nc.subscribe(subjects.node_agent(self.node_name, verb), cb=self._on_request))

    async def close(self) -> None:
        for sub in self._subs:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()
        for task in list(self._sessions.values()):
            task.cancel()
        if self._sessions:
            await asyncio.gather(*self._sessions.values(), return_exceptions=True)
        self._sessions.clear()

    def sessions(self) -> int:
        return len(self._sessions)

    async def _on_request(self, msg: Msg) -> None:
        try:
            request = codec.decode(msg.data)
        except ShoalError:
            return
        inbox, session = request.get("inbox") or msg.reply, request.get("session")
        if not isinstance(inbox, str) or not inbox:
            return
        if not isinstance(session, str) or not session.isalnum() or session in self._sessions:
            await self.nc.publish(inbox, codec.error(BadRequest("a stream request needs a new alphanumeric 'session'")))
            return
        if len(self._sessions) >= MAX_SESSIONS:
            await self.nc.publish(inbox, codec.error(Unavailable(f"too many streams on node {self.node_name}")))
            return
        verb = msg.subject.rsplit(".", 1)[-1]
        task = asyncio.create_task(self._serve(verb, request, inbox, session), name=f"{verb}-{session[-8:]}")
        self._sessions[session] = task
        task.add_done_callback(lambda _t: self._sessions.pop(session, None))

    def _spec(self, request: dict[str, Any]) -> dict[str, Any]:
        """The pod spec's entry of the requested container (found by ``_container`` just before)."""
        pod = self.find_pod(str(request.get("namespace")), str(request.get("pod"))) or {}
        containers = containers_of(pod)
        wanted = request.get("container") or (containers[0].get("name") if containers else None)
        return next((c for c in containers if c.get("name") == wanted), {})

    async def _container(self, request: dict[str, Any]) -> RuntimeContainer:
        namespace, name = request.get("namespace"), request.get("pod")
        if not isinstance(namespace, str) or not isinstance(name, str):
            raise BadRequest("a stream request needs 'namespace' and 'pod' strings")
        pod = self.find_pod(namespace, name)
        if pod is None:
            raise NotFound(f'pod "{name}" not found on node {self.node_name} in namespace "{namespace}"',
                           {"kind": "Pod", "name": name, "namespace": namespace})
        names = [str(c.get("name")) for c in containers_of(pod)]
        container = request.get("container") or names[0]
        if container not in names:
            raise BadRequest(f'container {container} is not valid for pod {name}', {"containers": names})
        running = [c for c in await self.attempts(uid_of(pod)) if c.name == container and c.state == "running"]
        if not running:
            raise BadRequest(f'unable to upgrade connection: container not found ("{container}")',
                             {"container": container})
        return max(running, key=lambda c: c.attempt)

    async def _serve(self, verb: str, request: dict[str, Any], inbox: str, session_id: str) -> None:
        session = StreamSession(self.nc, inbox, session_subject(self.node_name, session_id))
        try:
            if self.streams is None:
                raise BadRequest(f"the container runtime of node {self.node_name} does not serve {verb}")
            container = await self._container(request)
            credit = request.get("credit")
            await session.subscribe()
            session.route({"credit": credit if isinstance(credit, int) and credit > 0 else 1})
            await session.start()  # the client's first window, and keep-alives while the exec is made
            if verb == "exec":
                await self._exec(session, container, request)
            elif verb == "attach":
                await self._attach(session, container, request)
            else:
                await self._portforward(session, container, request)
        except ShoalError as exc:
            await self.nc.publish(inbox, codec.error(exc))
        except ContainerRuntimeError as exc:
            await self.nc.publish(inbox, codec.error(BadRequest(str(exc))))
        finally:
            await session.close()

    async def _exec(self, session: StreamSession, container: RuntimeContainer, request: dict[str, Any]) -> None:
        assert self.streams is not None
        command = request.get("command")
        if not isinstance(command, list) or not command or not all(isinstance(a, str) for a in command):
            raise BadRequest("exec needs a command: a non-empty list of strings")
        tty, stdin = bool(request.get("tty")), bool(request.get("stdin"))
        size = request.get("size")
        process = await self.streams.exec(container.id, command, stdin=stdin, tty=tty,
                                          size=(int(size[0]), int(size[1])) if isinstance(size, list)
                                          and len(size) == 2 else None)
        self.log.info("exec started", pod=request.get("pod"), container=container.name, tty=tty)
        pump_in = asyncio.create_task(self._exec_input(session, process), name="exec-in")
        try:
            while (chunk := await process.read()) is not None:
                stream, data = chunk
                for offset in range(0, len(data), CHUNK):
                    await session.send(ch=stream, data=data[offset:offset + CHUNK])
            code = await self.streams.exit_code(process.exec_id)
            await session.send(exit=code if code is not None else -1)
        except Unavailable:
            self.log.info("exec client gone: killing the process", pod=request.get("pod"))
        finally:
            pump_in.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await pump_in
            with contextlib.suppress(Exception):
                await self.streams.kill(process.exec_id)
            process.close()

    async def _attach(self, session: StreamSession, container: RuntimeContainer, request: dict[str, Any]) -> None:
        """The container's main process: its output from now on and, when asked (``-i``) and the container
        has ``stdin: true``, its stdin; with ``tty: true`` its terminal (raw output, resizable)."""
        streams = self.streams
        assert streams is not None
        spec = self._spec(request)
        stdin = bool(request.get("stdin"))
        if stdin and spec.get("stdin") is not True:
            raise BadRequest(f"stdin false for container {container.name}: attach -i needs a container with "
                             "stdin: true (attach without -i follows its output)", {"container": container.name})
        tty = spec.get("tty") is True  # the container's terminal decides how its output comes
        process = await streams.attach(container.id, stdin=stdin, tty=tty)

        async def detach() -> None:  # the client leaves: close the attachment, the container runs on
            with contextlib.suppress(Unavailable, ConnectionError, OSError):
                while True:
                    message = await session.receive()
                    if "stdin" in message and stdin:
                        await process.write(bytes(message["stdin"]))
                    elif message.get("eof") and stdin:
                        process.close_stdin()  # the container's stdin ends (as stdinOnce's first detach)
                    elif isinstance(message.get("resize"), list) and len(message["resize"]) == 2 and tty:
                        width, height = message["resize"]
                        await streams.resize_container(container.id, int(width), int(height))
                    elif message.get("close"):
                        break
            process.close()

        watcher = asyncio.create_task(detach(), name="attach-in")
        try:
            while (chunk := await process.read()) is not None:
                stream, data = chunk
                for offset in range(0, len(data), CHUNK):
                    await session.send(ch=stream, data=data[offset:offset + CHUNK])
            if not watcher.done():
                code = await streams.container_exit_code(container.id)
                await session.send(exit=code if code is not None else -1)
        except (Unavailable, ConnectionError, OSError):
            pass
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await watcher
            process.close()

    async def _exec_input(self, session: StreamSession, process: ExecProcess) -> None:
        assert self.streams is not None
        try:
            while True:
                message = await session.receive()
                if "stdin" in message:
                    await process.write(bytes(message["stdin"]))
                elif message.get("eof"):
                    process.close_stdin()
                elif isinstance(message.get("resize"), list) and len(message["resize"]) == 2:
                    width, height = message["resize"]
                    await self.streams.resize(process.exec_id, int(width), int(height))
                elif message.get("close"):
                    break
        except (Unavailable, ConnectionError, OSError):
            pass
        # the client closed the session or is gone: end the process (its output loop then ends)
        with contextlib.suppress(Exception):
            await self.streams.kill(process.exec_id)
        process.close()

    async def _portforward(self, session: StreamSession, container: RuntimeContainer,
                           request: dict[str, Any]) -> None:
        assert self.streams is not None
        port = request.get("port")
        if not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536:
            raise BadRequest("port-forward needs a 'port' between 1 and 65535")
        try:
            reader, writer = await self.streams.connect(container.id, port)
        except (OSError, ContainerRuntimeError) as exc:
            await session.send(failure=f"error forwarding port {port} to pod {request.get('pod')}: {exc}")
            return

        async def inbound() -> None:
            try:
                while True:
                    message = await session.receive()
                    if "data" in message:
                        writer.write(bytes(message["data"]))
                        await writer.drain()
                    elif message.get("eof"):
                        with contextlib.suppress(OSError):
                            writer.write_eof()
                    elif message.get("close"):
                        break
            except (Unavailable, ConnectionError, OSError):
                pass
            writer.close()

        pump_in = asyncio.create_task(inbound(), name="portforward-in")
        try:
            while data := await reader.read(CHUNK):
                await session.send(data=data)
            await session.send(eof=True)
            await pump_in
        except (Unavailable, ConnectionError, OSError):
            pass
        finally:
            pump_in.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await pump_in
            writer.close()
