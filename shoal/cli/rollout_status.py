"""``shoal rollout status``: kubectl's wording of a rollout's progress, and the wait for it to finish.

One status viewer per kind (kubectl's ``polymorphichelpers.StatusViewer``): ``STATUS_VIEWERS`` maps
Deployment, DaemonSet and StatefulSet to a function reading the object's status into (message, done). The wait
follows the one object with a watch (``metadata.name`` field selector) from the resourceVersion it
first read, so it reacts at once and costs the API nothing while nothing changes. A Deployment's
Progressing condition with reason ProgressDeadlineExceeded ends it with an error, as kubectl's.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import time
from collections.abc import Callable

from protocol.errors import Expired
from protocol.humanize import duration
from protocol.objects import Obj, condition, meta
from runtime.client import ApiClient
from shoal.cli.errors import CliError

HEARTBEAT = 30.0
"""Seconds without change after which the waiting message is printed again, so a long wait shows life."""

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str) -> float:
    """Go's durations as kubectl takes them (``5m``, ``1m30s``, ``90s``, ``500ms``); a bare number is seconds."""
    value = text.strip()
    try:
        return float(value)
    except ValueError:
        pass
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h)", value)
    if not parts or "".join(n + u for n, u in parts) != value:
        raise argparse.ArgumentTypeError(f"invalid duration {text!r}: use a number and a unit, e.g. 30s, 5m, 1h30m")
    return sum(float(n) * _UNITS[u] for n, u in parts)


def deployment_status(deploy: Obj) -> tuple[str, bool]:
    """kubectl's rollout status wording for a Deployment; True when the rollout is complete."""
    name = meta(deploy).get("name")
    spec, status = deploy.get("spec") or {}, deploy.get("status") or {}
    if int(status.get("observedGeneration") or 0) < int(meta(deploy).get("generation") or 0):
        return "Waiting for deployment spec update to be observed...", False
    progressing = condition(deploy, "Progressing")
    if progressing is not None and progressing.get("reason") == "ProgressDeadlineExceeded":
        raise CliError(f'deployment "{name}" exceeded its progress deadline: see `shoal describe deploy {name}` '
                       f"and `shoal events --for deploy/{name}` for why its pods do not become available")
    replicas = int(spec["replicas"]) if spec.get("replicas") is not None else 1
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


def daemonset_status(ds: Obj) -> tuple[str, bool]:
    """kubectl's ``DaemonSetStatusViewer``: updated, then available pods out of the desired ones."""
    name = meta(ds).get("name")
    strategy = ((ds.get("spec") or {}).get("updateStrategy") or {}).get("type") or "RollingUpdate"
    if strategy != "RollingUpdate":
        raise CliError(f'rollout status is only available for the RollingUpdate strategy; daemon set "{name}" '
                       f"uses {strategy}: its pods change only when deleted")
    status = ds.get("status") or {}
    if int(status.get("observedGeneration") or 0) < int(meta(ds).get("generation") or 0):
        return "Waiting for daemon set spec update to be observed...", False
    desired = int(status.get("desiredNumberScheduled") or 0)
    updated = int(status.get("updatedNumberScheduled") or 0)
    available = int(status.get("numberAvailable") or 0)
    if updated < desired:
        return (f'Waiting for daemon set "{name}" rollout to finish: {updated} out of {desired} new pods have '
                "been updated..."), False
    if available < desired:
        return (f'Waiting for daemon set "{name}" rollout to finish: {available} of {desired} updated pods are '
                "available..."), False
    return f'daemon set "{name}" successfully rolled out', True


def statefulset_status(sts: Obj) -> tuple[str, bool]:
    """kubectl's ``StatefulSetStatusViewer``: ready pods, then the partitioned or whole rolling update."""
    name = meta(sts).get("name")
    spec, status = sts.get("spec") or {}, sts.get("status") or {}
    strategy = spec.get("updateStrategy") or {}
    if (strategy.get("type") or "RollingUpdate") != "RollingUpdate":
        raise CliError(f'rollout status is only available for the RollingUpdate strategy; statefulset "{name}" '
                       f"uses {strategy.get('type')}: its pods change only when deleted")
    observed = int(status.get("observedGeneration") or 0)
    if observed == 0 or observed < int(meta(sts).get("generation") or 0):
        return "Waiting for statefulset spec update to be observed...", False
    replicas = int(spec["replicas"]) if spec.get("replicas") is not None else 1
    ready = int(status.get("readyReplicas") or 0)
    if ready < replicas:
        return f"Waiting for {replicas - ready} pods to be ready...", False
    updated = int(status.get("updatedReplicas") or 0)
    rolling = strategy.get("rollingUpdate")
    if isinstance(rolling, dict):
        partition = rolling.get("partition")
        if partition is not None and updated < replicas - int(partition):
            return (f"Waiting for partitioned roll out to finish: {updated} out of {replicas - int(partition)} new "
                    "pods have been updated..."), False
        return f"partitioned roll out complete: {updated} new pods have been updated...", True
    if status.get("updateRevision") != status.get("currentRevision"):
        return (f"waiting for statefulset rolling update to complete {updated} pods at revision "
                f"{status.get('updateRevision')}..."), False
    return (f"statefulset rolling update complete {int(status.get('currentReplicas') or 0)} pods at revision "
            f"{status.get('currentRevision')}..."), True


STATUS_VIEWERS: dict[str, Callable[[Obj], tuple[str, bool]]] = {
    "Deployment": deployment_status, "DaemonSet": daemonset_status, "StatefulSet": statefulset_status}
"""The kinds ``rollout status`` follows, and how each reads its progress."""


def status_message(obj: Obj) -> tuple[str, bool]:
    """The rollout status wording of ``obj`` (a kind of ``STATUS_VIEWERS``); True when complete."""
    return STATUS_VIEWERS[str(obj.get("kind") or "Deployment")](obj)


class _Progress:
    """Prints each new message, and the current one again after ``HEARTBEAT`` seconds of no change."""

    def __init__(self, out: Callable[[str], None]) -> None:
        self.out = out
        self.started = time.monotonic()
        self.last = ""
        self.printed_at = 0.0

    def show(self, message: str) -> None:
        now = time.monotonic()
        if message != self.last:
            self.out(message)
        elif now - self.printed_at >= HEARTBEAT:
            self.out(f"{message} (still waiting after {duration(now - self.started)})")
        else:
            return
        self.last, self.printed_at = message, now


def _print(line: str) -> None:
    print(line, flush=True)


_SHORT = {"Deployment": ("deployment", "deploy"), "DaemonSet": ("daemon set", "ds"),
          "StatefulSet": ("statefulset", "sts")}


async def wait_for_rollout(client: ApiClient, name: str, namespace: str, *, timeout: float, watch: bool,
                           out: Callable[[str], None] = _print, kind: str = "Deployment") -> int:
    """Print the rollout's progress until it completes (0); ``timeout`` 0 waits as long as it takes.

    Raises CliError when the deadline passes, the deployment exceeds its progress deadline or the object
    is deleted."""
    deploy = await client.get(kind, name, namespace)
    progress = _Progress(out)
    message, done = status_message(deploy)
    progress.show(message)
    if done or not watch:
        return 0
    try:
        async with asyncio.timeout(timeout or None):
            await _follow(client, deploy, namespace, progress)
    except TimeoutError:
        word, short = _SHORT.get(kind, (kind.lower(), kind.lower()))
        paused = bool((deploy.get("spec") or {}).get("paused"))
        hint = (f"it is paused: run `shoal rollout resume {short}/{name}`" if paused else
                f"see `shoal describe {short} {name}` and `shoal events --for {short}/{name}`")
        raise CliError(f"timed out waiting for the rollout of {word} {name!r} after {duration(timeout)}: "
                       f"{hint}") from None
    return 0


async def _follow(client: ApiClient, deploy: Obj, namespace: str, progress: _Progress) -> None:
    """Return once ``deploy`` (updated in place, for the caller's hints) has rolled out."""
    name = str(meta(deploy)["name"])
    kind = str(deploy.get("kind") or "Deployment")
    word = _SHORT.get(kind, (kind.lower(), ""))[0]
    resource_version: str | None = meta(deploy).get("resourceVersion")
    while True:
        try:
            async with client.watch(kind, namespace, field_selector=f"metadata.name={name}",
                                    resource_version=resource_version) as changes:
                events = aiter(changes)
                while True:
                    pending = asyncio.ensure_future(anext(events))
                    try:
                        while not (await asyncio.wait({pending}, timeout=HEARTBEAT))[0]:
                            progress.show(progress.last)  # quiet: show the wait is still on
                        event = pending.result()
                    except StopAsyncIteration:
                        break  # the watch ended: start another from where it stopped
                    finally:
                        pending.cancel()
                    resource_version = str(event.resource_version)
                    if event.type == "DELETED":
                        raise CliError(f'{word} "{name}" was deleted while waiting for its rollout')
                    if _settled(deploy, event.object, progress):
                        return
        except Expired:  # fell behind the server's window: read it again and watch from there
            current = await client.get(kind, name, namespace)
            resource_version = meta(current).get("resourceVersion")
            if _settled(deploy, current, progress):
                return


def _settled(deploy: Obj, current: Obj, progress: _Progress) -> bool:
    deploy.clear()
    deploy.update(current)
    message, done = status_message(deploy)
    progress.show(message)
    return done
