"""The command table: each command is a ``Command`` declared in its own module under ``commands/``.

Adding a command (``logs``, ``scale``, ``rollout``...) means writing a module that defines ``COMMAND``
and adding it to ``commands.ALL``; ``main`` builds the parser and dispatches from that list.
"""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from shoal.cli.session import Session

Runner = Callable[[Session, argparse.Namespace], Awaitable[int]]


@dataclass(frozen=True)
class Command:
    name: str
    help: str
    configure: Callable[[argparse.ArgumentParser], None]
    run: Runner
    aliases: tuple[str, ...] = ()
    description: str | None = None
    epilog: str | None = None
    """Examples shown by ``shoal <command> --help``."""


def global_options(parser: argparse.ArgumentParser, *, top: bool) -> None:
    """Options every command takes, before or after its name (``top``: on the main parser)."""
    default = None if top else argparse.SUPPRESS
    parser.add_argument("-s", "--server", default=default, metavar="URL",
                        help="NATS URL(s) of the cluster, comma-separated (env SHOAL_SERVER; default the "
                             "context's, else nats://127.0.0.1:4222). Credentials: SHOAL_USER/SHOAL_PASSWORD, or "
                             "the context file SHOAL_CONTEXT, else <state-dir>/context.json of `shoal up`")
    parser.add_argument("--request-timeout", type=float, default=10.0 if top else argparse.SUPPRESS,
                        metavar="SECONDS", help="how long to wait for each answer from the API (default 10)")
    parser.add_argument("--as", dest="as_user", default=default, metavar="USER",
                        help="act as this user (impersonation, as kubectl --as): the API authorizes every request "
                             "with RBAC for that user instead of serving it as the trusted admin")
    parser.add_argument("--as-group", dest="as_groups", action="append", default=[] if top else argparse.SUPPRESS,
                        metavar="GROUP", help="a group to act as, with --as; may repeat")


def global_parent() -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    global_options(parent, top=False)
    return parent


def add_namespace_flags(parser: argparse.ArgumentParser, *, all_namespaces: bool = True) -> None:
    parser.add_argument("-n", "--namespace", default=argparse.SUPPRESS,
                        help="namespace to work in (default: $SHOAL_NAMESPACE or 'default')")
    if all_namespaces:
        parser.add_argument("-A", "--all-namespaces", action="store_true", default=False,
                            help="across every namespace (adds a NAMESPACE column)")


def add_file_flags(parser: argparse.ArgumentParser, *, required: bool = False, what: str = "apply") -> None:
    parser.add_argument("-f", "--filename", action="append", default=[], required=required, metavar="FILE",
                        help="file, directory (recursively *.yaml, *.yml, *.json) or '-' for stdin "
                             f"to {what}; may repeat")
    if what in ("apply", "create"):
        parser.add_argument("--validate", default="warn", type=str.lower,
                            choices=["strict", "warn", "ignore", "true", "false"],
                            help="unknown fields: strict (or true) refuses the object, warn (default) drops them "
                                 "with a warning, ignore (or false) drops them silently")


VALIDATION = {"strict": "Strict", "true": "Strict", "warn": "Warn", "ignore": "Ignore", "false": "Ignore"}
"""``--validate`` to the API's ``fieldValidation``, as kubectl maps it."""


BOOL_FLAGS: set[str] = set()
"""Flags made with ``add_bool_flag``: ``main`` rewrites ``--flag=false`` to ``--no-flag`` before parsing."""


def add_bool_flag(parser: argparse.ArgumentParser, name: str, *, default: bool, help: str, short: str = "") -> None:
    """``--name``/``--no-name`` (and ``short``), also accepting kubectl's ``--name=true|false``."""
    dest = name.replace("-", "_")
    parser.add_argument(*([short] if short else []), f"--{name}", dest=dest, action="store_true", default=default,
                        help=help)
    parser.add_argument(f"--no-{name}", dest=dest, action="store_false", help=argparse.SUPPRESS)
    BOOL_FLAGS.add(name)


def normalize_bool_flags(argv: list[str]) -> list[str]:
    out = []
    for arg in argv:
        flag, sep, value = arg.partition("=")
        if sep and flag.startswith("--") and flag[2:] in BOOL_FLAGS:
            try:
                arg = flag if parse_bool(value) else f"--no-{flag[2:]}"
            except argparse.ArgumentTypeError:
                pass  # left as is: argparse reports it
        out.append(arg)
    return out


def parse_bool(text: str) -> bool:
    value = text.strip().lower()
    if value in ("true", "yes", "1", "on"):
        return True
    if value in ("false", "no", "0", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, not {text!r}")
