"""The kubelet's container-runtime port: what a node agent may ask of a container runtime.

Pure contract, no I/O: frozen dataclasses describing desired sandboxes (Pods) and containers, the
observed state the runtime reports back, the typed errors, and the ``ContainerRuntime`` protocol.
Two implementations exist: ``podman_runtime.PodmanRuntime`` (real containers) and
``fake_runtime.FakeRuntime`` (hollow nodes for scale tests).

Semantics shared by every implementation (modelled on the Kubernetes CRI):
- A runtime only ever reports and touches objects Shoal created (found by the ``io.shoal.*`` labels
  below); anything else on the host is invisible to it.
- ``create_container`` only creates; ``start_container`` starts. Restarting means creating a new
  container with ``attempt + 1``: an exited container is kept (for its exit code and logs) until the
  kubelet removes it.
- ``stop_container`` of an already stopped container, and ``remove_*`` of an object that is already
  gone, succeed (idempotent). Other calls on a missing object raise ``*NotFound``.
- ``start_container`` of a running container does nothing; of an exited one runs it again (the kubelet
  never does that: it creates the next attempt). ``stop_container`` of a never-started container leaves it
  created; with no grace period a running container is killed at once (exit code 137).
- Every implementation passes tests/agents/test_cri_contract.py, with Podman as the reference.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

# Labels put on every sandbox and container Shoal creates.
LABEL_MANAGED = "io.shoal.managed"  # always "true"
LABEL_NODE = "io.shoal.node"
LABEL_POD_UID = "io.shoal.pod-uid"
LABEL_NAMESPACE = "io.shoal.namespace"
LABEL_POD_NAME = "io.shoal.pod-name"
LABEL_POD_IP = "io.shoal.pod-ip"
LABEL_CONTAINER = "io.shoal.container"
LABEL_ATTEMPT = "io.shoal.attempt"
LABEL_CLUSTER = "io.shoal.cluster"
"""The cluster's id (its kube-system namespace's uid): two clusters on one Podman never touch each other's."""
LABEL_TERMINATION_LOG = "io.shoal.termination-log"  # the node file bound at terminationMessagePath
LABEL_TERMINATION_POLICY = "io.shoal.termination-policy"  # File | FallbackToLogsOnError

ContainerState = Literal["created", "running", "exited", "unknown"]
SandboxState = Literal["ready", "notready"]


@dataclass(frozen=True, slots=True)
class PortMapping:
    """A container port published on the node (a Pod's ``hostPort``)."""

    container_port: int
    host_port: int | None = None  # None: not published on the host
    host_ip: str = ""  # "" means all addresses
    protocol: str = "tcp"  # "tcp" | "udp"


@dataclass(frozen=True, slots=True)
class SandboxConfig:
    """The shared environment of one Pod: its network namespace, hostname and published ports."""

    pod_uid: str
    namespace: str
    name: str
    node_name: str
    ports: Sequence[PortMapping] = ()
    hostname: str = ""  # "" means the pod name (truncated to 63 characters)
    pod_ip: str = ""
    """The pod's address on the node's pod network (see KubeletConfig.pod_cidr); "" lets the runtime choose."""
    dns_policy: str = "ClusterFirst"
    """The pod's ``dnsPolicy``; with ``dns_*`` (its ``dnsConfig``) the runtime writes its resolv.conf
    (see ``dns.pod_resolv``)."""
    dns_nameservers: tuple[str, ...] = ()
    dns_searches: tuple[str, ...] = ()
    dns_options: tuple[str, ...] = ()
    host_aliases: tuple[tuple[str, str], ...] = ()
    """Extra /etc/hosts entries (name, address): ``hostAliases`` and the pod's FQDN with a ``subdomain``."""
    share_pid: bool = False
    """``shareProcessNamespace``: one PID namespace for every container of the pod."""
    sysctls: tuple[tuple[str, str], ...] = ()
    """The pod's ``securityContext.sysctls`` (namespaced ones: set on the sandbox's namespaces)."""


MountKind = Literal["bind", "tmpfs"]


@dataclass(frozen=True, slots=True)
class Mount:
    """A filesystem mounted into a container: a node path bound at ``destination`` (``kind="bind"``), or a
    fresh tmpfs of at most ``size_bytes`` (``kind="tmpfs"``, ``source`` unused)."""

    destination: str
    source: str = ""
    read_only: bool = False
    kind: MountKind = "bind"
    size_bytes: int | None = None
    propagation: str = ""
    """Bind propagation: "" (private), "rslave" (Kubernetes' HostToContainer), "rshared" (Bidirectional)."""


@dataclass(frozen=True, slots=True)
class ContainerConfig:
    """One container of a Pod. ``command`` overrides the image entrypoint, ``args`` its command."""

    name: str
    image: str
    command: Sequence[str] = ()
    args: Sequence[str] = ()
    env: dict[str, str] = field(default_factory=dict)
    working_dir: str | None = None
    cpu_limit_millis: int | None = None
    memory_limit_bytes: int | None = None
    mounts: Sequence[Mount] = ()
    security: SecurityConfig = field(default_factory=lambda: SecurityConfig())
    tty: bool = False
    stdin: bool = False
    image_pull_policy: str = "IfNotPresent"
    """Never | IfNotPresent | Always (against the node's image store; see the runtime's docstring)."""
    termination_log: str = ""
    """Node file bound at the container's terminationMessagePath ("" for none); read back when it exits."""
    termination_policy: str = "File"


@dataclass(frozen=True, slots=True)
class SecurityConfig:
    """A container's effective security context (the pod's merged under the container's)."""

    run_as_user: int | None = None
    run_as_group: int | None = None
    run_as_non_root: bool = False
    supplemental_groups: tuple[int, ...] = ()
    read_only_root: bool = False
    cap_add: tuple[str, ...] = ()
    cap_drop: tuple[str, ...] = ()
    privileged: bool = False
    no_new_privileges: bool = False
    seccomp_unconfined: bool = False


@dataclass(frozen=True, slots=True)
class RuntimeSandbox:
    """A sandbox as the runtime sees it now."""

    id: str
    pod_uid: str
    namespace: str
    name: str
    node_name: str
    ip: str | None
    state: SandboxState
    created_at: float | None = None


@dataclass(frozen=True, slots=True)
class RuntimeContainer:
    """A container as the runtime sees it now. Times are Unix seconds."""

    id: str
    sandbox_id: str
    pod_uid: str
    name: str
    attempt: int
    state: ContainerState
    exit_code: int | None
    started_at: float | None
    finished_at: float | None
    image: str
    message: str = ""
    """The termination message of an exited container (terminationMessagePath, or its logs' tail)."""


@dataclass(frozen=True, slots=True)
class ContainerUsage:
    """A running container's resource use as the runtime counts it: cumulative CPU time and current memory."""

    container_id: str
    cpu_nanoseconds: int
    """CPU time used since the container started (a counter: rates come from two samples)."""
    memory_bytes: int
    """Memory in use now (the working set)."""
    at: float
    """When the runtime read them (Unix seconds)."""


class ContainerRuntimeError(Exception):
    """Base of every runtime error. ``retryable`` tells the kubelet whether trying again may help."""

    retryable: bool = True


class ImagePullError(ContainerRuntimeError):
    """The image is not present locally and could not be pulled (ErrImagePull / ImagePullBackOff)."""


class ImageNeverPull(ImagePullError):
    """imagePullPolicy Never and the image is not present (ErrImageNeverPull)."""


class ContainerConfigError(ContainerRuntimeError):
    """The container cannot be made as configured (runAsNonRoot and an image running as root):
    CreateContainerConfigError."""


class ContainerCreateError(ContainerRuntimeError):
    """The runtime refused to create or start a container or sandbox (CreateContainerError)."""


class SandboxNotFound(ContainerRuntimeError):
    """No Shoal sandbox with that id exists (any more)."""

    retryable = False


class ContainerNotFound(ContainerRuntimeError):
    """No Shoal container with that id exists (any more)."""

    retryable = False


class ExecTimeout(ContainerRuntimeError):
    """An exec did not finish within its timeout (the probe counts as failed)."""


class RuntimeUnavailable(ContainerRuntimeError):
    """The runtime itself (e.g. the Podman service) did not answer."""


PodKey = tuple[str, str]
"""A pod by (namespace, name): what one reconcile of the kubelet looks at."""

OnPull = Callable[[], Awaitable[None]]
"""Told that the runtime is about to pull a container's image."""


@runtime_checkable
class ContainerRuntime(Protocol):
    """What the kubelet needs from a container runtime. All methods are coroutines."""

    reads_termination_logs: bool
    """Whether an exited container's termination message is read from the node file bound at its
    ``terminationMessagePath`` (``ContainerConfig.termination_log``). The kubelet makes that file (a directory
    and an empty file per container attempt) only for a runtime that reads it."""

    async def list_sandboxes(self, node_name: str, *, pod: PodKey | None = None) -> list[RuntimeSandbox]:
        """The node's sandboxes; with ``pod``, only those of that pod (namespace, name), whatever their uid."""
        ...

    async def list_containers(self, node_name: str, *, pod: PodKey | None = None) -> list[RuntimeContainer]:
        """The node's containers (all states); with ``pod``, only those of that pod (namespace, name)."""
        ...

    async def create_sandbox(self, config: SandboxConfig, *, start: bool = True) -> str:
        """Make the pod's sandbox (idempotent per pod uid) and, with ``start``, start it (ready). Unstarted,
        it becomes ready when the first container in it starts (or ``start_sandbox``): the kubelet asks one
        runtime call less for a new pod's first container."""
        ...

    async def start_sandbox(self, sandbox_id: str) -> None:
        """Start a sandbox made with ``start=False`` (nothing to do when it runs)."""
        ...

    async def create_container(
        self, sandbox_id: str, sandbox: SandboxConfig, config: ContainerConfig, attempt: int,
        *, on_pull: OnPull | None = None,
    ) -> str:
        """Create attempt ``attempt`` of ``config`` in the sandbox, first getting its image as
        ``config.image_pull_policy`` says; ``on_pull`` is awaited just before an image is pulled (the
        kubelet's ``Pulling`` event), so that no separate presence check is needed."""
        ...

    async def start_container(self, container_id: str) -> None: ...

    async def stop_container(self, container_id: str, grace_seconds: float) -> None: ...

    async def remove_container(self, container_id: str) -> None: ...

    async def remove_sandbox(self, sandbox_id: str) -> None: ...

    async def exec_in_container(
        self, container_id: str, cmd: list[str], timeout_seconds: float
    ) -> tuple[int, str]: ...

    def logs(
        self, container_id: str, tail: int | None = None, follow: bool = False, *, timestamps: bool = False,
        since: float | None = None,
    ) -> AsyncIterator[str]:
        """Lines without newlines; ``timestamps``: each prefixed with its RFC 3339 time and a space (as
        ``kubectl logs --timestamps``); ``since``: only lines written at or after this Unix time."""
        ...

    async def image_present(self, image: str) -> bool: ...

    async def container_usage(self, container_ids: list[str]) -> list[ContainerUsage]:
        """The usage of those of ``container_ids`` that are running (others are left out)."""
        ...

    async def close(self) -> None: ...


def shoal_labels(sandbox: SandboxConfig) -> dict[str, str]:
    """The labels identifying a sandbox; containers add ``container`` and ``attempt``."""
    return {
        LABEL_MANAGED: "true",
        LABEL_NODE: sandbox.node_name,
        LABEL_POD_UID: sandbox.pod_uid,
        LABEL_NAMESPACE: sandbox.namespace,
        LABEL_POD_NAME: sandbox.name,
        **({LABEL_POD_IP: sandbox.pod_ip} if sandbox.pod_ip else {}),
    }


def container_labels(sandbox: SandboxConfig, config: ContainerConfig, attempt: int) -> dict[str, str]:
    """The labels identifying one container attempt."""
    return {**shoal_labels(sandbox), LABEL_CONTAINER: config.name, LABEL_ATTEMPT: str(attempt)}
