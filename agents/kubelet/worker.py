"""The kubelet's pod worker: one ``reconcile(key)`` = gather -> plan -> execute -> report.

- ``gather``: the desired pod (informer), the fresh runtime state of its key, the kubelet's notes, the
  liveness verdicts, the pod's address and its service environment, as one ``PodState``;
- ``decide``: ``plan.plan`` on that state (pure);
- ``execute``: ``executor.Executor`` carries the actions out (and records the Events saying what it did,
  and which containers wait for their back-off); the runtime is looked at again if anything was created
  or started;
- ``report``: probes follow the running containers, the status (``status.compute_status``) is written
  when it changed, and a deleted pod's memory is dropped. A failed probe check is recorded (``Unhealthy``)
  by the executor.

A worker is complete at construction: every collaborator is made by the caller (``agent.assemble``) and
passed in, so nothing is created lazily and nothing needs ``hasattr``.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from agents.kubelet.config import KubeletConfig
from agents.kubelet.executor import Executor
from agents.kubelet.plan import (
    FinishDeletion,
    Plan,
    PodNotes,
    PodRuntimeView,
    RemoveContainer,
    RemoveSandbox,
    RunContainer,
    StartCreated,
    plan,
)
from agents.kubelet.podnet import PodIPAllocator
from agents.kubelet.podspec import containers_of, service_env
from agents.kubelet.probes import ProbeScheduler, RunningContainer
from agents.kubelet.runtime_cache import RuntimeCache
from agents.kubelet.status import ERR_SHOWN, ProbeView, compute_status
from agents.kubelet.volumes import PodVolumes
from protocol.errors import Conflict, NotFound
from protocol.objects import (
    Obj,
    is_deleting,
    meta,
    name_of,
    namespace_of,
    pod_is_terminal,
    ref,
    resource_version,
    uid_of,
)
from runtime.client import ApiClient


class ObjectSource(Protocol):
    """What the worker reads desired objects from (an ``Informer``'s store)."""

    store: dict[str, Obj]

    def get(self, key: str) -> Obj | None: ...

    def items(self) -> list[Obj]: ...


@dataclass(slots=True)
class PodState:
    """Everything one reconcile decides from, gathered at its start."""

    key: str
    pod: Obj | None  # None: deleted, or not bound to this node
    view: PodRuntimeView
    notes: PodNotes
    specs: Mapping[str, Obj] = field(default_factory=dict)  # app container name -> spec
    pod_ip: str = ""  # the address assigned to the pod ("" for a pod being deleted or gone)
    links: dict[str, str] | None = None  # service environment variables
    now: float = 0.0


class StatusWriter:
    """Writes a pod's status when it differs from the last one seen or written (retrying one conflict)."""

    def __init__(self, client: ApiClient, log: Any) -> None:
        self.client = client
        self.log = log
        self.written: dict[str, tuple[int, Obj]] = {}  # pod uid -> (rv, status) of our last write

    def forget(self, uid: str) -> None:
        self.written.pop(uid, None)

    def is_echo(self, old: Obj | None, new: Obj | None) -> bool:
        """Whether ``old`` -> ``new`` is nothing but this writer's own last status write coming back through
        the watch: the same object but for the status and resourceVersion, and that status as written. The
        reconcile that wrote it already acted on everything else; another would only list the runtime again
        (and hold up the next pod's start behind that listing)."""
        if old is None or new is None:
            return False
        mine = self.written.get(uid_of(new))
        if mine is None or mine[0] != resource_version(new) or mine[1] != (new.get("status") or {}):
            return False
        rest = {k: v for k, v in meta(new).items() if k != "resourceVersion"}
        was = {k: v for k, v in meta(old).items() if k != "resourceVersion"}
        return rest == was and {k: v for k, v in new.items() if k not in ("metadata", "status")} == {
            k: v for k, v in old.items() if k not in ("metadata", "status")}

    async def write(self, pod: Obj, status: Obj) -> None:
        uid = uid_of(pod)
        rv, current = resource_version(pod), pod.get("status") or {}
        mine = self.written.get(uid)
        if mine is not None and mine[0] > rv:
            rv, current = mine
        if status == current:
            return
        for attempt in range(2):
            obj = {**pod, "metadata": {**meta(pod), "resourceVersion": str(rv)}, "status": status}
            try:
                written = await self.client.update_status(obj)
            except NotFound:
                return
            except Conflict:
                if attempt:
                    raise
                fresh = await self.client.get("Pod", name_of(pod), namespace_of(pod))
                if uid_of(fresh) != uid or is_deleting(fresh):
                    return
                pod, rv = fresh, resource_version(fresh)
                continue
            self.written[uid] = (resource_version(written), written.get("status") or {})
            self.log.debug("pod status written", pod=ref(pod), phase=status.get("phase"))
            return


def _more_to_start(again: Plan, done: Plan) -> bool:
    """Whether a plan made on the view after ``done``'s actions starts containers (never after a plan that
    only removed things, or when nothing was done: the relist, probes and back-off timers see to those)."""
    if not done.actions or _only_removals(done):
        return False
    return any(isinstance(a, RunContainer | StartCreated) for a in again.actions)


def _only_removals(decided: Plan) -> bool:
    return all(isinstance(a, RemoveSandbox | RemoveContainer | FinishDeletion) for a in decided.actions)


class PodWorker:
    """Reconciles the pods of one node, by key."""

    def __init__(
        self,
        config: KubeletConfig,
        *,
        pods: ObjectSource,
        services: ObjectSource | None,
        cache: RuntimeCache,
        probes: ProbeScheduler,
        executor: Executor,
        statuses: StatusWriter,
        pod_ips: PodIPAllocator | None,
        requeue: Callable[[str], None],
        runtime_name: str,
        volumes: PodVolumes | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.pods = pods
        self.services = services
        self.cache = cache
        self.probes = probes
        self.executor = executor
        self.statuses = statuses
        self.pod_ips = pod_ips
        """Set once the node's pod network is known (before any reconcile)."""
        self.requeue = requeue
        self.runtime_name = runtime_name
        self.volumes = volumes
        self.clock = clock
        self.notes: dict[str, PodNotes] = {}  # pod uid -> notes
        self.phases: dict[str, str] = {}  # pod key -> last phase reported
        self.reconciles = 0

    async def reconcile(self, key: str) -> float | None:
        self.reconciles += 1
        state = await self.gather(key)
        decided = self.decide(state)
        await self.execute(state, decided)
        requeue = await self.report(state, decided)
        after = self.decide(state)  # decided again on the view after the actions
        if _more_to_start(after, decided):
            return 0.0  # e.g. an init container already done: the next one now, not at the next relist
        if decided.actions and after.requeue_after is not None:
            # e.g. a restarted container that exited already: the relist sees no change in what this reconcile
            # saw, so its back-off is timed here, not at the next resync
            return after.requeue_after if requeue is None else min(requeue, after.requeue_after)
        return requeue

    # -- gather -----------------------------------------------------------------------------------
    async def gather(self, key: str) -> PodState:
        pod = self.pods.get(key)
        if pod is not None and (pod.get("spec") or {}).get("nodeName") != self.config.node_name:
            pod = None
        view = await self.cache.view(key)
        if pod is None:
            return PodState(key, None, view, PodNotes(), now=self.clock())
        uid = uid_of(pod)
        notes = self.notes.setdefault(uid, PodNotes())
        specs = {str(c.get("name")): c for c in containers_of(pod)}
        _, mine = view.for_uid(uid)
        notes.liveness_failed = {
            c.id for c in mine if c.state == "running" and c.name in specs and self.probes.failed(c.id, specs[c.name])
        }
        now = self.clock()
        return PodState(key, pod, view, notes, specs, self._pod_ip(pod, view), self._links(pod), now)

    def _pod_ip(self, pod: Obj, view: PodRuntimeView) -> str:
        if is_deleting(pod):
            return ""
        uid = uid_of(pod)
        pod_ips = self.pod_ips
        if pod_ips is None:
            raise RuntimeError("the pod network is not known yet: the kubelet reconciles only once it is")
        own = next((s.ip for s in view.sandboxes if s.pod_uid == uid and s.ip), None)
        if own is not None:
            pod_ips.keep(uid, own)
        in_use = (s.ip for v in self.cache.views.values() for s in v.sandboxes if s.ip)
        return own or pod_ips.assign(uid, in_use)

    def _links(self, pod: Obj) -> dict[str, str] | None:
        """The service variables of the pod's namespace (unless ``enableServiceLinks: false``) and, in every
        pod, the API's: ``default/kubernetes`` (``KUBERNETES_SERVICE_HOST``/``PORT``), as Kubernetes does."""
        if self.services is None:
            return None
        namespace = namespace_of(pod)
        links = (pod.get("spec") or {}).get("enableServiceLinks", True)
        chosen = [s for s in self.services.items()
                  if (links and namespace_of(s) == namespace)
                  or (namespace_of(s) == "default" and (s.get("metadata") or {}).get("name") == "kubernetes")]
        return service_env(chosen, self.config.service_gateway) if chosen or links else None

    # -- plan -------------------------------------------------------------------------------------
    def decide(self, state: PodState) -> Plan:
        return plan(state.pod, state.view, state.notes, state.now, node_name=self.config.node_name,
                    address=self.config.address, pod_ip=state.pod_ip, extra_env=state.links,
                    cap=self.config.backoff_max, keep_attempts=self.config.keep_attempts)

    # -- execute ----------------------------------------------------------------------------------
    async def execute(self, state: PodState, decided: Plan) -> None:
        """Carry the plan out; refresh ``state.view`` when something was created or started."""
        if decided.backoffs:
            await self.executor.backing_off(state.pod, decided.backoffs)
        if not decided.actions:
            return
        await self.executor.execute(state.pod, decided.actions, state.notes, key=state.key)
        if not _only_removals(decided):
            state.view = await self.cache.view(state.key)

    # -- report -----------------------------------------------------------------------------------
    async def report(self, state: PodState, decided: Plan) -> float | None:
        """Probes, status and memory after the actions; returns when to look at the pod again."""
        key, pod = state.key, state.pod
        if pod is None or is_deleting(pod):
            self.probes.forget(key)
            self.phases.pop(key, None)
            if pod is None:
                await self._forget_gone()
            return None
        uid = uid_of(pod)
        sandboxes, mine = state.view.for_uid(uid)
        pod_ip = next((s.ip for s in sandboxes if s.state == "ready" and s.ip), None)
        running = [RunningContainer(c.id, state.specs[c.name], c.started_at) for c in mine
                   if c.state == "running" and c.name in state.specs]
        self.probes.sync(key, running, pod_ip, self.config.address, self.requeue,
                         functools.partial(self.executor.probe_failed, pod) if self.executor.events else None)
        requeue = decided.requeue_after
        refresh = await self.volumes.refresh(pod) if running and self.volumes is not None else None
        if refresh is not None:  # ConfigMap/Secret volumes follow their objects
            requeue = refresh if requeue is None else min(requeue, refresh)
        if pod_is_terminal(pod):
            self.phases[key] = str((pod.get("status") or {}).get("phase"))
            return requeue
        ready, started = self.probes.view(running)
        now = self.clock()
        status = compute_status(pod, state.view, state.notes, ProbeView(ready, started), now,
                                host_ip=self.config.address, scheme=self.runtime_name, cap=self.config.backoff_max)
        await self.statuses.write(pod, status)
        self.phases[key] = str(status.get("phase"))
        for failure in state.notes.failures.values():
            shown = failure.at + ERR_SHOWN - now
            if failure.reason == "ErrImagePull" and shown > 0:
                requeue = shown + 0.05 if requeue is None else min(requeue, shown + 0.05)
        return requeue

    async def _forget_gone(self) -> None:
        live = {uid_of(p) for p in self.pods.store.values()}
        for gone in [u for u in self.notes if u not in live]:
            if self.volumes is not None:
                await self.volumes.cleanup(gone)
            self.notes.pop(gone, None)
            self.statuses.forget(gone)
            if self.pod_ips is not None:
                self.pod_ips.release(gone)

    def running_pods(self) -> int:
        return sum(1 for phase in self.phases.values() if phase == "Running")
