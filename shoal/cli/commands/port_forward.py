"""``shoal port-forward POD [LOCAL:]REMOTE... [--address ADDR]``: forward local TCP ports to a pod.

Each accepted connection becomes one port-forward stream over NATS to the pod's kubelet, which connects to
``localhost:REMOTE`` inside the pod's network namespace (``runtime.node_stream``). Runs until Ctrl-C.
``LOCAL`` 0 or ``:REMOTE`` picks a free local port.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import signal

from protocol.errors import ShoalError
from protocol.objects import name_of
from runtime.client import ApiClient
from runtime.node_stream import CHUNK, StreamSession, open_stream
from shoal.cli.commands.logs import _pick_pod
from shoal.cli.errors import UsageError
from shoal.cli.registry import Command, add_namespace_flags
from shoal.cli.session import Session


def _configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("pod", metavar="POD | TYPE/NAME", help="a pod, or deploy/NAME, rs/NAME, rc/NAME, svc/NAME")
    parser.add_argument("ports", nargs="+", metavar="[LOCAL:]REMOTE", help="ports to forward")
    parser.add_argument("--address", default="127.0.0.1", help="local address to listen on (default 127.0.0.1)")
    add_namespace_flags(parser, all_namespaces=False)


def parse_ports(words: list[str]) -> list[tuple[int, int]]:
    pairs = []
    for word in words:
        local, colon, remote = word.partition(":")
        if not colon:
            local, remote = word, word
        try:
            pair = (int(local or 0), int(remote))
        except ValueError:
            raise UsageError(f"invalid port {word!r}: use REMOTE, LOCAL:REMOTE or :REMOTE") from None
        if not 0 <= pair[0] < 65536 or not 0 < pair[1] < 65536:
            raise UsageError(f"invalid port {word!r}: ports are 1-65535")
        pairs.append(pair)
    return pairs


async def forward_connection(client: ApiClient, namespace: str, pod: str, port: int,
                             reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Relay one local connection to ``port`` in the pod until either side ends."""
    try:
        session = await open_stream(client, "portforward", namespace, pod, port=port)
    except ShoalError as exc:
        print(f"error forwarding port {port}: {exc.message}", flush=True)
        writer.close()
        return

    async def upstream(stream: StreamSession) -> None:
        while data := await reader.read(CHUNK):
            await stream.send(data=data)
        await stream.send(eof=True)

    up = asyncio.create_task(upstream(session))
    try:
        while True:
            message = await session.receive()
            if "failure" in message:
                print(str(message["failure"]), flush=True)
                break
            if message.get("eof"):
                break
            writer.write(bytes(message.get("data") or b""))
            await writer.drain()
    except (ShoalError, ConnectionError) as exc:
        print(f"port-forward to {port} ended: {exc}", flush=True)
    finally:
        up.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await up
        if session.failure is None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(session.send(close=True), 1.0)
        await session.close()
        writer.close()


async def _run(session: Session, args: argparse.Namespace) -> int:
    pairs = parse_ports(args.ports)
    client = await session.client()
    pod = await _pick_pod(client, args.pod, session.namespace)
    namespace, name = str((pod.get("metadata") or {}).get("namespace") or session.namespace), name_of(pod)
    servers = []
    for local, remote in pairs:
        server = await asyncio.start_server(functools.partial(forward_connection, client, namespace, name, remote),
                                            args.address, local)
        servers.append(server)
        bound = server.sockets[0].getsockname()[1]
        print(f"Forwarding from {args.address}:{bound} -> {remote}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        for server in servers:
            server.close()
    return 0


COMMAND = Command(
    name="port-forward", help="forward local ports to a pod", configure=_configure, run=_run,
    epilog="examples:\n  shoal port-forward web-7d9c-abcde 8080:80\n  shoal port-forward deploy/web :80 9090",
)
