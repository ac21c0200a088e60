"""``shoal get``: list or fetch objects as tables (per kind, like kubectl), YAML, JSON or names; ``-w``
then follows changes from the list's resourceVersion until Ctrl-C."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys

from protocol.errors import NotFound
from protocol.kinds import KindInfo
from protocol.objects import Obj, name_of, resource_version
from runtime.client import ApiClient
from shoal.cli.columns import sort_key
from shoal.cli.errors import CliError, report
from shoal.cli.printers import FORMATS, Table, as_list, render_document
from shoal.cli.registry import Command, add_bool_flag, add_namespace_flags
from shoal.cli.resources import Target, display_name, parse_targets
from shoal.cli.session import Session


def _configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("resources", nargs="+", metavar="TYPE [NAME...]",
                        help="a resource type (pods, po, deploy, svc...; several as pods,svc) and optional "
                             "names, or TYPE/NAME...")
    add_namespace_flags(parser)
    parser.add_argument("-l", "--selector", default=None, help="label selector, e.g. app=web,tier!=db")
    parser.add_argument("--field-selector", default=None, help="field selector, e.g. spec.nodeName=node-1")
    parser.add_argument("-o", "--output", choices=FORMATS, default=None, help="output format")
    add_bool_flag(parser, "watch", short="-w", default=False, help="after listing, print changes as they happen")
    parser.add_argument("--watch-only", action="store_true", help="print changes only, without listing first")
    parser.add_argument("--output-watch-events", action="store_true",
                        help="with -w, add an EVENT column (ADDED, MODIFIED, DELETED)")
    parser.add_argument("--show-labels", action="store_true", help="add a LABELS column")


def _no_resources(info: KindInfo, namespace: str | None) -> str:
    if info.namespaced and namespace:
        return f"No resources found in {namespace} namespace."
    return "No resources found"


class Output:
    """Prints what ``get`` found in the chosen format; tables keep their column widths for watch rows."""

    def __init__(self, args: argparse.Namespace, *, many_kinds: bool, all_namespaces: bool) -> None:
        self.format = args.output
        self.args = args
        self.many_kinds = many_kinds
        self.all_namespaces = all_namespaces
        self.tables: dict[str, Table] = {}
        self.printed_header: set[str] = set()

    def table(self, info: KindInfo) -> Table:
        if info.kind not in self.tables:
            self.tables[info.kind] = Table(info, wide=self.format == "wide",
                                           with_namespace=self.all_namespaces,
                                           show_labels=self.args.show_labels, kind_prefix=self.many_kinds)
        return self.tables[info.kind]

    def rows(self, info: KindInfo, objs: list[Obj], *, events: list[str] | None = None,
             watching: bool = False) -> None:
        if self.format == "name":
            for obj in objs:
                print(display_name(info, name_of(obj)))
            return
        if self.format in ("yaml", "json"):
            for obj in objs:
                if self.format == "yaml" and watching:
                    print("---")
                print(render_document(obj, self.format), end="")
            return
        table = self.table(info)
        rows = [table.row(o) for o in objs]
        if events is not None:
            rows = [[event, *row] for event, row in zip(events, rows, strict=True)]
        if info.kind not in self.printed_header:
            self.printed_header.add(info.kind)
            header = table.header()
            rows.insert(0, ["EVENT", *header] if events is not None else header)
        for line in table.lines(rows):
            print(line)

    def documents(self, objs: list[Obj], single: bool) -> None:
        print(render_document(objs[0] if single else as_list(objs), self.format), end="")


async def _fetch(client: ApiClient, target: Target, namespace: str | None,
                 args: argparse.Namespace) -> tuple[list[Obj], int, bool]:
    """The target's objects, the list's resourceVersion, and whether fetching some name failed."""
    if target.names:
        objs, failed = [], False
        for name in target.names:
            try:
                objs.append(await client.get(target.info, name, namespace))
            except NotFound as exc:
                report(exc)
                failed = True
        return objs, max((resource_version(o) for o in objs), default=0), failed
    listed = await client.list(target.info, namespace if target.info.namespaced else None,
                               label_selector=args.selector, field_selector=args.field_selector)
    return sorted(listed.items, key=sort_key(target.info.kind)), listed.resource_version, False


async def _follow(client: ApiClient, target: Target, namespace: str | None, args: argparse.Namespace,
                  output: Output, resource_version: int | None) -> None:
    """Print a row per change until Ctrl-C or SIGTERM (which end ``get -w`` normally)."""
    field_selector = args.field_selector
    if len(target.names) == 1:
        pinned = f"metadata.name={target.names[0]}"
        field_selector = f"{field_selector},{pinned}" if field_selector else pinned
    elif target.names:
        raise CliError("watch one object by name, or all of them: not several names")
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, task.cancel)
    try:
        async with client.watch(target.info, namespace if target.info.namespaced else None,
                                label_selector=args.selector, field_selector=field_selector,
                                resource_version=resource_version) as watch:
            async for event in watch:
                output.rows(target.info, [event.object], watching=True,
                            events=[event.type] if args.output_watch_events else None)
                sys.stdout.flush()
    except asyncio.CancelledError:
        pass
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


async def _run(session: Session, args: argparse.Namespace) -> int:
    targets = parse_targets(args.resources)
    all_namespaces = bool(args.all_namespaces)
    namespace = None if all_namespaces else session.namespace
    if all_namespaces and any(t.names for t in targets):
        raise CliError("a resource cannot be retrieved by name across all namespaces: drop -A and use -n")
    watching = args.watch or args.watch_only
    if watching and len(targets) > 1:
        raise CliError("watch one resource type at a time")
    client = await session.client()
    output = Output(args, many_kinds=len(targets) > 1, all_namespaces=all_namespaces)
    failed, found, documents, list_rv = False, False, [], 0
    by_name = sum(len(t.names) for t in targets) == 1 and len(targets) == 1
    for target in targets:
        if args.watch_only:
            break
        objs, list_rv, target_failed = await _fetch(client, target, namespace, args)
        failed = failed or target_failed
        found = found or bool(objs)
        if output.format in ("yaml", "json") and not watching:
            documents.extend(objs)
        elif objs:
            if output.format in (None, "wide") and output.printed_header:
                print()  # a blank line between the tables of several kinds
            output.rows(target.info, objs, watching=watching,
                        events=["ADDED"] * len(objs) if watching and args.output_watch_events else None)
        elif not target.names and len(targets) == 1:
            print(_no_resources(target.info, namespace), file=sys.stderr)
    if (len(targets) > 1 and not found and not watching and output.format not in ("yaml", "json")
            and not any(t.names for t in targets)):
        print(_no_resources(targets[0].info, namespace), file=sys.stderr)
    if output.format in ("yaml", "json") and not watching and (documents or not by_name):
        output.documents(documents, single=by_name and len(documents) == 1)
    sys.stdout.flush()
    if watching:
        start = None if args.watch_only else list_rv or None
        await _follow(client, targets[0], namespace, args, output, start)
    return 1 if failed else 0


COMMAND = Command(
    name="get", help="list objects, or show some by name", configure=_configure, run=_run,
    epilog="examples:\n  shoal get pods\n  shoal get deploy web -o yaml\n"
           "  shoal get pods -A -l app=web -o wide\n  shoal get pods,svc\n  shoal get nodes -w",
)
