"""``shoal delete``: delete objects by name, selector or file, then (by default) wait until they are gone.

``--cascade`` chooses the propagation policy (background: dependents are removed afterwards;
foreground: the owner waits for them; orphan: they are left alone). Waiting polls ``get`` until NotFound,
or until the name holds an object with another UID (re-created, as a StatefulSet's pod: as kubectl); on
timeout it says what holds the object (finalizers, a kubelet that has not confirmed).
"""

from __future__ import annotations

import argparse
import asyncio
import time
from dataclasses import dataclass

from protocol.errors import NotFound, ShoalError
from protocol.kinds import KindInfo, strategy_for
from protocol.objects import Obj, meta, name_of
from runtime.client import ApiClient
from shoal.cli.errors import CliError, UsageError, report
from shoal.cli.manifests import load
from shoal.cli.registry import Command, add_bool_flag, add_file_flags, add_namespace_flags
from shoal.cli.resources import kind_of_object, parse_targets, qualified
from shoal.cli.session import Session

CASCADE = {"background": "Background", "foreground": "Foreground", "orphan": "Orphan",
           "true": "Background", "false": "Orphan"}
POLL_EVERY = 0.25


@dataclass
class Doomed:
    info: KindInfo
    namespace: str | None
    name: str
    uid: str | None = None
    """The UID of the object whose deletion was accepted: one re-created under the name (a StatefulSet's
    pod) is another object, and the deleted one is gone."""

    def __str__(self) -> str:
        return f'{qualified(self.info)} "{self.name}"'


def _configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("resources", nargs="*", metavar="TYPE [NAME...]",
                        help="a resource type and names, or TYPE/NAME...")
    add_file_flags(parser, what="delete the objects of")
    add_namespace_flags(parser)
    parser.add_argument("-l", "--selector", default=None,
                        help="delete the objects matching this label selector")
    parser.add_argument("--all", action="store_true", help="delete every object of the type in the namespace")
    parser.add_argument("--grace-period", type=int, default=-1, metavar="SECONDS",
                        help="seconds a pod gets to stop (default: the pod's own; 0 stops it at once)")
    parser.add_argument("--cascade", default="background", type=str.lower, choices=sorted(CASCADE),
                        metavar="background|foreground|orphan",
                        help="what happens to dependents: background (default), foreground or orphan")
    add_bool_flag(parser, "wait", default=True,
                  help="wait until the objects are gone (the default; --wait=false or --no-wait not to)")
    parser.add_argument("--timeout", type=float, default=60.0, metavar="SECONDS",
                        help="how long to wait for the objects to go (default 60, plus the grace period)")
    parser.add_argument("--ignore-not-found", action="store_true", help="objects already gone are no error")


async def _targets(session: Session, args: argparse.Namespace, client: ApiClient) -> list[Doomed]:
    namespace = None if args.all_namespaces else session.namespace
    if args.filename:
        if args.resources:
            raise UsageError("give either -f or resource names, not both")
        doomed = []
        for manifest in reversed(load(args.filename)):  # namespaces (usually first) go last
            info = kind_of_object(str(manifest.obj["kind"]))
            ns = session.namespace_for(info, manifest.obj)
            doomed.append(Doomed(info, ns, name_of(manifest.obj)))
        return doomed
    targets = parse_targets(args.resources)
    doomed = []
    for target in targets:
        if target.names:
            if args.selector or args.all:
                raise UsageError("names cannot be combined with -l or --all")
            if args.all_namespaces:
                raise CliError("objects cannot be deleted by name across all namespaces: use -n")
            doomed += [Doomed(target.info, namespace, n) for n in target.names]
        elif args.selector or args.all:
            listed = await client.list(target.info, namespace if target.info.namespaced else None,
                                       label_selector=args.selector)
            doomed += [Doomed(target.info, meta(o).get("namespace"), name_of(o)) for o in listed.items]
        else:
            raise UsageError(f"say which {target.info.plural} to delete: give names, -l SELECTOR or --all")
    return doomed


def _holding(obj: Obj) -> str:
    """Why an object is still there after its deletion was accepted, and what to do about it."""
    strategy = strategy_for(str(obj.get("kind")))
    finalizers = strategy.finalizers(obj)
    if finalizers:
        return (f"it still has finalizers {finalizers}: the controllers that remove them may not be running "
                "(they run as components of `shoal up`; check its output)")
    node = (obj.get("spec") or {}).get("nodeName")
    if strategy.awaits_confirmation(obj):
        return (f"the kubelet of node {node!r} has not confirmed the pod stopped: check the node, or delete "
                "with --grace-period=0")
    return "check `shoal describe` for it"


async def _wait_gone(client: ApiClient, doomed: list[Doomed], limit: float) -> int:
    deadline = time.monotonic() + limit
    pending = list(doomed)
    last: dict[int, Obj] = {}
    while pending:
        still = []
        for d in pending:
            try:
                obj = await client.get(d.info, d.name, d.namespace)
            except NotFound:
                continue
            if d.uid is not None and meta(obj).get("uid") != d.uid:
                continue  # a new object under the name: the deleted one is gone
            last[id(d)] = obj
            still.append(d)
        pending = still
        if not pending:
            return 0
        if time.monotonic() > deadline:
            for d in pending:
                report(CliError(f"timed out after {limit:g}s waiting for {d} to be deleted: "
                                f"{_holding(last[id(d)])}; or use --wait=false"))
            return 1
        await asyncio.sleep(POLL_EVERY)
    return 0


async def _run(session: Session, args: argparse.Namespace) -> int:
    if not args.filename and not args.resources:
        raise UsageError("say what to delete: `shoal delete TYPE NAME...` or `shoal delete -f FILE`")
    client = await session.client()
    doomed = await _targets(session, args, client)
    if not doomed and not args.filename:
        print("No resources found")
        return 0
    grace = None if args.grace_period < 0 else args.grace_period
    failed, accepted = False, []
    for d in doomed:
        try:
            deleted = await client.delete(d.info, d.name, d.namespace, grace_period=grace,
                                          propagation=CASCADE[args.cascade])
            d.uid = meta(deleted).get("uid") or None
            print(f"{d} deleted", flush=True)
            accepted.append(d)
        except NotFound as exc:
            if not args.ignore_not_found:
                report(exc)
                failed = True
        except ShoalError as exc:
            report(exc, f"error when deleting {d}")
            failed = True
    if args.wait and accepted and await _wait_gone(client, accepted, args.timeout + (grace or 0)):
        failed = True
    return 1 if failed else 0


COMMAND = Command(
    name="delete", help="delete objects by name, label selector or file", configure=_configure, run=_run,
    epilog="examples:\n  shoal delete pod web\n  shoal delete -f app.yaml\n"
           "  shoal delete deploy web --cascade=orphan --wait=false\n  shoal delete pods -l app=web",
)
