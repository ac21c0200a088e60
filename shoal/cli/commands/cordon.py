"""``shoal cordon NODE`` / ``shoal uncordon NODE``: mark nodes (un)schedulable, as kubectl does.

Cordoning sets ``spec.unschedulable`` (the scheduler then places no new pod there; pods already there
stay); uncordoning removes it. Nodes are named, or chosen with ``-l/--selector``. Each prints
``node/x cordoned``, or ``node/x already cordoned`` when there was nothing to change; ``--dry-run``
(``client``) changes nothing and says so. ``set_schedulable`` is shared with ``shoal drain``.
"""

from __future__ import annotations

import argparse

from protocol.objects import Obj, name_of
from runtime.client import ApiClient
from shoal.cli.errors import UsageError
from shoal.cli.registry import Command, Runner
from shoal.cli.session import Session


def add_node_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("nodes", nargs="*", metavar="NODE", help="the nodes (or choose them with -l)")
    parser.add_argument("-l", "--selector", default=None, help="label selector of the nodes, e.g. pool=edge")
    parser.add_argument("--dry-run", nargs="?", const="client", default="none", type=str.lower,
                        choices=("none", "client"),
                        help="client: print what would be done, change nothing (default none)")


async def chosen_nodes(client: ApiClient, args: argparse.Namespace) -> list[Obj]:
    """The nodes named (each read, NotFound if absent) or selected with ``-l``; not both, not neither."""
    if args.nodes and args.selector:
        raise UsageError("name nodes or select them with -l/--selector, not both")
    if not args.nodes and not args.selector:
        raise UsageError("name at least one node (shoal get nodes lists them) or select nodes with -l")
    if args.selector:
        return list((await client.list("Node", None, label_selector=args.selector)).items)
    return [await client.get("Node", name) for name in dict.fromkeys(args.nodes)]


async def set_schedulable(client: ApiClient, node: Obj, *, unschedulable: bool, dry_run: bool) -> str:
    """Cordon (``unschedulable``) or uncordon ``node``; the line kubectl prints for it."""
    verb = "cordoned" if unschedulable else "uncordoned"
    suffix = " (dry run)" if dry_run else ""
    if bool((node.get("spec") or {}).get("unschedulable")) == unschedulable:
        return f"node/{name_of(node)} already {verb}{suffix}"
    if not dry_run:
        await client.patch("Node", name_of(node), {"spec": {"unschedulable": True if unschedulable else None}})
    return f"node/{name_of(node)} {verb}{suffix}"


def _runner(unschedulable: bool) -> Runner:
    async def run(session: Session, args: argparse.Namespace) -> int:
        client = await session.client()
        nodes = await chosen_nodes(client, args)
        if not nodes:
            print("No resources found", flush=True)
        for node in nodes:
            print(await set_schedulable(client, node, unschedulable=unschedulable, dry_run=args.dry_run == "client"),
                  flush=True)
        return 0

    return run


CORDON = Command(
    name="cordon", help="mark nodes unschedulable (no new pods are placed there)", configure=add_node_flags,
    run=_runner(True), epilog="examples:\n  shoal cordon node-1\n  shoal cordon -l pool=edge",
)
UNCORDON = Command(
    name="uncordon", help="mark nodes schedulable again", configure=add_node_flags,
    run=_runner(False), epilog="examples:\n  shoal uncordon node-1",
)
