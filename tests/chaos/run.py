"""One chaos run on a ``tests.multivm`` cluster: workloads recording histories while faults are applied
and healed one after the other, then convergence, final reads and every checker. Used by the CI test
(``tests/multivm/test_chaos.py``) and the soak (``python -m tests.chaos.soak``)."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from runtime.client import ApiClient
from tests.chaos.checkers import (
    LeaderClaim,
    Operation,
    PodObservation,
    Violation,
    check_binds,
    check_lease_history,
    check_lost_creates,
    check_lost_writes,
    check_one_leader,
    check_register,
    check_watch_stream,
    pair_events,
)
from tests.chaos.checkers.history import EventType
from tests.chaos.faults import ClockJump, DiskFull, Fault, Pause, leaves
from tests.chaos.leaders import LeaderLogTail, LeaseRecorder
from tests.chaos.workloads import (
    NAMESPACE,
    CasClients,
    DeploymentScaler,
    PodCreator,
    RawKvObserver,
    Watcher,
    retry,
)
from tests.multivm.cluster import NODES, Cluster

UNAVAILABLE_GAP = 1.0
"""No CAS operation completing ok for longer than this is an unavailability window."""
LEASE_DURATION = 10.0
"""``runtime/leader.py``'s lease: a candidate takes over after seeing no renewal for this long."""
ALLOWED_LEADER_OVERLAP = 1.0
"""How long two actors' own claims of one lease may overlap: none is allowed (a leader steps down 0.8 of
the lease after its last renewal began, two seconds before anyone may take over), but the claims are
timed by log lines, read every 0.1 s on a loaded machine, and a kill by the time it was noticed."""
CONVERGE_WITHIN = 60.0
"""How long after the last heal the controllers may take to bring a Deployment back to its size: Kubernetes'
default node grace period (40 s: a kubelet that was cut off is heard from again), a controller manager's
lease (10 s: a new leader takes over) and 10 s for the pods to be made, bound and started."""
LEASE_SKEW = 0.5
"""Slack of the Lease history's takeover check (``renewTime`` is each writer's wall clock, one machine's)."""


@dataclass
class FaultFigure:
    name: str
    at_s: float
    held_s: float
    longest_gap_s: float = 0.0
    """The longest stretch without an ok CAS operation, from the fault until 10 s after its heal."""
    writes_back_s: float | None = None
    """From the heal to the first ok write or CAS invoked after it (None: none within the run)."""


@dataclass
class Report:
    seed: int
    duration_s: float = 0.0
    operations: dict[str, int] = field(default_factory=dict)
    keys: int = 0
    linearizability_steps: int = 0
    unknown_keys: list[str] = field(default_factory=list)
    faults: list[FaultFigure] = field(default_factory=list)
    unavailability: list[tuple[float, float, list[str]]] = field(default_factory=list)
    """(start s, length s, faults active then) of each window without an ok CAS operation."""
    converge_s: dict[str, float] = field(default_factory=dict)
    deployment: dict[str, Any] = field(default_factory=dict)
    """The scaled Deployment: how often it was scaled, and whether it converged (what lagged if not)."""
    watch: dict[str, Any] = field(default_factory=dict)
    pods: dict[str, int] = field(default_factory=dict)
    leaders: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Per lease: terms claimed, identities, lease revisions seen, the longest stretch with no leader."""
    violations: list[str] = field(default_factory=list)

    def summary(self) -> str:
        worst = max((w[1] for w in self.unavailability), default=0.0)
        lines = [f"chaos run, seed {self.seed}: {self.duration_s:.0f} s, operations {self.operations} on "
                 f"{self.keys} keys ({self.linearizability_steps} search steps, unknown: {self.unknown_keys})",
                 f"faults ({len(self.faults)}): " + "; ".join(
                     f"{f.name} at {f.at_s:.0f}s for {f.held_s:.1f}s (longest gap {f.longest_gap_s:.1f}s, "
                     f"writes back {f.writes_back_s}s after the heal)" for f in self.faults),
                 f"unavailability windows > {UNAVAILABLE_GAP}s: {len(self.unavailability)}, longest {worst:.1f}s: "
                 + "; ".join(f"{s:.0f}s+{d:.1f}s {active}" for s, d, active in self.unavailability[:12]),
                 f"converged after the last heal: {self.converge_s}",
                 f"watchers: {self.watch}", f"pods: {self.pods}", f"deployment: {self.deployment}",
                 f"leaders: {self.leaders}",
                 f"violations: {len(self.violations)}", *(f"  {v}" for v in self.violations[:30])]
        return "\n".join(lines)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)


def ensure_schedulers(cluster: Cluster) -> None:
    """The multi-VM cluster starts no scheduler: two (leader-elected) on VMs 1 and 2 bind the pods."""
    if not any(p.name.startswith("scheduler") for p in cluster.procs):
        for i in (1, 2):
            cluster.start_actor(f"scheduler-{i}", i, "scheduler", "actors.scheduler")


@dataclass
class Schedule:
    """``next_fault(n)`` gives the n-th fault (None: no more); each is held ``hold(n)`` s, then healed,
    and the next comes ``every`` s after the previous one began."""

    next_fault: Callable[[int], Fault | None]
    every: float
    hold: Callable[[int], float]


async def chaos_run(cluster: Cluster, *, seed: int, duration: float, rate: float, schedule: Schedule,
                    keys: int = 3, workers: int = 4, pods: int = 40, warmup: float = 4.0, epoch_s: float = 0.0,
                    log: Callable[[str], None] = print, dump: Path | None = None) -> Report:
    report = Report(seed)
    run = f"chaos{seed % 100000}-{int(time.time()) % 100000}"
    ensure_schedulers(cluster)
    conns = [await cluster.connect("admin", name=f"chaos/{i}") for i in range(workers + 4)]
    try:
        clients = [ApiClient(nc, timeout=3) for nc in conns]
        cas = CasClients(clients[:workers], run, [f"{run}-k{i}" for i in range(keys)], rate, seed)
        if epoch_s > 0:
            cas.epochs, cas.epoch_s = max(1, int((duration + 30) / epoch_s) + 1), epoch_s
        await cas.setup()
        watch_client, pod_client = clients[workers], clients[workers + 1]
        watchers = [Watcher(f"cm-{i}", c, "ConfigMap", run) for i, c in enumerate((watch_client, pod_client))]
        pod_watchers = [Watcher(f"pod-{i}", c, "Pod", run) for i, c in enumerate((watch_client, pod_client))]
        creator = PodCreator(pod_client, run, list(NODES), rate=max(0.5, pods / max(duration, 1.0)), limit=pods)
        scaler = DeploymentScaler(pod_client, run, list(NODES), seed)
        await scaler.setup()
        raw = RawKvObserver("kv-raw", conns[workers + 2], run)
        await raw.start()
        stop, stop_watch = asyncio.Event(), asyncio.Event()
        leases, tail = LeaseRecorder(clients[workers + 3]), LeaderLogTail(cluster)
        watch_tasks = [asyncio.create_task(w.run_until(stop_watch)) for w in [*watchers, *pod_watchers]]
        watch_tasks += [asyncio.create_task(leases.run_until(stop_watch)),
                        asyncio.create_task(tail.run_until(stop_watch))]
        await asyncio.gather(*(w.ready.wait() for w in [*watchers, *pod_watchers]))
        tasks = [asyncio.create_task(w.run_until(stop)) for w in (cas, creator, scaler)]
        started = time.monotonic()
        log(f"chaos run {run}: seed {seed}, {duration:.0f} s at {rate}/s, {keys} keys, {workers} clients")
        faults: list[Fault] = []
        try:
            await asyncio.sleep(warmup)
            for n in itertools.count():
                if time.monotonic() - started > duration:
                    break
                slot = time.monotonic()
                fault = schedule.next_fault(n)
                if fault is None:
                    break
                faults.append(fault)
                log(f"  {time.monotonic() - started:6.1f}s apply {fault.name}")
                try:
                    await asyncio.to_thread(fault.apply)
                    await asyncio.sleep(schedule.hold(n))
                finally:
                    await asyncio.to_thread(fault.heal)
                    log(f"  {time.monotonic() - started:6.1f}s healed {fault.name}{_heal_notes(fault)}")
                rest = schedule.every - (time.monotonic() - slot)
                await asyncio.sleep(max(1.0, min(rest, duration - (time.monotonic() - started))))
        finally:
            for fault in faults:  # healed already, unless apply/heal itself failed half-way
                await asyncio.to_thread(fault.heal)
        last_heal = max((f.healed_at or 0.0 for f in faults), default=time.monotonic())
        await asyncio.sleep(3.0)  # the workload keeps going a little after the heal: writes must come back
        stop.set()
        await asyncio.gather(*tasks)
        report.duration_s = round(time.monotonic() - started, 1)
        report.faults = [FaultFigure(f.name, round((f.applied_at or started) - started, 1),
                                     round((f.healed_at or 0) - (f.applied_at or 0), 1)) for f in faults]

        # -- convergence ------------------------------------------------------------------------
        async def timed(name: str, work: Any) -> Any:
            result = await work
            report.converge_s[name] = round(time.monotonic() - last_heal, 1)
            return result

        # each measured from the last heal, side by side
        final, bound, converged = await asyncio.gather(
            timed("reads_answered", cas.final_reads()), timed("pods_bound", _wait_bound(pod_client, run, creator)),
            timed("deployment_converged", scaler.wait_converged(CONVERGE_WITHIN)))
        report.deployment = {"scalings": scaler.scalings, "converged": converged, "lag": scaler.lag}
        ok_after = [e.time for e in cas.recorder.events if e.type is EventType.OK and e.time >= last_heal]
        if ok_after:
            report.converge_s["first_ok_op"] = round(min(ok_after) - last_heal, 1)
        await asyncio.to_thread(cluster.wait_nats, (1, 2, 3), 60.0)
        listed = await retry(lambda: pod_client.list("Pod", NAMESPACE, label_selector=f"chaos-run={run}"), "pods")
        cm_end = max(rv for _, rv in final.values())
        await _wait_watchers([*watchers, raw], cm_end)
        await _wait_watchers(pod_watchers, listed.resource_version)
        report.converge_s["watchers_current"] = round(time.monotonic() - last_heal, 1)
        stop_watch.set()
        await asyncio.gather(*watch_tasks)
        await raw.stop()

        # -- checks -------------------------------------------------------------------------------
        ops = pair_events(cas.recorder.events)
        report.operations = _count(ops)
        violations: list[Violation] = []
        by_key: dict[str, list[Operation]] = defaultdict(list)
        for o in ops:
            by_key[o.key].append(o)
        report.keys = len(by_key)
        for key, key_ops in sorted(by_key.items()):
            result = check_register(key, key_ops, cas.initial[key])
            report.linearizability_steps += result.steps
            if result.linearizable is None:
                report.unknown_keys.append(key)
            elif not result.linearizable:
                from tests.chaos.checkers.linearizability import prepare

                violations.append(Violation("linearizable", key, result.explain(prepare(key_ops))))
        acked: dict[str, list[tuple[Any, int]]] = defaultdict(list)
        truth_cm: dict[int, tuple[str, Any]] = {}
        for o in ops:
            if o.outcome is EventType.OK and o.f in ("write", "cas"):
                value = o.argument if o.f == "write" else o.argument[1]
                acked[o.key].append((value, int(o.result)))
                truth_cm[int(o.result)] = (o.key, value)
        violations += check_lost_writes(acked, final)
        for w in watchers:
            for r in w.records:
                if r.kind == "event" and r.type != "DELETED":
                    truth_cm.setdefault(r.rv, (str(r.key), r.value))
        truth_pods: dict[int, tuple[str, Any]] = {}
        for w in pod_watchers:
            for r in w.records:
                if r.kind == "event":
                    truth_pods.setdefault(r.rv, (str(r.key), None))
        for name, (_, rv) in creator.created.items():
            truth_pods.setdefault(rv, (name, None))
        for w in watchers:
            violations += check_watch_stream(w.name, w.records, truth_cm, cm_end)
        violations += check_watch_stream(raw.name, raw.records, truth_cm, cm_end)
        for w in pod_watchers:
            violations += check_watch_stream(w.name, w.records, truth_pods, listed.resource_version)
        observations = [o for w in pod_watchers for o in w.pods]
        observations += [PodObservation(p["metadata"]["name"], p["metadata"]["uid"],
                                        (p.get("spec") or {}).get("nodeName") or None,
                                        int(p["metadata"]["resourceVersion"]), "final list") for p in listed.items]
        violations += check_binds(observations)
        violations += check_lost_creates(creator.created, [p["metadata"]["name"] for p in listed.items])
        if not converged:
            violations.append(Violation("converged", scaler.name,
                                        f"not converged {CONVERGE_WITHIN:.0f}s after the last heal: {scaler.lag}"))
        report.watch = {w.name: {"events": sum(r.kind == "event" for r in w.records), "expired": w.expirations,
                                 "ended": len(w.endings)} for w in [*watchers, *pod_watchers]}
        report.watch[raw.name] = {"events": sum(r.kind == "event" for r in raw.records), "expired": 0, "ended": 0}
        report.pods = {"created": len(creator.created), "attempts": creator.attempts, "bound": bound}
        claims = tail.finish(time.monotonic())
        violations += _leadership(report, claims, leases, faults, started)
        report.violations = [str(v) for v in violations]
        report.unavailability = _windows(cas.recorder.events, faults, started)
        _fault_figures(report.faults, faults, ops)
        if dump is not None:
            dump.write_text(json.dumps({  # noqa: ASYNC240 (once, at the end)
                "report": asdict(report), "started": started, "initial": cas.initial,
                "faults": [(f.name, f.applied_at, f.healed_at) for f in faults],
                "leader_claims": [asdict(c) for c in claims], "leases": [asdict(r) for r in leases.records],
                "events": [(e.process, str(e.type), e.f, e.key, e.value, e.time, e.error)
                           for e in cas.recorder.events],
                "watchers": {name: [(r.kind, r.rv, r.key, r.value, r.type) for r in records]
                             for name, records in [*((w.name, w.records) for w in [*watchers, *pod_watchers]),
                                                   (raw.name, raw.records)]},
            }, default=str))
            log(f"history written to {dump}")
        await _cleanup(pod_client, run, creator)
        await scaler.cleanup()
        return report
    finally:
        for nc in conns:
            await nc.close()


def _heal_notes(fault: Fault) -> str:
    notes = [f"{f.name}: {f.filled_kb} KiB filled, JetStream disabled: {f.disabled}, restarted: {f.restarted}"
             for f in leaves([fault]) if isinstance(f, DiskFull)]
    return f" ({'; '.join(notes)})" if notes else ""


def _leadership(report: Report, claims: list[LeaderClaim], leases: LeaseRecorder, faults: Sequence[Fault],
                started: float) -> list[Violation]:
    """The two-leader checks, and per lease its terms and longest stretch with no leader."""
    from dataclasses import replace

    frozen: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for fault in leaves(faults):
        if isinstance(fault, Pause) and fault.applied_at is not None:
            frozen[fault.proc.name].append((fault.applied_at, fault.healed_at or time.monotonic()))
    claims = [replace(c, frozen=tuple(frozen.get(c.process, ()))) for c in claims]
    clock_moved = any(isinstance(f, ClockJump) for f in leaves(faults))
    out = check_one_leader(claims, ALLOWED_LEADER_OVERLAP)
    out += check_lease_history(leases.records, LEASE_DURATION, LEASE_DURATION if clock_moved else LEASE_SKEW)
    by_lease: dict[str, list[LeaderClaim]] = defaultdict(list)
    for c in claims:
        by_lease[c.lease].append(c)
    for lease, held in sorted(by_lease.items()):
        segments = sorted(seg for c in held for seg in c.acting() if seg[1] > started)
        longest, reach = 0.0, max(started, segments[0][0]) if segments else started
        for lo, hi in segments:
            longest = max(longest, lo - reach)
            reach = max(reach, hi)
        report.leaders[lease] = {
            "terms": len(held), "identities": len({c.identity for c in held}),
            "lease_revisions": sum(r.lease == lease for r in leases.records),
            "longest_leaderless_s": round(longest, 1)}
    return out


def _count(ops: Sequence[Operation]) -> dict[str, int]:
    counts: dict[str, int] = defaultdict(int)
    for o in ops:
        counts[f"{o.f}:{o.outcome}"] += 1
    counts["total"] = len(ops)
    return dict(sorted(counts.items()))


def _windows(events: Sequence[Any], faults: Sequence[Fault], started: float) -> list[tuple[float, float, list[str]]]:
    times = sorted(e.time for e in events if e.type is EventType.OK)
    out: list[tuple[float, float, list[str]]] = []
    for a, b in itertools.pairwise(times):
        if b - a > UNAVAILABLE_GAP:
            active = [f.name for f in faults if (f.applied_at or 0) <= b and (f.healed_at or b) >= a]
            out.append((round(a - started, 1), round(b - a, 1), active))
    return out


def _fault_figures(figures: Sequence[FaultFigure], faults: Sequence[Fault], ops: Sequence[Operation]) -> None:
    done = sorted(o.ret for o in ops if o.outcome is EventType.OK)
    writes = sorted((o.call, o.ret) for o in ops if o.outcome is EventType.OK and o.f in ("write", "cas"))
    for figure, fault in zip(figures, faults, strict=True):
        if fault.applied_at is None or fault.healed_at is None:
            continue
        lo, hi = fault.applied_at, fault.healed_at + 10.0
        inside = [lo, *(t for t in done if lo <= t <= hi), hi]
        figure.longest_gap_s = round(max(b - a for a, b in itertools.pairwise(inside)), 1)
        back = [ret for call, ret in writes if call >= fault.healed_at]
        if back:
            figure.writes_back_s = round(min(back) - fault.healed_at, 1)


async def _wait_bound(client: ApiClient, run: str, creator: PodCreator, timeout: float = 90.0) -> int:
    deadline = time.monotonic() + timeout
    bound = 0
    while time.monotonic() < deadline:
        try:
            listed = await client.list("Pod", NAMESPACE, label_selector=f"chaos-run={run}")
        except Exception:
            await asyncio.sleep(0.5)
            continue
        bound = sum(bool((p.get("spec") or {}).get("nodeName")) for p in listed.items)
        if bound >= len(creator.created):
            return bound
        await asyncio.sleep(0.5)
    return bound


async def _wait_watchers(watchers: Sequence[Watcher | RawKvObserver], rv: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(w.position() < rv for w in watchers):
        await asyncio.sleep(0.2)


async def _cleanup(client: ApiClient, run: str, creator: PodCreator) -> None:
    for name in creator.created:
        try:
            await client.delete("Pod", name, NAMESPACE, grace_period=0)
        except Exception:
            pass
