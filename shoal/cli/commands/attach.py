"""``shoal attach POD [-c CONTAINER] [-i] [-t]``: follow the output of a container's main process (from now
on) until it ends (then its exit code is ``shoal attach``'s) or Ctrl-C (detach: the container runs on).
``-i`` sends stdin to it (the container needs ``stdin: true``; the end of stdin ends the container's, as
``stdinOnce``), ``-t`` uses its terminal (a container with ``tty: true``; the local one is raw meanwhile,
so Ctrl-C goes to the container).
"""

from __future__ import annotations

import argparse
import asyncio
import signal

from protocol.errors import Unavailable
from protocol.objects import name_of
from runtime.node_stream import open_stream
from shoal.cli.commands.exec import interact, terminal_size, wants_tty
from shoal.cli.commands.logs import _container, _pick_pod
from shoal.cli.errors import CliError
from shoal.cli.registry import Command, add_namespace_flags
from shoal.cli.session import Session


def _configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("pod", metavar="POD | TYPE/NAME", help="a pod, or deploy/NAME, rs/NAME, rc/NAME, svc/NAME")
    parser.add_argument("-c", "--container", default=None, help="the container (default: the pod's only one)")
    parser.add_argument("-i", "--stdin", action="store_true", help="pass stdin to the container (stdin: true)")
    parser.add_argument("-t", "--tty", action="store_true", help="use the container's terminal (tty: true)")
    add_namespace_flags(parser, all_namespaces=False)


async def _run(session: Session, args: argparse.Namespace) -> int:
    client = await session.client()
    pod = await _pick_pod(client, args.pod, session.namespace)
    container = _container(pod, args.container)
    namespace = str((pod.get("metadata") or {}).get("namespace") or session.namespace)
    use_tty = wants_tty(args.tty)
    stream = await open_stream(client, "attach", namespace, name_of(pod), container=container, command=[],
                               stdin=args.stdin, tty=use_tty)
    if use_tty and (size := terminal_size()) is not None:
        await stream.send(resize=list(size))
    task = asyncio.ensure_future(interact(stream, stdin=args.stdin, use_tty=use_tty))
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
    name="attach", help="follow the output of a running container (-i/-t: its stdin and terminal)",
    configure=_configure, run=_run,
    epilog="examples:\n  shoal attach web-7d9c-abcde\n  shoal attach deploy/web -c app\n"
           "  shoal attach -it shell   # a pod whose container has stdin: true, tty: true",
)
