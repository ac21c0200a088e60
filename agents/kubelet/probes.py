"""Container probes (liveness, readiness, startup): one scheduler per process section, a heap of due probes.

``ProbeScheduler`` holds one entry per (container id, probe kind) and a heap ordered by due time; a single
task pops due entries and runs each check as a short child task (bounded by ``concurrency``), so a node
with hundreds of pods, or a process of a thousand hollow nodes, costs one task plus the checks in flight.
Results are counted against success/failure thresholds (``ProbeState``, pure); when an outcome changes
(readiness flips, startup passes, liveness or startup fails for good) ``on_change(pod_key)`` is called so
that the kubelet reconciles the pod. Startup gates the others: liveness and readiness are not run before the
startup probe has passed.

Handlers (``Prober``): exec runs in the container through the runtime (exit 0 passes); tcpSocket connects;
httpGet sends an HTTP/1.0 GET (status 200-399 passes). Network probes target the pod IP and fall back to the
port's hostPort on the node address when the pod IP cannot be reached.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import ssl
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol
from urllib.parse import urlsplit

from agents.kubelet.cri import ContainerRuntime, ContainerRuntimeError, ExecTimeout
from agents.kubelet.podspec import host_port_for, named_port
from protocol.objects import Obj

ProbeKind = Literal["startup", "liveness", "readiness"]
PROBE_FIELDS: dict[ProbeKind, str] = {
    "startup": "startupProbe",
    "liveness": "livenessProbe",
    "readiness": "readinessProbe",
}


@dataclass(frozen=True, slots=True)
class ProbeSpec:
    kind: ProbeKind
    handler: Obj  # the probe map: exec | httpGet | tcpSocket
    initial_delay: float = 0.0
    period: float = 10.0
    timeout: float = 1.0
    success_threshold: int = 1
    failure_threshold: int = 3

    @classmethod
    def from_container(cls, kind: ProbeKind, container: Obj) -> ProbeSpec | None:
        probe = container.get(PROBE_FIELDS[kind])
        if not isinstance(probe, dict):
            return None
        return cls(
            kind=kind,
            handler=probe,
            initial_delay=float(probe.get("initialDelaySeconds") or 0),
            period=float(probe.get("periodSeconds") or 10),
            timeout=float(probe.get("timeoutSeconds") or 1),
            success_threshold=1 if kind != "readiness" else int(probe.get("successThreshold") or 1),
            failure_threshold=int(probe.get("failureThreshold") or 3),
        )


@dataclass(frozen=True, slots=True)
class ProbeTarget:
    """Where a container can be reached: its pod IP, and the node address for published hostPorts."""

    container_id: str
    container: Obj  # the container's spec (for named and host ports)
    pod_ip: str | None
    node_address: str


@dataclass(slots=True)
class ProbeState:
    """Consecutive results against the thresholds. ``outcome`` None: undecided yet. Pure."""

    successes: int = 0
    failures: int = 0
    outcome: bool | None = None

    def record(self, ok: bool, spec: ProbeSpec) -> bool:
        """Count one result; returns True when ``outcome`` changed."""
        if ok:
            self.successes, self.failures = self.successes + 1, 0
            decided: bool | None = True if self.successes >= spec.success_threshold else self.outcome
        else:
            self.failures, self.successes = self.failures + 1, 0
            decided = False if self.failures >= spec.failure_threshold else self.outcome
        changed = decided != self.outcome
        self.outcome = decided
        return changed


def first_due(started_at: float | None, spec: ProbeSpec, now: float) -> float:
    """When a container's probe first runs: ``initialDelaySeconds`` after the container started."""
    return max(now, (started_at if started_at is not None else now) + spec.initial_delay)


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """A check's verdict and what it said (the ``Unhealthy`` event's message on failure; with ``warning``,
    a pass that the kubelet tells as a ``ProbeWarning`` event, e.g. an HTTP redirect to another host)."""

    ok: bool
    output: str = ""
    warning: bool = False


class Prober(Protocol):
    async def check(self, spec: ProbeSpec, target: ProbeTarget) -> bool | ProbeResult: ...


ProbeFailed = Callable[[str, str, str, bool], Awaitable[None]]
"""Told each failed check, and each pass with a warning: ``(probe kind, container name, output, warning)``."""


class NetworkProber:
    """Real probes: exec through the runtime, TCP connects and HTTP/1.0 GETs with asyncio streams."""

    def __init__(self, runtime: ContainerRuntime) -> None:
        self.runtime = runtime

    async def check(self, spec: ProbeSpec, target: ProbeTarget) -> ProbeResult:
        handler = spec.handler
        if isinstance(handler.get("exec"), dict):
            command = [str(x) for x in handler["exec"].get("command") or []]
            try:
                code, output = await self.runtime.exec_in_container(target.container_id, command, spec.timeout)
            except ExecTimeout:
                return ProbeResult(False, f"command {command!r} timed out")
            except ContainerRuntimeError as exc:
                return ProbeResult(False, str(exc))
            return ProbeResult(code == 0, output.strip() or f"command {command!r} exited with {code}")
        for kind in ("httpGet", "tcpSocket"):
            action = handler.get(kind)
            if isinstance(action, dict):
                return await self._network(kind, action, spec.timeout, target)
        return ProbeResult(False, "the probe has no exec, httpGet or tcpSocket handler")

    async def _network(self, kind: str, action: Obj, timeout: float, target: ProbeTarget) -> ProbeResult:
        port = named_port(target.container, action.get("port"))
        if port is None:
            return ProbeResult(False, f"the container has no port named {action.get('port')!r}")
        candidates: list[tuple[str, int]] = []
        host = action.get("host") or target.pod_ip
        if host:
            candidates.append((str(host), port))
        host_ip, host_port = host_port_for(target.container, port)
        if host_port:
            candidates.append((host_ip or target.node_address, host_port))
        failure = ProbeResult(False, "no address to probe")
        for address, number in candidates:
            try:
                if kind == "tcpSocket":
                    return await asyncio.wait_for(_tcp(address, number), timeout)
                return await asyncio.wait_for(_http(address, number, action), timeout)
            except TimeoutError:
                failure = ProbeResult(False, f"dial tcp {address}:{number}: i/o timeout")
            except OSError as exc:
                failure = ProbeResult(False, f"dial tcp {address}:{number}: connect: {exc.strerror or exc}")
        return failure


async def _tcp(host: str, port: int) -> ProbeResult:
    _, writer = await asyncio.open_connection(host, port)
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return ProbeResult(True)


MAX_REDIRECTS = 10
BODY_LIMIT = 10 * 1024  # what Kubernetes' prober reads of a body


async def _http(host: str, port: int, action: Obj) -> ProbeResult:
    """Kubernetes' HTTP probe: 200-399 passes; redirects on the same host are followed (at most 10);
    a redirect elsewhere is not followed and passes with a warning ("Probe terminated redirects")."""
    tls: ssl.SSLContext | None = None
    if str(action.get("scheme") or "HTTP").upper() == "HTTPS":
        tls = ssl.create_default_context()
        tls.check_hostname = False
        tls.verify_mode = ssl.CERT_NONE  # as Kubernetes: probes do not verify certificates
    headers = "".join(
        f"{h.get('name')}: {h.get('value')}\r\n" for h in action.get("httpHeaders") or [] if isinstance(h, dict)
    )
    path = str(action.get("path") or "/")
    for _ in range(MAX_REDIRECTS + 1):
        code, location, body = await _get(host, port, tls, path, headers)
        if code is None:
            return ProbeResult(False, f"HTTP probe failed: not an HTTP answer: {body[:80]!r}")
        if not 300 <= code < 400:
            return ProbeResult(200 <= code < 300, f"HTTP probe failed with statuscode: {code}")
        target = urlsplit(location or "")
        if location and (not target.hostname or (target.hostname == host and (target.port or port) == port)):
            path = (target.path or "/") + (f"?{target.query}" if target.query else "")
            continue
        return ProbeResult(True, f"Probe terminated redirects, Response body: {body}", warning=True)
    return ProbeResult(False, f"HTTP probe failed: stopped after {MAX_REDIRECTS} redirects")


async def _get(host: str, port: int, tls: ssl.SSLContext | None, path: str,
               headers: str) -> tuple[int | None, str | None, str]:
    """One HTTP/1.0 GET: (status code or None when the answer is not HTTP, Location, start of the body)."""
    reader, writer = await asyncio.open_connection(host, port, ssl=tls)
    try:
        writer.write(
            f"GET {path} HTTP/1.0\r\nHost: {host}:{port}\r\nUser-Agent: shoal-probe/0.1\r\n{headers}\r\n".encode()
        )
        await writer.drain()
        line = await reader.readline()
        parts = line.split(b" ", 2)
        if len(parts) < 2 or not parts[1].isdigit():
            return None, None, line.decode(errors="replace")
        location = None
        while (header := await reader.readline()) not in (b"\r\n", b"\n", b""):
            name, _, value = header.decode(errors="replace").partition(":")
            if name.strip().lower() == "location":
                location = value.strip()
        body = (await reader.read(BODY_LIMIT)).decode(errors="replace")
        return int(parts[1]), location, body
    finally:
        writer.close()
        with contextlib.suppress(OSError, ssl.SSLError):
            await writer.wait_closed()


class AlwaysPassProber:
    """For hollow nodes: network probes pass (fake pod IPs lead nowhere); exec asks the fake runtime."""

    def __init__(self, runtime: ContainerRuntime) -> None:
        self.runtime = runtime

    async def check(self, spec: ProbeSpec, target: ProbeTarget) -> ProbeResult:
        if isinstance(spec.handler.get("exec"), dict):
            try:
                code, _ = await self.runtime.exec_in_container(target.container_id, ["probe"], spec.timeout)
            except ContainerRuntimeError as exc:
                return ProbeResult(False, str(exc))
            return ProbeResult(code == 0, f"command exited with {code}")
        return ProbeResult(True)


@dataclass
class _Entry:
    pod_key: str
    spec: ProbeSpec
    target: ProbeTarget
    notify: Callable[[str], None]
    failed: ProbeFailed | None = None
    state: ProbeState = field(default_factory=ProbeState)
    seq: int = 0
    busy: bool = False


@dataclass(frozen=True, slots=True)
class RunningContainer:
    """What ``ProbeScheduler.sync`` needs to know of one running container."""

    container_id: str
    spec: Obj
    started_at: float | None


class ProbeScheduler:
    """Runs every probe of the containers it is told about; see the module docstring."""

    def __init__(
        self,
        prober: Prober,
        on_change: Callable[[str], None] = lambda key: None,
        *,
        clock: Callable[[], float] = time.time,
        concurrency: int = 64,
    ) -> None:
        self.prober = prober
        self.on_change = on_change
        """Called with a pod key when one of its probe outcomes changes."""
        self.clock = clock
        self._entries: dict[tuple[str, ProbeKind], _Entry] = {}
        self._by_pod: dict[str, set[tuple[str, ProbeKind]]] = {}
        self._heap: list[tuple[float, int, tuple[str, ProbeKind]]] = []
        self._seq = itertools.count(1)
        self._wake = asyncio.Event()
        self._limit = asyncio.Semaphore(concurrency)
        self._startup_passed: set[str] = set()
        self._pod_containers: dict[str, set[str]] = {}
        self.checks = 0

    # -- what the kubelet tells it and asks of it --------------------------------------------------
    def sync(self, pod_key: str, running: Sequence[RunningContainer], pod_ip: str | None,
             node_address: str, notify: Callable[[str], None] | None = None,
             failed: ProbeFailed | None = None) -> None:
        """Probe exactly these running containers of ``pod_key`` (others of the pod are forgotten).

        ``notify(pod_key)`` is called when an outcome changes (default: the scheduler's ``on_change``);
        hollow nodes share one scheduler and pass their own. ``failed`` is awaited after each failed check
        of a container newly probed (the kubelet records an ``Unhealthy`` event)."""
        wanted: set[tuple[str, ProbeKind]] = set()
        now = self.clock()
        for rc in running:
            target = ProbeTarget(rc.container_id, rc.spec, pod_ip, node_address)
            for kind in PROBE_FIELDS:
                spec = ProbeSpec.from_container(kind, rc.spec)
                if spec is None:
                    continue
                if kind == "startup" and rc.container_id in self._startup_passed:
                    continue
                key = (rc.container_id, kind)
                wanted.add(key)
                entry = self._entries.get(key)
                if entry is None:
                    entry = _Entry(pod_key, spec, target, notify or self.on_change, failed)
                    self._entries[key] = entry
                    self._schedule(key, entry, first_due(rc.started_at, spec, now))
                elif entry.target.pod_ip != pod_ip:
                    entry.target = target
        for key in self._by_pod.get(pod_key, set()) - wanted:
            self._entries.pop(key, None)
        ids = {rc.container_id for rc in running}
        self._startup_passed -= self._pod_containers.pop(pod_key, set()) - ids
        if ids:
            self._pod_containers[pod_key] = ids
        if wanted:
            self._by_pod[pod_key] = wanted
        else:
            self._by_pod.pop(pod_key, None)

    def forget(self, pod_key: str) -> None:
        self.sync(pod_key, (), None, "")

    def result(self, container_id: str, kind: ProbeKind) -> bool | None:
        entry = self._entries.get((container_id, kind))
        return entry.state.outcome if entry is not None else None

    def started(self, container_id: str, spec: Obj) -> bool:
        return not self._needs_startup(container_id, spec)

    def _needs_startup(self, container_id: str, spec: Obj) -> bool:
        return spec.get("startupProbe") is not None and container_id not in self._startup_passed

    def failed(self, container_id: str, spec: Obj) -> bool:
        """Whether the container must be killed: its liveness, or startup, probe failed for good."""
        _ = spec
        return self.result(container_id, "liveness") is False or self.result(container_id, "startup") is False

    def __len__(self) -> int:
        return len(self._entries)

    # -- the loop --------------------------------------------------------------------------------
    def _schedule(self, key: tuple[str, ProbeKind], entry: _Entry, due: float) -> None:
        entry.seq = next(self._seq)
        heapq.heappush(self._heap, (due, entry.seq, key))
        if self._heap[0][1] == entry.seq:
            self._wake.set()

    def due(self, now: float) -> list[tuple[tuple[str, ProbeKind], _Entry]]:
        """Pop every entry due by ``now`` (stale heap items are dropped)."""
        out = []
        while self._heap and self._heap[0][0] <= now:
            _, seq, key = heapq.heappop(self._heap)
            entry = self._entries.get(key)
            if entry is not None and entry.seq == seq:
                out.append((key, entry))
        return out

    async def run(self) -> None:
        async with asyncio.TaskGroup() as group:
            while True:
                now = self.clock()
                for key, entry in self.due(now):
                    gated = key[1] != "startup" and self._needs_startup(key[0], entry.target.container)
                    # a container whose liveness or startup failed for good is being restarted: its probes
                    # are on hold (as Kubernetes' prober worker), not run against a container being killed
                    held = key[1] != "readiness" and entry.state.outcome is False
                    if gated or held or entry.busy:
                        self._schedule(key, entry, now + entry.spec.period)
                        continue
                    entry.busy = True
                    group.create_task(self._check(key, entry), name=f"probe-{key[1]}-{key[0][:12]}")
                self._wake.clear()
                timeout = max(0.0, self._heap[0][0] - self.clock()) if self._heap else None
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout)

    async def _check(self, key: tuple[str, ProbeKind], entry: _Entry) -> None:
        try:
            async with self._limit:
                try:
                    verdict = await asyncio.wait_for(self.prober.check(entry.spec, entry.target),
                                                     entry.spec.timeout + 1.0)
                    result = verdict if isinstance(verdict, ProbeResult) else ProbeResult(bool(verdict))
                except TimeoutError:
                    result = ProbeResult(False, "timeout: the probe did not answer in time")
                except Exception as exc:  # a probe that cannot run has failed
                    result = ProbeResult(False, f"probe error: {exc}")
            ok = result.ok
            self.checks += 1
            if self._entries.get(key) is not entry:
                return  # forgotten meanwhile
            if (not ok or result.warning) and entry.failed is not None:
                await entry.failed(key[1], str(entry.target.container.get("name") or ""), result.output,
                                   ok and result.warning)
            changed = entry.state.record(ok, entry.spec)
            if key[1] == "startup" and entry.state.outcome is True:
                self._entries.pop(key, None)  # passed: never run again for this container
                self._startup_passed.add(key[0])
                self._by_pod.get(entry.pod_key, set()).discard(key)
            else:
                self._schedule(key, entry, self.clock() + entry.spec.period)
            if changed:
                entry.notify(entry.pod_key)
        finally:
            entry.busy = False

    def view(self, containers: Sequence[RunningContainer]) -> tuple[dict[str, bool], dict[str, bool]]:
        """(readiness results, startup passed) of these containers: the inputs of ``status.ProbeView``."""
        ready: dict[str, bool] = {}
        started: dict[str, bool] = {}
        for rc in containers:
            outcome = self.result(rc.container_id, "readiness")
            if outcome is not None:
                ready[rc.container_id] = outcome
            started[rc.container_id] = self.started(rc.container_id, rc.spec)
        return ready, started
