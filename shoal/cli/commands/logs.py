"""``shoal logs POD [-c CONTAINER] [-f] [--tail N] [--previous]``: a container's output, fetched over
NATS from the kubelet of the pod's node. ``deploy/NAME``, ``rs/NAME`` pick the first pod of the owner."""

from __future__ import annotations

import argparse
import contextlib

from protocol.objects import name_of
from protocol.selectors import from_label_selector, from_match_labels
from runtime.node_logs import fetch_logs
from shoal.cli.commands._target import one_target
from shoal.cli.errors import CliError
from shoal.cli.registry import Command, add_namespace_flags
from shoal.cli.session import Session


def _configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("pod", nargs="+", metavar="POD | TYPE/NAME")
    parser.add_argument("-c", "--container", default=None, help="the container (needed when the pod has several)")
    parser.add_argument("-f", "--follow", action="store_true", help="keep streaming new lines")
    parser.add_argument("--tail", type=int, default=None, help="only the last N lines")
    parser.add_argument("-p", "--previous", action="store_true", help="the previous, exited instance")
    add_namespace_flags(parser, all_namespaces=False)


async def _pick_pod(session: Session, words: list[str]) -> str:
    info, name = one_target(words, default_kind="pod")
    if info.kind == "Pod":
        return name
    client = await session.client()
    owner = await client.get(info, name, session.namespace)
    spec = owner.get("spec") or {}
    selector = (from_match_labels(spec.get("selector")) if info.kind in ("ReplicationController", "Service")
                else from_label_selector(spec.get("selector")))
    pods = (await client.list("Pod", session.namespace, label_selector=str(selector))).items
    if not pods:
        raise CliError(f"no pods found for {info.singular}/{name}: see `shoal get pods -n {session.namespace}`")
    return sorted(name_of(p) for p in pods)[0]


async def _run(session: Session, args: argparse.Namespace) -> int:
    pod = await _pick_pod(session, args.pod)
    client = await session.client()
    stream = fetch_logs(client, session.namespace, pod, args.container, args.tail, args.follow, args.previous,
                        timeout=session.timeout)
    async with contextlib.aclosing(stream) as lines:
        async for line in lines:
            print(line, flush=args.follow)
    return 0


COMMAND = Command(
    name="logs", help="print the logs of a container in a pod", configure=_configure, run=_run,
    epilog="examples:\n  shoal logs web-7d9c-abcde\n  shoal logs -f --tail 20 deploy/web\n"
           "  shoal logs web -c sidecar --previous",
)
