"""``shoal exec POD [-c CONTAINER] [-i] [-t] -- COMMAND [ARG...]``: run a command in a running container.

The streams flow over NATS between this process and the kubelet of the pod's node (``runtime.node_stream``);
the command's exit code is ``shoal exec``'s. ``-i`` sends stdin (its end closes the command's stdin), ``-t``
gives the command a terminal (this terminal is put in raw mode meanwhile and its size follows).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fcntl
import os
import signal
import struct
import sys
import termios
import threading
import tty
from collections.abc import AsyncIterator

from protocol.errors import Unavailable
from protocol.objects import name_of
from runtime.node_stream import StreamSession, open_stream, run_exec
from shoal.cli.commands.logs import _container, _pick_pod
from shoal.cli.errors import CliError, UsageError
from shoal.cli.registry import Command, add_namespace_flags
from shoal.cli.session import Session


def _configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("pod", metavar="POD | TYPE/NAME", help="a pod, or deploy/NAME, rs/NAME, rc/NAME, svc/NAME")
    parser.add_argument("command", nargs=argparse.REMAINDER, metavar="-- COMMAND [ARG...]")
    parser.add_argument("-c", "--container", default=None, help="the container (default: the pod's only one)")
    parser.add_argument("-i", "--stdin", action="store_true", help="pass stdin to the command")
    parser.add_argument("-t", "--tty", action="store_true", help="give the command a terminal")
    add_namespace_flags(parser, all_namespaces=False)


def stdin_chunks() -> AsyncIterator[bytes]:
    """Stdin as chunks, read by a daemon thread (works for terminals, pipes and files alike; a read blocked
    at exit does not hold the process)."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[bytes] = asyncio.Queue(maxsize=16)

    def reader() -> None:
        while True:
            try:
                data = os.read(0, 32 * 1024)
            except OSError:
                data = b""
            asyncio.run_coroutine_threadsafe(queue.put(data), loop).result()
            if not data:
                return

    threading.Thread(target=reader, name="stdin", daemon=True).start()

    async def chunks() -> AsyncIterator[bytes]:
        while data := await queue.get():
            yield data

    return chunks()


def terminal_size() -> tuple[int, int] | None:
    with contextlib.suppress(OSError):
        rows, cols, _, _ = struct.unpack("HHHH", fcntl.ioctl(0, termios.TIOCGWINSZ, b"\0" * 8))
        return cols, rows
    return None


async def _run(session: Session, args: argparse.Namespace) -> int:
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        raise UsageError("name the command to run after --, e.g. shoal exec web-1 -- ls /")
    client = await session.client()
    pod = await _pick_pod(client, args.pod, session.namespace)
    container = _container(pod, args.container)
    namespace = str((pod.get("metadata") or {}).get("namespace") or session.namespace)
    use_tty = wants_tty(args.tty)
    size = terminal_size() if use_tty else None
    stream = await open_stream(client, "exec", namespace, name_of(pod), container=container, command=command,
                               stdin=args.stdin, tty=use_tty, **({"size": list(size)} if size else {}))
    try:
        return await interact(stream, stdin=args.stdin, use_tty=use_tty)
    except Unavailable as exc:
        raise CliError(f"exec in pod {name_of(pod)}: {exc.message}") from None


def wants_tty(asked: bool) -> bool:
    """``-t`` as kubectl takes it: a terminal only when stdin is one (else said, and none)."""
    use_tty = asked and os.isatty(0)
    if asked and not use_tty:
        print("Unable to use a TTY - input is not a terminal or the right kind of file", file=sys.stderr)
    return use_tty


async def interact(stream: StreamSession, *, stdin: bool, use_tty: bool) -> int:
    """Run an exec or attach stream to its end: stdin sent when ``stdin``; with ``use_tty`` the local
    terminal is raw while it runs and its size follows the window. Returns the exit code."""
    loop = asyncio.get_running_loop()
    saved = termios.tcgetattr(0) if use_tty else None

    pending: set[asyncio.Task[None]] = set()

    def resized() -> None:
        new = terminal_size()
        if new is not None:
            task = asyncio.ensure_future(stream.send(resize=list(new)))
            pending.add(task)
            task.add_done_callback(pending.discard)

    def output(channel: int, data: bytes) -> None:
        out = sys.stderr.buffer if channel == 2 else sys.stdout.buffer
        out.write(data)
        out.flush()

    try:
        if use_tty:
            tty.setraw(0)
            loop.add_signal_handler(signal.SIGWINCH, resized)
        return await run_exec(stream, stdin_chunks() if stdin else None, output)
    finally:
        if saved is not None:
            termios.tcsetattr(0, termios.TCSADRAIN, saved)
            loop.remove_signal_handler(signal.SIGWINCH)


COMMAND = Command(
    name="exec", help="run a command in a container", configure=_configure, run=_run,
    epilog="examples:\n  shoal exec web-7d9c-abcde -- ls /\n  shoal exec -it web-7d9c-abcde -- sh\n"
           "  echo hi | shoal exec -i deploy/web -c app -- cat",
)
