"""Carrying out a pod's plan against the container runtime and the API (the "doing" half of the kubelet).

Runtime errors that say something about the pod (image missing, create refused, start refused) are
recorded in the pod's notes as a ``StartFailure`` with its own back-off (ErrImagePull/ImagePullBackOff,
CreateContainerError, RunContainerError) and do not fail the reconcile; errors of the runtime itself
(``RuntimeUnavailable`` and other retryable ones) propagate so that the work queue retries the pod.

The executor records the kubelet's Events where the things happen, with Kubernetes' reasons and wording:
``Pulling``/``Pulled`` (``Container image "x" already present on machine`` for a local image), ``Created``,
``Started``, ``Killing``, ``Failed`` (``Error: ErrImagePull`` and the error), ``BackOff`` for containers held
back by their back-off (``Plan.backoffs``), ``Unhealthy`` for probe failures (``probe_failed``).
Repetitions are cheap: the recorder's correlator counts, aggregates and rate-limits them.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

from agents.kubelet.backoff import next_entry
from agents.kubelet.config import KubeletConfig
from agents.kubelet.cri import (
    ContainerConfig,
    ContainerConfigError,
    ContainerCreateError,
    ContainerNotFound,
    ContainerRuntime,
    ImageNeverPull,
    ImagePullError,
    Mount,
    SandboxConfig,
    SandboxNotFound,
)
from agents.kubelet.envvars import ConfigError
from agents.kubelet.hooks import MIN_KILL_GRACE, handler_of, make_termination_log, run_hook, termination_log_path
from agents.kubelet.plan import (
    Action,
    BackingOff,
    CreateSandbox,
    FinishDeletion,
    PodNotes,
    RemoveContainer,
    RemoveSandbox,
    RunContainer,
    StartCreated,
    StartFailure,
    StopContainer,
)
from agents.kubelet.podspec import containers_of, init_containers_of
from agents.kubelet.volumes_plan import VolumeError
from protocol.errors import NotFound
from protocol.objects import Obj, meta, name_of, namespace_of, uid_of
from runtime.client import ApiClient
from runtime.events import EventRecorder

Prepare = Callable[[Obj, SandboxConfig, ContainerConfig], Awaitable[ContainerConfig]]
"""Completes a container's config before it is created (volumes set up, env resolved): ``volumes.PodVolumes``."""


class Executor:
    def __init__(
        self,
        runtime: ContainerRuntime,
        client: ApiClient,
        config: KubeletConfig,
        *,
        events: EventRecorder | None,
        log: Any,
        clock: Callable[[], float] = time.time,
        prepare: Prepare | None = None,
    ) -> None:
        self.runtime = runtime
        self.prepare = prepare
        self.client = client
        self.config = config
        self.events = events
        self.log = log
        self.clock = clock

    async def _event(self, pod: Obj | None, type_: str, reason: str, message: str) -> None:
        if self.events is not None and pod is not None:
            self.events.emit(pod, type_, reason, message)  # written in order by the recorder, not waited for

    async def backing_off(self, pod: Obj | None, backoffs: tuple[BackingOff, ...]) -> None:
        """Say which containers wait for their back-off (Kubernetes records this on every sync that waits)."""
        for b in backoffs:
            if b.reason == "CrashLoopBackOff":
                await self._event(pod, "Warning", "BackOff",
                                  f"Back-off restarting failed container {b.name} in pod {_pod_ref(pod)}")
            elif b.reason == "ImagePullBackOff":
                await self._event(pod, "Normal", "BackOff", f'Back-off pulling image "{b.image}"')
                await self._event(pod, "Warning", "Failed", "Error: ImagePullBackOff")

    async def probe_failed(self, pod: Obj | None, kind: str, container: str, output: str, warning: bool) -> None:
        """A probe of ``container`` failed, or passed with a warning (each time, as the kubelet's prober
        records them: ``Unhealthy``, ``ProbeWarning``)."""
        _ = container
        if warning:
            await self._event(pod, "Warning", "ProbeWarning", f"{kind.capitalize()} probe warning: {output}")
        else:
            await self._event(pod, "Warning", "Unhealthy", f"{kind.capitalize()} probe failed: {output}")

    async def execute(self, pod: Obj | None, actions: tuple[Action, ...], notes: PodNotes, *, key: str) -> None:
        log = self.log.bind(pod=key)
        sandbox_id: str | None = None
        stops = [a for a in actions if isinstance(a, StopContainer)]
        if stops:
            # Stop every container at once: the grace period is the pod's, not per container.
            await asyncio.gather(*(self._stop(pod, a, log) for a in stops))
        prepared: dict[int, asyncio.Future[ContainerConfig | None]] = {}
        unstarted: str | None = None  # a new sandbox that its first container's start starts (one call less)
        for i, action in enumerate(actions):
            if isinstance(action, StopContainer):
                continue
            if isinstance(action, CreateSandbox):
                after = actions[i + 1] if i + 1 < len(actions) else None
                # the container made in this sandbox next, whose start starts the sandbox (None: started alone)
                first = after if isinstance(after, RunContainer) and after.sandbox_id is None else None
                if first is not None:
                    # its volumes and config need no sandbox: made while Podman makes the sandbox
                    prepared[i + 1] = asyncio.ensure_future(self._prepared(pod, first, notes, log))
                try:
                    sandbox_id = await self._create_sandbox(pod, action, notes, log, start=first is None)
                finally:
                    if sandbox_id is None and prepared:  # (its volumes go with the pod, as any)
                        await asyncio.gather(*prepared.values(), return_exceptions=True)
                if sandbox_id is None:
                    return  # recorded as a failure of every container; retried after its back-off
                unstarted = sandbox_id if first is not None else None
            elif isinstance(action, RemoveSandbox):
                log.info("removing sandbox", sandbox=action.sandbox_id[:12], reason=action.reason)
                await self.runtime.remove_sandbox(action.sandbox_id)
            elif isinstance(action, RunContainer):
                target = action.sandbox_id or sandbox_id
                if target is not None:
                    started = await self._run(pod, target, action, notes, log, prepared.pop(i, None))
                    if started and target == unstarted:
                        unstarted = None  # Podman started the sandbox's infra container first
            elif isinstance(action, StartCreated):
                await self._start_created(pod, action, notes, log)
            elif isinstance(action, RemoveContainer):
                await self.runtime.remove_container(action.container_id)
            elif isinstance(action, FinishDeletion):
                await self._finish_deletion(pod, action, log)
        if unstarted is not None:  # its first container did not start: the sandbox is made ready alone
            await self._start_sandbox(pod, unstarted, notes, log)

    async def _stop(self, pod: Obj | None, action: StopContainer, log: Any) -> None:
        log.info("stopping container", container=action.name, id=action.container_id[:12],
                 grace=action.grace, reason=action.reason)
        if action.reason == "Unhealthy":
            await self._event(pod, "Normal", "Killing",
                              f"Container {action.name} failed liveness probe, will be restarted")
        else:
            await self._event(pod, "Normal", "Killing", f"Stopping container {action.name}")
        grace = float(action.grace)
        spec = _spec_of(pod, action.name)
        handler = handler_of(spec, "preStop")
        if handler is not None and grace > 0 and pod is not None:
            started = self.clock()
            try:
                failed = await asyncio.wait_for(run_hook(
                    self.runtime, handler, container_id=action.container_id, container=spec or {},
                    pod_ip=_pod_ip(pod), node_address=self.config.address, timeout=grace), grace)
            except TimeoutError:
                failed = f"PreStopHook for Container {action.name!r} did not finish within {grace:.0f}s"
            if failed is not None:
                log.warning("preStop hook failed", container=action.name, error=failed)
                await self._event(pod, "Warning", "FailedPreStopHook", failed)
            grace = max(MIN_KILL_GRACE, grace - (self.clock() - started))
        try:
            await self.runtime.stop_container(action.container_id, grace)
        except ContainerNotFound:
            pass

    async def _create_sandbox(self, pod: Obj | None, action: CreateSandbox, notes: PodNotes, log: Any,
                              start: bool = True) -> str | None:
        try:
            return await self.runtime.create_sandbox(action.config, start=start)
        except ContainerCreateError as exc:
            await self._sandbox_failed(pod, exc, notes, log)
            return None

    async def _start_sandbox(self, pod: Obj | None, sandbox_id: str, notes: PodNotes, log: Any) -> None:
        try:
            await self.runtime.start_sandbox(sandbox_id)
        except ContainerCreateError as exc:  # left not ready: the next reconcile makes it again
            await self._sandbox_failed(pod, exc, notes, log)

    async def _sandbox_failed(self, pod: Obj | None, exc: ContainerCreateError, notes: PodNotes, log: Any) -> None:
        """Recorded as a failure of every container (retried after its back-off), with its event."""
        log.warning("could not create sandbox", error=str(exc))
        await self._event(pod, "Warning", "FailedCreatePodSandBox", f"Failed to create pod sandbox: {exc}")
        now = self.clock()
        for c in containers_of(pod) + init_containers_of(pod) if pod is not None else []:
            self._fail(notes, str(c.get("name")), "CreateContainerError", f"sandbox: {exc}", now)

    def _fail(self, notes: PodNotes, name: str, reason: str, message: str, now: float) -> None:
        previous = notes.failures.get(name)
        entry = next_entry(previous.backoff if previous else None, now, base=self.config.backoff_base,
                           cap=self.config.backoff_max)
        notes.failures[name] = StartFailure(reason, message, now, entry)

    async def _prepared(self, pod: Obj | None, action: RunContainer, notes: PodNotes,
                        log: Any) -> ContainerConfig | None:
        """The container's config completed (volumes set up, env resolved, termination log made), or None
        when that failed (recorded as the container's failure, with its event). Needs no sandbox."""
        name = action.config.name
        now = self.clock()
        clog = log.bind(container=name, attempt=action.attempt)
        if action.previous is not None:
            prev = action.previous
            ran_for = (prev.finished_at or now) - (prev.started_at or now)
            notes.backoff[name] = next_entry(notes.backoff.get(name), now, base=self.config.backoff_base,
                                             cap=self.config.backoff_max, ran_for=ran_for,
                                             reset_after=self.config.backoff_reset)
            clog.info("restarting container", exit_code=prev.exit_code, next_backoff=notes.backoff[name].delay)
        config = action.config
        if self.prepare is not None and pod is not None:
            try:
                config = await self.prepare(pod, action.sandbox, config)
            except VolumeError as exc:  # Kubernetes: ContainerCreating, event FailedMount
                clog.warning("volume setup failed", error=str(exc))
                self._fail(notes, name, "ContainerCreating", str(exc), now)
                await self._event(pod, "Warning", "FailedMount", str(exc))
                return None
            except ConfigError as exc:
                clog.warning("container config failed", error=str(exc))
                self._fail(notes, name, "CreateContainerConfigError", str(exc), now)
                await self._event(pod, "Warning", "Failed", f"Error: {exc}")
                return None
        spec = _spec_of(pod, name)
        if pod is not None and spec is not None and spec.get("terminationMessagePath"):
            path = termination_log_path(self.config.state_dir, uid_of(pod), name, action.attempt)
            if self.runtime.reads_termination_logs:  # a directory and a file per attempt: ~0.2 ms, and a thread
                await asyncio.to_thread(make_termination_log, path)
            config = replace(config, termination_log=path, mounts=(
                *config.mounts, Mount(str(spec["terminationMessagePath"]), path)))
        return config

    async def _run(self, pod: Obj | None, sandbox_id: str, action: RunContainer, notes: PodNotes, log: Any,
                   prepared: asyncio.Future[ContainerConfig | None] | None = None) -> bool:
        """Create and start the container; whether it started."""
        name = action.config.name
        now = self.clock()
        clog = log.bind(container=name, attempt=action.attempt)
        config = await (prepared if prepared is not None else self._prepared(pod, action, notes, log))
        if config is None:
            return False  # recorded: the volumes or the config failed
        image = config.image
        pulled: list[float] = []  # when the runtime began pulling the image (none: it was present)

        async def pulling() -> None:  # told by the runtime just before it pulls: no presence check of our own
            pulled.append(time.monotonic())
            await self._event(pod, "Normal", "Pulling", f'Pulling image "{image}"')

        try:
            container_id = await self.runtime.create_container(sandbox_id, action.sandbox, config,
                                                               action.attempt, on_pull=pulling)
        except ImageNeverPull as exc:
            clog.warning("image not present, pull policy Never", image=action.config.image)
            self._fail(notes, name, "ErrImageNeverPull", str(exc), now)
            await self._event(pod, "Warning", "ErrImageNeverPull", str(exc))
            return False
        except ContainerConfigError as exc:
            clog.warning("container config refused", error=str(exc))
            self._fail(notes, name, "CreateContainerConfigError", str(exc), now)
            await self._event(pod, "Warning", "Failed", f"Error: {exc}")
            return False
        except ImagePullError as exc:
            clog.warning("image pull failed", image=image, error=str(exc))
            self._fail(notes, name, "ErrImagePull", str(exc), now)
            await self._event(pod, "Warning", "Failed", f'Failed to pull image "{image}": {exc}')
            await self._event(pod, "Warning", "Failed", "Error: ErrImagePull")
            return False
        except SandboxNotFound:
            raise  # the sandbox vanished: the next reconcile creates a new one
        except ContainerCreateError as exc:
            clog.warning("container create failed", error=str(exc))
            self._fail(notes, name, "CreateContainerError", str(exc), now)
            await self._event(pod, "Warning", "Failed", f"Error: {exc}")
            return False
        if not pulled:
            await self._event(pod, "Normal", "Pulled", f'Container image "{image}" already present on machine')
        else:
            took = time.monotonic() - pulled[0]
            await self._event(pod, "Normal", "Pulled",
                              f'Successfully pulled image "{image}" in {took:.3f}s ({took:.3f}s including waiting)')
        await self._event(pod, "Normal", "Created", f"Created container {name}")
        return await self._start(pod, container_id, name, notes, clog, action.sandbox.pod_ip)

    async def _start(self, pod: Obj | None, container_id: str, name: str, notes: PodNotes, log: Any,
                     pod_ip: str = "") -> bool:
        """Start the container (and run its postStart hook); whether it started."""
        try:
            await self.runtime.start_container(container_id)
        except ContainerCreateError as exc:
            log.warning("container start failed", error=str(exc))
            self._fail(notes, name, "RunContainerError", str(exc), self.clock())
            await self._event(pod, "Warning", "Failed", f"Error: {exc}")
            return False
        notes.failures.pop(name, None)
        log.info("container started", id=container_id[:12])
        await self._event(pod, "Normal", "Started", f"Started container {name}")
        await self._post_start(pod, container_id, name, log, pod_ip)
        return True

    async def _post_start(self, pod: Obj | None, container_id: str, name: str, log: Any, pod_ip: str) -> None:
        """Kubernetes runs postStart right after the start; a failed hook kills the container (restarted
        per the restart policy)."""
        spec = _spec_of(pod, name)
        handler = handler_of(spec, "postStart")
        if handler is None or pod is None:
            return
        grace = float((pod.get("spec") or {}).get("terminationGracePeriodSeconds") or 30)
        failed = await run_hook(self.runtime, handler, container_id=container_id, container=spec or {},
                                pod_ip=pod_ip or _pod_ip(pod), node_address=self.config.address, timeout=grace)
        if failed is None:
            return
        log.warning("postStart hook failed; killing the container", error=failed)
        await self._event(pod, "Warning", "FailedPostStartHook", failed)
        try:
            await self.runtime.stop_container(container_id, MIN_KILL_GRACE)
        except ContainerNotFound:
            pass

    async def _start_created(self, pod: Obj | None, action: StartCreated, notes: PodNotes, log: Any) -> None:
        await self._start(pod, action.container_id, action.name, notes, log.bind(container=action.name))

    async def _finish_deletion(self, pod: Obj | None, action: FinishDeletion, log: Any) -> None:
        rv = meta(pod).get("resourceVersion") if pod is not None else None
        try:
            await self.client.delete("Pod", action.name, action.namespace, grace_period=0, resource_version=rv)
            log.info("pod deleted", uid=action.uid)
        except NotFound:
            pass


def _pod_ref(pod: Obj | None) -> str:
    """A pod as the kubelet names it in messages: ``name_namespace(uid)``."""
    return f"{name_of(pod)}_{namespace_of(pod)}({uid_of(pod)})" if pod is not None else ""


def _spec_of(pod: Obj | None, name: str) -> Obj | None:
    if pod is None:
        return None
    return next((c for c in containers_of(pod) + init_containers_of(pod) if c.get("name") == name), None)


def _pod_ip(pod: Obj) -> str | None:
    ip = (pod.get("status") or {}).get("podIP")
    return str(ip) if ip else None
