"""``shoal scale deploy/web --replicas 3``: set the replicas of a Deployment, ReplicaSet or RC."""

from __future__ import annotations

import argparse

from protocol.errors import Conflict
from shoal.cli.commands._target import one_target
from shoal.cli.errors import CliError
from shoal.cli.registry import Command, add_namespace_flags
from shoal.cli.resources import display_name
from shoal.cli.session import Session

SCALABLE = ("Deployment", "ReplicaSet", "ReplicationController")


def _configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("target", nargs="+", metavar="TYPE/NAME")
    parser.add_argument("--replicas", type=int, required=True, help="the new number of replicas")
    parser.add_argument("--current-replicas", type=int, default=None,
                        help="only scale if the current replicas are this many")
    parser.add_argument("--resource-version", default=None, help="only scale if the object is at this version")
    add_namespace_flags(parser, all_namespaces=False)


async def _run(session: Session, args: argparse.Namespace) -> int:
    info, name = one_target(args.target, allowed=SCALABLE)
    if args.replicas < 0:
        raise CliError("--replicas must be 0 or more")
    client = await session.client()
    obj = await client.get(info, name, session.namespace)
    current = (obj.get("spec") or {}).get("replicas")
    if args.current_replicas is not None and current != args.current_replicas:
        raise CliError(f"expected {args.current_replicas} replicas but {display_name(info, name)} has {current}: "
                       "leave out --current-replicas to scale anyway")
    version = args.resource_version or obj["metadata"]["resourceVersion"]
    try:
        await client.patch(info, name, {"metadata": {"resourceVersion": version},
                                        "spec": {"replicas": args.replicas}}, session.namespace)
    except Conflict:
        raise CliError(f"{display_name(info, name)} changed while scaling: run the command again") from None
    print(f"{display_name(info, name)} scaled")
    return 0


COMMAND = Command(
    name="scale", help="set the number of replicas of a deployment, replicaset or replicationcontroller",
    configure=_configure, run=_run,
    epilog="examples:\n  shoal scale deploy/web --replicas 5\n  shoal scale rs web-7d9c --replicas 0",
)
