"""Writing objects loaded from files: the loop shared by ``apply`` and ``create -f``.

Namespaces go first so the objects inside them can be created in the same run; a failed object is
reported and the others still go through; the result says whether any failed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from protocol.errors import ShoalError
from protocol.kinds import KindInfo
from protocol.objects import Obj, meta
from runtime.client import ApiClient
from shoal.cli.errors import CliError, report
from shoal.cli.manifests import Manifest
from shoal.cli.resources import display_name, kind_of_object
from shoal.cli.session import Session

Writer = Callable[[ApiClient, KindInfo, str | None, Obj], Awaitable[tuple[str, str]]]
"""Writes one object; returns (its name, what happened: created, configured, unchanged)."""


def namespaces_first(manifests: list[Manifest]) -> list[Manifest]:
    return sorted(manifests, key=lambda m: m.obj.get("kind") != "Namespace")


async def write_all(session: Session, manifests: list[Manifest], verb: str, write: Writer) -> int:
    client = await session.client()
    failed = 0
    for manifest in namespaces_first(manifests):
        obj = manifest.obj
        info = kind_of_object(str(obj["kind"]))
        label = display_name(info, str(meta(obj).get("name") or meta(obj).get("generateName") or ""))
        try:
            namespace = session.namespace_for(info, obj)
            name, outcome = await write(client, info, namespace, obj)
            print(f"{display_name(info, name)} {outcome}", flush=True)
        except (ShoalError, CliError) as exc:
            failed += 1
            report(exc, f'error when {verb} {label} from "{manifest.source}"' if manifest.source else None)
    return 1 if failed else 0
