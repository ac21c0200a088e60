"""Recorders of leadership for the two-leader checker (``tests.chaos.checkers.leadership``):

- ``LeaseRecorder``: a watch of the Leases in ``kube-system`` (the schedulers' and the controller
  managers'), every revision seen with its holder, ``leaseTransitions`` and ``renewTime``;
- ``LeaderLogTail``: what the leader-elected actors say of themselves: their log lines ``became leader``,
  ``lost leadership``, ``actor started`` and ``actor stopped`` (read every 0.1 s), and their deaths (a
  process gone, or started again, ends whatever it claimed), as ``LeaderClaim`` intervals on this
  process's monotonic clock.
  A line's own timestamp (the machine's wall clock) is used, converted, unless the process runs under
  libfaketime; then the time the line was read.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from protocol.errors import Expired
from runtime.client import ApiClient
from tests.chaos.checkers import LeaderClaim, LeaseRecord
from tests.chaos.workloads import until_stopped
from tests.multivm.cluster import Cluster, Proc

LEASE_NAMESPACE = "kube-system"
LEADER_ELECTED = ("scheduler", "controller-manager")
_LINE = re.compile(r"^(?P<ts>\S+Z) \[\w+\s*\] "
                   r"(?P<event>became leader|lost leadership|actor started|actor stopped)\b(?P<rest>.*)$")
_FIELD = re.compile(r"\b(identity|lease)=(\S+)")


def _seconds(stamp: str | None) -> float:
    if not stamp:
        return 0.0
    try:
        return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0


def leading(procs: Sequence[Proc]) -> Proc | None:
    """Of ``procs`` (the replicas of one leader-elected actor), the live one whose log last says "became
    leader" with no "lost leadership" or new start since; the latest such claim if several (a stale leader
    that has not noticed yet), None while nobody leads."""
    best: tuple[float, Proc] | None = None
    for proc in procs:
        if not proc.alive():
            continue
        try:
            text = proc.log.read_text(errors="replace")
        except OSError:
            continue
        since: float | None = None
        for line in text.splitlines():
            match = _LINE.match(line)
            if match is not None:
                since = _seconds(match["ts"]) if match["event"] == "became leader" else None
        if since is not None and (best is None or since > best[0]):
            best = (since, proc)
    return best[1] if best else None


@dataclass
class LeaseRecorder:
    client: ApiClient
    records: list[LeaseRecord] = field(default_factory=list)
    relists: int = 0

    def _note(self, obj: dict[str, Any], rv: int, gap: bool) -> None:
        spec = obj.get("spec") or {}
        self.records.append(LeaseRecord(str((obj.get("metadata") or {}).get("name")), rv,
                                        str(spec.get("holderIdentity") or ""),
                                        int(spec.get("leaseTransitions") or 0), _seconds(spec.get("renewTime")),
                                        gap))

    async def run_until(self, stop: asyncio.Event) -> None:
        rv: int | None = None
        while not stop.is_set():
            try:
                if rv is None:
                    listed = await self.client.list("Lease", LEASE_NAMESPACE)
                    for item in listed.items:
                        self._note(item, int(item["metadata"]["resourceVersion"]), gap=True)
                    rv = listed.resource_version
                    self.relists += 1
                watch = self.client.watch("Lease", LEASE_NAMESPACE, resource_version=rv)
                try:
                    async for event in until_stopped(watch, stop, asyncio.Event()):
                        if event.type != "DELETED":
                            self._note(event.object, event.resource_version, gap=False)
                        rv = event.resource_version
                finally:
                    with contextlib.suppress(Exception):
                        await watch.close()
            except Expired:
                rv = None
            except Exception:
                rv = None
                await asyncio.sleep(0.5)


@dataclass
class _Tracked:
    proc: Proc
    offset: int = 0
    open: dict[tuple[str, str], tuple[str, float]] = field(default_factory=dict)
    """(lease, identity) -> (identity, start) of the claims this process has not ended yet."""


@dataclass
class LeaderLogTail:
    cluster: Cluster
    claims: list[LeaderClaim] = field(default_factory=list)
    lines: int = 0
    _tracked: dict[str, _Tracked] = field(default_factory=dict)
    _wall_minus_mono: float = field(default_factory=lambda: time.time() - time.monotonic())

    def _procs(self) -> list[Proc]:
        return [p for p in self.cluster.procs if p.name.startswith(LEADER_ELECTED)]

    def _close(self, tracked: _Tracked, at: float, identity: str | None = None) -> None:
        for key, (ident, start) in list(tracked.open.items()):
            if identity is None or ident == identity:
                self.claims.append(LeaderClaim(key[0], ident, tracked.proc.name, start, max(start, at)))
                del tracked.open[key]

    def poll(self) -> None:
        now = time.monotonic()
        for proc in self._procs():
            tracked = self._tracked.setdefault(proc.name, _Tracked(proc))
            alive = proc.alive()
            self._read(tracked, now)  # a new life begins with "actor started", which ends the last one's claims
            if not alive:
                self._close(tracked, now)  # killed (or stopped): whatever it claimed ends now at the latest

    def _read(self, tracked: _Tracked, now: float) -> None:
        try:
            with open(tracked.proc.log, "rb") as f:
                f.seek(tracked.offset)
                chunk = f.read()
        except OSError:
            return
        end = chunk.rfind(b"\n")
        if end < 0:
            return
        tracked.offset += end + 1
        faked = "FAKETIME" in tracked.proc.env
        for raw in chunk[:end].splitlines():
            match = _LINE.match(raw.decode(errors="replace"))
            if match is None:
                continue
            self.lines += 1
            at = now
            wall = _seconds(match["ts"])
            if wall and not faked:
                at = min(now, wall - self._wall_minus_mono)
            fields = dict(_FIELD.findall(match["rest"]))
            if match["event"] == "became leader":
                key = (fields.get("lease", "?"), fields.get("identity", "?"))
                tracked.open.setdefault(key, (key[1], at))
            elif match["event"] == "lost leadership":
                self._close(tracked, at, fields.get("identity"))
            elif match["event"] == "actor started":
                self._close(tracked, at)  # a new life of this process: the last one died without saying
            else:
                self._close(tracked, at)

    async def run_until(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            self.poll()
            await asyncio.sleep(0.1)
        self.poll()

    def finish(self, at: float) -> list[LeaderClaim]:
        """Every claim, those still open ending ``at``."""
        for tracked in self._tracked.values():
            self._close(tracked, at)
        return self.claims
