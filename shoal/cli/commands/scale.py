"""``shoal scale deploy/web --replicas 3``: set the replicas of Deployments, ReplicaSets, RCs or StatefulSets.

The write is a merge patch of ``spec.replicas`` carrying a resourceVersion precondition: the one given
with ``--resource-version`` (a mismatch is an error), else the one just read (a concurrent change is
read again and, if ``--current-replicas`` still holds, retried).
"""

from __future__ import annotations

import argparse

from protocol.errors import Conflict, ShoalError
from protocol.kinds import KindInfo
from runtime.client import ApiClient
from shoal.cli.errors import CliError, UsageError, report
from shoal.cli.registry import Command, add_namespace_flags
from shoal.cli.resources import display_name, parse_targets
from shoal.cli.session import Session

SCALABLE = ("Deployment", "ReplicaSet", "ReplicationController", "StatefulSet")
ATTEMPTS = 5


def _configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("target", nargs="+", metavar="TYPE/NAME",
                        help="TYPE/NAME... or TYPE NAME... (deploy, rs, rc, sts)")
    parser.add_argument("--replicas", type=int, required=True, help="the new number of replicas")
    parser.add_argument("--current-replicas", type=int, default=None,
                        help="only scale if the current replicas are this many")
    parser.add_argument("--resource-version", default=None,
                        help="only scale if the object is still at this resourceVersion")
    add_namespace_flags(parser, all_namespaces=False)


def _targets(words: list[str]) -> list[tuple[KindInfo, str]]:
    out: list[tuple[KindInfo, str]] = []
    for target in parse_targets(words):
        if target.info.kind not in SCALABLE:
            raise UsageError(f"{target.info.plural} cannot be scaled; scale one of: deployment, replicaset, "
                             "replicationcontroller, statefulset")
        out.extend((target.info, name) for name in target.names)
    if not out:
        raise UsageError("name what to scale: TYPE/NAME or TYPE NAME (e.g. deploy/web)")
    return out


async def scale_one(client: ApiClient, info: KindInfo, name: str, namespace: str, args: argparse.Namespace) -> None:
    label = display_name(info, name)
    for _ in range(ATTEMPTS):
        obj = await client.get(info, name, namespace)
        current = (obj.get("spec") or {}).get("replicas")
        current = 1 if current is None else int(current)
        if args.current_replicas is not None and current != args.current_replicas:
            raise CliError(f"expected {args.current_replicas} replicas but {label} has {current}: "
                           "leave out --current-replicas to scale anyway")
        version = args.resource_version or obj["metadata"]["resourceVersion"]
        try:
            await client.patch(info, name, {"metadata": {"resourceVersion": str(version)},
                                            "spec": {"replicas": args.replicas}}, namespace)
        except Conflict:
            if args.resource_version:
                raise CliError(f"{label} is at resourceVersion {obj['metadata']['resourceVersion']}, not "
                               f"{args.resource_version}: it changed; leave out --resource-version or pass the "
                               "current one") from None
            continue  # changed between our read and write: read again
        print(f"{label} scaled", flush=True)
        return
    raise CliError(f"{label} kept changing while being scaled ({ATTEMPTS} tries): run the command again")


async def _run(session: Session, args: argparse.Namespace) -> int:
    if args.replicas < 0:
        raise UsageError(f"--replicas must be 0 or more, not {args.replicas}")
    targets = _targets(args.target)
    client = await session.client()
    failed = 0
    for info, name in targets:
        try:
            await scale_one(client, info, name, session.namespace, args)
        except (ShoalError, CliError) as exc:
            if len(targets) == 1:
                raise
            failed += 1
            report(exc)
    return 1 if failed else 0


COMMAND = Command(
    name="scale", help="set the number of replicas of a deployment, replicaset, replicationcontroller or statefulset",
    configure=_configure, run=_run,
    epilog="examples:\n  shoal scale deploy/web --replicas 5\n  shoal scale deployment web --replicas 3\n"
           "  shoal scale rs web-7d9c --replicas 0\n  shoal scale deploy/web --current-replicas 2 --replicas 3",
)
