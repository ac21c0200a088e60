"""``kubectl exec``, ``cp`` and the Python client's exec stream through the gateway, to a real kubelet on Podman:
exit codes, stdin and its EOF, a TTY under a pty, tar both ways, and nothing left running when the client goes.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
import pty
import struct
import termios
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from agents.kubelet.agent import KubeletAgent
from agents.kubelet.config import KubeletConfig
from agents.kubelet.images import BUSYBOX_IMAGE
from agents.kubelet.podman_runtime import PodmanRuntime
from agents.kubelet.podman_service import PodmanService
from protocol.objects import Obj
from runtime.client import ApiClient
from runtime.nats_server import NatsServer, free_port
from tests.agents.conftest import podman_service  # noqa: F401  (the session's Podman service)
from tests.cli.conftest import ShoalCli
from tests.conftest import ActorRunner
from tests.controllers.conftest import eventually
from tests.gateway.conftest import Gateway

pytestmark = [pytest.mark.podman, pytest.mark.slow]


def busybox_pod(name: str, node: str, script: str = "sleep 3600") -> Obj:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"nodeName": node, "terminationGracePeriodSeconds": 0,
                     "containers": [{"name": "main", "image": BUSYBOX_IMAGE, "command": ["sh", "-c", script]}]}}


@pytest_asyncio.fixture
async def node(podman_service: PodmanService, runner: ActorRunner,  # noqa: F811
               tmp_path: Path) -> AsyncIterator[str]:
    """A kubelet on Podman for this test; its pods and containers are removed afterwards, pass or fail."""
    name = f"gw-{uuid.uuid4().hex[:8]}"
    config = KubeletConfig(node_name=name, address="127.0.0.1", state_dir=tmp_path / "kubelet", relist_interval=0.5,
                           lease_renew_interval=2.0, node_status_interval=2.0)
    agent = KubeletAgent(config, runtime=PodmanRuntime(podman_service.socket_url), runtime_version="podman://test")
    await runner.start(agent, lambda: agent.started.is_set())
    yield name
    await runner.stop_all()
    runtime = PodmanRuntime(podman_service.socket_url)
    try:
        for sandbox in await runtime.list_sandboxes(name):
            await runtime.remove_sandbox(sandbox.id)
        for c in await runtime.list_containers(name):
            await runtime.remove_container(c.id)
    finally:
        await runtime.close()


async def running_pod(client: ApiClient, name: str, node: str, script: str = "sleep 3600") -> None:
    await client.create(busybox_pod(name, node, script))

    async def running() -> bool:
        pod = await client.get("Pod", name)
        statuses = (pod.get("status") or {}).get("containerStatuses") or []
        return bool(statuses and "running" in (statuses[0].get("state") or {}))

    await eventually(running, timeout=60)


async def test_kubectl_exec_exit_codes_stdin_and_cp(gateway: Gateway, api_client: ApiClient, node: str,
                                                    tmp_path: Path) -> None:
    await running_pod(api_client, "box", node)
    out = await gateway.ok("exec", "box", "--", "sh", "-c", "echo out; echo err >&2")
    assert out == "out\n", out
    failed = await gateway.kubectl("exec", "box", "--", "sh", "-c", "echo partial; exit 7")
    assert failed.rc == 7 and failed.out == "partial\n", failed
    # stdin and its EOF: wc ends only when stdin closes
    counted = await gateway.kubectl("exec", "-i", "box", "--", "wc", "-l", stdin="a\nb\nc\n")
    assert counted.rc == 0 and counted.out.strip() == "3", counted
    big = "x" * 200_000 + "\n"
    echoed = await gateway.kubectl("exec", "-i", "box", "--", "cat", stdin=big)
    assert echoed.rc == 0 and echoed.out == big, (echoed.rc, len(echoed.out), echoed.err)
    # kubectl gone mid-exec (SIGKILL): the gateway's websocket closes and the kubelet kills the command
    orphan = await gateway.start("exec", "box", "--", "sleep", "4343")

    async def ps() -> str:
        return await gateway.ok("exec", "box", "--", "ps")

    await eventually(lambda: _has(ps(), "sleep 4343"), timeout=30)
    orphan.kill()
    await orphan.wait()
    await eventually(lambda: _lacks(ps(), "sleep 4343"), timeout=30, interval=0.5)
    missing = await gateway.kubectl("exec", "nope", "--", "true")
    assert missing.rc == 1 and "NotFound" in missing.err, missing
    # cp both ways (tar over exec)
    local = tmp_path / "hello.txt"
    local.write_text("hello from the host\n")
    await gateway.ok("cp", str(local), "box:/tmp/hello.txt")
    assert await gateway.ok("exec", "box", "--", "cat", "/tmp/hello.txt") == "hello from the host\n"
    await gateway.ok("exec", "box", "--", "sh", "-c", "mkdir -p /tmp/d && echo inner > /tmp/d/f")
    back = tmp_path / "back"
    await gateway.ok("cp", "box:/tmp/d", str(back))
    assert (back / "f").read_text() == "inner\n"


async def test_kubectl_exec_tty_under_a_pty(gateway: Gateway, api_client: ApiClient, node: str) -> None:
    await running_pod(api_client, "tty", node)
    main, secondary = pty.openpty()
    fcntl.ioctl(main, termios.TIOCSWINSZ, struct.pack("HHHH", 33, 101, 0, 0))  # kubectl sends it as a resize
    proc = await asyncio.create_subprocess_exec(
        *gateway.kubectl_argv("exec", "-it", "tty", "--", "sh"), stdin=secondary, stdout=secondary,
        stderr=secondary, env={**gateway.env(), "TERM": "dumb"}, start_new_session=True)
    os.close(secondary)
    loop = asyncio.get_running_loop()
    seen = bytearray()

    async def read_until(needle: bytes, timeout: float = 30) -> None:
        async def more() -> None:
            while needle not in seen:
                seen.extend(await loop.run_in_executor(None, os.read, main, 4096))
        await asyncio.wait_for(more(), timeout)

    try:
        os.write(main, b"tty; echo marker-$((6*7))\r")
        await read_until(b"marker-42")
        assert b"/dev/pts/" in seen, seen  # the shell has a terminal in the container
        os.write(main, b"echo size-$(stty size | tr ' ' x)\r")
        await read_until(b"size-33x101")
        os.write(main, b"exit 3\r")
        assert await asyncio.wait_for(proc.wait(), 30) == 3
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        os.close(main)


async def test_python_client_exec_stream(gateway: Gateway, api_client: ApiClient, node: str) -> None:
    from kubernetes import client as k8s
    from kubernetes import config
    from kubernetes.stream import stream

    await running_pod(api_client, "py", node)

    def run() -> tuple[str, Any, str]:
        api = k8s.CoreV1Api(config.new_client_from_config(str(gateway.kubeconfig)))
        out = stream(api.connect_get_namespaced_pod_exec, "py", "default", command=["sh", "-c", "echo hi; echo there"],
                     stderr=True, stdin=False, stdout=True, tty=False)
        resp = stream(api.connect_get_namespaced_pod_exec, "py", "default",
                      command=["sh", "-c", "read x; echo got $x; exit 5"], stderr=True, stdin=True, stdout=True,
                      tty=False, _preload_content=False)
        resp.write_stdin("value\n")
        resp.run_forever(timeout=30)
        got = resp.read_stdout()
        return out, resp.returncode, got

    out, code, got = await asyncio.to_thread(run)
    assert out == "hi\nthere\n", out
    assert code == 5 and got == "got value\n", (code, got)


WEB = "mkdir -p /www && echo hello-from-the-pod > /www/index.html && httpd -f -p 8080 -h /www"


async def test_python_client_port_forward(gateway: Gateway, api_client: ApiClient, node: str) -> None:
    from kubernetes import client as k8s
    from kubernetes import config
    from kubernetes.stream import portforward

    await running_pod(api_client, "web", node, WEB)

    def fetch() -> bytes:
        api = k8s.CoreV1Api(config.new_client_from_config(str(gateway.kubeconfig)))
        forward = portforward(api.connect_get_namespaced_pod_portforward, "web", "default", ports="8080")
        sock = forward.socket(8080)
        sock.settimeout(20)
        sock.sendall(b"GET / HTTP/1.0\r\nHost: pod\r\n\r\n")
        body = b""
        while chunk := sock.recv(4096):
            body += chunk
        sock.close()
        assert forward.error(8080) is None, forward.error(8080)
        return body

    assert b"hello-from-the-pod" in await asyncio.to_thread(fetch)


async def test_shoal_exec_cp_port_forward_and_a_vanished_client(gateway: Gateway, api_client: ApiClient, node: str,
                                                                 nats_server: NatsServer, tmp_path: Path) -> None:
    shoal = ShoalCli(nats_server.url)
    await running_pod(api_client, "sbox", node, WEB)
    done = await shoal("exec", "sbox", "--", "sh", "-c", "echo out; echo err >&2; exit 4")
    assert done.rc == 4 and done.out == "out\n" and done.err == "err\n", done
    piped = await shoal("exec", "-i", "sbox", "--", "wc", "-c", stdin="12345")
    assert piped.rc == 0 and piped.out.strip() == "5", piped
    missing = await shoal("exec", "nope", "--", "true")
    assert missing.rc != 0 and "nope" in missing.err, missing
    # cp both ways
    (tmp_path / "dir").mkdir()
    (tmp_path / "dir" / "a.txt").write_text("alpha\n")
    copied = await shoal("cp", str(tmp_path / "dir"), "sbox:/tmp/copied")
    assert copied.rc == 0, copied
    assert (await shoal("exec", "sbox", "--", "cat", "/tmp/copied/a.txt")).out == "alpha\n"
    back = await shoal("cp", "sbox:/tmp/copied/a.txt", str(tmp_path / "back.txt"))
    assert back.rc == 0 and (tmp_path / "back.txt").read_text() == "alpha\n", back
    # port-forward: a local port to the pod's 8080
    port = free_port()
    forward = await shoal.start("port-forward", "sbox", f"{port}:8080")
    try:
        assert forward.stdout is not None
        line = await asyncio.wait_for(forward.stdout.readline(), 30)
        assert f"Forwarding from 127.0.0.1:{port} -> 8080" in line.decode(), line
        for _ in range(2):  # two connections, one stream each
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET / HTTP/1.0\r\nHost: pod\r\n\r\n")
            body = await asyncio.wait_for(reader.read(), 30)
            writer.close()
            assert b"hello-from-the-pod" in body, body
    finally:
        forward.terminate()
        await forward.wait()
    # a client that vanishes (SIGKILL: no goodbye) leaves nothing running in the container
    orphan = await shoal.start("exec", "sbox", "--", "sleep", "4242")
    async def sleeping() -> bool:
        return "sleep 4242" in (await shoal("exec", "sbox", "--", "ps")).out
    await eventually(sleeping, timeout=30)
    orphan.kill()
    await orphan.wait()

    async def gone() -> bool:
        return "sleep 4242" not in (await shoal("exec", "sbox", "--", "ps")).out
    await eventually(gone, timeout=30, interval=0.5)


async def test_kubectl_port_forward(gateway: Gateway, api_client: ApiClient, node: str) -> None:
    await running_pod(api_client, "kweb", node, WEB)
    port = free_port()
    forward = await gateway.start("port-forward", "pod/kweb", f"{port}:8080")
    try:
        assert forward.stdout is not None
        line = await asyncio.wait_for(forward.stdout.readline(), 30)
        assert f"Forwarding from 127.0.0.1:{port} -> 8080" in line.decode(), line
        for _ in range(3):  # one SPDY stream pair per connection, in the same websocket
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET / HTTP/1.0\r\nHost: pod\r\n\r\n")
            body = await asyncio.wait_for(reader.read(), 30)
            writer.close()
            assert b"hello-from-the-pod" in body, body
    finally:
        forward.terminate()
        _, err = await forward.communicate()
    assert b"error" not in err.lower(), err


async def test_attach_follows_the_output_until_the_container_ends(gateway: Gateway, api_client: ApiClient,
                                                                  node: str, nats_server: NatsServer) -> None:
    script = "sleep 6; echo tick; echo tock >&2; sleep 2; echo bye; exit 3"  # room for a slow client to attach
    await running_pod(api_client, "att", node, script)
    attached = await gateway.kubectl("attach", "att", timeout=60)
    assert "bye" in attached.out, attached  # kubectl attach ends with the container
    await api_client.delete("Pod", "att", "default", grace_period=0)

    async def gone() -> bool:
        try:
            await api_client.get("Pod", "att", "default")
        except Exception:
            return True
        return False

    await eventually(gone, timeout=60)
    await running_pod(api_client, "att", node, script)
    shoal = ShoalCli(nats_server.url)
    followed = await shoal("attach", "att")
    assert followed.rc == 3 and "bye" in followed.out, followed
    refused = await gateway.kubectl("attach", "-i", "att")
    assert refused.rc != 0, refused


async def test_attach_with_stdin_and_kubectl_run_interactive(gateway: Gateway, api_client: ApiClient,
                                                              node: str, nats_server: NatsServer) -> None:
    reader = busybox_pod("reader", node, "read line; echo got:$line; read more; echo then:$more")
    reader["spec"]["containers"][0].update(stdin=True, stdinOnce=True)
    await api_client.create(reader)

    async def running() -> bool:
        statuses = ((await api_client.get("Pod", "reader")).get("status") or {}).get("containerStatuses") or []
        return bool(statuses and "running" in (statuses[0].get("state") or {}))

    await eventually(running, timeout=60)
    attached = await gateway.kubectl("attach", "-i", "reader", stdin="hello\n", timeout=60)
    assert "got:hello" in attached.out and attached.rc == 0, attached  # the end of stdin ended the container's
    assert "then:" in attached.out, attached
    overrides = json.dumps({"spec": {"nodeName": node, "terminationGracePeriodSeconds": 0}})
    run = await gateway.kubectl("run", "once", "-i", "--rm", "--restart=Never", f"--image={BUSYBOX_IMAGE}",
                                f"--overrides={overrides}", "--", "sh", "-c", "read x; echo got:$x",
                                stdin="world\n", timeout=120)
    assert run.rc == 0 and "got:world" in run.out, run

    async def gone() -> bool:
        return "once" not in {p["metadata"]["name"] for p in (await api_client.list("Pod", "default")).items}

    await eventually(gone, timeout=60)  # --rm deleted it once the attachment ended


async def _has(text: Any, needle: str) -> bool:
    return needle in await text


async def _lacks(text: Any, needle: str) -> bool:
    return needle not in await text
