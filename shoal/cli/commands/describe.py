"""``shoal describe``: a readable account of objects with the Events about them."""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable
from typing import Any

from protocol.errors import NotFound, ShoalError
from protocol.kinds import KindInfo
from protocol.objects import Obj, name_of, namespace_of
from runtime.client import ApiClient
from shoal.cli.columns import sort_key
from shoal.cli.describe import describe
from shoal.cli.errors import CliError, report
from shoal.cli.registry import Command, add_namespace_flags
from shoal.cli.resources import parse_targets
from shoal.cli.session import Session


async def related_events(client: ApiClient, info: KindInfo, obj: Obj) -> list[Obj]:
    """Events whose involvedObject is ``obj`` (cluster-scoped objects' Events may be in any namespace)."""
    namespace = namespace_of(obj)
    listed = await client.list("Event", namespace, field_selector=f"involvedObject.name={name_of(obj)}")
    found = []
    for ev in listed.items:
        involved = ev.get("involvedObject") or {}
        if involved.get("kind") == info.kind and (
                not info.namespaced or involved.get("namespace") in (None, namespace)):
            found.append(ev)
    return found


async def _node_pods(client: ApiClient, node: Obj) -> dict[str, Any]:
    return {"pods": (await client.list("Pod", None, field_selector=f"spec.nodeName={name_of(node)}")).items}


async def _service_endpoints(client: ApiClient, svc: Obj) -> dict[str, Any]:
    return {"endpoints": await client.get("Endpoints", name_of(svc), namespace_of(svc))}


EXTRAS: dict[str, Callable[[ApiClient, Obj], Awaitable[dict[str, Any]]]] = {
    "Node": _node_pods, "Service": _service_endpoints,
}
"""What ``describe`` fetches besides the object, by kind (a node's pods, a service's endpoints)."""
NO_EVENTS = frozenset({"Event"})
"""Kinds described without an Events section (Events are not the subject of Events)."""


async def extras_for(client: ApiClient, info: KindInfo, obj: Obj) -> dict[str, Any]:
    fetch = EXTRAS.get(info.kind)
    if fetch is None:
        return {}
    try:
        return await fetch(client, obj)
    except ShoalError:
        return {}  # a missing extra leaves its line at <none>


async def describe_one(client: ApiClient, info: KindInfo, obj: Obj) -> str:
    events = None if info.kind in NO_EVENTS else await related_events(client, info, obj)
    return describe(obj, events=events, extras=await extras_for(client, info, obj))


def _configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("resources", nargs="+", metavar="TYPE [NAME...]",
                        help="a resource type and names, or TYPE/NAME...; no name describes them all")
    add_namespace_flags(parser)
    parser.add_argument("-l", "--selector", default=None, help="label selector, when no name is given")


async def _run(session: Session, args: argparse.Namespace) -> int:
    targets = parse_targets(args.resources)
    namespace = None if args.all_namespaces else session.namespace
    if args.all_namespaces and any(t.names for t in targets):
        raise CliError("a resource cannot be described by name across all namespaces: drop -A and use -n")
    client = await session.client()
    failed, first = False, True
    for target in targets:
        objs: list[Obj] = []
        if target.names:
            for name in target.names:
                try:
                    objs.append(await client.get(target.info, name, namespace))
                except NotFound as exc:
                    report(exc)
                    failed = True
        else:
            listed = await client.list(target.info, namespace if target.info.namespaced else None,
                                       label_selector=args.selector)
            objs = sorted(listed.items, key=sort_key(target.info.kind))
            if not objs:
                where = f" in {namespace} namespace" if target.info.namespaced and namespace else ""
                print(f"No resources found{where}.")
        for obj in objs:
            if not first:
                print()
            first = False
            print(await describe_one(client, target.info, obj), end="", flush=True)
    return 1 if failed else 0


COMMAND = Command(
    name="describe", help="show details of objects and the Events about them", configure=_configure, run=_run,
    epilog="examples:\n  shoal describe pod web\n  shoal describe nodes\n  shoal describe deploy/web svc/web",
)
