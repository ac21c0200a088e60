"""``shoal api-info`` (also ``cluster-info``): what the API actor answering reports about itself."""

from __future__ import annotations

import argparse

from shoal.cli.printers import render_document
from shoal.cli.registry import Command
from shoal.cli.session import Session


def _configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-o", "--output", choices=("yaml", "json"), default=None, help="output format")


async def _run(session: Session, args: argparse.Namespace) -> int:
    client = await session.client()
    info = await client.info()
    if args.output:
        print(render_document({"server": session.server, **info}, args.output), end="")
        return 0
    state = "ready" if info.get("ready") else "NOT READY (still loading its watch cache)"
    print(f"Shoal cluster at {session.server}")
    instance = f" ({info['instance']})" if info.get("instance") else ""
    print(f"API actor {info.get('apiId', '?')}{instance}: {state}")
    print(f"  resourceVersion: {info.get('resourceVersion')}")
    for key in ("watches", "requests"):
        if key in info:
            print(f"  {key}: {info[key]}")
    uptime = info.get("uptime")
    if isinstance(uptime, int | float):
        print(f"  uptime: {uptime:.0f}s")
    objects = info.get("objects") or {}
    if objects:
        print("  objects:")
        width = max(len(k) for k in objects)
        for plural, count in sorted(objects.items()):
            print(f"    {plural.ljust(width)}  {count}")
    extra = {k: v for k, v in info.items() if k not in
             ("apiId", "instance", "ready", "resourceVersion", "watches", "requests", "uptime", "objects")}
    for key, value in sorted(extra.items()):
        print(f"  {key}: {value}")
    return 0


COMMAND = Command(
    name="api-info", aliases=("cluster-info",), help="show the state of the API actor that answers",
    configure=_configure, run=_run,
)
