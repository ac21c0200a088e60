"""``shoal up`` as a user runs it: a subprocess on a free port with its own state directory."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import socket
import sys
from pathlib import Path

import pytest

from runtime.nats_server import free_port
from shoal.up import COMPONENTS, UpOptions, importable
from tests.cli.conftest import REPO, ShoalCli, cli_env, read_until


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        state = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "State:\tZ" not in state


def _env(state: Path) -> dict[str, str]:
    """The kubeconfig ``shoal up`` merges its context into stays next to the state directory."""
    return {**cli_env(), "KUBECONFIG": str(state.parent / "kubeconfig")}


async def _start(state: Path, port: int, gateway_port: int | None = None) -> tuple[asyncio.subprocess.Process, str]:
    gateway = f"127.0.0.1:{gateway_port or free_port()}"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "shoal", "up", "--state-dir", str(state), "--port", str(port), "--gateway", gateway,
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        env=_env(state), cwd=REPO)
    try:
        seen = await read_until(proc.stdout, "Press Ctrl-C", timeout=90)
    except BaseException:
        proc.kill()
        await proc.wait()
        raise
    return proc, seen


async def _stop(proc: asyncio.subprocess.Process) -> str:
    proc.send_signal(signal.SIGINT)
    assert proc.stdout is not None
    rest = await asyncio.wait_for(proc.stdout.read(), 60)
    assert await asyncio.wait_for(proc.wait(), 10) == 0, rest.decode()
    return rest.decode()


@pytest.mark.slow
async def test_up_runs_a_cluster_that_keeps_its_data(tmp_path: Path) -> None:
    state, port = tmp_path / "state", free_port()
    cli = ShoalCli(f"nats://127.0.0.1:{port}", {"SHOAL_CONTEXT": str(state / "context.json")})

    gateway_port = free_port()
    proc, seen = await _start(state, port, gateway_port)
    try:
        assert f"Shoal state directory: {state}" in seen
        assert f"export SHOAL_SERVER=nats://127.0.0.1:{port}" in seen
        assert f"export SHOAL_CONTEXT={state / 'context.json'}" in seen
        pids = [int(p) for p in re.findall(r"\(pid (\d+)\)", seen)]
        expected = [c for c in COMPONENTS if c.enabled(UpOptions()) and importable(c.module)]
        assert len(pids) == 1 + len(expected), seen  # nats-server and every component
        assert all(_alive(pid) for pid in pids)

        applied = await cli("apply", "-f", "-", stdin="kind: ConfigMap\nmetadata: {name: kept}\ndata: {a: b}\n")
        assert applied.out.strip() == "configmap/kept created", applied
        if shutil.which("kubectl"):  # the context `shoal up` merged into $KUBECONFIG reaches the gateway
            kubectl = await asyncio.create_subprocess_exec(
                "kubectl", "get", "configmap", "kept", "-o", "name", stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE, env=_env(state))
            out, err = await asyncio.wait_for(kubectl.communicate(), 60)
            assert out.decode().strip() == "configmap/kept", err.decode()
            printed = await cli("kubeconfig", "--state-dir", str(state), "--gateway", f"127.0.0.1:{gateway_port}")
            assert f"server: https://127.0.0.1:{gateway_port}" in printed.out, printed

        second = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "shoal", "up", "--state-dir", str(state), "--port", str(free_port()),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=_env(state), cwd=REPO)
        _, err = await asyncio.wait_for(second.communicate(), 30)
        assert second.returncode == 1
        assert "already running" in err.decode()
    finally:
        rest = await _stop(proc)
    assert "cluster stopped" in rest
    for _ in range(50):
        if not any(_alive(pid) for pid in pids):
            break
        await asyncio.sleep(0.1)
    assert not any(_alive(pid) for pid in pids), f"stray processes: {[p for p in pids if _alive(p)]}"
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        pass
    assert (state / "logs" / "api.log").stat().st_size > 0
    # every component did its work under its own NATS identity: nats-server refused none of it
    assert "Violation" not in (state / "logs" / "nats-server.log").read_text()

    proc, _ = await _start(state, port)
    try:
        got = await cli("get", "configmap", "kept", "-o", "name")
        assert got.rc == 0, got
        assert got.out.strip() == "configmap/kept"
    finally:
        await _stop(proc)


async def test_up_refuses_a_port_taken_by_another_program(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "shoal", "up", "--state-dir", str(tmp_path / "s"), "--port", str(port),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=_env(tmp_path / "s"), cwd=REPO)
        _, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 1
    assert f"error: port {port} on 127.0.0.1 is in use by another program" in err.decode()
    assert "--port" in err.decode()
