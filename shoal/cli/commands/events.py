"""``shoal events [-n NS | -A] [-w] [--for KIND/NAME] [--types Warning]``: what happened in the cluster.

The listing reads Event objects through the API, sorted by when they were last seen. ``-w`` then follows
the ``SHOAL_EVENTS`` JetStream stream (``shoal.events.<ns>.<Kind>.<name>.<event>``, msgpack ``{"v","type","object"}``)
with an ordered consumer delivering only new messages, the subject filtered by the NATS server from -n
and --for. The consumer starts before the listing, so nothing falls between the two; an event already
listed is not printed twice. Ctrl-C ends the watch normally (exit 0).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import time
from typing import Any

import nats.js.errors
from nats.js import api

from protocol import codec, keys, subjects
from protocol.errors import ShoalError
from protocol.humanize import since
from protocol.objects import Obj, meta, parse_time
from shoal.cli.commands._target import one_target
from shoal.cli.errors import CliError, UsageError
from shoal.cli.printers import GAP, render_document
from shoal.cli.registry import Command, add_bool_flag, add_namespace_flags
from shoal.cli.session import Session

TYPES = ("Normal", "Warning")
HEADER = ["LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]


def _configure(parser: argparse.ArgumentParser) -> None:
    add_namespace_flags(parser)
    add_bool_flag(parser, "watch", short="-w", default=False, help="after listing, follow new events until Ctrl-C")
    parser.add_argument("--for", dest="for_object", default=None, metavar="KIND/NAME",
                        help="only events about this object, e.g. pod/web or deploy/web")
    parser.add_argument("--types", default=None, help="comma-separated event types to show: Normal, Warning")
    parser.add_argument("-o", "--output", default=None, choices=("json", "yaml"))


def _types(text: str | None) -> set[str] | None:
    if not text:
        return None
    chosen = set()
    for word in filter(None, (t.strip() for t in text.split(","))):
        match = next((t for t in TYPES if t.lower() == word.lower()), None)
        if match is None:
            raise UsageError(f"unknown event type {word!r} in --types: use Normal, Warning or both")
        chosen.add(match)
    return chosen


def _last_seen(event: Obj) -> str | None:
    return event.get("lastTimestamp") or event.get("eventTime") or meta(event).get("creationTimestamp")


def _cells(event: Obj, all_namespaces: bool, now: float) -> list[str]:
    involved = event.get("involvedObject") or {}
    last = since(_last_seen(event), now)
    count = int(event.get("count") or 1)
    if count > 1:
        first = event.get("firstTimestamp")
        last += f" (x{count} over {since(first, now)})" if first else f" (x{count})"
    obj = f"{str(involved.get('kind', '')).lower()}/{involved.get('name', '')}"
    cells = [last, str(event.get("type") or ""), str(event.get("reason") or ""), obj,
             " ".join(str(event.get("message") or "").split())]
    return ([str(meta(event).get("namespace") or "")] if all_namespaces else []) + cells


class Rows:
    """Aligned rows; widths grow to the widest cell seen, and watch rows keep the listing's widths."""

    def __init__(self, all_namespaces: bool) -> None:
        self.all_namespaces = all_namespaces
        self.widths: list[int] = []

    def header(self) -> list[str]:
        return (["NAMESPACE"] if self.all_namespaces else []) + HEADER

    def print(self, rows: list[list[str]]) -> None:
        for row in rows:
            for i, cell in enumerate(row[:-1]):
                if i >= len(self.widths):
                    self.widths.append(len(cell))
                self.widths[i] = max(self.widths[i], len(cell))
        for row in rows:
            print(GAP.join([c.ljust(self.widths[i]) for i, c in enumerate(row[:-1])] + [row[-1]]).rstrip(),
                  flush=True)


def _matches(event: Obj, kind: str | None, name: str | None, types: set[str] | None) -> bool:
    involved = event.get("involvedObject") or {}
    if kind and involved.get("kind") != kind:
        return False
    if name and involved.get("name") != name:
        return False
    return not types or event.get("type") in types


def _identity(event: Obj) -> tuple[Any, ...]:
    """One version of an Event: a repeat bumps ``count`` and ``lastTimestamp``, so it is printed again."""
    return meta(event).get("namespace"), meta(event).get("name"), event.get("count"), event.get("lastTimestamp")


def event_subject(namespace: str | None, kind: str | None, name: str | None) -> str:
    """The SHOAL_EVENTS subject filter: ``shoal.events.<ns>.<Kind>.<name>.*`` (the last token is the Event's
    own name), ``*`` for what is not given."""
    ns = keys.encode_token(namespace) if namespace else "*"
    return f"{subjects.EVENTS_PREFIX}.{ns}.{kind or '*'}.{keys.encode_token(name) if name else '*'}.*"


def _sort_key(event: Obj) -> tuple[float, float, int]:
    """By last seen (whole seconds), then the precise eventTime, then the order of writes."""
    version = str(meta(event).get("resourceVersion") or "0")
    return (parse_time(_last_seen(event)) or 0.0, parse_time(event.get("eventTime")) or 0.0,
            int(version) if version.isdigit() else 0)


async def _run(session: Session, args: argparse.Namespace) -> int:
    kind = name = None
    if args.for_object:
        info, name = one_target([args.for_object], default_kind="pod")
        kind = info.kind
    types = _types(args.types)
    namespace = None if args.all_namespaces else session.namespace
    client = await session.client()
    queue: asyncio.Queue[Any] = asyncio.Queue()
    sub = await _subscribe(client.nc, event_subject(namespace, kind, name), queue) if args.watch else None
    try:
        events = sorted((e for e in (await client.list("Event", namespace)).items if _matches(e, kind, name, types)),
                        key=_sort_key)
        rows = Rows(args.all_namespaces)
        if args.output:
            if not args.watch:
                print(render_document({"apiVersion": "v1", "kind": "List", "items": events}, args.output), end="")
            else:
                for event in events:
                    _document(event, args.output)
        elif events or args.watch:
            now = time.time()
            rows.print([rows.header(), *(_cells(e, args.all_namespaces, now) for e in events)])
        else:
            where = "any namespace" if args.all_namespaces else f"{namespace} namespace"
            about = f" about {args.for_object}" if args.for_object else ""
            print(f"No events found{about} in {where}.", flush=True)
        if sub is None:
            return 0
        return await _follow(queue, {_identity(e) for e in events}, kind, name, types, rows, args)
    finally:
        if sub is not None:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()


def _document(event: Obj, fmt: str) -> None:
    """One event of a watch in YAML (``---`` separated, as ``get -w -o yaml``) or JSON."""
    print(("---\n" if fmt == "yaml" else "") + render_document(event, fmt), end="", flush=True)


async def _subscribe(nc: Any, subject: str, queue: asyncio.Queue[Any]) -> Any:
    async def on_msg(msg: Any) -> None:
        queue.put_nowait(msg)

    try:
        return await nc.jetstream().subscribe(subject, stream=subjects.EVENTS_STREAM, cb=on_msg,
                                              ordered_consumer=True, deliver_policy=api.DeliverPolicy.NEW)
    except nats.js.errors.NotFoundError:
        raise CliError(f"the cluster has no {subjects.EVENTS_STREAM} stream to follow: an API actor creates it "
                       "when it starts; is one running?") from None
    except nats.js.errors.Error as exc:
        raise CliError(f"cannot follow the {subjects.EVENTS_STREAM} stream: {exc}") from None


async def _follow(queue: asyncio.Queue[Any], listed: set[tuple[Any, ...]], kind: str | None, name: str | None,
                  types: set[str] | None, rows: Rows, args: argparse.Namespace) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    stopper = asyncio.ensure_future(stop.wait())
    try:
        while True:
            getter = asyncio.ensure_future(queue.get())
            await asyncio.wait({getter, stopper}, return_when=asyncio.FIRST_COMPLETED)
            if not getter.done():
                getter.cancel()
                return 0
            try:
                event = codec.decode(getter.result().data)["object"]
            except (ShoalError, KeyError, TypeError):
                continue  # not an event envelope this version understands
            if not isinstance(event, dict) or not _matches(event, kind, name, types) or _identity(event) in listed:
                continue
            if args.output:
                _document(event, args.output)
            else:
                rows.print([_cells(event, args.all_namespaces, time.time())])
    finally:
        stopper.cancel()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


COMMAND = Command(
    name="events", help="list events, and follow new ones with -w", configure=_configure, run=_run,
    epilog="examples:\n  shoal events\n  shoal events -A --types Warning\n  shoal events -w --for deploy/web\n"
           "  shoal events --for pod/web-7d9c-abcde -o yaml",
)
