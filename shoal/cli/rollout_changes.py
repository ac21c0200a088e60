"""The writes of ``shoal rollout``: undo, restart, pause and resume a Deployment (undo and restart a
DaemonSet), as kubectl words them.

Each change is a function of the current Deployment returning the object to write, or the line to
print when there is nothing to write. The write is an update carrying the resourceVersion it read, so
a concurrent change makes it fail (Conflict); it is then read and decided again, a few times.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from actors.controllers.deployment_plan import RevisionNotFound, revision_history, rollback_template
from protocol.errors import Conflict
from protocol.kinds import KindInfo
from protocol.objects import Obj, controller_of, format_time, meta
from protocol.selectors import from_label_selector
from runtime.client import ApiClient
from shoal.cli.errors import CliError
from shoal.cli.resources import display_name

RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
ATTEMPTS = 5


@dataclass(frozen=True)
class Skip:
    """Nothing to write; ``line`` says why (printed as is, exit 0)."""

    line: str


Change = Callable[[Obj], Awaitable[Obj | Skip]]


async def replicasets_of(client: ApiClient, deploy: Obj) -> list[Obj]:
    selector = from_label_selector((deploy.get("spec") or {}).get("selector"))
    namespace = meta(deploy).get("namespace")
    return (await client.list("ReplicaSet", namespace, label_selector=str(selector) or None)).items


async def write_change(client: ApiClient, info: KindInfo, name: str, namespace: str, change: Change,
                       done: str) -> int:
    """Read, decide, write with the read resourceVersion; again on Conflict. Prints ``<kind>/<name> <done>``."""
    for _ in range(ATTEMPTS):
        deploy = await client.get(info, name, namespace)
        updated = await change(deploy)
        if isinstance(updated, Skip):
            print(updated.line)
            return 0
        try:
            await client.update(updated)
        except Conflict:
            continue
        print(f"{display_name(info, name)} {done}")
        return 0
    raise CliError(f"{display_name(info, name)} kept changing while being written ({ATTEMPTS} tries): "
                   "run the command again")


def undo(client: ApiClient, to_revision: int) -> Change:
    async def change(deploy: Obj) -> Obj | Skip:
        name = meta(deploy)["name"]
        if (deploy.get("spec") or {}).get("paused"):
            raise CliError(f"you cannot roll back a paused deployment; resume it first with "
                           f"`shoal rollout resume deploy/{name}` and try again")
        replicasets = await replicasets_of(client, deploy)
        try:
            rolled = rollback_template(deploy, replicasets, to_revision)
        except RevisionNotFound as exc:
            raise CliError(f"{exc.message}: run `shoal rollout history deploy/{name}` to see the revisions") from None
        template = (rolled.get("spec") or {}).get("template")
        if template == (deploy.get("spec") or {}).get("template"):
            revision = to_revision or next((h.revision for h in revision_history(deploy, replicasets)
                                            if h.template == template), 0)
            return Skip(f"deployment.apps/{name} skipped rollback (current template already matches revision "
                        f"{revision})")
        return rolled
    return change


async def restart(deploy: Obj) -> Obj | Skip:
    name = meta(deploy)["name"]
    spec = deploy.setdefault("spec", {})
    if spec.get("paused"):
        raise CliError(f"can't restart paused deployment {name!r}: run `shoal rollout resume deploy/{name}` first")
    annotations = spec.setdefault("template", {}).setdefault("metadata", {}).setdefault("annotations", {})
    annotations[RESTARTED_AT] = format_time(time.time())
    return deploy


def undo_daemonset(client: ApiClient, to_revision: int) -> Change:
    """Put back the template of a ControllerRevision of the DaemonSet or StatefulSet: ``to_revision``, or the
    one before the newest (kubectl's ``DaemonSetRollbacker`` and ``StatefulSetRollbacker``)."""
    async def change(ds: Obj) -> Obj | Skip:
        name = meta(ds)["name"]
        word = str(ds.get("kind") or "DaemonSet").lower()
        listed = (await client.list("ControllerRevision", meta(ds).get("namespace"))).items
        history = sorted((r for r in listed if (controller_of(r) or {}).get("uid") == meta(ds).get("uid")),
                         key=lambda r: int(r.get("revision") or 0))
        if to_revision:
            target = next((r for r in history if r.get("revision") == to_revision), None)
        else:
            target = history[-2] if len(history) >= 2 else None
        if target is None:
            wanted = f"revision {to_revision}" if to_revision else "a previous revision"
            raise CliError(f"unable to find {wanted}: run `shoal rollout history {word}/{name}` to see the revisions")
        template = ((target.get("data") or {}).get("spec") or {}).get("template")
        if template == (ds.get("spec") or {}).get("template"):
            return Skip(f"{word}.apps/{name} skipped rollback (current template already matches revision "
                        f"{target.get('revision')})")
        ds.setdefault("spec", {})["template"] = template
        return ds
    return change


def set_paused(value: bool) -> Change:
    async def change(deploy: Obj) -> Obj | Skip:
        name = meta(deploy)["name"]
        if bool((deploy.get("spec") or {}).get("paused")) == value:
            raise CliError(f'deployments.apps "{name}" is {"already" if value else "not"} paused'
                           + ("" if value else f": `shoal rollout pause deploy/{name}` pauses it"))
        deploy.setdefault("spec", {})["paused"] = value
        return deploy
    return change
