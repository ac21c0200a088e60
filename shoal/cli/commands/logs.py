"""``shoal logs POD [CONTAINER] [-c CONTAINER] [-f] [--tail N] [--previous]``: a container's output.

The lines come over NATS from the kubelet of the pod's node (``runtime.node_logs.fetch_logs``). The pod
is checked here first so that the usual mistakes get kubectl's answers and a next step: not scheduled
yet, container missing or ambiguous, node agent down. ``deploy/NAME``, ``rs/NAME``, ``rc/NAME`` and
``svc/NAME`` pick the first pod (by name) of the object's selector. ``-f`` runs until the container
ends or Ctrl-C (exit 0).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
import time
from datetime import datetime

from protocol.errors import Unavailable
from protocol.kinds import strategy_for
from protocol.objects import Obj, name_of
from runtime.client import ApiClient
from runtime.node_logs import fetch_logs
from shoal.cli.errors import CliError, UsageError
from shoal.cli.registry import Command, add_namespace_flags
from shoal.cli.resources import resolve_kind
from shoal.cli.rollout_status import parse_duration
from shoal.cli.session import Session

DEFAULT_CONTAINER = "kubectl.kubernetes.io/default-container"


def _configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("pod", nargs="?", metavar="POD | TYPE/NAME",
                        help="a pod, or deploy/NAME, rs/NAME, rc/NAME, svc/NAME (or -l SELECTOR)")
    parser.add_argument("-l", "--selector", default=None,
                        help="the logs of every pod with these labels, e.g. app=web (instead of a pod)")
    parser.add_argument("--prefix", action="store_true", help="begin each line with [pod/NAME/CONTAINER]")
    parser.add_argument("--max-log-requests", type=int, default=5,
                        help="with -l and -f: how many pods' logs to follow at once (more is refused)")
    parser.add_argument("container_arg", nargs="?", metavar="CONTAINER", help="same as -c")
    parser.add_argument("-c", "--container", default=None, help="the container (needed when the pod has several)")
    parser.add_argument("-f", "--follow", action="store_true", help="keep printing new lines until Ctrl-C")
    parser.add_argument("--tail", type=int, default=-1, help="only the last N lines (default: all)")
    parser.add_argument("-p", "--previous", action="store_true",
                        help="the logs of the previous instance of the container, if it restarted")
    parser.add_argument("--timestamps", action="store_true", help="begin each line with its RFC 3339 time")
    parser.add_argument("--since", default=None, metavar="DURATION",
                        help="only lines newer than this, e.g. 10s, 5m, 1h")
    parser.add_argument("--since-time", default=None, metavar="RFC3339",
                        help="only lines after this time, e.g. 2026-12-01T06:00:00Z")
    parser.add_argument("--limit-bytes", type=int, default=None, help="stop after this many bytes of log")
    add_namespace_flags(parser, all_namespaces=False)


async def _pick_pod(client: ApiClient, word: str, namespace: str) -> Obj:
    kind, slash, name = word.partition("/")
    if not slash:
        return await client.get("Pod", word, namespace)
    info = resolve_kind(kind)
    if not name:
        raise UsageError(f"{word!r}: the name is missing (TYPE/NAME)")
    if "log" in info.subresources:
        return await client.get(info, name, namespace)
    pod_selector = strategy_for(info).pod_selector
    if pod_selector is None:
        raise UsageError(f"cannot show logs of {info.plural}: name a pod, or one of deploy/NAME, rs/NAME, "
                         "rc/NAME, svc/NAME")
    owner = await client.get(info, name, namespace)
    selector = pod_selector(owner)
    if not str(selector):
        raise CliError(f"{info.singular}/{name} has no selector: name one of its pods instead")
    pods = (await client.list("Pod", namespace, label_selector=str(selector))).items
    if not pods:
        raise CliError(f"no pods found for {info.singular}/{name} (selector {selector}): "
                       f"see `shoal get pods -n {namespace}`")
    return min(pods, key=name_of)


def _container(pod: Obj, given: str | None) -> str:
    spec = pod.get("spec") or {}
    names = [str(c.get("name")) for c in spec.get("containers") or []]
    init = [str(c.get("name")) for c in spec.get("initContainers") or []]
    pod_name = name_of(pod)
    if given is not None:
        if given not in names and given not in init:
            raise CliError(f"container {given} is not valid for pod {pod_name}, choose one of: "
                           f"[{' '.join(names + init)}]")
        return given
    default = ((pod.get("metadata") or {}).get("annotations") or {}).get(DEFAULT_CONTAINER)
    if default in names:
        return str(default)
    if len(names) == 1:
        return names[0]
    extra = f" or one of the init containers: [{' '.join(init)}]" if init else ""
    raise CliError(f"a container name must be specified for pod {pod_name}, choose one of: [{' '.join(names)}]"
                   f"{extra} (pass -c NAME)")


def _since(args: argparse.Namespace) -> float | None:
    """The Unix time of ``--since`` or ``--since-time`` (one of them at most, as kubectl)."""
    if args.since is not None and args.since_time is not None:
        raise UsageError("only one of --since and --since-time may be given")
    if args.limit_bytes is not None and args.limit_bytes < 1:
        raise UsageError("--limit-bytes must be greater than 0")
    if args.since is not None:
        try:
            seconds = parse_duration(args.since)
        except argparse.ArgumentTypeError as exc:
            raise UsageError(f"--since: {exc}") from None
        if seconds <= 0:
            raise UsageError("--since must be greater than 0, e.g. 10s or 5m")
        return time.time() - seconds
    if args.since_time is not None:
        try:
            return datetime.fromisoformat(args.since_time.replace("Z", "+00:00")).timestamp()
        except ValueError:
            raise UsageError(f"--since-time {args.since_time!r} is not an RFC 3339 time, "
                             "e.g. 2026-12-01T06:00:00Z") from None
    return None


async def _print_logs(client: ApiClient, pod: Obj, container: str, args: argparse.Namespace, timeout: float) -> None:
    name, namespace = name_of(pod), str((pod.get("metadata") or {}).get("namespace") or "default")
    node = (pod.get("spec") or {}).get("nodeName")
    if not node:
        raise CliError(f"pod {name} is not scheduled yet, so it has no logs: see `shoal describe pod {name}` "
                       "for why it waits")
    tail = args.tail if args.tail >= 0 else None
    stream = fetch_logs(client, namespace, name, container, tail, args.follow, args.previous, timeout=timeout,
                        timestamps=args.timestamps, since=_since(args), limit_bytes=args.limit_bytes)
    prefix = f"[pod/{name}/{container}] " if args.prefix else ""
    try:
        async with contextlib.aclosing(stream) as lines:
            async for line in lines:
                print(prefix + line, flush=args.follow)
    except Unavailable as exc:
        raise CliError(f"cannot get the logs of pod {name}: {exc.message} (see `shoal get node {node}`)") from None


async def _run(session: Session, args: argparse.Namespace) -> int:
    if args.container and args.container_arg and args.container != args.container_arg:
        raise UsageError(f"two containers given: {args.container_arg} and -c {args.container}; name one")
    if (args.pod is None) == (args.selector is None):
        raise UsageError("name a pod (or TYPE/NAME), or give -l SELECTOR: one of them")
    client = await session.client()
    if args.selector is not None:
        pods = sorted((await client.list("Pod", session.namespace, label_selector=args.selector)).items, key=name_of)
        if not pods:
            print(f"No resources found in {session.namespace} namespace.", file=sys.stderr)
            return 0
        if args.follow and len(pods) > args.max_log_requests:
            raise UsageError(f"you are attempting to follow {len(pods)} log streams, but maximum allowed "
                             f"concurrency is {args.max_log_requests}, use --max-log-requests to increase the limit")
    else:
        pods = [await _pick_pod(client, args.pod, session.namespace)]
    targets = [(pod, _container(pod, args.container or args.container_arg)) for pod in pods]
    if not args.follow:
        for pod, container in targets:
            await _print_logs(client, pod, container, args, session.timeout)
        return 0
    # following: Ctrl-C (or SIGTERM) ends it normally, and the kubelet is told to stop streaming
    async def follow_all() -> None:  # a task (not gather's future): its cancellation is its own, not an error
        await asyncio.gather(*(_print_logs(client, pod, container, args, session.timeout)
                               for pod, container in targets))

    task = asyncio.ensure_future(follow_all())
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, task.cancel)
    try:
        await task
    except asyncio.CancelledError:
        if not task.cancelled():
            raise
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
    return 0


COMMAND = Command(
    name="logs", help="print the logs of a container in a pod", configure=_configure, run=_run,
    epilog="examples:\n  shoal logs web-7d9c-abcde\n  shoal logs web-7d9c-abcde sidecar\n"
           "  shoal logs -f --tail 20 deploy/web\n  shoal logs web-7d9c-abcde -c app --previous\n"
           "  shoal logs -l app=web --prefix --since 10m",
)
