"""Two clusters on one Podman with the same node name never see nor remove each other's pods (issue 18,
item 7): every object is labelled with its cluster's id and a runtime lists and touches only its own."""

from __future__ import annotations

import uuid

import pytest

from agents.kubelet.cri import LABEL_CLUSTER, ContainerConfig, SandboxConfig
from agents.kubelet.images import BUSYBOX_IMAGE
from agents.kubelet.podman_runtime import PodmanRuntime
from agents.kubelet.podman_service import PodmanService

pytestmark = [pytest.mark.podman, pytest.mark.asyncio(loop_scope="session")]


async def test_same_node_name_two_clusters_do_not_touch_each_others_pods(podman_service: PodmanService) -> None:
    node = f"vm-{uuid.uuid4().hex[:6]}"  # both clusters' kubelets are node "vm", as two `shoal up` on one machine
    one = PodmanRuntime(podman_service.socket_url, cluster_id=f"cluster-a-{node}")
    two = PodmanRuntime(podman_service.socket_url, cluster_id=f"cluster-b-{node}")
    sandboxes: list[tuple[PodmanRuntime, str]] = []
    try:
        made = {}
        for runtime in (one, two):
            uid = uuid.uuid4().hex
            config = SandboxConfig(pod_uid=uid, namespace="default", name="web", node_name=node)
            sandbox = await runtime.create_sandbox(config)
            sandboxes.append((runtime, sandbox))
            container = await runtime.create_container(
                sandbox, config, ContainerConfig(name="c", image=BUSYBOX_IMAGE, command=["sleep", "300"]), 0)
            made[runtime.cluster_id] = (sandbox, container)
        for runtime in (one, two):
            own_sandbox, own_container = made[runtime.cluster_id]
            assert [s.id for s in await runtime.list_sandboxes(node)] == [own_sandbox]
            assert [c.id for c in await runtime.list_containers(node)] == [own_container]
        # cluster two's kubelet takes cluster one's pod for an orphan and removes it: refused, it is not its own
        sandbox_one, container_one = made[one.cluster_id]
        await two.remove_container(container_one)
        await two.remove_sandbox(sandbox_one)
        assert [s.id for s in await one.list_sandboxes(node)] == [sandbox_one]
        assert [c.id for c in await one.list_containers(node)] == [container_one]
        labels = (await one._call(one._inspect_container, container_one)).get("Config", {}).get("Labels", {})
        assert labels.get(LABEL_CLUSTER) == one.cluster_id
    finally:
        for runtime, sandbox in sandboxes:
            for container in await runtime.list_containers(node):
                await runtime.remove_container(container.id)
            await runtime.remove_sandbox(sandbox)
        await one.close()
        await two.close()
