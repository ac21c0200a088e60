"""``shoal apply -f``: create each object, or bring the existing one to the manifest (three-way merge).

Prints ``pod/web created``, ``deployment.apps/web configured`` or ``pod/web unchanged`` (the server
kept the resourceVersion). A Conflict (someone wrote in between) re-reads and retries.
"""

from __future__ import annotations

import argparse

from protocol.errors import AlreadyExists, Conflict, NotFound
from protocol.kinds import KindInfo
from protocol.objects import Obj, meta, resource_version
from runtime.client import ApiClient
from shoal.cli.apply_merge import applied, with_last_applied
from shoal.cli.commands._objects import write_all
from shoal.cli.errors import CliError
from shoal.cli.manifests import load
from shoal.cli.registry import VALIDATION, Command, add_file_flags, add_namespace_flags
from shoal.cli.session import Session

ATTEMPTS = 5


async def apply_object(client: ApiClient, info: KindInfo, namespace: str | None,
                       manifest: Obj) -> tuple[str, str]:
    name = meta(manifest).get("name")
    if not name:
        raise CliError("apply needs metadata.name (generateName works only with `shoal create -f`)")
    for _ in range(ATTEMPTS):
        try:
            current = await client.get(info, str(name), namespace)
        except NotFound:
            try:
                created = await client.create(with_last_applied(manifest), namespace)
                return str(meta(created).get("name")), "created"
            except AlreadyExists:
                continue  # created meanwhile: update it
        desired = applied(current, manifest)
        if desired == current:
            return str(name), "unchanged"
        try:
            updated = await client.update(desired)
        except Conflict:
            continue
        same = resource_version(updated) == resource_version(current)
        return str(name), "unchanged" if same else "configured"
    raise Conflict(f"{info.plural} {name!r} kept changing while it was applied ({ATTEMPTS} attempts): retry")


def _configure(parser: argparse.ArgumentParser) -> None:
    add_file_flags(parser, required=True)
    add_namespace_flags(parser, all_namespaces=False)


async def _run(session: Session, args: argparse.Namespace) -> int:
    manifests = load(args.filename)
    (await session.client()).field_validation = VALIDATION[args.validate]
    return await write_all(session, manifests, "applying", apply_object)


COMMAND = Command(
    name="apply", help="create or update objects from files (YAML or JSON)", configure=_configure, run=_run,
    epilog="examples:\n  shoal apply -f app.yaml\n  shoal apply -f manifests/ -n staging\n"
           "  cat app.yaml | shoal apply -f -",
)
