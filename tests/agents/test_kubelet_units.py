"""Pure parts of the kubelet, table-tested: back-off arithmetic, the reconcile plan, status, probe scheduling."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from agents.kubelet.backoff import BackoffEntry, next_entry, remaining
from agents.kubelet.cri import RuntimeContainer, RuntimeSandbox
from agents.kubelet.node import Measurements, conditions, parse_meminfo
from agents.kubelet.plan import (
    CreateSandbox,
    FinishDeletion,
    PodNotes,
    PodRuntimeView,
    RemoveContainer,
    RemoveSandbox,
    RunContainer,
    StartCreated,
    StartFailure,
    StopContainer,
    plan,
)
from agents.kubelet.probes import ProbeScheduler, ProbeSpec, ProbeState, ProbeTarget, RunningContainer, first_due
from agents.kubelet.status import ProbeView, compute_status, pod_phase
from protocol.objects import Obj
from tests.conftest import cancel_and_wait

NOW = 1_000_000.0
UID = "uid-1"


def pod(*containers: Obj, policy: str = "Always", deleting: bool = False, phase: str = "Pending",
        uid: str = UID) -> Obj:
    meta: Obj = {"name": "p", "namespace": "ns", "uid": uid, "resourceVersion": "5"}
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
        meta["deletionGracePeriodSeconds"] = 7
    return {"kind": "Pod", "metadata": meta,
            "spec": {"containers": list(containers) or [{"name": "c", "image": "img"}], "restartPolicy": policy},
            "status": {"phase": phase, "conditions": [
                {"type": "PodScheduled", "status": "True", "lastTransitionTime": "2026-01-01T00:00:00Z"}]}}


def sandbox(sid: str = "s1", uid: str = UID, state: str = "ready") -> RuntimeSandbox:
    return RuntimeSandbox(sid, uid, "ns", "p", "n1", "10.88.0.5", state, NOW - 100)  # type: ignore[arg-type]


def ctr(cid: str, attempt: int = 0, state: str = "running", code: int | None = None, name: str = "c",
        started: float = NOW - 50, finished: float | None = None, uid: str = UID) -> RuntimeContainer:
    if state == "exited" and finished is None:
        finished = NOW - 1
    return RuntimeContainer(cid, "s1", uid, name, attempt, state, code, started, finished, "img")  # type: ignore[arg-type]


def view(*objs: RuntimeSandbox | RuntimeContainer) -> PodRuntimeView:
    return PodRuntimeView(tuple(o for o in objs if isinstance(o, RuntimeSandbox)),
                          tuple(o for o in objs if isinstance(o, RuntimeContainer)))


def kinds(actions: Any) -> list[str]:
    return [type(a).__name__ for a in actions]


# -- back-off -------------------------------------------------------------------------------------

def test_backoff_doubles_to_cap_and_resets() -> None:
    entry = None
    delays = []
    for i in range(8):
        entry = next_entry(entry, NOW + i, base=10, cap=300)
        delays.append(entry.delay)
    assert delays == [10, 20, 40, 80, 160, 300, 300, 300]
    ran_long = next_entry(entry, NOW + 10, base=10, cap=300, ran_for=600, reset_after=600)
    assert ran_long.delay == 10
    stale = next_entry(BackoffEntry(300, NOW), NOW + 601, base=10, cap=300)
    assert stale.delay == 10


@pytest.mark.parametrize(("entry", "since", "now", "expected"), [
    (None, NOW, NOW, 0.0),
    (BackoffEntry(10, NOW - 5), NOW - 2, NOW, 8.0),
    (BackoffEntry(10, NOW - 5), NOW - 20, NOW, 0.0),
    (BackoffEntry(10, NOW - 700), NOW - 2, NOW, 0.0),  # expired history: no wait
])
def test_backoff_remaining(entry: BackoffEntry | None, since: float, now: float, expected: float) -> None:
    assert remaining(entry, since, now, 300) == pytest.approx(expected)


# -- plan -----------------------------------------------------------------------------------------

def _plan(p: Obj | None, v: PodRuntimeView, notes: PodNotes | None = None) -> Any:
    return plan(p, v, notes or PodNotes(), NOW, node_name="n1", address="127.0.0.1", cap=300, keep_attempts=2)


PLAN_CASES: list[tuple[str, Obj | None, PodRuntimeView, PodNotes | None, list[str]]] = [
    ("new pod", pod(), view(), None, ["CreateSandbox", "RunContainer"]),
    ("running: nothing to do", pod(), view(sandbox(), ctr("a")), None, []),
    ("pod gone", None, view(sandbox(), ctr("a")), None, ["RemoveSandbox"]),
    ("older pod with the same name", pod(), view(sandbox("old", uid="u0"), sandbox(), ctr("a")), None,
     ["RemoveSandbox"]),
    ("deleting", pod(deleting=True), view(sandbox(), ctr("a")), None,
     ["StopContainer", "RemoveSandbox", "FinishDeletion"]),
    ("deleting, already stopped", pod(deleting=True), view(sandbox(), ctr("a", state="exited", code=0)), None,
     ["RemoveSandbox", "FinishDeletion"]),
    ("exited, Always: restart", pod(), view(sandbox(), ctr("a", state="exited", code=0)), None, ["RunContainer"]),
    ("exited 0, OnFailure: done", pod(policy="OnFailure"), view(sandbox(), ctr("a", state="exited", code=0)),
     None, []),
    ("exited 1, OnFailure: restart", pod(policy="OnFailure"), view(sandbox(), ctr("a", state="exited", code=1)),
     None, ["RunContainer"]),
    ("exited 1, Never: done", pod(policy="Never"), view(sandbox(), ctr("a", state="exited", code=1)), None, []),
    ("in crash back-off: wait", pod(), view(sandbox(), ctr("a", state="exited", code=1)),
     PodNotes(backoff={"c": BackoffEntry(20, NOW - 5)}), []),
    ("image pull back-off: wait", pod(), view(sandbox()),
     PodNotes(failures={"c": StartFailure("ErrImagePull", "x", NOW - 1, BackoffEntry(10, NOW - 1))}), []),
    ("image pull back-off over: retry", pod(), view(sandbox()),
     PodNotes(failures={"c": StartFailure("ErrImagePull", "x", NOW - 11, BackoffEntry(10, NOW - 11))}),
     ["RunContainer"]),
    ("liveness failed: kill", pod(), view(sandbox(), ctr("a")), PodNotes(liveness_failed={"a"}), ["StopContainer"]),
    ("created, never started", pod(), view(sandbox(), ctr("a", state="created")), None, ["StartCreated"]),
    ("sandbox not ready: recreate", pod(), view(sandbox(state="notready"), ctr("a")), None,
     ["RemoveSandbox", "CreateSandbox", "RunContainer"]),
    ("terminal pod: keep", pod(phase="Succeeded"), view(sandbox(), ctr("a", state="exited", code=0)), None, []),
    ("old attempts removed", pod(), view(sandbox(), ctr("a", 0, "exited", 1), ctr("b", 1, "exited", 1),
                                         ctr("c", 2, "exited", 1)), PodNotes(backoff={"c": BackoffEntry(20, NOW)}),
     ["RemoveContainer"]),
]


@pytest.mark.parametrize(("case", "p", "v", "notes", "expected"), PLAN_CASES, ids=[c[0] for c in PLAN_CASES])
def test_plan(case: str, p: Obj | None, v: PodRuntimeView, notes: PodNotes | None, expected: list[str]) -> None:
    assert kinds(_plan(p, v, notes).actions) == expected


def test_plan_details() -> None:
    new = _plan(pod({"name": "c", "image": "img", "ports": [{"containerPort": 80, "hostPort": 8080}],
                     "env": [{"name": "A", "value": "1"}], "resources": {"limits": {"cpu": "500m"}}}), view())
    create, run = new.actions
    assert isinstance(create, CreateSandbox) and isinstance(run, RunContainer)
    assert create.config.ports[0].host_port == 8080 and create.config.ports[0].host_ip == "127.0.0.1"
    assert run.sandbox_id is None and run.attempt == 0
    assert run.config.env == {"A": "1"} and run.config.cpu_limit_millis == 500
    restart = _plan(pod(), view(sandbox(), ctr("a", 3, "exited", 1))).actions[0]
    assert isinstance(restart, RunContainer) and restart.attempt == 4 and restart.sandbox_id == "s1"
    assert restart.previous is not None and restart.previous.id == "a"
    waiting = _plan(pod(), view(sandbox(), ctr("a", state="exited", code=1)),
                    PodNotes(backoff={"c": BackoffEntry(20, NOW - 5)}))
    assert waiting.requeue_after == pytest.approx(19)
    stop = _plan(pod(deleting=True), view(sandbox(), ctr("a"))).actions
    assert isinstance(stop[0], StopContainer) and stop[0].grace == 7
    assert isinstance(stop[-1], FinishDeletion) and stop[-1].uid == UID
    gc = _plan(pod(), view(sandbox(), ctr("a", 0, "exited", 1), ctr("b", 1, "exited", 1), ctr("c", 2)))
    assert [a.container_id for a in gc.actions if isinstance(a, RemoveContainer)] == []
    assert not any(isinstance(a, RemoveSandbox | StartCreated) for a in gc.actions)


# -- status ---------------------------------------------------------------------------------------

def status_of(p: Obj, v: PodRuntimeView, notes: PodNotes | None = None, probes: ProbeView | None = None,
              now: float = NOW) -> Obj:
    return compute_status(p, v, notes or PodNotes(), probes or ProbeView(), now, host_ip="192.0.2.1",
                          scheme="podman", cap=300)


def state_reason(s: Obj) -> str:
    cs = s["containerStatuses"][0]["state"]
    kind = next(iter(cs))
    return f"{kind}:{cs[kind].get('reason', '')}"


STATUS_CASES: list[tuple[str, Obj, PodRuntimeView, PodNotes | None, str, str, bool]] = [
    ("creating", pod(), view(), None, "Pending", "waiting:ContainerCreating", False),
    ("running", pod(), view(sandbox(), ctr("a")), None, "Running", "running:", True),
    ("crash loop", pod(), view(sandbox(), ctr("a", 2, "exited", 1)),
     PodNotes(backoff={"c": BackoffEntry(20, NOW - 1)}), "Running", "waiting:CrashLoopBackOff", False),
    ("completed, OnFailure", pod(policy="OnFailure"), view(sandbox(), ctr("a", 0, "exited", 0)), None,
     "Succeeded", "terminated:Completed", False),
    ("failed, Never", pod(policy="Never"), view(sandbox(), ctr("a", 0, "exited", 2)), None, "Failed",
     "terminated:Error", False),
    ("failed, OnFailure restarting", pod(policy="OnFailure"), view(sandbox(), ctr("a", 0, "exited", 2)),
     PodNotes(backoff={"c": BackoffEntry(20, NOW - 1)}), "Running", "waiting:CrashLoopBackOff", False),
    ("image pull just failed", pod(), view(sandbox()),
     PodNotes(failures={"c": StartFailure("ErrImagePull", "nope", NOW - 0.5, BackoffEntry(10, NOW))}), "Pending",
     "waiting:ErrImagePull", False),
    ("image pull backing off", pod(), view(sandbox()),
     PodNotes(failures={"c": StartFailure("ErrImagePull", "nope", NOW - 3, BackoffEntry(10, NOW - 3))}), "Pending",
     "waiting:ImagePullBackOff", False),
    ("create error", pod(), view(sandbox()),
     PodNotes(failures={"c": StartFailure("CreateContainerError", "bad", NOW - 3, BackoffEntry(10, NOW - 3))}),
     "Pending", "waiting:CreateContainerError", False),
]


@pytest.mark.parametrize(("case", "p", "v", "notes", "phase", "state", "ready"), STATUS_CASES,
                         ids=[c[0] for c in STATUS_CASES])
def test_compute_status(case: str, p: Obj, v: PodRuntimeView, notes: PodNotes | None, phase: str, state: str,
                        ready: bool) -> None:
    s = status_of(p, v, notes)
    assert s["phase"] == phase
    assert state_reason(s) == state
    assert s["containerStatuses"][0]["ready"] is ready
    conds = {c["type"]: c["status"] for c in s["conditions"]}
    assert conds["Ready"] == conds["ContainersReady"] == ("True" if ready else "False")
    assert conds["PodScheduled"] == "True" and conds["Initialized"] == "True"


def test_status_fields_and_transition_times() -> None:
    s = status_of(pod(), view(sandbox(), ctr("a", 1), ctr("z", 0, "exited", 137)))
    cs = s["containerStatuses"][0]
    assert s["podIP"] == "10.88.0.5" and s["hostIP"] == "192.0.2.1" and s["startTime"]
    assert cs["restartCount"] == 1 and cs["containerID"] == "podman://a"
    assert cs["lastState"]["terminated"]["exitCode"] == 137
    later = status_of({**pod(), "status": s}, view(sandbox(), ctr("a", 1)), now=NOW + 100)
    assert later["conditions"] == s["conditions"]  # unchanged status: same lastTransitionTime
    assert later["startTime"] == s["startTime"]


def test_readiness_and_startup_probes_gate_ready() -> None:
    probed = pod({"name": "c", "image": "img", "readinessProbe": {"exec": {"command": ["true"]}},
                  "startupProbe": {"exec": {"command": ["true"]}}})
    v = view(sandbox(), ctr("a"))
    assert status_of(probed, v)["containerStatuses"][0]["ready"] is False
    not_started = status_of(probed, v, probes=ProbeView(ready={"a": True}, started={"a": False}))
    assert not_started["containerStatuses"][0]["started"] is False
    assert not_started["containerStatuses"][0]["ready"] is False
    ready = status_of(probed, v, probes=ProbeView(ready={"a": True}, started={"a": True}))
    assert ready["containerStatuses"][0]["ready"] is True and ready["phase"] == "Running"


@pytest.mark.parametrize(("policy", "states", "expected"), [
    ("Always", [{"running": {}}], "Running"),
    ("Always", [{"waiting": {}}], "Pending"),
    ("Never", [{"terminated": {"exitCode": 0}}, {"terminated": {"exitCode": 1}}], "Failed"),
    ("Never", [{"terminated": {"exitCode": 0}}, {"running": {}}], "Running"),
    ("OnFailure", [{"terminated": {"exitCode": 0}}, {"terminated": {"exitCode": 0}}], "Succeeded"),
])
def test_pod_phase(policy: str, states: list[Obj], expected: str) -> None:
    assert pod_phase(policy, [{"state": s, "lastState": {}} for s in states]) == expected


# -- node -----------------------------------------------------------------------------------------

def test_node_conditions_and_meminfo() -> None:
    info = parse_meminfo("MemTotal:       2000000 kB\nMemAvailable:     50000 kB\nHugePages_Total:       0\n")
    assert info["MemTotal"] == 2_048_000_000 and info["HugePages_Total"] == 0
    conds = {c["type"]: c["status"] for c in conditions(
        Measurements(2000, info["MemTotal"], info["MemAvailable"], 0.5, 0.9), True, "")}
    assert conds == {"MemoryPressure": "True", "DiskPressure": "False", "PIDPressure": "False", "Ready": "True"}
    down = {c["type"]: c["status"] for c in conditions(Measurements(2000, 1), False, "runtime down")}
    assert down["Ready"] == "False"


# -- probes ---------------------------------------------------------------------------------------

def test_probe_state_thresholds() -> None:
    spec = ProbeSpec("readiness", {}, success_threshold=2, failure_threshold=3)
    state = ProbeState()
    results = [state.record(ok, spec) for ok in (True, True, False, False, False, True)]
    assert results == [False, True, False, False, True, False]
    assert state.outcome is False
    assert first_due(NOW, ProbeSpec("liveness", {}, initial_delay=5), NOW - 100) == NOW + 5
    assert first_due(NOW - 50, ProbeSpec("liveness", {}, initial_delay=5), NOW) == NOW


class ScriptedProber:
    def __init__(self, results: dict[str, bool]) -> None:
        self.results = results
        self.calls: list[tuple[str, str]] = []

    async def check(self, spec: ProbeSpec, target: ProbeTarget) -> bool:
        self.calls.append((target.container_id, spec.kind))
        return self.results.get(target.container_id, True)


async def test_probe_scheduler_runs_due_probes_and_reports_changes() -> None:
    changes: list[str] = []
    prober = ScriptedProber({"bad": False})
    scheduler = ProbeScheduler(prober, changes.append)
    fast = {"periodSeconds": 0.05, "failureThreshold": 2}
    good = {"name": "c", "readinessProbe": {"exec": {"command": ["x"]}, **fast}}
    bad = {"name": "c", "livenessProbe": {"exec": {"command": ["x"]}, **fast}}
    gated = {"name": "c", "startupProbe": {"exec": {"command": ["x"]}, **fast, "failureThreshold": 100},
             "readinessProbe": {"exec": {"command": ["x"]}, **fast}}
    prober.results["gated"] = False
    scheduler.sync("ns/a", [RunningContainer("good", good, None)], "10.0.0.1", "127.0.0.1")
    scheduler.sync("ns/b", [RunningContainer("bad", bad, None)], "10.0.0.2", "127.0.0.1")
    scheduler.sync("ns/c", [RunningContainer("gated", gated, None)], "10.0.0.3", "127.0.0.1")
    task = asyncio.create_task(scheduler.run())
    try:
        for _ in range(100):
            if scheduler.result("good", "readiness") and scheduler.failed("bad", bad):
                break
            await asyncio.sleep(0.02)
        assert scheduler.result("good", "readiness") is True
        assert scheduler.failed("bad", bad)
        assert "ns/a" in changes and "ns/b" in changes
        assert ("gated", "readiness") not in prober.calls  # startup not passed: readiness never ran
        assert scheduler.view([RunningContainer("gated", gated, None)]) == ({}, {"gated": False})
        prober.results["gated"] = True
        for _ in range(100):
            if scheduler.result("gated", "readiness"):
                break
            await asyncio.sleep(0.02)
        assert scheduler.started("gated", gated) and scheduler.result("gated", "readiness") is True
        scheduler.forget("ns/a")
        calls = len(prober.calls)
        await asyncio.sleep(0.2)
        assert ("good", "readiness") not in prober.calls[calls:]
        assert len(scheduler) == 2
    finally:
        await cancel_and_wait(task)
