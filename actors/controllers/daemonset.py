"""The DaemonSet controller: one pod of a template on every eligible node, following nodes as they come and go.

Watch handlers only enqueue DaemonSet keys (``namespace/name``): a DaemonSet's own changes, its pods'
changes (by controller reference, or by selector for orphans) and, for every DaemonSet, a node added,
removed, or changed in what decides eligibility (labels, taints, cordon, Ready) -- not a heartbeat.
``reconcile`` asks ``daemonset_plan.plan_pass`` what to do and does it:

- adoption/release through ``controllerref.ControllerRefManager`` (resourceVersion preconditions);
- creations of pods pinned to their node by required node affinity (the scheduler binds them), in
  slow-start batches, stopping at the first failing batch; deletions concurrently;
- expectations (``expectations.Expectations``) block further creations/deletions until the pod cache
  has seen the earlier ones, so a stale cache never puts two pods on a node;
- a failed pod is deleted and replaced, with a per-node back-off (1 s doubling to 15 min, Kubernetes'
  ``failedPodsBackoff``) so a pod the kubelet keeps rejecting does not hot-loop;
- the status (desired/current/ready/available/updated/misscheduled counts) is written when it changed;
- the history: a ControllerRevision per template rolled out, numbered, the oldest pruned beyond
  ``revisionHistoryLimit`` (``daemonset_history``), so ``shoal rollout history ds/NAME`` lists them.

A pass costs the DaemonSet's own nodes and pods, not its namespace's: the fit of every node is kept per
DaemonSet and recomputed only for nodes whose labels, taints, cordon or Ready condition changed (or for all
when the DaemonSet's template changed what it selects or tolerates), and its pods are kept by node by the
pod handler (``daemonset_cache``); ``daemonset_plan.plan_pass`` decides from both (5-7 ms of CPU at
1,000 nodes, against 13 ms when everything was evaluated afresh; 50-60 ms at 5,000). Pod and node changes arriving right
after a pass wait until as long as its planning took has passed (``_enqueue``), so a stream of pod status
changes is handled in batches instead of one full pass after another, and the controller manager's event
loop is never taken whole by one DaemonSet. A DaemonSet's own changes are handled at once. The passes
and their planning time are in the controller manager's health (``stats``).
"""

from __future__ import annotations

import contextlib
import functools
import time

from actors.controllers.base import ControllerContext
from actors.controllers.daemonset_cache import DaemonPodIndex, NodeFits
from actors.controllers.daemonset_history import history_plan
from actors.controllers.daemonset_plan import (
    CreatePods,
    daemon_facts,
    daemon_hash,
    daemon_pod,
    plan_pass,
    status_changed,
)
from actors.controllers.history_writes import write_history
from actors.controllers.manager import register
from actors.controllers.podcontrol import create_expected
from actors.controllers.podowner import PodOwnerController
from actors.controllers.replication_index import NamespaceIndex
from actors.controllers.replication_plan import DeletePods
from protocol.errors import NotFound, ShoalError
from protocol.objects import (
    Obj,
    is_deleting,
    meta,
    name_of,
    ref,
    split_ref,
    uid_of,
)
from runtime.informer import Informer

KIND = "DaemonSet"
BACKOFF_INITIAL = 1.0
BACKOFF_MAX = 900.0


class DaemonSetError(ShoalError):
    """Some of a pass's creations or deletions failed; the DaemonSet is retried with back-off."""

    retryable = True


class FailedPodBackoff:
    """Per (DaemonSet, node): until when a failed pod there is not replaced again, and the next delay."""

    def __init__(self, initial: float = BACKOFF_INITIAL, maximum: float = BACKOFF_MAX) -> None:
        self.initial = initial
        self.maximum = maximum
        self._entries: dict[str, dict[str, tuple[float, float]]] = {}

    def until(self, key: str) -> dict[str, float]:
        return {node: until for node, (until, _) in self._entries.get(key, {}).items()}

    def step(self, key: str, node: str, now: float) -> None:
        entries = self._entries.setdefault(key, {})
        _, delay = entries.get(node, (0.0, 0.0))
        delay = self.initial if delay <= 0 else min(delay * 2, self.maximum)
        entries[node] = (now + delay, delay)

    def forget(self, key: str) -> None:
        self._entries.pop(key, None)


class PassStats:
    """How many passes ran and how long their planning took (seconds of the event loop, not API waits)."""

    def __init__(self) -> None:
        self.passes = 0
        self.total = 0.0
        self.longest = 0.0
        self.last = 0.0
        self.cpu = 0.0

    def add(self, seconds: float, cpu: float) -> None:
        """One pass whose planning took ``seconds`` of wall time, ``cpu`` of them on the CPU (a loaded machine
        stretches the first, not the second)."""
        self.passes += 1
        self.total += seconds
        self.cpu += cpu
        self.longest = max(self.longest, seconds)
        self.last = seconds

    def summary(self) -> dict[str, float]:
        mean = self.total / self.passes if self.passes else 0.0
        return {"passes": self.passes, "planning_s": round(self.total, 3), "planning_cpu_s": round(self.cpu, 3),
                "mean_ms": round(mean * 1000, 2),
                "max_ms": round(self.longest * 1000, 2), "last_ms": round(self.last * 1000, 2)}


class DaemonSetController(PodOwnerController):
    name = "daemonset"

    def __init__(self, *, workers: int = 2) -> None:
        super().__init__(KIND, workers=workers)
        self.backoff = FailedPodBackoff()
        self.revision_index = NamespaceIndex()
        self.node_fits = NodeFits()
        self.daemon_pods = DaemonPodIndex()
        self.pass_stats = PassStats()
        self._passes: dict[str, tuple[float, float]] = {}
        """Per DaemonSet key: when its last pass ended and how long its planning took (``time.monotonic``)."""

    # -- wiring -------------------------------------------------------------------------------
    def setup(self, ctx: ControllerContext) -> None:
        self.bind(ctx)
        self.pods: Informer = ctx.informers.informer("Pod")
        self.daemonsets = self.watch_primary(KIND)
        self.nodes: Informer = ctx.informers.informer("Node")
        self.revisions: Informer = ctx.informers.informer("ControllerRevision")
        self.revisions.add_handler(self.revision_index.handle)
        self.revisions.add_handler(self._on_revision)
        self.pods.add_handler(self.pod_index.handle)
        self.pods.add_handler(self.daemon_pods.handle)
        self.pods.add_handler(self.on_pod)
        self.daemonsets.add_handler(self.owner_index.handle)
        self.daemonsets.add_handler(self._on_daemonset)
        self.nodes.add_handler(self._on_node)

    def forget(self, key: str) -> None:
        super().forget(key)
        self.backoff.forget(key)
        self.node_fits.forget(key)
        self._passes.pop(key, None)

    def stats(self) -> dict[str, float]:
        """For the controller manager's health: the passes so far and the time their planning took."""
        return self.pass_stats.summary()

    # -- handlers: only enqueue keys and count observations -------------------------------------
    def _enqueue(self, key: str) -> None:
        """Queue ``key`` now, or once as long as its last planning took has passed since its last pass ended."""
        last = self._passes.get(key)
        wait = 0.0 if last is None else last[0] + last[1] - time.monotonic()
        if wait > 0.001:
            self.queue.add_after(key, wait)
        else:
            self.queue.add(key)

    def enqueue_all(self) -> None:
        for ds in self.daemonsets.items():
            self._enqueue(ref(ds))

    def _on_daemonset(self, event: str, old: Obj | None, new: Obj | None) -> None:
        obj = new if new is not None else old
        if obj is None:
            return
        key = ref(obj)
        if event == "DELETED":
            self.forget(key)
        if event == "MODIFIED" and old is not None and new is not None and \
                meta(old).get("generation") == meta(new).get("generation"):
            self._enqueue(key)  # its status or metadata (often our own status write): no hurry
        else:
            self.queue.add(key)

    def _on_revision(self, event: str, old: Obj | None, new: Obj | None) -> None:
        obj = new if new is not None else old
        if obj is not None and event != "MODIFIED" and (key := self.owner_key(obj)) is not None:
            self._enqueue(key)  # one went or came: the history may need pruning or its revision

    def _on_node(self, event: str, old: Obj | None, new: Obj | None) -> None:
        if self.node_fits.handle_node(event, old, new):
            self.enqueue_all()

    def enqueue_owner(self, key: str) -> None:
        self._enqueue(key)  # pod changes come in streams: batched

    # -- reconcile ----------------------------------------------------------------------------
    async def reconcile(self, key: str) -> float | None:
        ds = self.daemonsets.get(key)
        if ds is None:
            self.forget(key)
            return None
        cost = [0.0]
        try:
            return await self._sync(key, ds, cost)
        finally:
            self._passes[key] = (time.monotonic(), cost[0])

    async def _sync(self, key: str, ds: Obj, cost: list[float]) -> float | None:
        namespace, _ = split_ref(key)
        if not is_deleting(ds):
            try:
                await self._keep_history(ds, namespace)
            except ShoalError as exc:  # the history can wait for the next pass; the pods cannot
                self.log.info("daemonset history not written", daemonset=key, error=str(exc))
        now = time.time()
        started, started_cpu = time.monotonic(), time.thread_time()
        facts = daemon_facts(ds)
        result = plan_pass(ds, facts, self.node_fits.fits(key, facts), self.daemon_pods.by_node(uid_of(ds)),
                           self.daemon_pods.orphans(namespace), now,
                           expectations_satisfied=self.expectations.satisfied(key), backoff=self.backoff.until(key))
        cost[0] = time.monotonic() - started  # the CPU-bound part: the API calls below are waits, not work
        self.pass_stats.add(cost[0], time.thread_time() - started_cpu)
        errors: list[str] = []
        await self.claim_pods(ds, list(result.actions))
        for node in result.failed_nodes:
            self.backoff.step(key, node, now)
            await self.ctx.recorder.record(ds, "Warning", "FailedDaemonPod",
                                           f"Found failed daemon pod on node {node}, will try to kill it")
        for action in result.actions:
            if isinstance(action, CreatePods):
                _, error = await create_expected(self.expectations, key, action.nodes,
                                                 functools.partial(self._create_one, ds, daemon_hash(ds)))
                if error is not None:
                    errors.append(error)
            elif isinstance(action, DeletePods):
                errors.extend(await self.delete_pods(ds, key, list(action.names)))
        if status_changed(ds.get("status") or {}, result.status):
            with contextlib.suppress(NotFound):
                await self.client.patch(KIND, name_of(ds), {"status": result.status}, namespace, status=True)
        if errors:
            raise DaemonSetError(f"{KIND} {key}: " + "; ".join(errors[:3]))
        return result.requeue_after

    async def _keep_history(self, ds: Obj, namespace: str | None) -> None:
        """Write what ``history_plan`` asks: the current template's revision, its number, the pruning."""
        live = [p for p in self.daemon_pods.owned(uid_of(ds)) if not is_deleting(p)]
        history = history_plan(ds, self.revision_index.in_namespace(namespace), live, daemon_hash(ds))
        await write_history(self.client, history, namespace)

    async def _create_one(self, ds: Obj, hash_: str, node: str) -> None:
        try:
            pod = await self.client.create(daemon_pod(ds, node, hash_))
        except ShoalError as exc:
            await self.ctx.recorder.record(ds, "Warning", "FailedCreate", f"Error creating: {exc}")
            raise
        await self.ctx.recorder.record(ds, "Normal", "SuccessfulCreate",
                                       f"Created pod: {name_of(pod)} (for node {node})")


register("daemonset", DaemonSetController)
