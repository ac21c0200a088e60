"""Fixtures for the kubelet runtime tests: one real Podman service per session, started in a temp dir.

Everything the tests create carries a node name unique to the session; teardown removes every sandbox
and container of that node, also after failures.
"""

from __future__ import annotations

import asyncio
import shutil
import uuid
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from agents.kubelet.images import ensure_local_images
from agents.kubelet.podman_runtime import PodmanRuntime
from agents.kubelet.podman_service import PodmanService, start_podman_service


@pytest.fixture(scope="session")
def node_name() -> str:
    return f"test-node-{uuid.uuid4().hex[:8]}"


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def podman_service(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[PodmanService]:
    if shutil.which("podman") is None:
        pytest.skip("podman is not installed (apt-get install podman runc busybox-static)")
    if shutil.which("busybox") is None:
        pytest.skip("busybox is not installed: needed to build the local test image (busybox-static)")
    service = await start_podman_service(state_dir=tmp_path_factory.mktemp("podman"))
    try:
        await asyncio.to_thread(ensure_local_images, service.env)
        yield service
    finally:
        await service.close()


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def podman_runtime(podman_service: PodmanService, node_name: str) -> AsyncIterator[PodmanRuntime]:
    runtime = PodmanRuntime(podman_service.socket_url)
    try:
        yield runtime
    finally:
        for sandbox in await runtime.list_sandboxes(node_name):
            await runtime.remove_sandbox(sandbox.id)
        for container in await runtime.list_containers(node_name):
            await runtime.remove_container(container.id)
        await runtime.close()
