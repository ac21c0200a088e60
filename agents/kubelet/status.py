"""Computing a pod's status from what the runtime reports: ``compute_status(...) -> status map``. Pure.

Phase follows the Kubernetes kubelet's ``getPhase``: Pending while an init container has not succeeded
(Failed once one failed under restartPolicy Never) or any container has never run;
Running while one runs or will be restarted; Succeeded/Failed once every container has stopped for good
(restartPolicy Never: Failed if any failed; OnFailure: Succeeded when all exited 0). Conditions:
PodScheduled (kept), Initialized (False, ContainersNotInitialized, until every init container
succeeded), ContainersReady and Ready (all containers running, started and passing
their readiness probe). A condition keeps its ``lastTransitionTime`` while its status does not change.

Init containers get ``status.initContainerStatuses`` (ready once exited 0). Waiting reasons:
ContainerCreating (PodInitializing instead for every container not yet run in a pod with init containers,
as Kubernetes), CrashLoopBackOff (exited, back-off pending), ErrImagePull (for
``ERR_SHOWN`` seconds after a failed pull) then ImagePullBackOff, CreateContainerError, RunContainerError.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from agents.kubelet.cri import RuntimeContainer
from agents.kubelet.plan import (
    ContainerDecision,
    InitProgress,
    PodNotes,
    PodRuntimeView,
    attempts_by_name,
    decide_container,
    init_progress,
)
from agents.kubelet.podspec import RESTART_ALWAYS, RESTART_NEVER, containers_of, init_containers_of, restart_policy
from protocol.objects import Obj, format_time, name_of, uid_of

ERR_SHOWN = 1.0
"""Seconds a failed pull shows as ErrImagePull before it turns into ImagePullBackOff."""


@dataclass(frozen=True, slots=True)
class ProbeView:
    """Probe results by container id: readiness (absent: no result yet) and startup (True once passed)."""

    ready: Mapping[str, bool] = field(default_factory=dict)
    started: Mapping[str, bool] = field(default_factory=dict)


def _time(epoch: float | None) -> str | None:
    return format_time(epoch) if epoch is not None else None


def _terminated(c: RuntimeContainer, scheme: str) -> Obj:
    code = c.exit_code if c.exit_code is not None else -1
    return {
        "exitCode": code,
        "reason": "Completed" if code == 0 else "Error",
        "startedAt": _time(c.started_at),
        "finishedAt": _time(c.finished_at),
        "containerID": f"{scheme}://{c.id}",
        **({"message": c.message} if c.message else {}),
    }


def _waiting(reason: str, message: str | None = None) -> Obj:
    return {"waiting": {"reason": reason, **({"message": message} if message else {})}}


def container_status(
    spec: Obj,
    attempts: list[RuntimeContainer],
    decision: ContainerDecision,
    notes: PodNotes,
    probes: ProbeView,
    now: float,
    *,
    pod_name: str,
    scheme: str,
    creating: str = "ContainerCreating",
) -> Obj:
    """One container's status; ``creating`` is the waiting reason of a container not yet run."""
    name = str(spec.get("name"))
    latest = attempts[-1] if attempts else None
    previous = attempts[-2] if len(attempts) > 1 else None
    failure = notes.failures.get(name)
    state: Obj
    last_state: Obj = {}
    ready = started = False
    if decision.kind == "wait_failure" and failure is not None:
        reason = failure.reason
        if reason == "ErrImagePull" and now - failure.at >= ERR_SHOWN:
            reason = "ImagePullBackOff"
        state = _waiting(reason, failure.message)
        if latest is not None and latest.state == "exited":
            last_state = {"terminated": _terminated(latest, scheme)}
    elif latest is None or (decision.kind == "run" and latest.state != "exited"):
        state = _waiting(creating)
    elif decision.kind == "wait_backoff":
        message = f"back-off {round(notes.backoff[name].delay)}s restarting failed container={name} pod={pod_name}"
        state = _waiting("CrashLoopBackOff", message)
        last_state = {"terminated": _terminated(latest, scheme)}
    elif latest.state == "created":
        state = _waiting("ContainerCreating")
    elif latest.state == "running":
        state = {"running": {"startedAt": _time(latest.started_at)}}
        has_startup = spec.get("startupProbe") is not None
        started = probes.started.get(latest.id, False) if has_startup else True
        probed = spec.get("readinessProbe") is not None
        ready = started and probes.ready.get(latest.id, False) if probed else started
    elif latest.state == "exited":
        state = {"terminated": _terminated(latest, scheme)}
    else:
        state = _waiting("ContainerStatusUnknown")
    if not last_state and previous is not None and previous.state == "exited":
        last_state = {"terminated": _terminated(previous, scheme)}
    status: Obj = {
        "name": name,
        "image": str(spec.get("image") or ""),
        "imageID": "",
        "ready": ready,
        "started": started,
        "restartCount": latest.attempt if latest is not None else 0,
        "state": state,
        "lastState": last_state,
    }
    if latest is not None:
        status["containerID"] = f"{scheme}://{latest.id}"
    return status


def init_container_statuses(
    pod: Obj, by_name: dict[str, list[RuntimeContainer]], init: InitProgress, notes: PodNotes, now: float, *,
    scheme: str,
) -> list[Obj]:
    """``status.initContainerStatuses``: the init containers looked at by ``init_progress``, and the later
    ones waiting (PodInitializing). An init container is ready once it exited 0; started while it runs."""
    old = {str(s.get("name")): s for s in (pod.get("status") or {}).get("initContainerStatuses") or []
           if isinstance(s, dict)}
    statuses = []
    for spec in init_containers_of(pod):
        name = str(spec.get("name"))
        attempts = by_name.get(name, [])
        if init.done and not attempts and name in old:
            statuses.append(old[name])  # its record is gone once the app ran: what was last reported stays
            continue
        decision = init.decisions.get(name) or ContainerDecision("run", 0.0, 0)
        if init.done and name not in init.decisions:
            decision = ContainerDecision("done", 0.0, attempts[-1].attempt if attempts else 0)
        status = container_status(spec, attempts, decision, notes, ProbeView(), now, pod_name=name_of(pod),
                                  scheme=scheme, creating="PodInitializing")
        terminated = status["state"].get("terminated") or {}
        status["ready"] = bool(terminated) and terminated.get("exitCode") == 0
        status["started"] = "running" in status["state"]
        statuses.append(status)
    return statuses


def pod_phase(policy: str, statuses: list[Obj]) -> str:
    running = waiting = stopped = succeeded = failed = 0
    for s in statuses:
        state = s["state"]
        if "running" in state:
            running += 1
        elif "terminated" in state:
            stopped += 1
            if state["terminated"]["exitCode"] == 0:
                succeeded += 1
            else:
                failed += 1
        elif s["lastState"].get("terminated"):
            stopped += 1
        else:
            waiting += 1
    if waiting > 0:
        return "Pending"
    if running > 0:
        return "Running"
    if stopped > 0:
        if policy == RESTART_ALWAYS:
            return "Running"
        if policy == RESTART_NEVER:
            return "Failed" if failed > 0 else "Succeeded"
        # OnFailure: restarting failed containers keeps the pod running
        return "Succeeded" if stopped == succeeded else "Running"
    return "Pending"


def _condition(old: Mapping[str, Obj], kind: str, ok: bool, now: float, reason: str | None = None,
               message: str | None = None) -> Obj:
    status = "True" if ok else "False"
    previous = old.get(kind)
    since = previous.get("lastTransitionTime") if previous and previous.get("status") == status else None
    cond: Obj = {"type": kind, "status": status, "lastProbeTime": None,
                 "lastTransitionTime": since or format_time(now)}
    if reason:
        cond["reason"] = reason
    if message:
        cond["message"] = message
    return cond


def compute_status(
    pod: Obj,
    view: PodRuntimeView,
    notes: PodNotes,
    probes: ProbeView,
    now: float,
    *,
    host_ip: str,
    scheme: str = "podman",
    cap: float = 300.0,
) -> Obj:
    """The pod's new status (a fresh map; fields the kubelet does not own are kept from the old one)."""
    old: Obj = dict(pod.get("status") or {})
    sandboxes, containers = view.for_uid(uid_of(pod))
    sandbox = max((s for s in sandboxes if s.state == "ready"), key=lambda s: s.created_at or 0.0, default=None)
    if sandbox is None:
        containers = []
    by_name = attempts_by_name(containers)
    policy = restart_policy(pod)
    init = init_progress(pod, by_name, notes, now, cap=cap)
    creating = "PodInitializing" if init_containers_of(pod) else "ContainerCreating"
    statuses = []
    for spec in containers_of(pod):
        name = str(spec.get("name"))
        attempts = by_name.get(name, [])
        decision = decide_container(name, attempts, policy, notes, now, cap=cap)
        statuses.append(container_status(spec, attempts, decision, notes, probes, now, pod_name=name_of(pod),
                                         scheme=scheme, creating=creating))
    init_statuses = init_container_statuses(pod, by_name, init, notes, now, scheme=scheme)
    phase = "Failed" if init.failed else "Pending" if init.pending else pod_phase(policy, statuses)
    old_conditions = {str(c.get("type")): c for c in old.get("conditions") or [] if isinstance(c, dict)}
    unready = [s["name"] for s in statuses if not s["ready"]]
    all_ready = not unready
    if phase in ("Succeeded", "Failed"):
        reason: str | None = "PodCompleted"
        message: str | None = None
    else:
        reason = None if all_ready else "ContainersNotReady"
        message = None if all_ready else f"containers with unready status: [{' '.join(unready)}]"
    scheduled = old_conditions.get("PodScheduled") or {
        "type": "PodScheduled", "status": "True", "lastProbeTime": None, "lastTransitionTime": format_time(now)}
    incomplete = [s["name"] for s in init_statuses if not s["ready"]]
    if init.done:
        initialized = _condition(old_conditions, "Initialized", True, now,
                                 "PodCompleted" if reason == "PodCompleted" else None)
    else:
        initialized = _condition(old_conditions, "Initialized", False, now, "ContainersNotInitialized",
                                 f"containers with incomplete status: [{' '.join(incomplete)}]")
    conditions = [
        initialized,
        _condition(old_conditions, "Ready", all_ready, now, reason, message),
        _condition(old_conditions, "ContainersReady", all_ready, now, reason, message),
        scheduled,
    ]
    status: dict[str, Any] = {k: v for k, v in old.items() if k not in ("reason", "message")}
    status.update(
        phase=phase,
        conditions=conditions,
        hostIP=host_ip,
        hostIPs=[{"ip": host_ip}],
        startTime=old.get("startTime") or format_time(now),
        containerStatuses=statuses,
    )
    if init_statuses:
        status["initContainerStatuses"] = init_statuses
    ip = sandbox.ip if sandbox is not None else None
    if ip:
        status["podIP"] = ip
        status["podIPs"] = [{"ip": ip}]
    elif phase in ("Pending", "Running"):
        status.pop("podIP", None)
        status.pop("podIPs", None)
    return status
