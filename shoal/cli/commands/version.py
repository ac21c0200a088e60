"""``shoal version``: the version of this tool (and, if the cluster answers, that it does)."""

from __future__ import annotations

import argparse
from importlib.metadata import PackageNotFoundError, version

from protocol import PROTOCOL_VERSION
from shoal.cli.registry import Command
from shoal.cli.session import Session


def client_version() -> str:
    try:
        return version("shoal")
    except PackageNotFoundError:
        return "unknown"


def _configure(parser: argparse.ArgumentParser) -> None:
    pass


async def _run(session: Session, args: argparse.Namespace) -> int:
    print(f"Client Version: shoal {client_version()} (protocol v{PROTOCOL_VERSION})")
    return 0


COMMAND = Command(name="version", help="print the version of this tool", configure=_configure, run=_run)
