"""PodmanRuntime against a real Podman service (no mocks). Skipped with a reason when Podman is absent."""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
import pytest_asyncio
from podman import PodmanClient

from agents.kubelet.cri import (
    ContainerConfig,
    ContainerNotFound,
    ExecTimeout,
    ImagePullError,
    PortMapping,
    RuntimeContainer,
    SandboxConfig,
)
from agents.kubelet.images import BUSYBOX_IMAGE, ensure_local_images
from agents.kubelet.podman_runtime import PodmanRuntime
from agents.kubelet.podman_service import PodmanService, _probe, start_podman_service

pytestmark = [pytest.mark.podman, pytest.mark.asyncio(loop_scope="session")]

MakePod = Callable[..., Awaitable[tuple[str, SandboxConfig]]]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _cfg(name: str, *command: str, **kwargs: object) -> ContainerConfig:
    return ContainerConfig(name=name, image=BUSYBOX_IMAGE, command=list(command), **kwargs)  # type: ignore[arg-type]


@pytest_asyncio.fixture(loop_scope="session")
async def make_pod(podman_runtime: PodmanRuntime, node_name: str) -> AsyncIterator[MakePod]:
    """Creates uniquely named sandboxes and removes them after the test, pass or fail."""
    created: list[str] = []

    async def make(*, ports: tuple[PortMapping, ...] = ()) -> tuple[str, SandboxConfig]:
        uid = uuid.uuid4().hex
        config = SandboxConfig(
            pod_uid=uid, namespace="test", name=f"pod-{uid[:6]}", node_name=node_name, ports=ports
        )
        sandbox_id = await podman_runtime.create_sandbox(config)
        created.append(sandbox_id)
        return sandbox_id, config

    yield make
    for sandbox_id in created:
        await podman_runtime.remove_sandbox(sandbox_id)


async def _run(
    rt: PodmanRuntime, sandbox_id: str, sandbox: SandboxConfig, config: ContainerConfig, attempt: int = 0
) -> str:
    cid = await rt.create_container(sandbox_id, sandbox, config, attempt)
    await rt.start_container(cid)
    return cid


async def _wait_state(
    rt: PodmanRuntime, node: str, cid: str, state: str, within: float = 15
) -> RuntimeContainer:
    deadline = time.monotonic() + within
    while True:
        found = {c.id: c for c in await rt.list_containers(node)}
        if cid in found and found[cid].state == state:
            return found[cid]
        if time.monotonic() > deadline:
            raise AssertionError(f"container {cid[:12]} not {state}: {found.get(cid)}")
        await asyncio.sleep(0.1)


async def _http_get(port: int, within: float = 15) -> str:
    deadline = time.monotonic() + within
    while True:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n")
            body = (await asyncio.wait_for(reader.read(), 5)).decode()
            writer.close()
            if " 200 " in body:
                return body
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"no HTTP answer on 127.0.0.1:{port}")
        await asyncio.sleep(0.1)


HTTPD = "mkdir -p /www && echo hello-shoal > /www/index.html && exec httpd -f -p {port} -h /www"


async def test_host_port_reaches_httpd(
    podman_runtime: PodmanRuntime, make_pod: MakePod, node_name: str
) -> None:
    port = _free_port()
    t0 = time.monotonic()
    sandbox_id, sandbox = await make_pod(
        ports=(PortMapping(container_port=80, host_port=port, host_ip="127.0.0.1"),)
    )
    t1 = time.monotonic()
    await _run(podman_runtime, sandbox_id, sandbox, _cfg("web", "sh", "-c", HTTPD.format(port=80)))
    t2 = time.monotonic()
    print(f"\nsandbox create {t1 - t0:.3f}s, container create+start {t2 - t1:.3f}s")

    assert "hello-shoal" in await _http_get(port)
    sandboxes = {s.id: s for s in await podman_runtime.list_sandboxes(node_name)}
    assert sandboxes[sandbox_id].state == "ready"
    assert sandboxes[sandbox_id].pod_uid == sandbox.pod_uid
    assert (sandboxes[sandbox_id].ip or "").startswith("10.")


async def test_containers_share_the_pod_network(podman_runtime: PodmanRuntime, make_pod: MakePod) -> None:
    sandbox_id, sandbox = await make_pod()
    await _run(podman_runtime, sandbox_id, sandbox, _cfg("web", "sh", "-c", HTTPD.format(port=8080)))
    client = await _run(podman_runtime, sandbox_id, sandbox, _cfg("client", "sleep", "1000"))
    for _ in range(50):
        code, out = await podman_runtime.exec_in_container(
            client, ["wget", "-qO-", "http://127.0.0.1:8080/"], timeout_seconds=5
        )
        if code == 0:
            break
        await asyncio.sleep(0.1)
    assert (code, out.strip()) == (0, "hello-shoal")


async def test_exit_code_env_and_working_dir(
    podman_runtime: PodmanRuntime, make_pod: MakePod, node_name: str
) -> None:
    sandbox_id, sandbox = await make_pod()
    config = _cfg(
        "crash", "sh", "-c", 'echo "$GREETING"; pwd; exit 3', env={"GREETING": "hi"}, working_dir="/bin"
    )
    cid = await _run(podman_runtime, sandbox_id, sandbox, config, attempt=2)
    seen = await _wait_state(podman_runtime, node_name, cid, "exited")
    assert seen.exit_code == 3
    assert (seen.name, seen.attempt, seen.sandbox_id, seen.pod_uid) == (
        "crash",
        2,
        sandbox_id,
        sandbox.pod_uid,
    )
    assert seen.started_at is not None and seen.finished_at is not None
    assert [line async for line in podman_runtime.logs(cid)] == ["hi", "/bin"]


async def test_args_override_image_command(
    podman_runtime: PodmanRuntime, make_pod: MakePod, node_name: str
) -> None:
    sandbox_id, sandbox = await make_pod()
    # No entrypoint in the image: args replace its CMD, as in Kubernetes.
    config = ContainerConfig(name="args", image=BUSYBOX_IMAGE, args=["sh", "-c", "exit 4"])
    cid = await _run(podman_runtime, sandbox_id, sandbox, config)
    assert (await _wait_state(podman_runtime, node_name, cid, "exited")).exit_code == 4


async def test_exec_output_exit_code_and_timeout(podman_runtime: PodmanRuntime, make_pod: MakePod) -> None:
    sandbox_id, sandbox = await make_pod()
    cid = await _run(podman_runtime, sandbox_id, sandbox, _cfg("sleeper", "sleep", "1000"))
    code, out = await podman_runtime.exec_in_container(
        cid, ["sh", "-c", "echo out; echo err >&2; exit 7"], timeout_seconds=10
    )
    assert code == 7
    assert "out" in out and "err" in out
    started = time.monotonic()
    with pytest.raises(ExecTimeout):
        await podman_runtime.exec_in_container(cid, ["sleep", "30"], timeout_seconds=1)
    assert time.monotonic() - started < 5
    with pytest.raises(ContainerNotFound):
        await podman_runtime.exec_in_container("no-such-container-" + uuid.uuid4().hex, ["true"], 5)


async def test_logs_tail_and_follow(podman_runtime: PodmanRuntime, make_pod: MakePod, node_name: str) -> None:
    sandbox_id, sandbox = await make_pod()
    done = await _run(
        podman_runtime, sandbox_id, sandbox, _cfg("count", "sh", "-c", "for i in 1 2 3 4 5; do echo $i; done")
    )
    await _wait_state(podman_runtime, node_name, done, "exited")
    assert [line async for line in podman_runtime.logs(done)] == ["1", "2", "3", "4", "5"]
    assert [line async for line in podman_runtime.logs(done, tail=2)] == ["4", "5"]

    slow = await _run(
        podman_runtime,
        sandbox_id,
        sandbox,
        _cfg("slow", "sh", "-c", "for i in a b c; do echo $i; sleep 0.3; done"),
    )
    followed = await asyncio.wait_for(_collect(podman_runtime.logs(slow, follow=True)), 15)
    assert followed == ["a", "b", "c"]  # the stream ended by itself when the container exited

    forever = await _run(
        podman_runtime, sandbox_id, sandbox, _cfg("forever", "sh", "-c", "echo first; sleep 1000")
    )
    stream = podman_runtime.logs(forever, follow=True)
    assert isinstance(stream, AsyncGenerator)
    assert await asyncio.wait_for(anext(stream), 10) == "first"
    await asyncio.wait_for(stream.aclose(), 2)  # a consumer that stops releases the stream at once


async def _collect(stream: AsyncIterator[str]) -> list[str]:
    return [line async for line in stream]


async def test_stop_kills_after_grace(
    podman_runtime: PodmanRuntime, make_pod: MakePod, node_name: str
) -> None:
    sandbox_id, sandbox = await make_pod()
    cid = await _run(
        podman_runtime, sandbox_id, sandbox, _cfg("stubborn", "sh", "-c", 'trap "" TERM; sleep 1000')
    )
    await _wait_state(podman_runtime, node_name, cid, "running")
    started = time.monotonic()
    await podman_runtime.stop_container(cid, grace_seconds=2)
    elapsed = time.monotonic() - started
    assert 1.5 <= elapsed < 2 + 5
    seen = await _wait_state(podman_runtime, node_name, cid, "exited")
    assert seen.exit_code == 137  # SIGKILL
    await podman_runtime.stop_container(cid, grace_seconds=2)  # idempotent
    await podman_runtime.remove_container(cid)
    await podman_runtime.remove_container(cid)  # idempotent
    assert cid not in {c.id for c in await podman_runtime.list_containers(node_name)}


async def test_resource_limits_applied(podman_runtime: PodmanRuntime, make_pod: MakePod) -> None:
    sandbox_id, sandbox = await make_pod()
    config = _cfg("limited", "sleep", "1000", cpu_limit_millis=500, memory_limit_bytes=64 * 1024 * 1024)
    cid = await _run(podman_runtime, sandbox_id, sandbox, config)
    script = (
        "cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max;"
        "cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us 2>/dev/null || cat /sys/fs/cgroup/cpu.max"
    )
    code, out = await podman_runtime.exec_in_container(cid, ["sh", "-c", script], timeout_seconds=10)
    assert code == 0
    assert str(64 * 1024 * 1024) in out
    assert "50000" in out


async def test_only_labelled_objects_are_listed_or_touched(
    podman_runtime: PodmanRuntime, podman_service: PodmanService, make_pod: MakePod, node_name: str
) -> None:
    sandbox_id, sandbox = await make_pod()
    ours = await _run(podman_runtime, sandbox_id, sandbox, _cfg("ours", "sleep", "1000"))
    name = f"shoal-test-unlabelled-{uuid.uuid4().hex[:8]}"
    env = podman_service.env

    def podman(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["podman", *args], env=env, capture_output=True, text=True, check=False)

    # Carries our node label but not io.shoal.managed: still not ours.
    created = podman(
        "run", "-d", "--name", name, "--label", f"io.shoal.node={node_name}", BUSYBOX_IMAGE, "sleep", "1000"
    )
    assert created.returncode == 0, created.stderr
    foreign = created.stdout.strip()
    pod_name = f"{name}-pod"
    assert (
        podman("pod", "create", "--name", pod_name, "--label", f"io.shoal.node={node_name}").returncode == 0
    )
    try:
        listed = {c.id for c in await podman_runtime.list_containers(node_name)}
        assert ours in listed and foreign not in listed
        sandboxes = {s.id for s in await podman_runtime.list_sandboxes(node_name)}
        assert sandbox_id in sandboxes and len(sandboxes & {pod_name}) == 0
        await podman_runtime.remove_container(foreign)
        await podman_runtime.remove_sandbox(pod_name)
        assert podman("container", "exists", foreign).returncode == 0
        assert podman("pod", "exists", pod_name).returncode == 0
    finally:
        podman("rm", "-f", "-t", "0", foreign)
        podman("pod", "rm", "-f", pod_name)


async def test_missing_image_is_an_image_pull_error(podman_runtime: PodmanRuntime, make_pod: MakePod) -> None:
    sandbox_id, sandbox = await make_pod()
    missing = f"localhost/shoal/absent-{uuid.uuid4().hex[:8]}:latest"
    assert await podman_runtime.image_present(BUSYBOX_IMAGE)
    assert not await podman_runtime.image_present(missing)
    started = time.monotonic()
    with pytest.raises(ImagePullError):
        await podman_runtime.create_container(
            sandbox_id, sandbox, ContainerConfig(name="x", image=missing), 0
        )
    assert time.monotonic() - started < 3


async def test_service_configuration_makes_containers_run(
    podman_service: PodmanService, tmp_path: Path
) -> None:
    # Whatever the detection chose (nothing on a normal host), a container must run with it.
    ok, error = await asyncio.to_thread(_probe, tmp_path, podman_service.env)
    assert ok, error
    messages: list[str] = []
    assert await asyncio.to_thread(ensure_local_images, podman_service.env, messages.append) == [
        BUSYBOX_IMAGE
    ]
    assert messages == [f"{BUSYBOX_IMAGE} already present"]  # idempotent: no second build


async def test_a_service_left_by_a_killed_kubelet_is_stopped_by_the_next_start(tmp_path: Path) -> None:
    """A kubelet killed with SIGKILL cannot ``close()`` its Podman service; the next start on the same
    state directory stops that one instead of leaving it running beside the new service."""
    if shutil.which("podman") is None:
        pytest.skip("podman is not installed")
    first = await start_podman_service(state_dir=tmp_path)  # never closed: its kubelet "died"
    assert first.process is not None
    second = await start_podman_service(state_dir=tmp_path)
    try:
        assert second.process is not None and second.process.pid != first.process.pid
        assert await asyncio.to_thread(first.process.wait, 15) is not None  # stopped, and reaped here
        with PodmanClient(base_url=second.socket_url) as podman:
            assert podman.ping()
    finally:
        await second.close()
        await first.close()
