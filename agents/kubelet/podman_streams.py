"""Interactive streams into Podman containers: an exec's stdin/stdout/stderr, and a TCP connection inside a pod.

``PodmanStreams(socket_path)`` speaks the Podman service's API directly on its unix socket:

- ``exec``: ``POST /libpod/containers/<id>/exec`` makes an exec session, ``POST /libpod/exec/<id>/start``
  with ``Upgrade: tcp`` hijacks the connection into a raw duplex stream (without a TTY: 8-byte multiplexed
  frames, stream 1 stdout / 2 stderr; with one: raw bytes). Stdin EOF is a half-close of the socket; the exit
  code is read from ``GET /libpod/exec/<id>/json`` once the stream ends; ``resize`` posts the TTY size.
  ``kill`` sends SIGKILL to the exec's host PID (the kubelet runs as root beside Podman), so nothing is left
  running in the container when the client disappears (Podman itself would leave it, as Docker does).
- ``connect``: a TCP connection to ``127.0.0.1:<port>`` *inside the pod's network namespace* (found from the
  container's host PID), made by a thread that enters that namespace with ``setns`` just for the socket
  call, as Kubernetes' kubelet does for port-forward; works for loopback and bridge pod networks alike.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import os
import signal
import socket
import struct
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from agents.kubelet.cri import ContainerNotFound, ContainerRuntimeError

API = "/v4.0.0/libpod"
CLONE_NEWNET = 0x40000000


@dataclass
class ExecProcess:
    """A running exec: read ``reader`` (frames or raw bytes), write stdin to ``writer``."""

    exec_id: str
    tty: bool
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    _buffer: bytearray = field(default_factory=bytearray)

    async def read(self) -> tuple[int, bytes] | None:
        """The next chunk as (stream, bytes): 1 stdout, 2 stderr; None at the end of the output."""
        if self.tty:
            data = await self.reader.read(32 * 1024)
            return (1, data) if data else None
        while True:
            if len(self._buffer) >= 8:
                stream = self._buffer[0]
                (length,) = struct.unpack(">I", self._buffer[4:8])
                if len(self._buffer) >= 8 + length:
                    data = bytes(self._buffer[8:8 + length])
                    del self._buffer[:8 + length]
                    return (2 if stream == 2 else 1), data
            chunk = await self.reader.read(64 * 1024)
            if not chunk:
                return None
            self._buffer.extend(chunk)

    async def write(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    def close_stdin(self) -> None:
        with contextlib.suppress(OSError, RuntimeError):
            self.writer.write_eof()

    def close(self) -> None:
        self.writer.close()


class PodmanStreams:
    def __init__(self, socket_path: str) -> None:
        self.socket_path = socket_path.removeprefix("unix://")

    async def _request(self, method: str, path: str, body: Any = None) -> tuple[int, bytes]:
        reader, writer = await asyncio.open_unix_connection(self.socket_path)
        try:
            data = json.dumps(body).encode() if body is not None else b""
            writer.write(f"{method} {API}{path} HTTP/1.0\r\nHost: podman\r\nContent-Type: application/json\r\n"
                         f"Content-Length: {len(data)}\r\n\r\n".encode() + data)
            await writer.drain()
            response = await reader.read()
        finally:
            writer.close()
        head, _, payload = response.partition(b"\r\n\r\n")
        return int(head.split(b" ", 2)[1]), payload

    @staticmethod
    def _message(payload: bytes) -> str:
        with contextlib.suppress(ValueError, AttributeError):
            return str(json.loads(payload).get("message") or payload.decode(errors="replace"))
        return payload.decode(errors="replace").strip()

    async def exec(self, container_id: str, command: list[str], *, stdin: bool, tty: bool,
                   size: tuple[int, int] | None = None) -> ExecProcess:
        body: dict[str, Any] = {"AttachStdin": stdin, "AttachStdout": True, "AttachStderr": not tty, "Tty": tty,
                                "Cmd": command}
        status, payload = await self._request("POST", f"/containers/{quote(container_id, safe='')}/exec", body)
        if status == 404:
            raise ContainerNotFound(container_id)
        if status >= 400:
            raise ContainerRuntimeError(f"exec in {container_id[:12]}: {self._message(payload)}")
        exec_id = str(json.loads(payload)["Id"])
        reader, writer = await asyncio.open_unix_connection(self.socket_path, limit=1024 * 1024)
        start: dict[str, Any] = {"Detach": False, "Tty": tty}
        if size is not None:
            start["h"], start["w"] = size[1], size[0]
        data = json.dumps(start).encode()
        writer.write(f"POST {API}/exec/{exec_id}/start HTTP/1.1\r\nHost: podman\r\nContent-Type: application/json\r\n"
                     f"Connection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: {len(data)}\r\n\r\n".encode() + data)
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        code = int(head.split(b" ", 2)[1])
        if code >= 400:
            text = await reader.read()
            writer.close()
            raise ContainerRuntimeError(f"exec in {container_id[:12]}: {self._message(text)}")
        return ExecProcess(exec_id, tty, reader, writer)

    async def attach(self, container_id: str, *, stdin: bool = False, tty: bool = False) -> ExecProcess:
        """The output of a container's main process from now on (``POST /libpod/containers/<id>/attach``,
        hijacked), and its stdin when ``stdin`` (the container must have been created with an open stdin);
        ``tty``: the container has a terminal, so its output is raw, not multiplexed. It ends when the
        process does. Podman ends a non-TTY container's stdin when a stdin attachment closes."""
        reader, writer = await asyncio.open_unix_connection(self.socket_path, limit=1024 * 1024)
        path = (f"{API}/containers/{quote(container_id, safe='')}/attach?stream=true&stdout=true&stderr=true"
                f"&stdin={'true' if stdin else 'false'}")
        writer.write(f"POST {path} HTTP/1.1\r\nHost: podman\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n"
                     "Content-Length: 0\r\n\r\n".encode())
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        code = int(head.split(b" ", 2)[1])
        if code >= 400:
            text = await reader.read()
            writer.close()
            if code == 404:
                raise ContainerNotFound(container_id)
            raise ContainerRuntimeError(f"attach to {container_id[:12]}: {self._message(text)}")
        return ExecProcess("", tty, reader, writer)

    async def resize_container(self, container_id: str, width: int, height: int) -> None:
        await self._request("POST", f"/containers/{quote(container_id, safe='')}/resize?h={int(height)}&w={int(width)}")

    async def container_exit_code(self, container_id: str) -> int | None:
        for _ in range(50):
            status, payload = await self._request("GET", f"/containers/{quote(container_id, safe='')}/json")
            if status >= 400:
                return None
            state = json.loads(payload).get("State") or {}
            if not state.get("Running"):
                return int(state.get("ExitCode") or 0)
            await asyncio.sleep(0.05)
        return None

    async def exit_code(self, exec_id: str) -> int | None:
        for _ in range(50):  # the session's state is written just after the stream ends
            status, payload = await self._request("GET", f"/exec/{exec_id}/json")
            if status >= 400:
                return None
            info = json.loads(payload)
            if not info.get("Running"):
                code = info.get("ExitCode")
                return int(code) if code is not None else None
            await asyncio.sleep(0.02)
        return None

    async def resize(self, exec_id: str, width: int, height: int) -> None:
        await self._request("POST", f"/exec/{exec_id}/resize?h={int(height)}&w={int(width)}")

    async def kill(self, exec_id: str) -> None:
        """SIGKILL the exec's process (and so its children in a shell's pipeline lose their parent)."""
        status, payload = await self._request("GET", f"/exec/{exec_id}/json")
        if status >= 400:
            return
        info = json.loads(payload)
        pid = int(info.get("Pid") or 0)
        if info.get("Running") and pid > 0:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)

    async def pid(self, container_id: str) -> int:
        status, payload = await self._request("GET", f"/containers/{quote(container_id, safe='')}/json")
        if status == 404:
            raise ContainerNotFound(container_id)
        if status >= 400:
            raise ContainerRuntimeError(f"inspect {container_id[:12]}: {self._message(payload)}")
        pid = int((json.loads(payload).get("State") or {}).get("Pid") or 0)
        if pid <= 0:
            raise ContainerRuntimeError(f"container {container_id[:12]} is not running")
        return pid

    async def connect(self, container_id: str, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """A TCP connection to ``localhost:port`` in the network namespace of ``container_id``'s pod."""
        pid = await self.pid(container_id)
        sock = await asyncio.to_thread(_socket_in_netns, pid, port)
        return await asyncio.open_connection(sock=sock)


def _setns(fd: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def _socket_in_netns(pid: int, port: int) -> socket.socket:
    """Connect from inside ``pid``'s network namespace; only this thread enters it, and it leaves again."""
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        target = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY)
        try:
            _setns(target)
            try:
                sock = socket.create_connection(("127.0.0.1", port), timeout=5)
                sock.setblocking(False)
                return sock
            finally:
                _setns(own)
        finally:
            os.close(target)
    finally:
        os.close(own)
