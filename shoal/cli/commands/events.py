"""``shoal events [-n NS | -A] [-w] [--for KIND/NAME] [--types Warning]``: what happened in the cluster.

The listing reads Event objects through the API; ``-w`` follows the ``SHOAL_EVENTS`` stream
(``shoal.events.<ns>.<Kind>.<name>``), filtered by the NATS server on the subject, from now on.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
from typing import Any

from nats.js import api

from protocol import codec, keys, subjects
from protocol.objects import Obj, meta, parse_time
from shoal.cli.commands._target import one_target
from shoal.cli.humanize import since
from shoal.cli.printers import render_document
from shoal.cli.registry import Command, add_namespace_flags
from shoal.cli.session import Session


def _configure(parser: argparse.ArgumentParser) -> None:
    add_namespace_flags(parser)
    parser.add_argument("-w", "--watch", action="store_true", help="after listing, follow new events")
    parser.add_argument("--for", dest="for_object", default=None, metavar="KIND/NAME",
                        help="only events about this object, e.g. pod/web or deploy/web")
    parser.add_argument("--types", default=None, help="comma-separated event types: Normal, Warning")
    parser.add_argument("-o", "--output", default=None, choices=("json", "yaml"))


def _row(event: Obj, all_namespaces: bool) -> str:
    involved = event.get("involvedObject") or {}
    seen = event.get("lastTimestamp") or event.get("eventTime") or meta(event).get("creationTimestamp")
    count = int(event.get("count") or 1)
    last = since(seen) + (f" (x{count})" if count > 1 else "")
    obj = f"{str(involved.get('kind', '')).lower()}/{involved.get('name', '')}"
    cells = [last, str(event.get("type") or ""), str(event.get("reason") or ""), obj, str(event.get("message") or "")]
    if all_namespaces:
        cells.insert(0, str(meta(event).get("namespace") or ""))
    widths = ([12] if all_namespaces else []) + [14, 8, 22, 36]
    return "".join(c.ljust(w) + " " for c, w in zip(cells, widths, strict=False)) + cells[-1]


def _header(all_namespaces: bool) -> str:
    return _row({"lastTimestamp": None, "type": "TYPE", "reason": "REASON", "message": "MESSAGE",
                 "involvedObject": {}, "metadata": {"namespace": "NAMESPACE"}}, all_namespaces).replace(
        "<unknown>", "LAST SEEN", 1).replace(" /", "OBJECT", 1)


def _matches(event: Obj, kind: str | None, name: str | None, types: set[str] | None) -> bool:
    involved = event.get("involvedObject") or {}
    if kind and involved.get("kind") != kind:
        return False
    if name and involved.get("name") != name:
        return False
    return not types or event.get("type") in types


def _subject(namespace: str | None, kind: str | None, name: str | None) -> str:
    ns = keys.encode_token(namespace) if namespace else "*"
    return f"{subjects.EVENTS_PREFIX}.{ns}.{kind or '*'}.{keys.encode_token(name) if name else '*'}"


async def _run(session: Session, args: argparse.Namespace) -> int:
    kind = name = None
    if args.for_object:
        info, name = one_target([args.for_object])
        kind = info.kind
    types = {t.strip() for t in args.types.split(",")} if args.types else None
    namespace = None if args.all_namespaces else session.namespace
    client = await session.client()
    events = [e for e in (await client.list("Event", namespace)).items if _matches(e, kind, name, types)]
    events.sort(key=lambda e: parse_time(e.get("lastTimestamp") or e.get("eventTime")) or 0.0)
    if args.output:
        print(render_document({"apiVersion": "v1", "kind": "List", "items": events}, args.output))
    elif events:
        print(_header(args.all_namespaces))
        for event in events:
            print(_row(event, args.all_namespaces))
    elif not args.watch:
        where = "any namespace" if args.all_namespaces else f"{namespace} namespace"
        print(f"No events found in {where}.", flush=True)
        return 0
    if not args.watch:
        return 0
    if not events and not args.output:
        print(_header(args.all_namespaces), flush=True)
    return await _follow(session, namespace, kind, name, types, args)


async def _follow(session: Session, namespace: str | None, kind: str | None, name: str | None,
                  types: set[str] | None, args: argparse.Namespace) -> int:
    client = await session.client()
    js = client.nc.jetstream()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    queue: asyncio.Queue[Any] = asyncio.Queue()

    async def on_msg(msg: Any) -> None:
        queue.put_nowait(msg)

    sub = await js.subscribe(_subject(namespace, kind, name), stream=subjects.EVENTS_STREAM, cb=on_msg,
                             ordered_consumer=True, deliver_policy=api.DeliverPolicy.NEW)
    try:
        while not stop.is_set():
            getter = asyncio.ensure_future(queue.get())
            stopper = asyncio.ensure_future(stop.wait())
            done, _ = await asyncio.wait({getter, stopper}, return_when=asyncio.FIRST_COMPLETED)
            stopper.cancel()
            if getter not in done:
                getter.cancel()
                break
            try:
                event = codec.decode(getter.result().data)["object"]
            except Exception:
                continue
            if _matches(event, kind, name, types):
                print(render_document(event, args.output) if args.output else _row(event, args.all_namespaces),
                      flush=True)
    finally:
        with contextlib.suppress(Exception):
            await sub.unsubscribe()
    return 0


COMMAND = Command(
    name="events", help="list events, and follow new ones with -w", configure=_configure, run=_run,
    epilog="examples:\n  shoal events\n  shoal events -A --types Warning\n  shoal events -w --for deploy/web",
)
