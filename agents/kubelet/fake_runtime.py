"""An in-memory ``ContainerRuntime`` for hollow nodes (scale tests in the spirit of kubemark and kwok).

Nothing runs: a started container is "running" at once, and its later state is computed lazily from
timestamps when someone lists it. There are no tasks, threads or timers per container, and records use
``__slots__``, so one process can hold 150,000 pods (see tests/agents/test_fake_runtime.py).

Scripting a container's life, through its environment (``ContainerConfig.env``):
- ``SHOAL_FAKE_EXIT_AFTER=<seconds>``: the container exits that many seconds after it started
  (``0`` = a crash loop). Without it the container runs until stopped.
- ``SHOAL_FAKE_EXIT_CODE=<int>``: the exit code it then reports (default ``0``).
- ``SHOAL_FAKE_EXEC_EXIT_CODE=<int>``: what every exec in it returns (default ``0``, i.e. probes pass).
- ``SHOAL_FAKE_CPU_MILLICORES=<int>`` / ``SHOAL_FAKE_MEMORY_BYTES=<int>``: the usage it reports while
  running (``container_usage``: CPU time grows at that rate from its start; default 0 and 0).
Other behaviour:
- images listed in ``missing_images``, and any image from a registry under the reserved ``.invalid``
  domain (e.g. ``registry.invalid/app:1``), are "not pullable": ``ImagePullError``;
- ``stop_container`` ends a running container with exit code 143 (it exits on SIGTERM), or 137 with no grace
  period (SIGKILL at once, as Podman does); a container never started stays "created", as in Podman;
- ``start_container`` of a running container does nothing (Podman answers 304 Not Modified), and of an
  exited one runs it again;
- what the fake does is checked against Podman by tests/agents/test_cri_contract.py;
- pods get unique IPs from ``10.128.0.0/9`` in creation order; logs are two synthetic lines.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import replace

from agents.kubelet.cri import (
    ContainerConfig,
    ContainerConfigError,
    ContainerCreateError,
    ContainerNotFound,
    ContainerState,
    ContainerUsage,
    ImageNeverPull,
    ImagePullError,
    OnPull,
    PodKey,
    RuntimeContainer,
    RuntimeSandbox,
    SandboxConfig,
    SandboxNotFound,
)
from agents.kubelet.security import check_run_as_non_root
from protocol.objects import format_time

EXIT_AFTER_ENV = "SHOAL_FAKE_EXIT_AFTER"
EXIT_CODE_ENV = "SHOAL_FAKE_EXIT_CODE"
EXEC_EXIT_CODE_ENV = "SHOAL_FAKE_EXEC_EXIT_CODE"
CPU_ENV = "SHOAL_FAKE_CPU_MILLICORES"
MEMORY_ENV = "SHOAL_FAKE_MEMORY_BYTES"
STOP_EXIT_CODE = 143
KILL_EXIT_CODE = 137


class _Sandbox:
    __slots__ = ("config", "container_ids", "created_at", "id", "ip", "name", "namespace", "node_name", "pod_uid",
                 "view")

    def __init__(self, sandbox_id: str, config: SandboxConfig, ip: str, now: float) -> None:
        self.id = sandbox_id
        self.pod_uid = config.pod_uid
        self.namespace = config.namespace
        self.name = config.name
        self.node_name = config.node_name
        self.config = config  # recorded: host aliases, shared PID namespace, sysctls, hostname
        self.ip = ip
        self.created_at = now
        self.container_ids: list[str] = []
        self.view = RuntimeSandbox(id=sandbox_id, pod_uid=self.pod_uid, namespace=self.namespace, name=self.name,
                                   node_name=self.node_name, ip=ip, state="ready", created_at=now)
        """What listings return: a sandbox never changes, so every listing shares one immutable record."""


class _Container:
    __slots__ = (
        "attempt",
        "config",
        "env",
        "exec_exit_code",
        "exit_after",
        "exit_code",
        "finished_at",
        "id",
        "image",
        "mounts",
        "name",
        "sandbox",
        "started_at",
        "view",
    )

    def __init__(self, container_id: str, sandbox: _Sandbox, config: ContainerConfig, attempt: int) -> None:
        self.id = container_id
        self.sandbox = sandbox
        self.name = config.name
        self.image = config.image
        self.env = dict(config.env)
        self.mounts = tuple(config.mounts)  # recorded, as a real runtime would mount them
        self.config = config  # recorded: security context, tty/stdin, pull policy, termination log
        self.attempt = attempt
        after = config.env.get(EXIT_AFTER_ENV)
        self.exit_after: float | None = float(after) if after not in (None, "") else None
        self.exit_code = int(config.env.get(EXIT_CODE_ENV) or 0)
        self.exec_exit_code = int(config.env.get(EXEC_EXIT_CODE_ENV) or 0)
        self.started_at: float | None = None
        self.finished_at: float | None = None  # set by stop; scripted exits are computed
        self.view: RuntimeContainer | None = None
        """The last listing's record, reused while the observed state stays the same (most relists)."""

    def observe(self, now: float) -> tuple[ContainerState, int | None, float | None]:
        """(state, exit code, finished at) as of ``now``."""
        if self.started_at is None:
            return "created", None, None
        if self.finished_at is not None:
            return "exited", self.exit_code, self.finished_at
        if self.exit_after is not None and now >= self.started_at + self.exit_after:
            return "exited", self.exit_code, self.started_at + self.exit_after
        return "running", None, None


class FakeRuntime:
    """``ContainerRuntime`` whose containers exist only as records (one instance can serve many nodes)."""

    reads_termination_logs = False
    """Its containers report no termination message: the kubelet makes no file for one (as kubemark's hollow
    kubelet, whose file system is a fake). The config still names the file and its mount."""

    def __init__(self, *, clock: Callable[[], float] = time.time, missing_images: Iterable[str] = ()) -> None:
        self._clock = clock
        self._missing = frozenset(missing_images)
        self._ids = itertools.count(1)
        self._sandboxes: dict[str, _Sandbox] = {}
        self._containers: dict[str, _Container] = {}
        self._by_node: dict[str, set[str]] = {}  # node -> sandbox ids
        self._by_uid: dict[str, str] = {}  # pod uid -> sandbox id

    def _next_ip(self) -> tuple[str, str]:
        n = next(self._ids)
        return f"fake-{n:x}", f"10.{128 + (n >> 16) % 128}.{(n >> 8) & 255}.{n & 255}"

    async def list_sandboxes(self, node_name: str, *, pod: PodKey | None = None) -> list[RuntimeSandbox]:
        sandboxes = self._sandboxes
        if pod is not None:
            return [s.view for i in self._by_node.get(node_name, ())
                    if ((s := sandboxes[i]).namespace, s.name) == pod]
        return [sandboxes[i].view for i in self._by_node.get(node_name, ())]

    async def list_containers(self, node_name: str, *, pod: PodKey | None = None) -> list[RuntimeContainer]:
        now = self._clock()
        result = []
        for sandbox_id in self._by_node.get(node_name, ()):
            sandbox = self._sandboxes[sandbox_id]
            if pod is not None and (sandbox.namespace, sandbox.name) != pod:
                continue
            for cid in sandbox.container_ids:
                c = self._containers[cid]
                state, code, finished = c.observe(now)
                view = c.view
                if (view is None or view.state != state or view.exit_code != code or view.finished_at != finished
                        or view.started_at != c.started_at):
                    view = c.view = RuntimeContainer(
                        id=c.id,
                        sandbox_id=sandbox.id,
                        pod_uid=sandbox.pod_uid,
                        name=c.name,
                        attempt=c.attempt,
                        state=state,
                        exit_code=code,
                        started_at=c.started_at,
                        finished_at=finished,
                        image=c.image,
                    )
                result.append(view)
        return result

    async def start_sandbox(self, sandbox_id: str) -> None:
        record = self._sandboxes.get(sandbox_id)
        if record is None:
            raise SandboxNotFound(sandbox_id)
        if record.view.state != "ready":
            record.view = replace(record.view, state="ready")

    async def create_sandbox(self, config: SandboxConfig, *, start: bool = True) -> str:
        existing = self._by_uid.get(config.pod_uid)
        if existing is not None:
            return existing  # idempotent, like re-creating a Podman pod of the same name
        sandbox_id, ip = self._next_ip()
        record = self._sandboxes[sandbox_id] = _Sandbox(sandbox_id, config, config.pod_ip or ip, self._clock())
        if not start:
            record.view = replace(record.view, state="notready")  # until its first container starts
        self._by_node.setdefault(config.node_name, set()).add(sandbox_id)
        self._by_uid[config.pod_uid] = sandbox_id
        return sandbox_id

    async def create_container(
        self, sandbox_id: str, sandbox: SandboxConfig, config: ContainerConfig, attempt: int,
        *, on_pull: OnPull | None = None,
    ) -> str:
        record = self._sandboxes.get(sandbox_id)
        if record is None:
            raise SandboxNotFound(sandbox_id)
        present = self._has_image(config.image)
        if not present and config.image_pull_policy == "Never":
            raise ImageNeverPull(f'Container image "{config.image}" is not present with pull policy of Never')
        if (not present or config.image_pull_policy == "Always") and on_pull is not None:
            await on_pull()  # the fake "pull" of a missing image fails; of a present one, succeeds at once
        if not present:
            raise ImagePullError(f"image {config.image} not present (fake runtime)")
        refused = check_run_as_non_root(config.security, "")  # fake images run as root
        if refused is not None:
            raise ContainerConfigError(refused)
        for cid in record.container_ids:
            existing = self._containers[cid]
            if existing.name == config.name and existing.attempt == attempt:
                raise ContainerCreateError(f"container {config.name} attempt {attempt} already exists")
        container_id = f"{sandbox_id}-c{next(self._ids):x}"
        self._containers[container_id] = _Container(container_id, record, config, attempt)
        record.container_ids.append(container_id)
        return container_id

    def _get(self, container_id: str) -> _Container:
        c = self._containers.get(container_id)
        if c is None:
            raise ContainerNotFound(container_id)
        return c

    async def start_container(self, container_id: str) -> None:
        c = self._get(container_id)
        state = c.observe(self._clock())[0]
        if state == "running":
            return  # already running: nothing to do, as Podman
        c.started_at = self._clock()  # an exited one runs again, as in Podman (the kubelet makes a new attempt)
        c.finished_at = None
        if c.sandbox.view.state != "ready":  # as Podman, which starts the pod's infra container first
            c.sandbox.view = replace(c.sandbox.view, state="ready")

    async def stop_container(self, container_id: str, grace_seconds: float) -> None:
        c = self._get(container_id)
        now = self._clock()
        if c.observe(now)[0] == "running":
            c.finished_at = now
            c.exit_code = STOP_EXIT_CODE if grace_seconds > 0 else KILL_EXIT_CODE

    async def remove_container(self, container_id: str) -> None:
        c = self._containers.pop(container_id, None)
        if c is not None:
            c.sandbox.container_ids.remove(container_id)

    async def remove_sandbox(self, sandbox_id: str) -> None:
        s = self._sandboxes.pop(sandbox_id, None)
        if s is None:
            return
        for cid in s.container_ids:
            self._containers.pop(cid, None)
        self._by_uid.pop(s.pod_uid, None)
        nodes = self._by_node.get(s.node_name)
        if nodes is not None:
            nodes.discard(sandbox_id)
            if not nodes:
                del self._by_node[s.node_name]

    async def exec_in_container(
        self, container_id: str, cmd: list[str], timeout_seconds: float
    ) -> tuple[int, str]:
        c = self._get(container_id)
        if c.observe(self._clock())[0] != "running":
            raise ContainerCreateError(f"container {container_id} is not running")
        return c.exec_exit_code, ""

    async def logs(
        self, container_id: str, tail: int | None = None, follow: bool = False, *, timestamps: bool = False,
        since: float | None = None,
    ) -> AsyncIterator[str]:
        c = self._get(container_id)
        now = self._clock()
        state, code, finished = c.observe(now)
        started = c.started_at if c.started_at is not None else now
        lines = [(started, f"fake container {c.name} attempt {c.attempt} started")]
        if state == "exited":
            ended = finished if finished is not None else now
            lines.append((ended, f"fake container {c.name} exited with code {code}"))
        lines = [(t, line) for t, line in lines if since is None or t >= since]
        for t, line in lines[-tail:] if tail is not None and tail > 0 else ([] if tail == 0 else lines):
            yield f"{format_time(t)} {line}" if timestamps else line

    async def container_usage(self, container_ids: list[str]) -> list[ContainerUsage]:
        now = self._clock()
        out = []
        for container_id in container_ids:
            container = self._containers.get(container_id)
            if container is None or container.started_at is None or container.observe(now)[0] != "running":
                continue
            millicores = int(container.env.get(CPU_ENV) or 0)
            out.append(ContainerUsage(container_id, int(millicores * 1_000_000 * (now - container.started_at)),
                                      int(container.env.get(MEMORY_ENV) or 0), now))
        return out

    async def image_present(self, image: str) -> bool:
        return self._has_image(image)

    def _has_image(self, image: str) -> bool:
        return image not in self._missing and not image.split("/", 1)[0].endswith(".invalid")

    async def close(self) -> None:
        self._sandboxes.clear()
        self._containers.clear()
        self._by_node.clear()
        self._by_uid.clear()

    def counts(self) -> tuple[int, int]:
        """(sandboxes, containers) held, for scale tests and metrics."""
        return len(self._sandboxes), len(self._containers)
