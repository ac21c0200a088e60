"""The Deployment controller against a real API, with the replicaset controller and a pod simulator."""

from __future__ import annotations

import asyncio
from typing import Any

from actors.controllers.deployment_plan import revision_history, rollback_template
from actors.controllers.deployment_revisions import REVISION
from protocol.objects import Obj, controller_of, is_deleting, name_of, pod_is_ready, uid_of
from runtime.client import ApiClient
from tests.conftest import cancel_and_wait
from tests.controllers.conftest import StartControllers, eventually


def deployment(name: str, replicas: int, image: str, strategy: Obj | None = None) -> Obj:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": "default"},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "strategy": strategy or {"type": "RollingUpdate",
                                              "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "web", "image": image}]}}}}


async def replicasets(client: ApiClient, deploy: Obj) -> list[Obj]:
    items = (await client.list("ReplicaSet", "default")).items
    return [rs for rs in items if (controller_of(rs) or {}).get("uid") == uid_of(deploy)]


async def rolled_out(client: ApiClient, name: str, replicas: int, image: str) -> Obj | None:
    """The deployment once its status says the rollout to ``image`` is complete."""
    deploy = await client.get("Deployment", name, "default")
    status = deploy.get("status") or {}
    if deploy["spec"]["template"]["spec"]["containers"][0]["image"] != image:
        return None
    progressing: Obj = next((c for c in status.get("conditions") or [] if c["type"] == "Progressing"), {})
    done = (status.get("observedGeneration") == deploy["metadata"]["generation"]
            and status.get("replicas") == replicas and status.get("updatedReplicas") == replicas
            and status.get("availableReplicas") == replicas and status.get("readyReplicas") == replicas
            and status.get("unavailableReplicas") == 0
            and progressing.get("reason") == "NewReplicaSetAvailable")
    return deploy if done else None


async def set_image(client: ApiClient, name: str, image: str) -> None:
    deploy = await client.get("Deployment", name, "default")
    deploy["spec"]["template"]["spec"]["containers"][0]["image"] = image
    await client.update(deploy)


class Sampler:
    """Polls the pods of one app: the fewest available ones and whether two templates ever overlapped."""

    def __init__(self, client: ApiClient, app: str) -> None:
        self.client, self.app = client, app
        self.min_available: int | None = None
        self.max_total = 0
        self.mixed = False
        self.samples = 0
        self._stopped = False
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while not self._stopped:
            pods = (await self.client.list("Pod", "default", label_selector=f"app={self.app}")).items
            live = [p for p in pods if not is_deleting(p)]
            ready = sum(1 for p in live if pod_is_ready(p))
            self.min_available = ready if self.min_available is None else min(self.min_available, ready)
            self.max_total = max(self.max_total, len(live))
            images = {p["spec"]["containers"][0]["image"] for p in pods}
            self.mixed = self.mixed or len(images) > 1
            self.samples += 1
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        self._stopped = True
        await cancel_and_wait(self._task)


async def test_deployment_reaches_available(client: ApiClient, start_controllers: StartControllers,
                                            pod_status_simulator: Any) -> None:
    await start_controllers("deployment", "replicaset")
    await client.create(deployment("web", 3, "nginx:1.25"))
    deploy = await eventually(lambda: rolled_out(client, "web", 3, "nginx:1.25"))
    available = next(c for c in deploy["status"]["conditions"] if c["type"] == "Available")
    assert available["status"] == "True"
    [rs] = await replicasets(client, deploy)
    pod_hash = rs["metadata"]["labels"]["pod-template-hash"]
    assert name_of(rs) == f"web-{pod_hash}"
    assert rs["spec"]["selector"]["matchLabels"] == {"app": "web", "pod-template-hash": pod_hash}
    assert rs["metadata"]["annotations"][REVISION] == "1"
    assert deploy["metadata"]["annotations"][REVISION] == "1"


async def _rolling_update(client: ApiClient, strategy: Obj, replicas: int, max_unavailable: int,
                          max_surge: int) -> None:
    await client.create(deployment("roll", replicas, "nginx:1.25", strategy))
    deploy = await eventually(lambda: rolled_out(client, "roll", replicas, "nginx:1.25"))
    sampler = Sampler(client, "roll")
    try:
        await set_image(client, "roll", "nginx:1.26")
        deploy = await eventually(lambda: rolled_out(client, "roll", replicas, "nginx:1.26"), timeout=30)
    finally:
        await sampler.stop()
    assert sampler.samples > 5
    assert sampler.min_available is not None and sampler.min_available >= replicas - max_unavailable
    assert sampler.max_total <= replicas + max_surge
    sets = {rs["spec"]["template"]["spec"]["containers"][0]["image"]: rs for rs in await replicasets(client, deploy)}
    assert sets["nginx:1.26"]["spec"]["replicas"] == replicas
    assert sets["nginx:1.26"]["status"]["availableReplicas"] == replicas
    assert sets["nginx:1.25"]["spec"]["replicas"] == 0
    assert sets["nginx:1.26"]["metadata"]["annotations"][REVISION] == "2"
    events = (await client.list("Event", "default")).items
    assert any(e["reason"] == "ScalingReplicaSet" and "Scaled down" in e["message"] for e in events)


async def test_rolling_update_default_fenceposts(client: ApiClient, start_controllers: StartControllers,
                                                 pod_status_simulator: Any) -> None:
    await start_controllers("deployment", "replicaset")
    # 25% of 3: surge rounds up to 1, unavailable down to 0, so all 3 stay available throughout
    await _rolling_update(client, {"type": "RollingUpdate",
                                   "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}}, 3, 0, 1)


async def test_rolling_update_without_surge(client: ApiClient, start_controllers: StartControllers,
                                            pod_status_simulator: Any) -> None:
    await start_controllers("deployment", "replicaset")
    await _rolling_update(client, {"type": "RollingUpdate",
                                   "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1}}, 4, 1, 0)


async def test_recreate(client: ApiClient, start_controllers: StartControllers, pod_status_simulator: Any) -> None:
    await start_controllers("deployment", "replicaset")
    await client.create(deployment("rec", 3, "nginx:1.25", {"type": "Recreate"}))
    await eventually(lambda: rolled_out(client, "rec", 3, "nginx:1.25"))
    sampler = Sampler(client, "rec")
    try:
        await set_image(client, "rec", "nginx:1.26")
        deploy = await eventually(lambda: rolled_out(client, "rec", 3, "nginx:1.26"), timeout=30)
    finally:
        await sampler.stop()
    assert not sampler.mixed, "old and new pods ran together under Recreate"
    assert sampler.min_available == 0
    assert {rs["spec"]["replicas"] for rs in await replicasets(client, deploy)} == {0, 3}


async def test_rollback_and_history(client: ApiClient, start_controllers: StartControllers,
                                    pod_status_simulator: Any) -> None:
    await start_controllers("deployment", "replicaset")
    await client.create(deployment("undo", 2, "nginx:1.25"))
    first = await eventually(lambda: rolled_out(client, "undo", 2, "nginx:1.25"))
    [original] = await replicasets(client, first)
    await set_image(client, "undo", "nginx:bad")
    deploy = await eventually(lambda: rolled_out(client, "undo", 2, "nginx:bad"))
    history = revision_history(deploy, await replicasets(client, deploy))
    assert [h.revision for h in history] == [1, 2]

    await client.update(rollback_template(deploy, await replicasets(client, deploy)))
    deploy = await eventually(lambda: rolled_out(client, "undo", 2, "nginx:1.25"))
    current = await replicasets(client, deploy)
    assert len(current) == 2, "rolling back reuses the old ReplicaSet"
    reused = next(rs for rs in current if name_of(rs) == name_of(original))
    assert reused["metadata"]["annotations"][REVISION] == "3"
    assert deploy["metadata"]["annotations"][REVISION] == "3"


async def test_paused_deployment_is_not_rolled(client: ApiClient, start_controllers: StartControllers,
                                               pod_status_simulator: Any) -> None:
    await start_controllers("deployment", "replicaset")
    await client.create(deployment("hold", 2, "nginx:1.25"))
    deploy = await eventually(lambda: rolled_out(client, "hold", 2, "nginx:1.25"))
    deploy["spec"]["paused"] = True
    deploy["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:1.26"
    await client.update(deploy)
    await asyncio.sleep(1.0)
    assert len(await replicasets(client, deploy)) == 1
    deploy = await client.get("Deployment", "hold", "default")
    deploy["spec"]["paused"] = False
    await client.update(deploy)
    await eventually(lambda: rolled_out(client, "hold", 2, "nginx:1.26"))
