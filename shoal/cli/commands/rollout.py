"""``shoal rollout status|history|undo|restart|pause|resume deploy/NAME`` (all but pause and resume also
``ds/NAME``), as kubectl's.

The wait of ``status`` is in ``shoal/cli/rollout_status.py``, the writes in ``shoal/cli/rollout_changes.py``.
"""

from __future__ import annotations

import argparse

from actors.controllers.deployment_plan import revision_history
from actors.controllers.deployment_revisions import CHANGE_CAUSE
from protocol.objects import Obj, controller_of, meta
from runtime.client import ApiClient
from shoal.cli.commands._target import one_target
from shoal.cli.describe import DescribeWriter, describe_containers
from shoal.cli.errors import CliError
from shoal.cli.registry import Command, add_bool_flag, add_namespace_flags, global_parent
from shoal.cli.rollout_changes import (
    Change,
    replicasets_of,
    restart,
    set_paused,
    undo,
    undo_daemonset,
    write_change,
)
from shoal.cli.rollout_status import STATUS_VIEWERS, parse_duration, wait_for_rollout
from shoal.cli.session import Session

ACTIONS = (("status", "show the rollout's progress and wait for it to finish"),
           ("history", "list the revisions (one per pod template rolled out)"),
           ("undo", "roll back to the previous revision, or to --to-revision"),
           ("restart", "replace every pod, one batch at a time (a rolling restart)"),
           ("pause", "stop rolling out template changes until resumed"),
           ("resume", "roll out template changes again"))


def _configure(parser: argparse.ArgumentParser) -> None:
    subs = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    for action, help_text in ACTIONS:
        sub = subs.add_parser(action, help=help_text, description=help_text, parents=[global_parent()])
        sub.add_argument("target", nargs="+", metavar="deploy/NAME", help="deploy/NAME or deploy NAME")
        add_namespace_flags(sub, all_namespaces=False)
        if action == "status":
            sub.add_argument("--timeout", type=parse_duration, default=0.0, metavar="DURATION",
                             help="give up after this long, e.g. 90s, 5m (default 0: wait until done)")
            add_bool_flag(sub, "watch", short="-w", default=True,
                          help="wait for the rollout to finish (default; --watch=false prints the status once)")
        if action == "history":
            sub.add_argument("--revision", type=int, default=0, help="show the pod template of this revision")
        if action == "undo":
            sub.add_argument("--to-revision", type=int, default=0, help="revision to go back to (default: previous)")


async def _history(client: ApiClient, deploy: Obj, revision: int) -> int:
    name = meta(deploy)["name"]
    history = revision_history(deploy, await replicasets_of(client, deploy))
    if revision:
        entry = next((h for h in history if h.revision == revision), None)
        if entry is None:
            known = ", ".join(str(h.revision) for h in history) or "none"
            raise CliError(f"unable to find the specified revision {revision} (revisions: {known}): run "
                           f"`shoal rollout history deploy/{name}` for the list")
        print(f"deployment.apps/{name} with revision #{entry.revision}")
        print(_template_text(entry.template, entry.change_cause), end="")
        return 0
    if not history:
        print(f"deployment.apps/{name}\nNo rollout history found.")
        return 0
    print(f"deployment.apps/{name}")
    print(f"{'REVISION':<10}CHANGE-CAUSE")
    for entry in history:
        print(f"{entry.revision:<10}{entry.change_cause or '<none>'}")
    return 0


async def _daemonset_history(client: ApiClient, ds: Obj, revision: int) -> int:
    """kubectl's history of a DaemonSet or StatefulSet: its ControllerRevisions, by number."""
    name = meta(ds)["name"]
    word = str(ds.get("kind") or "DaemonSet").lower()
    listed = (await client.list("ControllerRevision", meta(ds).get("namespace"))).items
    history = sorted((r for r in listed if (controller_of(r) or {}).get("uid") == meta(ds).get("uid")),
                     key=lambda r: int(r.get("revision") or 0))
    if revision:
        entry = next((r for r in history if r.get("revision") == revision), None)
        if entry is None:
            known = ", ".join(str(r.get("revision")) for r in history) or "none"
            raise CliError(f"unable to find the specified revision {revision} (revisions: {known}): run "
                           f"`shoal rollout history {word}/{name}` for the list")
        template = ((entry.get("data") or {}).get("spec") or {}).get("template") or {}
        print(f"{word}.apps/{name} with revision #{revision}")
        print(_template_text(template, (meta(entry).get("annotations") or {}).get(CHANGE_CAUSE)), end="")
        return 0
    if not history:
        print(f"{word}.apps/{name}\nNo rollout history found.")
        return 0
    print(f"{word}.apps/{name}")
    print(f"{'REVISION':<10}CHANGE-CAUSE")
    for entry in history:
        cause = (meta(entry).get("annotations") or {}).get(CHANGE_CAUSE)
        print(f"{entry.get('revision'):<10}{cause or '<none>'}")
    return 0


def _template_text(template: Obj, change_cause: str | None) -> str:
    w = DescribeWriter()
    w.text("Pod Template:")
    template_meta = template.get("metadata") or {}
    w.mapping("Labels", template_meta.get("labels"), 1)
    annotations = dict(template_meta.get("annotations") or {})
    if change_cause:
        annotations["kubernetes.io/change-cause"] = change_cause
    w.mapping("Annotations", annotations, 1, sep=": ")
    describe_containers(w, "Containers", list((template.get("spec") or {}).get("containers") or []), [], 0.0,
                        level=1)
    return w.render()


async def _run(session: Session, args: argparse.Namespace) -> int:
    allowed = tuple(STATUS_VIEWERS) if args.action in ("status", "history", "undo", "restart") else ("Deployment",)
    info, name = one_target(args.target, allowed=allowed)
    client = await session.client()
    namespace = session.namespace
    if args.action == "status":
        return await wait_for_rollout(client, name, namespace, timeout=args.timeout, watch=args.watch,
                                      kind=info.kind)
    if args.action == "history":
        if info.kind in ("DaemonSet", "StatefulSet"):
            return await _daemonset_history(client, await client.get(info, name, namespace), args.revision)
        return await _history(client, await client.get(info, name, namespace), args.revision)
    to_revision = getattr(args, "to_revision", 0)
    rollback = (undo_daemonset(client, to_revision) if info.kind in ("DaemonSet", "StatefulSet")
                else undo(client, to_revision))
    changes: dict[str, tuple[Change, str]] = {
        "undo": (rollback, "rolled back"), "restart": (restart, "restarted"),
        "pause": (set_paused(True), "paused"), "resume": (set_paused(False), "resumed")}
    change, done = changes[args.action]
    return await write_change(client, info, name, namespace, change, done)


COMMAND = Command(
    name="rollout", help="manage the rollout of a deployment: status, history, undo, restart, pause, resume",
    configure=_configure, run=_run,
    epilog="examples:\n  shoal rollout status deploy/web --timeout 5m\n  shoal rollout history deploy/web\n"
           "  shoal rollout history deploy/web --revision 2\n  shoal rollout undo deploy/web --to-revision 1\n"
           "  shoal rollout restart deploy/web\n  shoal rollout pause deploy/web",
)
