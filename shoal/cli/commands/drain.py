"""``shoal drain NODE``: cordon a node, then evict its pods, respecting PodDisruptionBudgets, as kubectl does.

1. The node is cordoned (``node/x cordoned``), so nothing new lands on it.
2. Its pods (``spec.nodeName``, narrowed by ``--pod-selector``) go through kubectl's filters
   (``shoal.cli.drain_plan``): DaemonSet pods are refused unless ``--ignore-daemonsets`` (then left in
   place), pods with ``emptyDir`` unless ``--delete-emptydir-data``, pods without a controller unless
   ``--force``. Any refusal stops the drain before anything is evicted.
3. Every remaining pod is evicted at once through the Eviction subresource (``shoal.api.evict``), printing
   ``evicting pod ns/x``; an eviction a budget does not allow yet (429 TooManyRequests, "Cannot evict pod
   as it would violate the pod's disruption budget") is said on stderr and retried every 5 s, as kubectl
   does; ``--disable-eviction`` deletes instead, bypassing budgets. Each pod is then waited for until it
   is gone (or replaced by a pod of another uid), printing ``pod/x evicted``.
4. ``node/x drained``. ``--timeout`` (0: no limit) bounds steps 3 and 4 together; on timeout, or any
   other error, the pods still there are listed and the command fails. ``--grace-period`` overrides the
   pods' own (``-1``: theirs). ``--dry-run`` (``client``) changes nothing and prints what would be done.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from dataclasses import dataclass
from typing import Literal

from protocol.errors import NotFound, ShoalError, TooManyRequests
from protocol.objects import Obj, controller_of, name_of, namespace_of, uid_of
from runtime.client import ApiClient
from shoal.cli.commands.cordon import add_node_flags, chosen_nodes, set_schedulable
from shoal.cli.drain_plan import DrainOptions, DrainPlan, classify
from shoal.cli.errors import CliError, UsageError
from shoal.cli.registry import Command, add_bool_flag
from shoal.cli.rollout_status import parse_duration
from shoal.cli.session import Session

RETRY_AFTER = 5.0
"""Seconds between evictions a disruption budget refused (kubectl's)."""
POLL = 1.0
"""Seconds between checks that an evicted pod is gone (kubectl's)."""


class DrainError(Exception):
    """Why one node could not be drained (kubectl's text, printed after ``due to error:``)."""


@dataclass
class _Progress:
    pod: Obj
    phase: Literal["evicting", "waiting", "done"] = "evicting"


def _configure(parser: argparse.ArgumentParser) -> None:
    add_node_flags(parser)
    add_bool_flag(parser, "ignore-daemonsets", default=False,
                  help="leave DaemonSet-managed pods in place (without it, their presence refuses the drain)")
    add_bool_flag(parser, "delete-emptydir-data", default=False,
                  help="evict pods with emptyDir volumes too (their data is lost)")
    add_bool_flag(parser, "force", default=False,
                  help="evict pods that no controller manages too (they are not re-created)")
    add_bool_flag(parser, "disable-eviction", default=False,
                  help="delete the pods instead of evicting them: PodDisruptionBudgets are bypassed")
    parser.add_argument("--grace-period", type=int, default=-1, metavar="SECONDS",
                        help="seconds each pod gets to terminate (-1, default: the pod's own)")
    parser.add_argument("--timeout", type=parse_duration, default=0.0, metavar="DURATION",
                        help="give up after this long, e.g. 90s, 5m (0, default: wait as long as it takes)")
    parser.add_argument("--pod-selector", default=None, metavar="SELECTOR",
                        help="only the pods this label selector matches, e.g. app=web")


def _seconds(value: float) -> str:
    """A timeout as given (``90s``, ``2.5s``), not rounded as ``protocol.humanize.duration`` would."""
    return f"{value:g}s"


def _aggregate(messages: list[str]) -> str:
    """One error as kubectl's ``utilerrors.NewAggregate`` prints it: alone, or ``[a, b]``."""
    return messages[0] if len(messages) == 1 else f"[{', '.join(messages)}]"


async def _plan(client: ApiClient, node: str, args: argparse.Namespace) -> DrainPlan:
    pods = (await client.list("Pod", None, field_selector=f"spec.nodeName={node}",
                              label_selector=args.pod_selector)).items
    daemonsets: set[tuple[str, str]] = set()
    for key in dict.fromkeys((namespace_of(p) or "", str((controller_of(p) or {}).get("name"))) for p in pods
                             if (controller_of(p) or {}).get("kind") == "DaemonSet"):
        try:
            await client.get("DaemonSet", key[1], key[0])
        except NotFound:
            continue
        daemonsets.add(key)
    options = DrainOptions(args.ignore_daemonsets, args.delete_emptydir_data, args.force)
    return classify(pods, options, daemonsets)


async def _gone(client: ApiClient, pod: Obj) -> None:
    """Until ``pod`` is deleted (NotFound, or a pod of the same name with another uid)."""
    while True:
        try:
            current = await client.get("Pod", name_of(pod), namespace_of(pod))
        except NotFound:
            return
        if uid_of(current) != uid_of(pod):
            return
        await asyncio.sleep(POLL)


async def _evict(client: ApiClient, progress: _Progress, args: argparse.Namespace) -> None:
    pod = progress.pod
    name, namespace = name_of(pod), str(namespace_of(pod))
    grace = None if args.grace_period < 0 else args.grace_period
    verb = "deleting" if args.disable_eviction else "evicting"
    print(f"{verb} pod {namespace}/{name}", flush=True)
    while True:
        try:
            if args.disable_eviction:
                await client.delete("Pod", name, namespace, grace_period=grace)
            else:
                await client.evict(name, namespace, grace_period=grace)
            break
        except NotFound:
            progress.phase = "done"
            return
        except TooManyRequests as exc:
            print(f'error when {verb} pods/"{name}" -n "{namespace}" (will retry after {RETRY_AFTER:g}s): '
                  f"{exc.message}", file=sys.stderr, flush=True)
            await asyncio.sleep(RETRY_AFTER)
        except ShoalError as exc:
            progress.phase = "done"
            raise DrainError(f'error when {verb} pods/"{name}" -n "{namespace}": {exc.message}') from None
    progress.phase = "waiting"
    try:
        await _gone(client, pod)
    except ShoalError as exc:
        progress.phase = "done"
        raise DrainError(f'error when waiting for pod "{name}" in namespace "{namespace}" to terminate: '
                         f"{exc.message}") from None
    progress.phase = "done"
    print(f"pod/{name} {'deleted' if args.disable_eviction else 'evicted'}", flush=True)


async def _evict_all(client: ApiClient, pods: list[Obj], args: argparse.Namespace) -> None:
    """Evict ``pods`` together and wait for them to go, within ``--timeout``; DrainError otherwise."""
    progress = [_Progress(p) for p in pods]
    tasks = [asyncio.ensure_future(_evict(client, p, args)) for p in progress]
    if not tasks:
        return
    _done, pending = await asyncio.wait(tasks, timeout=args.timeout if args.timeout > 0 else None)
    errors: list[str] = []
    for task, state in zip(tasks, progress, strict=True):
        if task in pending:
            task.cancel()
            what = "evicting" if state.phase == "evicting" else "waiting for the deletion of"
            errors.append(f'error when {what} pods/"{name_of(state.pod)}" -n "{namespace_of(state.pod)}": '
                          f"global timeout reached: {_seconds(args.timeout)}")
        elif (exc := task.exception()) is not None:
            if not isinstance(exc, DrainError):
                raise exc
            errors.append(str(exc))
    if pending:
        await asyncio.gather(*pending, return_exceptions=True)
    if errors:
        raise DrainError(_aggregate(errors))


async def drain_node(client: ApiClient, node: str, args: argparse.Namespace) -> None:
    plan = await _plan(client, node, args)
    if plan.errors:
        raise DrainError(_aggregate(plan.error_lines()))
    if plan.warnings:
        print(f"Warning: {plan.warning_text()}", file=sys.stderr, flush=True)
    if args.dry_run == "client":
        for pod in plan.evict:
            print(f"pod/{name_of(pod)} evicted (dry run)", flush=True)
        return
    try:
        await _evict_all(client, plan.evict, args)
    except DrainError as exc:
        pending = (await _plan(client, node, args)).evict
        if pending:
            print(f'There are pending pods in node "{node}" when an error occurred: {exc}', file=sys.stderr)
            for pod in pending:
                print(f"pod/{name_of(pod)}", file=sys.stderr)
        raise


async def _run(session: Session, args: argparse.Namespace) -> int:
    if args.grace_period < -1:
        raise UsageError(f"--grace-period must be -1 (the pod's own) or more, not {args.grace_period}")
    if args.timeout < 0:
        raise UsageError("--timeout must be 0 (no limit) or more")
    client = await session.client()
    nodes = await chosen_nodes(client, args)
    dry_run = args.dry_run == "client"
    for node in nodes:
        print(await set_schedulable(client, node, unschedulable=True, dry_run=dry_run), flush=True)
    failed: list[tuple[str, DrainError]] = []
    for node in nodes:
        try:
            await drain_node(client, name_of(node), args)
        except DrainError as exc:
            print(f'error: unable to drain node "{name_of(node)}" due to error: {exc}, continuing command...',
                  file=sys.stderr, flush=True)
            failed.append((name_of(node), exc))
            continue
        print(f"node/{name_of(node)} drained{' (dry run)' if dry_run else ''}", flush=True)
    if failed:
        print("There are pending nodes to be drained:", file=sys.stderr)
        for name, _ in failed:
            print(f" {name}", file=sys.stderr)
        raise CliError(_aggregate([str(exc) for _, exc in failed]))
    return 0


COMMAND = Command(
    name="drain", help="cordon a node and evict its pods, respecting PodDisruptionBudgets",
    configure=_configure, run=_run,
    epilog="examples:\n  shoal drain node-1 --ignore-daemonsets\n"
           "  shoal drain node-1 --ignore-daemonsets --delete-emptydir-data --force --timeout 5m\n"
           "  shoal drain node-1 --pod-selector app=web --grace-period 10\n"
           "  shoal drain node-1 --ignore-daemonsets --dry-run\n"
           "then, to let pods back on it: shoal uncordon node-1",
)
