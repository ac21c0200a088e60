"""The HorizontalPodAutoscaler controller: every sync period, each autoscaler's target is measured and scaled.

An autoscaler key (``namespace/name``) is queued when the autoscaler changes and again ``sync_period``
seconds (``ctx.options["hpa_sync_period"]``, default 15 s as kube-controller-manager's
``--horizontal-pod-autoscaler-sync-period``) after each pass. A pass:

- reads the target (Deployment, ReplicaSet, ReplicationController or StatefulSet) through the API: its
  ``spec.replicas`` and selector (what its scale subresource gives);
- takes the selector's pods from the pod cache and asks each of their nodes' kubelets for usage on
  ``shoal.node.<node>.metrics`` (``runtime.node_metrics``), all nodes at once; a node that does not answer
  leaves its pods without samples (``missing``, as Kubernetes treats them);
- asks ``hpa_plan.decide`` for the replicas (the autoscaler's ``History`` of recommendations and scale
  events kept here, in memory, as Kubernetes' controller keeps them), writes ``spec.replicas`` of the target
  when it changes, with a ``SuccessfulRescale`` event (``New size: N; reason: ...``) or ``FailedRescale``;
- writes the status (current/desired replicas, current metrics, conditions, lastScaleTime) when it changed.
"""

from __future__ import annotations

import asyncio
import time

from actors.controllers.base import ControllerContext, QueueController
from actors.controllers.hpa_plan import History, Usage, decide
from actors.controllers.manager import register
from actors.controllers.replication_index import NamespaceIndex
from protocol.errors import NotFound, ShoalError
from protocol.objects import Obj, format_time, labels_of, name_of, namespace_of, split_ref
from protocol.selectors import Selector, from_label_selector, from_match_labels
from runtime.informer import Informer
from runtime.node_metrics import PodUsage, node_pod_usage

KIND = "HorizontalPodAutoscaler"
DEFAULT_SYNC_PERIOD = 15.0
METRICS_TIMEOUT = 3.0


def target_selector(target: Obj) -> Selector:
    raw = (target.get("spec") or {}).get("selector")
    return from_match_labels(raw) if target.get("kind") == "ReplicationController" else from_label_selector(raw)


class HorizontalPodAutoscalerController(QueueController):
    name = "horizontalpodautoscaling"

    def __init__(self, *, workers: int = 2) -> None:
        super().__init__(workers=workers)
        self.pod_index = NamespaceIndex()
        self.histories: dict[str, History] = {}

    def setup(self, ctx: ControllerContext) -> None:
        self.bind(ctx)
        self.sync_period = float(ctx.options.get("hpa_sync_period") or DEFAULT_SYNC_PERIOD)
        self.pods: Informer = ctx.informers.informer("Pod")
        self.pods.add_handler(self.pod_index.handle)
        self.autoscalers = self.watch_primary(KIND)
        self.autoscalers.add_handler(self._on_autoscaler)

    def forget(self, key: str) -> None:
        self.histories.pop(key, None)

    def _on_autoscaler(self, event: str, old: Obj | None, new: Obj | None) -> None:
        if event == "MODIFIED" and old is not None and new is not None and old.get("spec") == new.get("spec"):
            return  # its status (our own write): the next look is already scheduled
        self.on_primary(event, old, new)

    async def reconcile(self, key: str) -> float | None:
        hpa = self.autoscalers.get(key)
        if hpa is None:
            self.forget(key)
            return None
        namespace, _ = split_ref(key)
        target_ref = (hpa.get("spec") or {}).get("scaleTargetRef") or {}
        kind, target_name = str(target_ref.get("kind") or ""), str(target_ref.get("name") or "")
        now = time.time()
        try:
            target = await self.client.get(kind, target_name, namespace)
        except ShoalError as exc:
            await self._failed(hpa, "FailedGetScale", f"the HPA controller was unable to get the target's current "
                                                      f"scale: {exc}", now)
            return self.sync_period
        spec = target.get("spec") or {}
        current = int(spec.get("replicas", 1))
        try:
            selector = target_selector(target)
        except ShoalError as exc:
            await self._failed(hpa, "InvalidSelector", f"the target's selector is invalid: {exc}", now)
            return self.sync_period
        pods = [p for p in self.pod_index.in_namespace(namespace) if selector.matches(labels_of(p))]
        usage = await self._usage(pods)
        decision = decide(hpa, current, pods, usage, self.histories.get(key, History()), now, format_time(now))
        self.histories[key] = decision.history
        status = decision.status
        if decision.rescale:
            try:
                await self.client.patch(kind, target_name, {"spec": {"replicas": decision.desired}}, namespace)
            except ShoalError as exc:
                await self.ctx.recorder.record(hpa, "Warning", "FailedRescale",
                                               f"New size: {decision.desired}; reason: {decision.reason}; "
                                               f"error: {exc}")
                raise
            await self.ctx.recorder.record(hpa, "Normal", "SuccessfulRescale",
                                           f"New size: {decision.desired}; reason: {decision.reason}")
        await self._write_status(hpa, status)
        return self.sync_period

    async def _usage(self, pods: list[Obj]) -> dict[str, Usage]:
        nodes = sorted({str((p.get("spec") or {}).get("nodeName")) for p in pods
                        if (p.get("spec") or {}).get("nodeName")})
        results = await asyncio.gather(*(node_pod_usage(self.client, n, timeout=METRICS_TIMEOUT) for n in nodes),
                                       return_exceptions=True)
        wanted: dict[str, set[str]] = {}
        for p in pods:
            wanted.setdefault(namespace_of(p) or "", set()).add(name_of(p))
        out: dict[str, Usage] = {}
        for node, result in zip(nodes, results, strict=True):
            if isinstance(result, BaseException):
                self.log.info("no metrics from node", node=node, error=str(result))
                continue
            for sample in result:
                if isinstance(sample, PodUsage) and sample.name in wanted.get(sample.namespace, set()):
                    out[sample.name] = Usage(sample.cpu_millicores, sample.memory_bytes, sample.timestamp,
                                             sample.window)
        return out

    async def _failed(self, hpa: Obj, reason: str, message: str, now: float) -> None:
        await self.ctx.recorder.record(hpa, "Warning", reason, message)
        previous = hpa.get("status") or {}
        old: Obj = next((c for c in previous.get("conditions") or [] if c.get("type") == "AbleToScale"), {})
        since = old.get("lastTransitionTime") if old.get("status") == "False" else format_time(now)
        conditions = [c for c in previous.get("conditions") or [] if c.get("type") != "AbleToScale"]
        conditions.insert(0, {"type": "AbleToScale", "status": "False", "reason": reason, "message": message,
                              "lastTransitionTime": since})
        await self._write_status(hpa, {**previous, "conditions": conditions})

    async def _write_status(self, hpa: Obj, status: Obj) -> None:
        if status == (hpa.get("status") or {}):
            return
        try:
            await self.client.patch(KIND, name_of(hpa), {"status": status}, namespace_of(hpa), status=True)
        except NotFound:
            return


register("horizontalpodautoscaling", HorizontalPodAutoscalerController)
