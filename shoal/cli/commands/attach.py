"""``shoal attach POD [-c CONTAINER]``: follow the output of a container's main process (from now on) until it
ends (then its exit code is ``shoal attach``'s) or Ctrl-C (detach: the container runs on). Shoal starts
containers without an open stdin, so there is no ``-i``/``-t`` here: use ``shoal exec -it`` for a shell.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys

from protocol.errors import Unavailable
from protocol.objects import name_of
from runtime.node_stream import open_stream, run_exec
from shoal.cli.commands.logs import _container, _pick_pod
from shoal.cli.errors import CliError
from shoal.cli.registry import Command, add_namespace_flags
from shoal.cli.session import Session


def _configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("pod", metavar="POD | TYPE/NAME", help="a pod, or deploy/NAME, rs/NAME, rc/NAME, svc/NAME")
    parser.add_argument("-c", "--container", default=None, help="the container (default: the pod's only one)")
    add_namespace_flags(parser, all_namespaces=False)


async def _run(session: Session, args: argparse.Namespace) -> int:
    client = await session.client()
    pod = await _pick_pod(client, args.pod, session.namespace)
    container = _container(pod, args.container)
    namespace = str((pod.get("metadata") or {}).get("namespace") or session.namespace)
    stream = await open_stream(client, "attach", namespace, name_of(pod), container=container, command=[],
                               stdin=False, tty=False)

    def output(channel: int, data: bytes) -> None:
        out = sys.stderr.buffer if channel == 2 else sys.stdout.buffer
        out.write(data)
        out.flush()

    task = asyncio.ensure_future(run_exec(stream, None, output))
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, task.cancel)
    try:
        return await task
    except asyncio.CancelledError:
        return 0  # detached
    except Unavailable as exc:
        raise CliError(f"attach to pod {name_of(pod)}: {exc.message}") from None
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


COMMAND = Command(
    name="attach", help="follow the output of a running container", configure=_configure, run=_run,
    epilog="examples:\n  shoal attach web-7d9c-abcde\n  shoal attach deploy/web -c app",
)
