"""``shoal rollout status|history|undo|restart|pause|resume deploy/NAME``, as kubectl's."""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

from actors.controllers.deployment_plan import revision_history, rollback_template
from protocol.errors import Conflict
from protocol.objects import Obj, condition, format_time, meta
from protocol.selectors import from_label_selector
from runtime.client import ApiClient
from shoal.cli.commands._target import one_target
from shoal.cli.errors import CliError
from shoal.cli.registry import Command, add_namespace_flags, global_parent
from shoal.cli.resources import display_name
from shoal.cli.session import Session


def _configure(parser: argparse.ArgumentParser) -> None:
    subs = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    for action, help_text in (("status", "wait for a rollout to finish"), ("history", "list revisions"),
                              ("undo", "roll back to an earlier revision"), ("restart", "restart every pod"),
                              ("pause", "stop rolling out changes"), ("resume", "roll out changes again")):
        sub = subs.add_parser(action, help=help_text, parents=[global_parent()])
        sub.add_argument("target", nargs="+", metavar="deploy/NAME")
        add_namespace_flags(sub, all_namespaces=False)
        if action == "status":
            sub.add_argument("--timeout", type=float, default=600.0, help="seconds to wait (default 600)")
            sub.add_argument("-w", "--watch", default="true", choices=("true", "false"),
                             help="wait for the rollout to finish (default true)")
        if action == "history":
            sub.add_argument("--revision", type=int, default=0, help="show one revision's pod template")
        if action == "undo":
            sub.add_argument("--to-revision", type=int, default=0, help="revision to go back to (default: previous)")


def status_message(deploy: Obj) -> tuple[str, bool]:
    """kubectl's rollout status wording; True when the rollout is complete."""
    name = meta(deploy).get("name")
    spec, status = deploy.get("spec") or {}, deploy.get("status") or {}
    progressing = condition(deploy, "Progressing")
    if progressing is not None and progressing.get("reason") == "ProgressDeadlineExceeded":
        raise CliError(f'deployment "{name}" exceeded its progress deadline')
    if int(status.get("observedGeneration") or 0) < int(meta(deploy).get("generation") or 0):
        return "Waiting for deployment spec update to be observed...", False
    replicas = int(spec.get("replicas", 1))
    updated = int(status.get("updatedReplicas") or 0)
    total = int(status.get("replicas") or 0)
    available = int(status.get("availableReplicas") or 0)
    if updated < replicas:
        return (f'Waiting for deployment "{name}" rollout to finish: {updated} out of {replicas} new replicas '
                "have been updated..."), False
    if total > updated:
        return (f'Waiting for deployment "{name}" rollout to finish: {total - updated} old replicas are pending '
                "termination..."), False
    if available < updated:
        return (f'Waiting for deployment "{name}" rollout to finish: {available} of {updated} updated replicas '
                "are available..."), False
    return f'deployment "{name}" successfully rolled out', True


async def _replicasets(client: ApiClient, deploy: Obj, namespace: str) -> list[Obj]:
    selector = from_label_selector((deploy.get("spec") or {}).get("selector"))
    return (await client.list("ReplicaSet", namespace, label_selector=str(selector) or None)).items


async def _status(client: ApiClient, name: str, namespace: str, args: argparse.Namespace) -> int:
    deadline = time.monotonic() + args.timeout
    last = ""
    while True:
        message, done = status_message(await client.get("Deployment", name, namespace))
        if message != last:
            print(message, flush=True)
            last = message
        if done:
            return 0
        if args.watch == "false":
            return 1
        if time.monotonic() > deadline:
            raise CliError(f"timed out waiting for the rollout of deployment {name!r} after {args.timeout:g}s: see "
                           f"`shoal describe deploy {name}` and `shoal events --for deploy/{name}`")
        await asyncio.sleep(0.5)


async def _history(client: ApiClient, deploy: Obj, namespace: str, args: argparse.Namespace) -> int:
    history = revision_history(deploy, await _replicasets(client, deploy, namespace))
    if args.revision:
        entry = next((h for h in history if h.revision == args.revision), None)
        if entry is None:
            raise CliError(f"unable to find the specified revision {args.revision}: run "
                           f"`shoal rollout history deploy/{meta(deploy)['name']}` for the list")
        print(f"deployment.apps/{meta(deploy)['name']} with revision #{entry.revision}")
        _print_template(entry.template)
        return 0
    print(f"deployment.apps/{meta(deploy)['name']}")
    print(f"{'REVISION':<10}CHANGE-CAUSE")
    for entry in history:
        print(f"{entry.revision:<10}{entry.change_cause or '<none>'}")
    return 0


def _print_template(template: Obj) -> None:
    labels = ((template.get("metadata") or {}).get("labels") or {})
    print("Pod Template:")
    print("  Labels:\t" + ",".join(f"{k}={v}" for k, v in sorted(labels.items())))
    for c in (template.get("spec") or {}).get("containers") or []:
        print(f"  Container {c.get('name')}:\n    Image:\t{c.get('image')}")
        if c.get("command") or c.get("args"):
            print(f"    Command:\t{' '.join([*c.get('command', []), *c.get('args', [])])}")


async def _write(client: ApiClient, info: Any, name: str, namespace: str, change: Any, done: str) -> int:
    for _ in range(5):
        deploy = await client.get(info, name, namespace)
        updated = change(deploy)
        if updated is None:
            print(f"{display_name(info, name)} {done} (no change)")
            return 0
        try:
            await client.update(updated)
        except Conflict:
            continue
        print(f"{display_name(info, name)} {done}")
        return 0
    raise CliError(f"{display_name(info, name)} keeps changing: run the command again")


async def _run(session: Session, args: argparse.Namespace) -> int:
    info, name = one_target(args.target, allowed=("Deployment",))
    client = await session.client()
    namespace = session.namespace
    if args.action == "status":
        return await _status(client, name, namespace, args)
    if args.action == "history":
        return await _history(client, await client.get(info, name, namespace), namespace, args)
    if args.action == "undo":
        deploy = await client.get(info, name, namespace)
        rolled = rollback_template(deploy, await _replicasets(client, deploy, namespace), args.to_revision)
        try:
            await client.update(rolled)
        except Conflict:
            raise CliError(f"deployment {name!r} changed meanwhile: run the command again") from None
        print(f"{display_name(info, name)} rolled back")
        return 0

    def restart(deploy: Obj) -> Obj:
        template = deploy.setdefault("spec", {}).setdefault("template", {})
        annotations = template.setdefault("metadata", {}).setdefault("annotations", {})
        annotations["kubectl.kubernetes.io/restartedAt"] = format_time(time.time())
        return deploy

    def pause(value: bool) -> Any:
        def change(deploy: Obj) -> Obj | None:
            if bool((deploy.get("spec") or {}).get("paused")) == value:
                return None
            deploy.setdefault("spec", {})["paused"] = value
            return deploy
        return change

    changes = {"restart": (restart, "restarted"), "pause": (pause(True), "paused"),
               "resume": (pause(False), "resumed")}
    change, done = changes[args.action]
    return await _write(client, info, name, namespace, change, done)


COMMAND = Command(
    name="rollout", help="manage the rollout of a deployment: status, history, undo, restart, pause, resume",
    configure=_configure, run=_run,
    epilog="examples:\n  shoal rollout status deploy/web\n  shoal rollout history deploy/web\n"
           "  shoal rollout undo deploy/web --to-revision 1",
)
