"""Entry point of ``shoal``: builds the parser from the command table, runs the command, maps errors to
one line on stderr and an exit status (0 ok, 1 failed, 2 usage, 130 interrupted)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence

from protocol.errors import ShoalError
from shoal.cli.commands import ALL
from shoal.cli.errors import CliError, report
from shoal.cli.registry import Command, global_options, global_parent, normalize_bool_flags
from shoal.cli.session import Session


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="shoal", description="Administer a Shoal cluster (kubectl-like), over NATS.",
        epilog="Start a local cluster with `shoal up`; then `shoal get nodes`. "
               "`shoal COMMAND --help` shows each command's options and examples.",
    )
    global_options(parser, top=True)
    parser.add_argument("-n", "--namespace", default=None, help=argparse.SUPPRESS)
    subs = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    for command in ALL:
        sub = subs.add_parser(command.name, aliases=list(command.aliases), help=command.help,
                              description=command.description or command.help, epilog=command.epilog,
                              parents=[global_parent()], formatter_class=argparse.RawDescriptionHelpFormatter)
        command.configure(sub)
        sub.set_defaults(_command=command)
    return parser


async def _execute(command: Command, session: Session, args: argparse.Namespace) -> int:
    try:
        return await command.run(session, args)
    finally:
        await session.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(normalize_bool_flags(list(sys.argv[1:] if argv is None else argv)))
    command: Command | None = getattr(args, "_command", None)
    if command is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        session = Session.create(args.server, getattr(args, "namespace", None), timeout=args.request_timeout,
                                 as_user=args.as_user, as_groups=args.as_groups)
    except CliError as exc:
        report(exc)
        return exc.exit_code
    try:
        return asyncio.run(_execute(command, session, args))
    except CliError as exc:
        report(exc)
        if exc.exit_code == 2:
            print(f"run `shoal {command.name} --help` for usage", file=sys.stderr)
        return exc.exit_code
    except ShoalError as exc:
        report(exc)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0  # `shoal get pods | head`: the reader left


if __name__ == "__main__":
    raise SystemExit(main())
