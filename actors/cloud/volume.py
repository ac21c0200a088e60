"""The cloud volume controller: provider volumes for the claims pods mount (``volume_plan``).

Keys are pods (``namespace/name``), enqueued on their changes.
"""

from __future__ import annotations

from actors.cloud.base import CloudContext, run_controller
from actors.cloud.volume_plan import plan
from protocol.objects import Obj, ref
from runtime.workqueue import WorkQueue


class VolumeController:
    name = "volume"

    def __init__(self) -> None:
        self.queue = WorkQueue()

    def setup(self, ctx: CloudContext) -> None:
        self.ctx = ctx
        self.pods = ctx.informers.informer("Pod")
        self.pods.add_handler(self._on_pod)

    def _on_pod(self, _event: str, _old: Obj | None, new: Obj | None) -> None:
        if new is not None:
            self.queue.add(ref(new))

    async def run(self) -> None:
        await run_controller(self.queue, self.reconcile, self.ctx.log)

    async def reconcile(self, key: str) -> float | None:
        pod = self.pods.get(key)
        if pod is None:
            return None
        for action in plan(pod):
            await self.ctx.provider.ensure_volume(action.name, dict(action.labels))
            self.ctx.counts["volumes"] = self.ctx.counts.get("volumes", 0) + 1
        return None
