"""``shoal create``: create objects from files (never update), or generate one (``create namespace NAME``).

Generators are sub-commands in ``GENERATORS``; later ones (configmap, deployment...) add an entry.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

from protocol.kinds import KindInfo
from protocol.objects import Obj, meta
from runtime.client import ApiClient
from shoal.cli.commands._objects import write_all
from shoal.cli.errors import UsageError
from shoal.cli.manifests import Manifest, load
from shoal.cli.registry import VALIDATION, Command, add_file_flags, add_namespace_flags, global_parent
from shoal.cli.session import Session


async def create_object(client: ApiClient, info: KindInfo, namespace: str | None,
                        obj: Obj) -> tuple[str, str]:
    created = await client.create(obj, namespace)
    return str(meta(created).get("name")), "created"


def _namespace(args: argparse.Namespace) -> Obj:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": args.name}}


GENERATORS: dict[str, tuple[tuple[str, ...], str, Callable[[argparse.Namespace], Obj]]] = {
    "namespace": (("ns",), "create a namespace", _namespace),
}


def _configure(parser: argparse.ArgumentParser) -> None:
    add_file_flags(parser, what="create")
    add_namespace_flags(parser, all_namespaces=False)
    subs = parser.add_subparsers(dest="generator", metavar="KIND")
    for name, (aliases, help_text, _) in GENERATORS.items():
        sub = subs.add_parser(name, aliases=list(aliases), help=help_text, parents=[global_parent()])
        sub.add_argument("name", metavar="NAME")
        add_namespace_flags(sub, all_namespaces=False)


async def _run(session: Session, args: argparse.Namespace) -> int:
    generator = getattr(args, "generator", None)
    if generator is None:
        if not args.filename:
            raise UsageError("say what to create: `shoal create -f FILE` or `shoal create namespace NAME`")
        (await session.client()).field_validation = VALIDATION[getattr(args, "validate", "warn")]
        return await write_all(session, load(args.filename), "creating", create_object)
    if args.filename:
        raise UsageError("give either -f or a kind to create, not both")
    canonical = next(k for k, (aliases, _, _) in GENERATORS.items() if generator == k or generator in aliases)
    obj = GENERATORS[canonical][2](args)
    return await write_all(session, [Manifest(obj, "")], "creating", create_object)


COMMAND = Command(
    name="create", help="create objects from files, or a namespace", configure=_configure, run=_run,
    epilog="examples:\n  shoal create namespace staging\n  shoal create -f pod.yaml",
)
