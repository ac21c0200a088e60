"""``shoal api-resources``: the kinds Shoal serves, with the names ``get`` and friends accept."""

from __future__ import annotations

import argparse

from protocol.kinds import KINDS
from shoal.cli.printers import Table
from shoal.cli.registry import Command
from shoal.cli.session import Session


def _configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--namespaced", type=str.lower, choices=("true", "false"), default=None,
                        help="only namespaced (true) or cluster-scoped (false) kinds")
    parser.add_argument("--categories", default=None, metavar="NAMES",
                        help="only kinds in these categories, comma-separated (e.g. all)")
    parser.add_argument("-o", "--output", choices=("wide",), default=None, help="wide: add CATEGORIES")


async def _run(session: Session, args: argparse.Namespace) -> int:
    wanted = {c.strip() for c in args.categories.split(",") if c.strip()} if args.categories else None
    wide = args.output == "wide"
    rows = [["NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND"] + (["CATEGORIES"] if wide else [])]
    for info in sorted(KINDS, key=lambda k: k.plural):
        if args.namespaced is not None and str(info.namespaced).lower() != args.namespaced:
            continue
        if wanted is not None and not wanted <= set(info.categories):
            continue
        rows.append([info.plural, ",".join(info.short_names), info.api_version, str(info.namespaced).lower(),
                     info.kind] + ([",".join(info.categories)] if wide else []))
    for line in Table(KINDS[0]).lines(rows):
        print(line)
    return 0


COMMAND = Command(name="api-resources", help="list the resource types and their short names",
                  configure=_configure, run=_run)
