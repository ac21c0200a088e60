"""``shoal wait --for=condition=complete job/pi``: wait until objects reach a condition, or are deleted.

As kubectl's ``wait``: ``--for=condition=NAME`` (status ``True``), ``--for=condition=NAME=VALUE`` (any
status, compared case-insensitively, as the condition name is), ``--for=delete``; several TYPE/NAME
targets are waited for one after the other within one ``--timeout`` (default 30s, as kubectl; a negative
timeout waits a week). Each wait follows the object with a watch (``metadata.name`` field selector)
from the resourceVersion just read, so no change between the read and the watch is missed. Prints
``job.batch/pi condition met`` per object; a timeout is an error naming the objects still waited for.
"""

from __future__ import annotations

import argparse
import asyncio
from dataclasses import dataclass

from protocol.errors import Expired, NotFound
from protocol.humanize import duration
from protocol.kinds import KindInfo
from protocol.objects import Obj, meta
from runtime.client import ApiClient
from shoal.cli.errors import CliError, UsageError
from shoal.cli.registry import Command, add_namespace_flags
from shoal.cli.resources import display_name, parse_targets
from shoal.cli.rollout_status import parse_duration
from shoal.cli.session import Session

WEEK = 7 * 24 * 3600.0


@dataclass(frozen=True, slots=True)
class Goal:
    condition: str | None
    """Condition type, lower-cased; None: wait for deletion."""
    value: str = "true"

    def met(self, obj: Obj | None) -> bool:
        if self.condition is None:
            return obj is None
        if obj is None:
            return False
        for cond in (obj.get("status") or {}).get("conditions") or []:
            if str(cond.get("type", "")).lower() == self.condition:
                return str(cond.get("status", "")).lower() == self.value
        return False

    def describe(self) -> str:
        return "deleted" if self.condition is None else "condition met"


def parse_for(text: str) -> Goal:
    if text == "delete":
        return Goal(None)
    kind, sep, rest = text.partition("=")
    if kind != "condition" or not sep or not rest:
        raise UsageError(f"--for={text!r}: use --for=condition=NAME, --for=condition=NAME=VALUE or --for=delete")
    name, _, value = rest.partition("=")
    return Goal(name.lower(), (value or "true").lower())


def _configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("target", nargs="+", metavar="TYPE/NAME", help="TYPE/NAME... or TYPE NAME...")
    parser.add_argument("--for", dest="for_", required=True, metavar="CONDITION",
                        help="condition=NAME[=VALUE] (e.g. condition=complete, condition=Ready=false) or delete")
    parser.add_argument("--timeout", type=parse_duration, default=30.0, metavar="DURATION",
                        help="give up after this long, e.g. 90s, 5m (default 30s; negative: a week)")
    add_namespace_flags(parser, all_namespaces=False)


async def _get(client: ApiClient, info: KindInfo, name: str, namespace: str | None) -> Obj | None:
    try:
        return await client.get(info, name, namespace)
    except NotFound:
        return None


async def wait_for(client: ApiClient, info: KindInfo, name: str, namespace: str | None, goal: Goal) -> None:
    """Return once the object meets ``goal`` (NotFound when it does not exist and the goal is a condition)."""
    obj = await _get(client, info, name, namespace)
    if obj is None and goal.condition is not None:
        raise NotFound(f'{info.plural} "{name}" not found')
    while not goal.met(obj):
        assert obj is not None  # a deletion goal is met by an absent object
        version = meta(obj).get("resourceVersion")
        try:
            async with client.watch(info, namespace, field_selector=f"metadata.name={name}",
                                    resource_version=version) as changes:
                async for event in changes:
                    obj = None if event.type == "DELETED" else event.object
                    if goal.met(obj):
                        return
                    if obj is None:
                        raise CliError(f"{display_name(info, name)} was deleted while waiting for it")
        except Expired:
            pass
        obj = await _get(client, info, name, namespace)  # the watch ended or expired: read and go on
        if obj is None and goal.condition is not None:
            raise CliError(f"{display_name(info, name)} was deleted while waiting for it")


async def _run(session: Session, args: argparse.Namespace) -> int:
    goal = parse_for(args.for_)
    targets = [(t.info, n) for t in parse_targets(args.target) for n in t.names]
    if not targets:
        raise UsageError("name what to wait for: TYPE/NAME (e.g. job/pi)")
    client = await session.client()
    namespace = session.namespace
    timeout = WEEK if args.timeout < 0 else args.timeout
    waiting = list(targets)
    try:
        async with asyncio.timeout(timeout):
            for info, name in targets:
                await wait_for(client, info, name, namespace if info.namespaced else None, goal)
                waiting.remove((info, name))
                print(f"{display_name(info, name)} {goal.describe()}", flush=True)
    except TimeoutError:
        names = ", ".join(display_name(i, n) for i, n in waiting)
        raise CliError(f"timed out after {duration(timeout)} waiting for the condition on {names}") from None
    return 0


COMMAND = Command(
    name="wait", help="wait until objects reach a condition, or are deleted", configure=_configure, run=_run,
    epilog="examples:\n  shoal wait --for=condition=complete job/pi --timeout=5m\n"
           "  shoal wait --for=condition=Ready pod/web\n  shoal wait --for=delete pod/web --timeout=60s",
)
