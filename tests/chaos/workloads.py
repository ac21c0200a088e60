"""Workloads that record histories through the Shoal API while faults happen:

- ``CasClients``: read / write / compare-and-swap on a few ConfigMaps (the register is ``data.v`` and the
  resourceVersion; a CAS is an update carrying the resourceVersion a read returned), each operation
  recorded as Jepsen does (invoke, then ok / fail / info). A process that gets ``info`` is retired and a
  new process id takes its place (its operation may still be in flight);
- ``Watcher``: a watch of a label selection recording every event, and ``Expired`` followed by a relist;
- ``PodCreator``: pods the scheduler binds; what every pod watcher saw is then checked for double binds;
- ``DeploymentScaler``: a Deployment scaled now and then while the faults come and go, then waited for until
  the controllers, the scheduler and the kubelets have converged on its last size.

Errors are classified conservatively: ``fail`` only when the operation certainly did not happen (a
Conflict, NotFound, Invalid... or no API actor at all), ``info`` otherwise (a timeout may hide a write).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from protocol.errors import (
    AlreadyExists,
    BadRequest,
    Conflict,
    Expired,
    Forbidden,
    Invalid,
    NotFound,
    ShoalError,
    Unavailable,
)
from runtime.client import NO_API, ApiClient
from tests.chaos.checkers import Event, EventType, PodObservation, RegisterState, WatchRecord, deployment_lag

NAMESPACE = "default"
DEFINITE = (Conflict, NotFound, Invalid, BadRequest, Forbidden)


def classify(exc: BaseException) -> EventType:
    if isinstance(exc, DEFINITE):
        return EventType.FAIL
    if isinstance(exc, Unavailable) and str(exc) == NO_API:  # no API actor received it
        return EventType.FAIL
    return EventType.INFO


@dataclass
class Recorder:
    events: list[Event] = field(default_factory=list)

    def add(self, process: int, kind: EventType, f: str, key: str, value: Any, error: str | None = None) -> None:
        self.events.append(Event(process, kind, f, key, value, time.monotonic(), error))


def configmap(name: str, run: str, value: str, rv: int | None = None) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name, "namespace": NAMESPACE, "labels": {"chaos-run": run}}
    if rv is not None:
        metadata["resourceVersion"] = str(rv)
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata, "data": {"v": value}}


async def retry(call: Callable[[], Any], what: str, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        try:
            return await call()
        except ShoalError as exc:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{what}: still failing after {timeout}s: {exc!r}") from exc
            await asyncio.sleep(0.3)


@dataclass
class CasClients:
    clients: list[ApiClient]
    run: str
    keys: list[str]
    rate: float
    seed: int
    recorder: Recorder = field(default_factory=Recorder)
    initial: dict[str, RegisterState] = field(default_factory=dict)
    epochs: int = 1
    epoch_s: float = 0.0
    """With several epochs, the keys in use change every ``epoch_s`` seconds: each key's history stays
    short enough for the linearizability search however long the run."""
    started: float = 0.0
    _process_ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def all_keys(self) -> list[str]:
        if self.epochs == 1:
            return list(self.keys)
        return [f"{key}-e{epoch}" for epoch in range(self.epochs) for key in self.keys]

    def current_keys(self) -> list[str]:
        if self.epochs == 1:
            return self.keys
        epoch = min(self.epochs - 1, int((time.monotonic() - self.started) / self.epoch_s))
        return [f"{key}-e{epoch}" for key in self.keys]

    async def setup(self) -> None:
        client = self.clients[0]
        for key in self.all_keys():
            async def create(key: str = key) -> dict[str, Any]:
                try:
                    return await client.create(configmap(key, self.run, "init"))
                except AlreadyExists:  # an earlier attempt was stored, its answer lost
                    return await client.get("ConfigMap", key, NAMESPACE)
            obj = await retry(create, f"creating {key}")
            rv = int(obj["metadata"]["resourceVersion"])
            self.initial[key] = RegisterState(obj["data"]["v"], rv, rv)
        self.started = time.monotonic()

    async def run_until(self, stop: asyncio.Event) -> None:
        await asyncio.gather(*(self._worker(i, client, stop) for i, client in enumerate(self.clients)))

    async def _worker(self, worker: int, client: ApiClient, stop: asyncio.Event) -> None:
        rng = random.Random(self.seed * 1000 + worker)
        process = next(self._process_ids)
        interval = len(self.clients) / self.rate
        counter = 0
        while not stop.is_set():
            started = time.monotonic()
            key = rng.choice(self.current_keys())
            f = rng.choices(("read", "write", "cas"), weights=(2, 1, 3))[0]
            counter += 1
            value = f"p{process}-{counter}"
            ok = True
            if f == "read":
                ok, _ = await self._read(client, process, key)
            elif f == "write":
                ok = await self._write(client, process, key, value, None)
            else:
                ok, seen = await self._read(client, process, key)
                if ok and seen is not None:
                    ok = await self._write(client, process, key, value, seen[1])
            if not ok:
                process = next(self._process_ids)  # its last operation may still be in flight
            await asyncio.sleep(max(0.0, interval - (time.monotonic() - started)))

    async def _read(self, client: ApiClient, process: int, key: str) -> tuple[bool, tuple[str, int] | None]:
        self.recorder.add(process, EventType.INVOKE, "read", key, None)
        try:
            obj = await client.get("ConfigMap", key, NAMESPACE)
        except Exception as exc:
            kind = classify(exc)
            self.recorder.add(process, kind, "read", key, None, type(exc).__name__)
            return kind is EventType.FAIL, None
        seen = (obj["data"]["v"], int(obj["metadata"]["resourceVersion"]))
        self.recorder.add(process, EventType.OK, "read", key, seen)
        return True, seen

    async def _write(self, client: ApiClient, process: int, key: str, value: str, expected: int | None) -> bool:
        f, argument = ("write", value) if expected is None else ("cas", (expected, value))
        self.recorder.add(process, EventType.INVOKE, f, key, argument)
        try:
            obj = await client.update(configmap(key, self.run, value, expected))
        except Exception as exc:
            kind = classify(exc)
            self.recorder.add(process, kind, f, key, None, type(exc).__name__)
            return kind is EventType.FAIL
        self.recorder.add(process, EventType.OK, f, key, int(obj["metadata"]["resourceVersion"]))
        return True

    async def final_reads(self, timeout: float = 180.0) -> dict[str, tuple[str, int]]:
        """Every key read once more (recorded too), once the cluster answers again (``TimeoutError`` if it
        does not within ``timeout`` s)."""
        process = next(self._process_ids)
        final: dict[str, tuple[str, int]] = {}
        deadline = time.monotonic() + timeout
        for key in self.all_keys():
            while True:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"final reads: {key} still unreadable {timeout:.0f} s after the last heal")
                ok, seen = await self._read(self.clients[0], process, key)
                if seen is not None:
                    final[key] = seen
                    break
                if not ok:
                    process = next(self._process_ids)
                await asyncio.sleep(0.3)
        return final


@dataclass
class Watcher:
    """Watches ``kind`` objects labelled ``chaos-run=<run>``, recording what it sees."""

    name: str
    client: ApiClient
    kind: str
    run: str
    records: list[WatchRecord] = field(default_factory=list)
    pods: list[PodObservation] = field(default_factory=list)
    last_rv: int = 0
    expirations: int = 0
    endings: list[str] = field(default_factory=list)
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    current: Any = None

    def position(self) -> int:
        """The revision this watcher is current at: its last event, or the watch's bookmarks since."""
        rv = self.current.resource_version if self.current is not None else None
        return max(self.last_rv, rv or 0)

    def _note(self, obj: dict[str, Any], event_type: str, rv: int) -> None:
        meta = obj.get("metadata") or {}
        name = str(meta.get("name"))
        value = (obj.get("data") or {}).get("v") if self.kind == "ConfigMap" else None
        self.records.append(WatchRecord("event", rv, name, value, event_type))
        if self.kind == "Pod":
            node = (obj.get("spec") or {}).get("nodeName") or None
            self.pods.append(PodObservation(name, str(meta.get("uid")), node, rv, self.name))
        self.last_rv = max(self.last_rv, rv)

    async def run_until(self, stop: asyncio.Event) -> None:
        selector = f"chaos-run={self.run}"
        rv: int | None = None
        while not stop.is_set():
            if rv is None:
                listed = await retry(lambda: self.client.list(self.kind, NAMESPACE, label_selector=selector),
                                     f"{self.name} listing")
                rv = listed.resource_version
                if self.records:
                    self.records.append(WatchRecord("relist", rv))
                else:
                    self.records.append(WatchRecord("start", rv))
                self.last_rv = max(self.last_rv, rv)
            watch = self.client.watch(self.kind, NAMESPACE, label_selector=selector, resource_version=rv)
            self.current = watch
            try:
                async for event in until_stopped(watch, stop, self.ready):
                    self._note(event.object, event.type, event.resource_version)
                    rv = event.resource_version
                    if stop.is_set():
                        break
                if watch.resource_version is not None:  # bookmarks move it on between events
                    self.last_rv = max(self.last_rv, watch.resource_version)
            except Expired:
                self.expirations += 1
                self.records.append(WatchRecord("expired"))
                rv = None
            except Exception as exc:
                self.endings.append(f"{type(exc).__name__}: {exc}")
                self.records.append(WatchRecord("ended"))
                rv = None
                await asyncio.sleep(0.5)
            finally:
                with contextlib.suppress(Exception):
                    await watch.close()


async def until_stopped(watch: Any, stop: asyncio.Event, ready: asyncio.Event) -> AsyncIterator[Any]:
    """The watch's events until ``stop`` is set (a quiet watch ends too)."""
    iterator = watch.__aiter__()
    ready.set()
    stopper = asyncio.ensure_future(stop.wait())
    try:
        while not stop.is_set():
            nxt = asyncio.ensure_future(iterator.__anext__())
            done, _ = await asyncio.wait({nxt, stopper}, return_when=asyncio.FIRST_COMPLETED)
            if nxt not in done:
                nxt.cancel()
                with contextlib.suppress(BaseException):
                    await nxt
                return
            try:
                yield nxt.result()
            except StopAsyncIteration:
                return
    finally:
        stopper.cancel()


@dataclass
class PodCreator:
    client: ApiClient
    run: str
    nodes: list[str]
    rate: float
    limit: int
    created: dict[str, tuple[str, int]] = field(default_factory=dict)
    """name -> (uid, rv) of each acknowledged create."""
    attempts: int = 0

    def pod(self, name: str) -> dict[str, Any]:
        affinity = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchExpressions": [{"key": "kubernetes.io/hostname", "operator": "In", "values": self.nodes}]}]}}}
        return {"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": name, "namespace": NAMESPACE, "labels": {"chaos-run": self.run}},
                "spec": {"affinity": affinity, "terminationGracePeriodSeconds": 0,
                         "containers": [{"name": "c", "image": "localhost/shoal/busybox:latest",
                                         "command": ["sleep", "3600"]}]}}

    async def run_until(self, stop: asyncio.Event) -> None:
        i = 0
        while not stop.is_set() and i < self.limit:
            name = f"{self.run}-pod-{i}"
            self.attempts += 1
            try:
                obj = await self.client.create(self.pod(name))
            except ShoalError as exc:
                if isinstance(exc, AlreadyExists):  # an earlier attempt was stored
                    with contextlib.suppress(ShoalError):
                        obj = await self.client.get("Pod", name, NAMESPACE)
                        self.created[name] = (obj["metadata"]["uid"], int(obj["metadata"]["resourceVersion"]))
                        i += 1
                await asyncio.sleep(0.2)
                continue
            self.created[name] = (obj["metadata"]["uid"], int(obj["metadata"]["resourceVersion"]))
            i += 1
            await asyncio.sleep(1 / self.rate)


@dataclass
class DeploymentScaler:
    """A Deployment on the fake-runtime nodes, scaled to a size drawn from 1-4 every ``period`` s (a patch;
    one that fails or times out is not retried: the next draw comes anyway). Once the faults are healed,
    ``wait_converged`` waits until its status and its pods match its last size (``deployment_lag``)."""

    client: ApiClient
    run: str
    nodes: list[str]
    seed: int
    period: float = 15.0
    scalings: int = 0
    lag: str | None = "not created"

    @property
    def name(self) -> str:
        return f"{self.run}-web"

    def deployment(self, replicas: int) -> dict[str, Any]:
        labels = {"chaos-deployment": self.run}
        affinity = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchExpressions": [{"key": "kubernetes.io/hostname", "operator": "In", "values": self.nodes}]}]}}}
        return {"apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": self.name, "namespace": NAMESPACE},
                "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                         "template": {"metadata": {"labels": labels},
                                      "spec": {"affinity": affinity, "terminationGracePeriodSeconds": 0,
                                               "containers": [{"name": "c", "image": "localhost/shoal/busybox:latest",
                                                               "command": ["sleep", "3600"]}]}}}}

    async def setup(self) -> None:
        async def create() -> None:
            with contextlib.suppress(AlreadyExists):  # an earlier attempt was stored
                await self.client.create(self.deployment(2))

        await retry(create, "deployment")

    async def run_until(self, stop: asyncio.Event) -> None:
        rng = random.Random(self.seed)
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.period)
            if stop.is_set():
                return
            with contextlib.suppress(ShoalError):
                await self.client.patch("Deployment", self.name, {"spec": {"replicas": rng.randint(1, 4)}},
                                        NAMESPACE)
                self.scalings += 1

    async def wait_converged(self, timeout: float) -> bool:
        """True once converged within ``timeout`` s; ``lag`` keeps what was still wrong."""
        deadline = time.monotonic() + timeout
        while True:
            with contextlib.suppress(ShoalError):
                deployment = await self.client.get("Deployment", self.name, NAMESPACE)
                pods = await self.client.list("Pod", NAMESPACE, label_selector=f"chaos-deployment={self.run}")
                self.lag = deployment_lag(deployment, pods.items)
                if self.lag is None:
                    return True
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.5)

    async def cleanup(self) -> None:
        with contextlib.suppress(ShoalError):
            await self.client.delete("Deployment", self.name, NAMESPACE, propagation="Background")


@dataclass
class RawKvObserver:
    """A JetStream ordered consumer on the KV stream itself (what each API actor's watch cache follows),
    recording the chaos run's ConfigMap changes like a watcher: it tells a change lost by the datastore's
    change feed from one lost by the API's watch path. It follows the whole bucket, as the API actor does,
    so its stream sequences are consecutive but where a revision was superseded before it was read (history
    1): such a hole is recorded at once as an Expired and a relist, as the API actor ends its watches."""

    name: str
    nc: Any
    run: str
    records: list[WatchRecord] = field(default_factory=lambda: [WatchRecord("start", 0)])
    last_rv: int = 0
    sub: Any = None

    def position(self) -> int:
        return self.last_rv

    async def start(self) -> None:
        from protocol import codec, keys

        prefix = f"{keys.KV_SUBJECT_PREFIX}configmaps.{NAMESPACE}."

        async def handler(msg: Any) -> None:
            rv = int(msg.metadata.sequence.stream)
            if rv > self.last_rv + 1:
                # revisions superseded before they were read (of any key): said at once, as the API actor does
                self.records += [WatchRecord("expired", rv - 1), WatchRecord("relist", rv - 1)]
            self.last_rv = max(self.last_rv, rv)
            if not msg.subject.startswith(prefix):
                return
            name = keys.decode_token(msg.subject[len(prefix):])
            if not name.startswith(self.run):
                return
            value = None
            with contextlib.suppress(Exception):
                value = (codec.unpackb(msg.data).get("data") or {}).get("v")
            self.records.append(WatchRecord("event", rv, name, value, "MODIFIED"))

        self.sub = await self.nc.jetstream().subscribe(keys.KV_SUBJECT_PREFIX + ">", cb=handler,
                                                      ordered_consumer=True, idle_heartbeat=1.0)

    async def stop(self) -> None:
        if self.sub is not None:
            with contextlib.suppress(Exception):
                await self.sub.unsubscribe()
