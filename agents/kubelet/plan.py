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
- otherwise ensure one ready sandbox, then the init containers (``spec.initContainers``) one at a time, in
  order, each to completion (exit 0) before the next (``init_progress``): a failed one is retried with
  back-off unless the restart policy is Never, in which case the pod fails and nothing more runs; the
  init containers are done once each succeeded, or once an app container ran in this sandbox;
- then each app container: start it (attempt 0), restart an exited one when the restart policy says so
  (after its crash-loop back-off), kill one whose liveness probe failed, start one left created, or wait
  for the back-off of a failed start (image pull, create error);
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
    RESTART_NEVER,
    RESTART_ON_FAILURE,
    container_config,
    containers_of,
    grace_period,
    init_containers_of,
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


@dataclass(frozen=True, slots=True)
class BackingOff:
    """A container held back by its back-off this time (the kubelet says so in a ``BackOff`` event)."""

    name: str
    image: str
    reason: str  # CrashLoopBackOff | ImagePullBackOff | the failed start's reason (CreateContainerError, ...)
    wait: float


Action = CreateSandbox | RemoveSandbox | RunContainer | StartCreated | StopContainer | RemoveContainer | FinishDeletion


@dataclass(frozen=True, slots=True)
class Plan:
    actions: tuple[Action, ...] = ()
    requeue_after: float | None = None
    """Look at the pod again after this many seconds (a back-off ending), even if nothing changes."""
    backoffs: tuple[BackingOff, ...] = ()
    """Containers not started this time because of a back-off (nothing to do; events tell them)."""


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


def init_restart_policy(policy: str) -> str:
    """Init containers are retried on failure unless the pod never restarts (Always acts as OnFailure)."""
    return RESTART_NEVER if policy == RESTART_NEVER else RESTART_ON_FAILURE


@dataclass(frozen=True, slots=True)
class InitProgress:
    """Where a pod's init containers stand in one sandbox."""

    done: bool  # every init container succeeded (or an app container already ran): app containers may run
    failed: str | None = None  # the init container that failed for good (restartPolicy Never): the pod fails
    current: str | None = None  # the init container being run or waited for
    decisions: Mapping[str, ContainerDecision] = field(default_factory=dict)  # init containers looked at

    @property
    def pending(self) -> bool:
        return not self.done and self.failed is None


def init_progress(
    pod: Obj, by_name: Mapping[str, Sequence[RuntimeContainer]], notes: PodNotes, now: float, *, cap: float
) -> InitProgress:
    """The first init container not yet succeeded, and what to do with it (as Kubernetes'
    ``findNextInitContainerToRun``). Init containers after it have no decision yet."""
    specs = init_containers_of(pod)
    if not specs or any(by_name.get(str(c.get("name"))) for c in containers_of(pod)):
        return InitProgress(done=True)
    policy = init_restart_policy(restart_policy(pod))
    decisions: dict[str, ContainerDecision] = {}
    for spec in specs:
        name = str(spec.get("name"))
        attempts = by_name.get(name, [])
        decision = decisions[name] = decide_container(name, attempts, policy, notes, now, cap=cap)
        if decision.kind == "done" and attempts and attempts[-1].exit_code == 0:
            continue
        if decision.kind == "done":
            return InitProgress(done=False, failed=name, decisions=decisions)
        return InitProgress(done=False, current=name, decisions=decisions)
    return InitProgress(done=True, decisions=decisions)


@dataclass
class _Builder:
    """Actions and the earliest requeue, collected container by container."""

    sandbox_id: str | None
    sandbox: SandboxConfig
    extra_env: dict[str, str] | None
    grace: float
    keep_attempts: int
    notes: PodNotes = field(default_factory=PodNotes)
    pod_spec: Obj = field(default_factory=dict)
    actions: list[Action] = field(default_factory=list)
    backoffs: list[BackingOff] = field(default_factory=list)
    requeue: float | None = None

    def container(self, spec: Obj, attempts: Sequence[RuntimeContainer], decision: ContainerDecision) -> None:
        name = str(spec.get("name"))
        latest = attempts[-1] if attempts else None
        if decision.kind == "run":
            previous = latest if latest is not None and latest.state == "exited" else None
            config = container_config(spec, self.extra_env, self.pod_spec)
            self.actions.append(RunContainer(self.sandbox_id, self.sandbox, config, decision.attempt, previous))
        elif decision.kind == "start_created" and latest is not None:
            self.actions.append(StartCreated(latest.id, name))
        elif decision.kind == "kill" and latest is not None:
            self.actions.append(StopContainer(latest.id, name, self.grace, "Unhealthy"))
            self.requeue = _min_wait(self.requeue, 0.0)
        elif decision.kind in ("wait_backoff", "wait_failure"):
            self.requeue = _min_wait(self.requeue, decision.wait)
            failure = self.notes.failures.get(name)
            why = ("CrashLoopBackOff" if decision.kind == "wait_backoff" or failure is None
                   else "ImagePullBackOff" if failure.reason == "ErrImagePull" else failure.reason)
            self.backoffs.append(BackingOff(name, str(spec.get("image") or ""), why, decision.wait))
        self.prune(name, attempts)

    def prune(self, name: str, attempts: Sequence[RuntimeContainer]) -> None:
        exited = [c for c in attempts if c.state == "exited"]
        keep = max(1, self.keep_attempts)
        self.actions += [RemoveContainer(c.id, name) for c in exited[: max(0, len(exited) - keep)]]


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
    by_name = attempts_by_name(containers)
    build = _Builder(sandbox_id, sandbox_cfg, extra_env, grace_period(pod), keep_attempts, notes,
                     pod.get("spec") or {}, actions)
    init = init_progress(pod, by_name, notes, now, cap=cap)
    for spec in init_containers_of(pod):
        name = str(spec.get("name"))
        if name == init.current:
            build.container(spec, by_name.get(name, []), init.decisions[name])
        else:
            build.prune(name, by_name.get(name, []))
    if init.done:
        policy = restart_policy(pod)
        for spec in containers_of(pod):
            name = str(spec.get("name"))
            attempts = by_name.get(name, [])
            build.container(spec, attempts, decide_container(name, attempts, policy, notes, now, cap=cap))
    return Plan(tuple(build.actions), build.requeue, tuple(build.backoffs))


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
