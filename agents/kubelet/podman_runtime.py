"""The real container runtime: the ``ContainerRuntime`` port implemented on the Podman API service.

Each Pod becomes a Podman pod (its infra container holds the network namespace and publishes the
``hostPort`` mappings); each container joins that pod and so shares its network. With a node pod network
(``use_network``, see ``podnetwork``) the infra container sits on that bridge at the pod's assigned
address; without one, Pod IP is the address label the kubelet assigned (its loopback mode).

The ``podman`` bindings are synchronous, so every call runs on a small private thread pool (never the
loop's default executor, so a slow Podman cannot starve the rest of the process). Streaming logs are the
exception: they are read straight from the API socket with asyncio so that a consumer that stops reading
(or is cancelled) releases everything at once instead of leaving a thread blocked on a quiet container.

Resource limits: CPU becomes a CFS quota (period 100 ms), memory a hard limit. Both work with cgroup v1
and runc on the development VM. If Podman refuses to create a container because a limit cannot be applied
on that host, the container is created again without limits and a warning is logged (the Pod runs
unconstrained rather than not at all).

Images, by ``imagePullPolicy``: IfNotPresent uses a local image when present and otherwise pulls it; Never
never pulls (an absent image is ``ImageNeverPull``, ErrImageNeverPull); Always pulls every time, as
Kubernetes does, so with no registry reachable the container fails with ErrImagePull even when a copy is
present. ``localhost/...`` images are local builds by definition and are never pulled, whatever the
policy (Always acts as IfNotPresent for them: there is no registry to ask). Failure raises ``ImagePullError``.

Security: the container's ``SecurityConfig`` becomes Podman's user/groups, read-only root, capabilities,
privileged, no_new_privileges and seccomp settings; runAsNonRoot is checked against the image's USER before
creating (``ContainerConfigError``, CreateContainerConfigError). The sandbox carries the pod's /etc/hosts
entries, a shared PID namespace (``shareProcessNamespace``) and its sysctls.

Termination messages: a container made with ``termination_log`` is labelled with it; once it has exited
its message is that file (at most 4 KiB), or with FallbackToLogsOnError and a failure, the tail of its logs
(80 lines, 2 KiB), read once and remembered per container.
"""

from __future__ import annotations

import asyncio
import functools
import json
import re
import struct
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote, urlencode

import requests
import structlog
from podman import PodmanClient
from podman.api import prepare_body
from podman.domain.containers_create import CreateMixin
from podman.errors import APIError, NotFound

from agents.kubelet.cri import (
    LABEL_ATTEMPT,
    LABEL_CLUSTER,
    LABEL_CONTAINER,
    LABEL_MANAGED,
    LABEL_NAMESPACE,
    LABEL_NODE,
    LABEL_POD_IP,
    LABEL_POD_NAME,
    LABEL_POD_UID,
    LABEL_TERMINATION_LOG,
    LABEL_TERMINATION_POLICY,
    ContainerConfig,
    ContainerConfigError,
    ContainerCreateError,
    ContainerNotFound,
    ContainerRuntimeError,
    ContainerState,
    ContainerUsage,
    ExecTimeout,
    ImageNeverPull,
    ImagePullError,
    Mount,
    OnPull,
    PodKey,
    RuntimeContainer,
    RuntimeSandbox,
    RuntimeUnavailable,
    SandboxConfig,
    SandboxNotFound,
    container_labels,
    shoal_labels,
)
from agents.kubelet.dns import HostResolv, parse_resolv_conf, pod_resolv
from agents.kubelet.podman_trace import PodmanTrace
from agents.kubelet.podnetwork import NetworkSpec, PodNetworkError
from agents.kubelet.security import check_run_as_non_root

T = TypeVar("T")
log = structlog.get_logger("shoal.kubelet.podman")

_API_PREFIX = "/v4.0.0/libpod"
_CFS_PERIOD_US = 100_000
_ZERO_TIME = -62135596800  # Go's time.Time{} as Unix seconds: "never"
_NAME_UNSAFE = re.compile(r"[^a-zA-Z0-9_.-]")
MAX_MESSAGE_BYTES = 4096
FALLBACK_LINES, FALLBACK_BYTES = 80, 2048
_LIMIT_ERROR = re.compile(r"cgroup|memory|cpu|quota|resource limit", re.IGNORECASE)
_STATE_MAP: dict[str, ContainerState] = {
    "created": "created",
    "configured": "created",
    "initialized": "created",
    "running": "running",
    "paused": "running",
    "stopping": "running",
    "exited": "exited",
    "stopped": "exited",
}


class _ImageAbsent(ImagePullError):
    """Podman refused a create for want of its image (pulled then, as the pull policy allows)."""


def _safe(part: str) -> str:
    return _NAME_UNSAFE.sub("-", part)


def sandbox_name(config: SandboxConfig) -> str:
    """Podman pod name: ``shoal_<pod>_<namespace>_<uid>``, unique per Pod uid."""
    return f"shoal_{_safe(config.name)}_{_safe(config.namespace)}_{_safe(config.pod_uid)}"


def container_name(sandbox: SandboxConfig, config: ContainerConfig, attempt: int) -> str:
    """Podman container name: ``shoal_<container>_<pod>_<namespace>_<uid>_<attempt>``."""
    return f"shoal_{_safe(config.name)}_{sandbox_name(sandbox)[6:]}_{attempt}"


def _mount(mount: Mount) -> dict[str, Any]:
    """A ``Mount`` as podman-py's ``mounts`` item (Podman's spec generator: type, source, target, options)."""
    if mount.kind == "tmpfs":
        item: dict[str, Any] = {"type": "tmpfs", "source": "tmpfs", "target": mount.destination}
        if mount.size_bytes:
            item["size"] = str(mount.size_bytes)
    else:
        item = {"type": "bind", "source": mount.source, "target": mount.destination}
        if mount.propagation:
            item["propagation"] = mount.propagation
    if mount.read_only:
        item["read_only"] = True
    return item


def _security_kwargs(config: ContainerConfig) -> dict[str, Any]:
    """podman-py ``containers.create`` arguments for the container's security context, tty and stdin."""
    sec = config.security
    out: dict[str, Any] = {}
    if sec.run_as_user is not None or sec.run_as_group is not None:
        user = str(sec.run_as_user if sec.run_as_user is not None else "")
        if sec.run_as_group is not None:
            user = f"{user or 0}:{sec.run_as_group}" if sec.run_as_user is not None else f"0:{sec.run_as_group}"
        out["user"] = user
    if sec.supplemental_groups:
        out["group_add"] = [str(g) for g in sec.supplemental_groups]
    if sec.read_only_root:
        out["read_only"] = True
    if sec.cap_add:
        out["cap_add"] = list(sec.cap_add)
    if sec.cap_drop:
        out["cap_drop"] = list(sec.cap_drop)
    if sec.privileged:
        out["privileged"] = True
    if sec.no_new_privileges:
        out["no_new_privileges"] = True
    if sec.seccomp_unconfined:
        out["seccomp_profile_path"] = "unconfined"
    if config.tty:
        out["tty"] = True
    if config.stdin:
        out["stdin_open"] = True
    return out


def _read_host_resolv() -> HostResolv:
    try:
        with open("/etc/resolv.conf", encoding="utf-8") as f:
            return parse_resolv_conf(f.read())
    except OSError:
        return HostResolv()


def _hostname(config: SandboxConfig) -> str:
    return (config.hostname or config.name)[:63].rstrip("-.") or "pod"


def _epoch(value: Any) -> float | None:
    """Podman list timestamps: Unix seconds (int), where Go's zero time and 0 mean "never"."""
    if isinstance(value, int | float) and value > 0:
        return float(value)
    return None


def _iso_epoch(value: Any) -> float | None:
    if not isinstance(value, str) or value.startswith("0001-"):
        return None
    try:
        # Podman prints nanoseconds; Python parses at most microseconds.
        trimmed = re.sub(r"(\.\d{6})\d+", r"\1", value).replace("Z", "+00:00")
        return datetime.fromisoformat(trimmed).timestamp()
    except ValueError:
        return None


def demux_frames(buffer: bytearray) -> list[bytes]:
    """Pop complete multiplexed stream frames (8-byte header: stream, 0, 0, 0, length) off ``buffer``."""
    out: list[bytes] = []
    while len(buffer) >= 8:
        (length,) = struct.unpack(">I", buffer[4:8])
        if len(buffer) < 8 + length:
            break
        out.append(bytes(buffer[8 : 8 + length]))
        del buffer[: 8 + length]
    return out


def _timed_out(exc: BaseException) -> bool:
    """Whether a (wrapped) transport error was a read timeout; the UDS adapter reports those oddly."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, requests.Timeout | TimeoutError) or "timed out" in str(seen):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _error_text(exc: BaseException) -> str:
    explanation = getattr(exc, "explanation", None)
    return str(explanation or exc)


class PodmanRuntime:
    """``ContainerRuntime`` on a Podman API service reachable at ``socket_url`` (``unix://...``)."""

    reads_termination_logs = True

    def __init__(
        self,
        socket_url: str,
        *,
        pull_timeout: float = 120.0,
        request_timeout: float = 60.0,
        max_workers: int = 8,
        host_resolv: HostResolv | None = None,
        cluster_id: str | None = None,
        trace: Path | None = None,
    ) -> None:
        if not socket_url.startswith("unix://"):
            raise ValueError(f"only unix:// Podman sockets are supported, got {socket_url!r}")
        self._socket_path = socket_url.removeprefix("unix://")
        self.socket_url = socket_url  # for exec and port-forward streams (agents/kubelet/podman_streams.py)
        self._client = PodmanClient(base_url=socket_url, timeout=request_timeout)
        self._trace = PodmanTrace(trace) if trace is not None else None
        if self._trace is not None:
            self._client.api.hooks["response"].append(self._trace.hook)
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="podman")
        self._pull_timeout = pull_timeout
        self._ip_cache: dict[str, str] = {}  # pod id -> IP; an IP never changes during a pod's life
        self._limits_supported = True
        self._network: NetworkSpec | None = None
        self._host_resolv = host_resolv if host_resolv is not None else _read_host_resolv()
        self._messages: dict[str, str] = {}  # exited container id -> termination message
        self.cluster_id = cluster_id
        """When set, everything created carries ``io.shoal.cluster=<id>`` and only such objects are listed or
        removed: a kubelet of another cluster on the same Podman (even with the same node name) is invisible."""

    def set_cluster(self, cluster_id: str) -> None:
        self.cluster_id = cluster_id

    def _with_cluster(self, labels: dict[str, str]) -> dict[str, str]:
        return {**labels, LABEL_CLUSTER: self.cluster_id} if self.cluster_id else labels

    # -- plumbing ---------------------------------------------------------------------------------

    async def _call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._pool, functools.partial(fn, *args, **kwargs))
        except (requests.ConnectionError, APIError) as exc:
            # The bindings wrap transport errors (OSError) in APIError.
            cause = exc if isinstance(exc, requests.ConnectionError) else exc.__cause__
            if isinstance(cause, requests.ConnectionError):
                raise RuntimeUnavailable(f"Podman at {self._socket_path} unreachable: {cause}") from exc
            raise ContainerRuntimeError(f"podman: {_error_text(exc)}") from exc

    def _api(self) -> Any:
        return self._client.api

    # -- listing ----------------------------------------------------------------------------------

    async def list_sandboxes(self, node_name: str, *, pod: PodKey | None = None) -> list[RuntimeSandbox]:
        pods: list[dict[str, Any]] = await self._call(self._list_raw, "pods", node_name, pod)
        result = []
        for found in pods:
            labels = found.get("Labels") or {}
            if labels.get(LABEL_MANAGED) != "true" or labels.get(LABEL_NODE) != node_name:
                continue
            infra_id = found.get("InfraId", "")
            infra_running = any(
                c.get("Id") == infra_id and c.get("Status") == "running" for c in found.get("Containers") or []
            )
            ip = labels.get(LABEL_POD_IP) or None  # the kubelet's pod network; else the bridge address
            if ip is None and infra_running:
                ip = await self._pod_ip(found["Id"], infra_id)
            result.append(
                RuntimeSandbox(
                    id=found["Id"],
                    pod_uid=labels.get(LABEL_POD_UID, ""),
                    namespace=labels.get(LABEL_NAMESPACE, ""),
                    name=labels.get(LABEL_POD_NAME, ""),
                    node_name=node_name,
                    ip=ip,
                    state="ready" if infra_running else "notready",
                    created_at=_iso_epoch(found.get("Created")),
                )
            )
        if pod is None:  # a whole listing: what it lacks is gone
            live = {s.id for s in result}
            for stale in set(self._ip_cache) - live:
                del self._ip_cache[stale]
        return result

    async def list_containers(self, node_name: str, *, pod: PodKey | None = None) -> list[RuntimeContainer]:
        raw: list[dict[str, Any]] = await self._call(self._list_raw, "containers", node_name, pod)
        result = []
        live: set[str] = set()
        for c in raw:
            labels = c.get("Labels") or {}
            if c.get("IsInfra") or labels.get(LABEL_MANAGED) != "true" or LABEL_CONTAINER not in labels:
                continue
            if labels.get(LABEL_NODE) != node_name:
                continue
            state = _STATE_MAP.get(str(c.get("State", "")).lower(), "unknown")
            live.add(c["Id"])
            exit_code = int(c.get("ExitCode", 0)) if state == "exited" else None
            message = await self._message_of(c["Id"], labels, exit_code) if state == "exited" else ""
            result.append(
                RuntimeContainer(
                    id=c["Id"],
                    sandbox_id=c.get("Pod", ""),
                    pod_uid=labels.get(LABEL_POD_UID, ""),
                    name=labels[LABEL_CONTAINER],
                    attempt=int(labels.get(LABEL_ATTEMPT, "0")),
                    state=state,
                    exit_code=int(c.get("ExitCode", 0)) if state == "exited" else None,
                    started_at=_epoch(c.get("StartedAt")),
                    finished_at=_epoch(c.get("ExitedAt")) if state == "exited" else None,
                    image=str(c.get("Image", "")),
                    message=message,
                )
            )
        if pod is None:  # a whole listing: what it lacks is gone
            for gone in set(self._messages) - live:
                del self._messages[gone]
        return result

    async def _message_of(self, container_id: str, labels: dict[str, str], exit_code: int | None) -> str:
        """The termination message of an exited container (read once, remembered)."""
        if container_id in self._messages:
            return self._messages[container_id]
        path = labels.get(LABEL_TERMINATION_LOG)
        message = ""
        if path:
            try:
                with open(path, "rb") as f:
                    message = f.read(MAX_MESSAGE_BYTES).decode("utf-8", "replace")
            except OSError:
                message = ""
        if (not message and exit_code not in (None, 0)
                and labels.get(LABEL_TERMINATION_POLICY) == "FallbackToLogsOnError"):
            try:
                lines = [line async for line in self.logs(container_id, tail=FALLBACK_LINES)]
            except ContainerRuntimeError:
                lines = []
            message = "\n".join(lines).encode()[-FALLBACK_BYTES:].decode("utf-8", "replace")
        self._messages[container_id] = message
        return message

    def _list_raw(self, kind: str, node_name: str, pod: PodKey | None = None) -> list[dict[str, Any]]:
        # Filter server-side on our labels (all must match). Encoded here: the bindings mangle list-valued
        # filters. Podman filters before it builds each entry, so one pod's listing costs little however many
        # pods the node runs.
        wanted = [f"{LABEL_MANAGED}=true", f"{LABEL_NODE}={node_name}"]
        if self.cluster_id:
            wanted.append(f"{LABEL_CLUSTER}={self.cluster_id}")
        if pod is not None:
            wanted += [f"{LABEL_NAMESPACE}={pod[0]}", f"{LABEL_POD_NAME}={pod[1]}"]
        filters = json.dumps({"label": wanted})
        params: dict[str, Any] = {"filters": filters}
        if kind == "containers":
            params["all"] = True
        response = self._api().get(f"/{kind}/json", params=params)
        response.raise_for_status()
        body: list[dict[str, Any]] = response.json() or []
        return body

    async def _pod_ip(self, pod_id: str, infra_id: str) -> str | None:
        if pod_id in self._ip_cache:
            return self._ip_cache[pod_id]
        try:
            attrs: dict[str, Any] = await self._call(self._inspect_container, infra_id)
        except ContainerNotFound:
            return None
        networks = (attrs.get("NetworkSettings") or {}).get("Networks") or {}
        for net in networks.values():
            ip = net.get("IPAddress")
            if ip:
                self._ip_cache[pod_id] = str(ip)
                return str(ip)
        return None

    def _inspect_container(self, container_id: str) -> dict[str, Any]:
        try:
            attrs: dict[str, Any] = self._client.containers.get(container_id).attrs
            return attrs
        except NotFound as exc:
            raise ContainerNotFound(container_id) from exc

    # -- sandboxes --------------------------------------------------------------------------------

    async def create_sandbox(self, config: SandboxConfig, *, start: bool = True) -> str:
        bound = log.bind(node=config.node_name, pod=f"{config.namespace}/{config.name}")
        name = sandbox_name(config)
        network = self._network if config.pod_ip else None
        spec: dict[str, Any] = {
            "labels": self._with_cluster(shoal_labels(config)),
            "hostname": _hostname(config),
            "portmappings": [
                {
                    "container_port": p.container_port,
                    "host_port": p.host_port,
                    "host_ip": p.host_ip,
                    "protocol": p.protocol.lower(),
                }
                for p in config.ports
                # On the node network the pod owns its address: nothing is published on it.
                if p.host_port and not (network is not None and p.host_ip == config.pod_ip)
            ],
        }
        if config.host_aliases:
            spec["hostadd"] = [f"{name}:{ip}" for name, ip in config.host_aliases]
        if config.share_pid:
            spec["shared_namespaces"] = ["cgroup", "ipc", "net", "uts", "pid"]
        if config.sysctls:
            spec["sysctl"] = dict(config.sysctls)
        if network is not None:
            spec["netns"] = {"nsmode": "bridge"}
            spec["Networks"] = {network.name: {"static_ips": [config.pod_ip]}}
        resolv = pod_resolv(config.dns_policy, config.namespace, cluster_dns=network.gateway if network else None,
                            host=self._host_resolv, nameservers=config.dns_nameservers,
                            searches=config.dns_searches, options=config.dns_options)
        if resolv is not None:
            spec.update(dns_server=list(resolv.nameservers), dns_search=list(resolv.searches),
                        dns_option=list(resolv.options))
        started = time.monotonic()
        pod_id = await self._call(self._create_pod, name, spec, start)
        bound.info("sandbox created", sandbox=pod_id[:12], started=start, seconds=round(time.monotonic() - started, 3))
        return pod_id

    async def start_sandbox(self, sandbox_id: str) -> None:
        await self._call(self._start_pod, sandbox_id)

    def _start_pod(self, sandbox_id: str) -> None:
        # Its infra container only: a pod start would also start (again) a container whose own start failed.
        api = self._api()
        found = api.get(f"/pods/{quote(sandbox_id, safe='')}/json")
        if found.status_code == 404:
            raise SandboxNotFound(sandbox_id)
        found.raise_for_status()
        infra = str(found.json().get("InfraContainerID") or "")
        response = (api.post(f"/containers/{quote(infra, safe='')}/start") if infra
                    else api.post(f"/pods/{quote(sandbox_id, safe='')}/start"))
        if response.status_code >= 400:  # (304: running already)
            raise ContainerCreateError(f"starting sandbox {sandbox_id[:12]}: {self._message(response)}")

    def _create_pod(self, name: str, spec: dict[str, Any], start: bool = True) -> str:
        api = self._api()
        try:
            # Raw calls: the bindings' ``pods.create`` inspects the pod it made (one more round trip), and
            # its id is all the kubelet needs.
            created = api.post("/pods/create", data=json.dumps({**spec, "name": name}),
                               headers={"Content-Type": "application/json"})
            created.raise_for_status()
            pod_id = str(created.json()["Id"])
            if start:  # else Podman starts the infra container with the pod's first container
                api.post(f"/pods/{quote(pod_id, safe='')}/start").raise_for_status()
            return pod_id
        except APIError as exc:
            with_suffix = f"creating sandbox {name}: {_error_text(exc)}"
            if "already in use" in with_suffix or "already exists" in with_suffix:
                # Left over from an earlier attempt (e.g. the kubelet crashed mid-way): reuse it.
                existing = self._client.pods.get(name)
                if start and existing.attrs.get("State") != "Running":
                    existing.start()
                return str(existing.id)
            raise ContainerCreateError(with_suffix) from exc

    async def remove_sandbox(self, sandbox_id: str) -> None:
        await self._call(self._remove_pod, sandbox_id)
        self._ip_cache.pop(sandbox_id, None)

    def _remove_pod(self, sandbox_id: str) -> None:
        # Forced: whatever still runs is killed at once (graceful stops are the kubelet's job, before).
        self._delete("pods", sandbox_id)

    def _delete(self, kind: str, object_id: str) -> None:
        if not self._is_ours(kind, object_id):
            return
        response = self._api().delete(
            f"/{kind}/{quote(object_id, safe='')}", params={"force": "true", "timeout": 0}
        )
        if response.status_code >= 400 and response.status_code != 404:
            raise ContainerRuntimeError(f"removing {kind[:-1]} {object_id[:12]}: {self._message(response)}")

    def _is_ours(self, kind: str, object_id: str) -> bool:
        """Refuse to touch anything not labelled as Shoal's (missing objects count as not ours)."""
        response = self._api().get(f"/{kind}/{quote(object_id, safe='')}/json")
        if response.status_code == 404:
            return False
        response.raise_for_status()
        attrs = response.json()
        labels = attrs.get("Labels") or (attrs.get("Config") or {}).get("Labels") or {}
        if self.cluster_id and labels.get(LABEL_CLUSTER) != self.cluster_id:
            return False
        return bool(labels.get(LABEL_MANAGED) == "true")

    # -- the node's pod network ---------------------------------------------------------------------

    def use_network(self, spec: NetworkSpec | None) -> None:
        self._network = spec

    async def ensure_network(self, spec: NetworkSpec) -> None:
        await self._call(self._ensure_network, spec)

    def _ensure_network(self, spec: NetworkSpec) -> None:
        path = f"/networks/{quote(spec.name, safe='')}/json"
        found = self._api().get(path)
        if found.status_code == 200:
            attrs = found.json()
            subnets = [s.get("subnet") for s in attrs.get("subnets") or []]
            if (attrs.get("labels") or {}).get(LABEL_MANAGED) != "true":
                raise PodNetworkError(f"network {spec.name} exists and is not Shoal's")
            if subnets != [spec.subnet]:
                raise PodNetworkError(f"network {spec.name} has subnets {subnets}, not {spec.subnet}: remove it "
                                      "(podman network rm) once its pods are gone")
            return
        body = {"name": spec.name, "driver": "bridge", "dns_enabled": False, "labels": spec.labels,
                "subnets": [{"subnet": spec.subnet, "gateway": spec.gateway}]}
        created = self._api().post("/networks/create", data=json.dumps(body),
                                   headers={"Content-Type": "application/json"})
        if created.status_code >= 400:
            raise PodNetworkError(f"creating network {spec.name} {spec.subnet}: {self._message(created)}")

    async def remove_network(self, name: str) -> None:
        await self._call(self._remove_network, name)

    def _remove_network(self, name: str) -> None:
        path = f"/networks/{quote(name, safe='')}"
        found = self._api().get(f"{path}/json")
        if found.status_code == 404 or (found.json().get("labels") or {}).get(LABEL_MANAGED) != "true":
            return
        removed = self._api().delete(path)
        if removed.status_code >= 400 and removed.status_code != 404:
            raise ContainerRuntimeError(f"removing network {name}: {self._message(removed)}")

    # -- containers -------------------------------------------------------------------------------

    async def create_container(
        self, sandbox_id: str, sandbox: SandboxConfig, config: ContainerConfig, attempt: int,
        *, on_pull: OnPull | None = None,
    ) -> str:
        bound = log.bind(
            node=sandbox.node_name, pod=f"{sandbox.namespace}/{sandbox.name}", container=config.name
        )
        started = time.monotonic()
        image, policy, security = config.image, config.image_pull_policy, config.security
        needs_user = security.run_as_non_root and security.run_as_user is None
        # The image is looked at before creating only when something needs it first (Always pulls it, the
        # runAsNonRoot check reads its USER); otherwise the create itself says whether it is there, and an
        # absent one is pulled (as its policy allows) and the create made again: one round trip, not two.
        eager = needs_user or (policy == "Always" and not image.startswith("localhost/"))
        if eager:
            await self._ensure_image(image, bound, policy, on_pull)
        if needs_user:
            refused = check_run_as_non_root(security, await self._call(self._image_user, image))
        else:
            refused = check_run_as_non_root(security, "")
        if refused is not None:
            raise ContainerConfigError(refused)
        labels = container_labels(sandbox, config, attempt)
        if config.termination_log:
            labels[LABEL_TERMINATION_LOG] = config.termination_log
            labels[LABEL_TERMINATION_POLICY] = config.termination_policy
        kwargs: dict[str, Any] = {
            "name": container_name(sandbox, config, attempt),
            "pod": sandbox_id,
            "labels": self._with_cluster(labels),
            "environment": dict(config.env),
            **_security_kwargs(config),
        }
        if config.command:
            kwargs["entrypoint"] = list(config.command)
        if config.working_dir:
            kwargs["working_dir"] = config.working_dir
        if config.mounts:
            kwargs["mounts"] = [_mount(m) for m in config.mounts]
        limits: dict[str, Any] = {}
        if config.cpu_limit_millis:
            limits["cpu_period"] = _CFS_PERIOD_US
            limits["cpu_quota"] = max(1000, config.cpu_limit_millis * _CFS_PERIOD_US // 1000)
        if config.memory_limit_bytes:
            limits["mem_limit"] = config.memory_limit_bytes
        command = list(config.args) or None
        try:
            container_id = await self._create_limited(image, command, kwargs, limits, bound)
        except _ImageAbsent:
            if eager:
                raise  # ensured a moment ago and gone again: ErrImagePull, retried after back-off
            await self._ensure_image(image, bound, policy, on_pull)
            container_id = await self._create_limited(image, command, kwargs, limits, bound)
        bound.info("container created", id=container_id[:12], seconds=round(time.monotonic() - started, 3))
        return container_id

    async def _create_limited(
        self, image: str, command: list[str] | None, kwargs: dict[str, Any], limits: dict[str, Any], bound: Any
    ) -> str:
        """Create the container with its resource limits, or without them on a host that cannot apply them."""
        if not self._limits_supported:
            limits = {}
        try:
            return await self._call(self._create_container, image, command, kwargs, limits)
        except ContainerCreateError as exc:
            if not limits or not self._limits_supported or not _LIMIT_ERROR.search(str(exc)):
                raise
            bound.warning("resource limits unsupported on this host; creating without them", error=str(exc))
            self._limits_supported = False
            return await self._call(self._create_container, image, command, kwargs, {})

    def _create_container(
        self, image: str, command: list[str] | None, kwargs: dict[str, Any], limits: dict[str, Any]
    ) -> str:
        # The bindings' payload (``CreateMixin._render_payload``: their keyword names become Podman's spec
        # generator), posted here: their ``containers.create`` inspects the new container afterwards, a round
        # trip the kubelet does not need (it lists the node's containers after starting).
        body = prepare_body(CreateMixin._render_payload({"image": image, "command": command, **kwargs, **limits}))
        try:
            response = self._api().post("/containers/create", data=body, headers={"Content-Type": "application/json"})
            response.raise_for_status()
            return str(response.json()["Id"])
        except APIError as exc:
            text = _error_text(exc)
            if "no such pod" in text or "no pod with name" in text:
                raise SandboxNotFound(str(kwargs["pod"])) from exc
            if "image not known" in text:
                raise _ImageAbsent(f"image {image} not present: {text}") from exc
            raise ContainerCreateError(f"creating container {kwargs['name']}: {text}") from exc

    async def start_container(self, container_id: str) -> None:
        started = time.monotonic()
        await self._call(self._start, container_id)
        log.info("container started", id=container_id[:12], seconds=round(time.monotonic() - started, 3))

    def _start(self, container_id: str) -> None:
        response = self._api().post(f"/containers/{quote(container_id, safe='')}/start")
        if response.status_code == 404:
            raise ContainerNotFound(container_id)
        if response.status_code >= 400:
            raise ContainerCreateError(f"starting {container_id[:12]}: {self._message(response)}")

    async def stop_container(self, container_id: str, grace_seconds: float) -> None:
        grace = max(0, round(grace_seconds))
        await self._call(self._stop, container_id, grace)

    def _stop(self, container_id: str, grace: int) -> None:
        # Podman sends the image's stop signal (SIGTERM), waits ``grace`` seconds, then SIGKILLs.
        response = self._api().post(
            f"/containers/{quote(container_id, safe='')}/stop", params={"timeout": grace}, timeout=grace + 60
        )
        if response.status_code == 404:
            raise ContainerNotFound(container_id)
        if response.status_code >= 400 and response.status_code != 304:  # 304: already stopped
            raise ContainerRuntimeError(f"stopping {container_id[:12]}: {self._message(response)}")

    async def remove_container(self, container_id: str) -> None:
        await self._call(self._remove_container, container_id)

    def _remove_container(self, container_id: str) -> None:
        self._delete("containers", container_id)

    @staticmethod
    def _message(response: requests.Response) -> str:
        try:
            body = response.json()
            return str(body.get("message") or body.get("cause") or body)
        except ValueError:
            return response.text

    # -- exec and logs ----------------------------------------------------------------------------

    async def exec_in_container(
        self, container_id: str, cmd: list[str], timeout_seconds: float
    ) -> tuple[int, str]:
        return await self._call(self._exec, container_id, cmd, timeout_seconds)

    def _exec(self, container_id: str, cmd: list[str], timeout: float) -> tuple[int, str]:
        api = self._api()
        body = {"AttachStdout": True, "AttachStderr": True, "Cmd": cmd, "Tty": False}
        response = api.post(f"/containers/{quote(container_id, safe='')}/exec", data=json.dumps(body))
        if response.status_code == 404:
            raise ContainerNotFound(container_id)
        if response.status_code >= 400:
            raise ContainerRuntimeError(f"exec in {container_id[:12]}: {self._message(response)}")
        exec_id = response.json()["Id"]
        try:
            started = api.post(
                f"/exec/{exec_id}/start", data=json.dumps({"Detach": False, "Tty": False}), timeout=timeout
            )
        except APIError as exc:
            if _timed_out(exc):
                # Like Docker and CRI-O, the process is left running in the container.
                raise ExecTimeout(f"exec {cmd!r} in {container_id[:12]} exceeded {timeout}s") from exc
            raise
        if started.status_code >= 400:
            raise ContainerRuntimeError(f"exec in {container_id[:12]}: {self._message(started)}")
        output = b"".join(demux_frames(bytearray(started.content)))
        info = api.get(f"/exec/{exec_id}/json")
        info.raise_for_status()
        code = info.json().get("ExitCode")
        return (int(code) if code is not None else -1), output.decode("utf-8", "replace")

    async def logs(
        self, container_id: str, tail: int | None = None, follow: bool = False, *, timestamps: bool = False,
        since: float | None = None,
    ) -> AsyncIterator[str]:
        """Log lines (stdout and stderr, without newlines); ``follow`` streams until the container exits;
        ``timestamps`` and ``since`` as Podman's (whole seconds)."""
        query: dict[str, str] = {"stdout": "true", "stderr": "true", "follow": str(follow).lower()}
        if tail is not None:
            query["tail"] = str(tail)
        if timestamps:
            query["timestamps"] = "true"
        if since is not None:
            query["since"] = str(int(since))
        path = f"{_API_PREFIX}/containers/{quote(container_id, safe='')}/logs?{urlencode(query)}"
        reader, writer = await asyncio.open_unix_connection(self._socket_path)
        try:
            # HTTP/1.0: the service closes the connection at the end instead of chunking the body.
            writer.write(f"GET {path} HTTP/1.0\r\nHost: podman\r\n\r\n".encode())
            await writer.drain()
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head.split(b" ", 2)[1])
            if status == 404:
                raise ContainerNotFound(container_id)
            if status >= 400:
                raise ContainerRuntimeError(f"logs of {container_id[:12]}: {(await reader.read()).decode()}")
            buffer, pending = bytearray(), b""
            while chunk := await reader.read(65536):
                buffer.extend(chunk)
                text = pending + b"".join(demux_frames(buffer))
                *lines, pending = text.split(b"\n")
                for line in lines:
                    yield line.decode("utf-8", "replace")
            if pending:
                yield pending.decode("utf-8", "replace")
        finally:
            writer.close()

    # -- usage ------------------------------------------------------------------------------------

    async def container_usage(self, container_ids: list[str]) -> list[ContainerUsage]:
        if not container_ids:
            return []
        return await self._call(self._stats, container_ids)

    def _stats(self, container_ids: list[str]) -> list[ContainerUsage]:
        # libpod's one-shot stats: CPUNano is the cumulative CPU time, MemUsage the memory in use now.
        response = self._api().get("/containers/stats", params={"stream": False, "containers": container_ids})
        if response.status_code >= 400:
            return []  # one of them stopped meanwhile: Podman refuses the whole call; the next sample retries
        body = response.json() or {}
        now = time.time()
        # a stopped container is still answered for, with no memory in use (its cgroup is gone): left out
        return [ContainerUsage(str(s.get("ContainerID") or s.get("ContainerId") or ""), int(s.get("CPUNano") or 0),
                               int(s.get("MemUsage") or 0), now)
                for s in body.get("Stats") or [] if isinstance(s, dict) and int(s.get("MemUsage") or 0) > 0]

    # -- images -----------------------------------------------------------------------------------

    async def image_present(self, image: str) -> bool:
        return await self._call(self._client.images.exists, image)

    def _image_user(self, image: str) -> str:
        try:
            attrs = self._client.images.get(image).attrs
        except NotFound as exc:
            raise ImagePullError(f"image {image} not present") from exc
        return str(((attrs.get("Config") or {}).get("User")) or "")

    async def _ensure_image(self, image: str, bound: Any, policy: str = "IfNotPresent",
                            on_pull: OnPull | None = None) -> None:
        local = image.startswith("localhost/")
        if policy != "Always" or local:
            if await self.image_present(image):
                return
            if policy == "Never":
                raise ImageNeverPull(f'Container image "{image}" is not present with pull policy of Never')
            if local:
                raise ImagePullError(f"image {image} is not present locally (localhost/ images are never pulled)")
        if on_pull is not None:
            await on_pull()
        bound.info("pulling image", image=image)
        started = time.monotonic()
        await self._call(self._pull, image)
        bound.info("image pulled", image=image, seconds=round(time.monotonic() - started, 3))

    def _pull(self, image: str) -> None:
        try:
            response = self._api().post(
                "/images/pull", params={"reference": image, "quiet": True}, timeout=self._pull_timeout
            )
        except APIError as exc:
            if _timed_out(exc):
                raise ImagePullError(f"pulling {image}: no answer within {self._pull_timeout}s") from exc
            raise
        if response.status_code >= 400:
            raise ImagePullError(f"pulling {image}: {self._message(response)}")
        for line in response.text.splitlines():
            try:
                report = json.loads(line)
            except ValueError:
                continue
            if isinstance(report, dict) and report.get("error"):
                raise ImagePullError(f"pulling {image}: {report['error']}")
        if not self._client.images.exists(image):
            raise ImagePullError(f"pulling {image}: image still absent after pull")

    async def close(self) -> None:
        await asyncio.to_thread(self._pool.shutdown, wait=True, cancel_futures=True)
        self._client.close()  # type: ignore[no-untyped-call]
        if self._trace is not None:
            self._trace.close()
