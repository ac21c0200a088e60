"""Deciding what to do for one pod: ``plan(pod, actual runtime state, kubelet notes, now) -> Plan``. Pure.

The worker (``executor.py``) carries the actions out in order; the status (``status.py``) is computed
from the same inputs with the same per-container decision (``decide_container``), so what the kubelet does
and what it reports never disagree.

Rules, as the Kubernetes kubelet's ``SyncPod``/``computePodActions``:
- no pod (deleted, or never ours): remove every sandbox of that key;
- a sandbox of another pod with the same name (an older uid): remove it;
- a pod being deleted: stop its containers with the grace period, remove the sandbox, then delete the pod
  object for good (``gracePeriodSeconds=0``);
- a pod already reported terminal (Succeeded/Failed) is left alone: its stopped containers stay (logs);
- otherwise ensure one ready sandbox, then each container: start it (attempt 0), restart an exited one
  when the restart policy says so (after its crash-loop back-off), kill one whose liveness probe failed,
  start one left created, or wait for the back-off of a failed start (image pull, create error);
- exited attempts beyond ``keep_attempts`` per container are removed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from agents.kubelet.backoff import BackoffEntry, remaining
from agents.kubelet.cri import (
    ContainerConfig,
    RuntimeContainer,
    RuntimeSandbox,
    SandboxConfig,
)
from agents.kubelet.podspec import (
    container_config,
    containers_of,
    grace_period,
    restart_policy,
    sandbox_config,
    should_restart,
)
from protocol.objects import Obj, is_deleting, name_of, namespace_of, pod_is_terminal, uid_of


@dataclass(frozen=True, slots=True)
class StartFailure:
    """Why the last attempt to start a container failed, and the back-off before the next try."""

    reason: str  # ErrImagePull | CreateContainerError | RunContainerError
    message: str
    at: float
    backoff: BackoffEntry


@dataclass
class PodNotes:
    """What the kubelet remembers about one pod that the runtime cannot tell it (lost on restart)."""

    backoff: dict[str, BackoffEntry] = field(default_factory=dict)  # container name -> crash back-off
    failures: dict[str, StartFailure] = field(default_factory=dict)  # container name -> failed start
    liveness_failed: set[str] = field(default_factory=set)  # container ids to kill and restart


@dataclass(frozen=True, slots=True)
class PodRuntimeView:
    """The runtime's objects for one pod key (``namespace/name``), whatever their pod uid."""

    sandboxes: Sequence[RuntimeSandbox] = ()
    containers: Sequence[RuntimeContainer] = ()

    def for_uid(self, uid: str) -> tuple[list[RuntimeSandbox], list[RuntimeContainer]]:
        return ([s for s in self.sandboxes if s.pod_uid == uid], [c for c in self.containers if c.pod_uid == uid])


# -- actions ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CreateSandbox:
    config: SandboxConfig


@dataclass(frozen=True, slots=True)
class RemoveSandbox:
    sandbox_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class RunContainer:
    """Create and start attempt ``attempt``; ``sandbox_id`` None means the sandbox created just before."""

    sandbox_id: str | None
    sandbox: SandboxConfig
    config: ContainerConfig
    attempt: int
    previous: RuntimeContainer | None = None  # the exited attempt this one replaces (for back-off)


@dataclass(frozen=True, slots=True)
class StartCreated:
    container_id: str
    name: str


@dataclass(frozen=True, slots=True)
class StopContainer:
    container_id: str
    name: str
    grace: float
    reason: str  # Killing (deletion) | Unhealthy (liveness)


@dataclass(frozen=True, slots=True)
class RemoveContainer:
    container_id: str
    name: str


@dataclass(frozen=True, slots=True)
class FinishDeletion:
    namespace: str
    name: str
    uid: str


Action = CreateSandbox | RemoveSandbox | RunContainer | StartCreated | StopContainer | RemoveContainer | FinishDeletion


@dataclass(frozen=True, slots=True)
class Plan:
    actions: tuple[Action, ...] = ()
    requeue_after: float | None = None
    """Look at the pod again after this many seconds (a back-off ending), even if nothing changes."""


# -- per container ------------------------------------------------------------------------------

DecisionKind = Literal["run", "start_created", "wait_backoff", "wait_failure", "kill", "keep", "done"]


@dataclass(frozen=True, slots=True)
class ContainerDecision:
    kind: DecisionKind
    wait: float = 0.0
    attempt: int = 0


def attempts_by_name(containers: Sequence[RuntimeContainer]) -> dict[str, list[RuntimeContainer]]:
    """Each container name's attempts, oldest first."""
    out: dict[str, list[RuntimeContainer]] = {}
    for c in sorted(containers, key=lambda c: (c.attempt, c.started_at or 0.0)):
        out.setdefault(c.name, []).append(c)
    return out


def decide_container(
    name: str, attempts: Sequence[RuntimeContainer], policy: str, notes: PodNotes, now: float, *, cap: float
) -> ContainerDecision:
    latest = attempts[-1] if attempts else None
    failure = notes.failures.get(name)
    if latest is None or (latest.state == "exited" and should_restart(policy, latest.exit_code)):
        next_attempt = latest.attempt + 1 if latest is not None else 0
        if failure is not None:
            wait = remaining(failure.backoff, failure.at, now, cap)
            if wait > 0:
                return ContainerDecision("wait_failure", wait, next_attempt)
        if latest is not None:
            wait = remaining(notes.backoff.get(name), latest.finished_at or now, now, cap)
            if wait > 0:
                return ContainerDecision("wait_backoff", wait, next_attempt)
        return ContainerDecision("run", 0.0, next_attempt)
    if latest.state == "created":
        if failure is not None:
            wait = remaining(failure.backoff, failure.at, now, cap)
            if wait > 0:
                return ContainerDecision("wait_failure", wait, latest.attempt)
        return ContainerDecision("start_created", 0.0, latest.attempt)
    if latest.state == "running":
        return ContainerDecision("kill" if latest.id in notes.liveness_failed else "keep", 0.0, latest.attempt)
    if latest.state == "exited":
        return ContainerDecision("done", 0.0, latest.attempt)
    return ContainerDecision("keep", 0.0, latest.attempt)


def _min_wait(current: float | None, wait: float) -> float:
    return wait if current is None else min(current, wait)


def plan(
    pod: Obj | None,
    view: PodRuntimeView,
    notes: PodNotes,
    now: float,
    *,
    node_name: str,
    address: str,
    pod_ip: str = "",
    extra_env: dict[str, str] | None = None,
    cap: float = 300.0,
    keep_attempts: int = 2,
) -> Plan:
    if pod is None:
        return Plan(tuple(RemoveSandbox(s.id, "pod no longer exists on this node") for s in view.sandboxes))
    uid = uid_of(pod)
    actions: list[Action] = [
        RemoveSandbox(s.id, "sandbox of an older pod with the same name") for s in view.sandboxes if s.pod_uid != uid
    ]
    sandboxes, containers = view.for_uid(uid)
    if is_deleting(pod):
        grace = grace_period(pod)
        actions += [
            StopContainer(c.id, c.name, grace, "Killing") for c in containers if c.state in ("running", "created")
        ]
        actions += [RemoveSandbox(s.id, "pod deleted") for s in sandboxes]
        actions.append(FinishDeletion(namespace_of(pod) or "default", name_of(pod), uid))
        return Plan(tuple(actions))
    if pod_is_terminal(pod):
        return Plan(tuple(actions))
    sandbox_cfg = sandbox_config(pod, node_name, address, pod_ip)
    ready = sorted((s for s in sandboxes if s.state == "ready"), key=lambda s: s.created_at or 0.0)
    sandbox_id: str | None
    if ready:
        sandbox_id = ready[-1].id
        actions += [RemoveSandbox(s.id, "duplicate sandbox") for s in sandboxes if s.id != sandbox_id]
    else:
        actions += [RemoveSandbox(s.id, "sandbox not ready") for s in sandboxes]
        actions.append(CreateSandbox(sandbox_cfg))
        sandbox_id = None
        containers = []  # they go with their sandbox
    policy = restart_policy(pod)
    by_name = attempts_by_name(containers)
    requeue: float | None = None
    grace = grace_period(pod)
    for spec in containers_of(pod):
        name = str(spec.get("name"))
        attempts = by_name.get(name, [])
        decision = decide_container(name, attempts, policy, notes, now, cap=cap)
        latest = attempts[-1] if attempts else None
        if decision.kind == "run":
            previous = latest if latest is not None and latest.state == "exited" else None
            config = container_config(spec, extra_env)
            actions.append(RunContainer(sandbox_id, sandbox_cfg, config, decision.attempt, previous))
        elif decision.kind == "start_created" and latest is not None:
            actions.append(StartCreated(latest.id, name))
        elif decision.kind == "kill" and latest is not None:
            actions.append(StopContainer(latest.id, name, grace, "Unhealthy"))
            requeue = _min_wait(requeue, 0.0)
        elif decision.kind in ("wait_backoff", "wait_failure"):
            requeue = _min_wait(requeue, decision.wait)
        exited = [c for c in attempts if c.state == "exited"]
        keep = max(1, keep_attempts)
        actions += [RemoveContainer(c.id, name) for c in exited[: max(0, len(exited) - keep)]]
    return Plan(tuple(actions), requeue)


def runtime_views(
    sandboxes: Sequence[RuntimeSandbox], containers: Sequence[RuntimeContainer]
) -> Mapping[str, PodRuntimeView]:
    """Group a node's runtime objects by pod key (``namespace/name``, from the sandbox labels)."""
    key_of_uid: dict[str, str] = {}
    grouped: dict[str, tuple[list[RuntimeSandbox], list[RuntimeContainer]]] = {}
    for s in sandboxes:
        key = f"{s.namespace}/{s.name}"
        key_of_uid[s.pod_uid] = key
        grouped.setdefault(key, ([], []))[0].append(s)
    for c in containers:
        found = key_of_uid.get(c.pod_uid)
        if found is not None:
            grouped[found][1].append(c)
    return {key: PodRuntimeView(tuple(s), tuple(c)) for key, (s, c) in grouped.items()}
