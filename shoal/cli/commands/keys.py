"""``shoal keys``: the API actors' keys, as an operator rotates them without downtime.

- ``shoal keys signing`` lists the ServiceAccount token signing keys (``kid``, which one signs);
- ``shoal keys rotate-signing`` makes a new key sign; tokens signed by the old ones stay valid until
  ``shoal keys remove-signing KID`` (the signing key cannot be removed);
- ``shoal keys rewrite-secrets`` writes every Secret again, so that it is encrypted with the primary key of
  the API actors' encryption configuration (after adding a new key first; then remove the old one).
"""

from __future__ import annotations

import argparse
from typing import Any

from shoal.cli.errors import UsageError
from shoal.cli.registry import Command
from shoal.cli.session import Session

OPS = {"signing": "signing-keys", "rotate-signing": "rotate-signing-key", "remove-signing": "remove-signing-key",
       "rewrite-secrets": "rewrite-secrets"}


def _configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=sorted(OPS), help="what to do (see the examples)")
    parser.add_argument("kid", nargs="?", default=None, help="remove-signing: the key id to remove")


def _print_signing(reply: dict[str, Any]) -> None:
    print(f"{'KID':<46} {'ADDED':<22} SIGNING")
    for key in reply.get("keys") or []:
        print(f"{key.get('kid')!s:<46} {key.get('added')!s:<22} {'yes' if key.get('active') else 'no'}")


async def _run(session: Session, args: argparse.Namespace) -> int:
    if (args.action == "remove-signing") != (args.kid is not None):
        raise UsageError("remove-signing takes the key id to remove (and only it): shoal keys remove-signing KID")
    client = await session.client()
    reply = await client.admin(OPS[args.action], {"kid": args.kid} if args.kid else None)
    if args.action == "rewrite-secrets":
        result = reply.get("result") or {}
        print(f"secrets rewritten: {result.get('rewritten', 0)}, changed meanwhile (already current): "
              f"{result.get('changed', 0)}, gone: {result.get('gone', 0)}")
        return 0
    _print_signing(reply)
    return 0


COMMAND = Command(
    name="keys", help="list and rotate the token signing keys; re-encrypt Secrets", configure=_configure, run=_run,
    epilog="examples:\n  shoal keys signing\n  shoal keys rotate-signing\n"
           "  shoal keys remove-signing -- 3f2a…   # (-- : a key id may start with -)\n"
           "  shoal keys rewrite-secrets   # after adding a new encryption key",
)
