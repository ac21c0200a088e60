"""A whole Shoal cluster as real processes, as ``shoal up`` runs it, but with what tests need to own.

``ProcessCluster`` starts the embedded nats-server (its own store in a temporary directory, on a free
port) and every component as ``python -m <module> --server URL ...``, each with its log in
``<root>/logs/<name>.log``. Unlike ``shoal up`` it lets a test choose the kubelet's node name and pod
network (so Podman objects and pod addresses never collide with another cluster on this machine), run
several instances of one component (two controller managers), and kill one with any signal.

``stop()`` stops the components in reverse start order (SIGTERM, then SIGKILL after a grace), then
nats-server, and unmounts what the kubelets left mounted under the root (a stopped kubelet leaves its pods'
volumes in place, as Kubernetes' does). ``remove_podman_objects(node)`` removes what a (stopped) kubelet
left in Podman, found by the kubelet's ``io.shoal.node`` label. ``start_podman_node`` starts the control
plane and one Podman kubelet (short back-offs and heartbeats, as the end-to-end tests want them);
``ready_client`` connects once its node is Ready.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import IO, TypeVar

import nats
import pytest
from nats.aio.client import Client

from agents.kubelet.volumes import unmount_all
from runtime.client import ApiClient
from runtime.nats_server import NatsServerConfig, find_binary, free_port

REPO = Path(__file__).resolve().parents[2]
T = TypeVar("T")


class ProcessCluster:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.logs = root / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"nats://127.0.0.1:{self.port}"
        self.nats: subprocess.Popen[bytes] | None = None
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self._files: list[IO[bytes]] = []

    # -- processes ------------------------------------------------------------------------------------
    def start_nats(self, timeout: float = 15.0) -> None:
        config = NatsServerConfig(state_dir=self.root / "nats", port=self.port)
        config.state_dir.mkdir(parents=True, exist_ok=True)
        conf = config.state_dir / "nats-server.conf"
        conf.write_text(config.render())
        out = open(self.logs / "nats-server.log", "ab")  # noqa: SIM115 - closed by stop()
        self._files.append(out)
        self.nats = subprocess.Popen([find_binary(), "-c", str(conf)], stdout=out, stderr=out,
                                     start_new_session=True)
        deadline = time.monotonic() + timeout
        while True:
            if self.nats.poll() is not None:
                raise RuntimeError(f"nats-server exited: {self.tail('nats-server')}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("nats-server did not listen in time") from None
                time.sleep(0.05)

    def start(self, name: str, module: str, *args: str) -> subprocess.Popen[bytes]:
        """``python -m module --server URL args...``; ``name`` keys the process and its log."""
        out = open(self.logs / f"{name}.log", "ab")  # noqa: SIM115 - closed by stop()
        self._files.append(out)
        env = {k: v for k, v in os.environ.items() if not k.startswith("SHOAL_")}
        env.update(PYTHONUNBUFFERED="1", SHOAL_LOG_LEVEL="info")
        proc = subprocess.Popen([sys.executable, "-m", module, "--server", self.url, "--log-level", "info", *args],
                                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=env,
                                cwd=REPO, start_new_session=True)
        self.procs[name] = proc
        return proc

    def signal(self, name: str, sig: int) -> None:
        self.procs[name].send_signal(sig)

    def terminate(self, name: str, grace: float = 15.0) -> int:
        proc = self.procs[name]
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(grace)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        return proc.returncode

    def stop(self) -> None:
        for name in reversed(list(self.procs)):
            if self.procs[name].poll() is None:
                self.procs[name].send_signal(signal.SIGTERM)
        for name in reversed(list(self.procs)):
            self.terminate(name)
        if self.nats is not None and self.nats.poll() is None:
            self.nats.terminate()
            try:
                self.nats.wait(10)
            except subprocess.TimeoutExpired:
                self.nats.kill()
                self.nats.wait()
        for f in self._files:
            f.close()
        unmount_all(self.root)  # what the stopped kubelets left mounted (pods' volumes stay, as Kubernetes')

    def exited(self) -> dict[str, int]:
        """Components that exited (name → status) although nobody stopped them."""
        return {n: p.returncode for n, p in self.procs.items() if p.poll() is not None}

    def tail(self, name: str, lines: int = 30) -> str:
        try:
            text = (self.logs / f"{name}.log").read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def tails(self, lines: int = 15) -> str:
        return "\n".join(f"--- {n} (last {lines} lines)\n{self.tail(n, lines)}" for n in self.procs)

    # -- clients --------------------------------------------------------------------------------------
    def cli_argv(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "shoal", "--server", self.url, *args]

    async def client(self) -> tuple[Client, ApiClient]:
        nc = await nats.connect(self.url, max_reconnect_attempts=-1)
        return nc, ApiClient(nc)

    async def wait_api(self, client: ApiClient, timeout: float = 60) -> None:
        async def ready() -> bool:
            try:
                return bool((await client.info()).get("ready"))
            except Exception:
                return False

        await self.eventually(ready, timeout=timeout, what="the API actor answers")

    @asynccontextmanager
    async def ready_client(self, node: str) -> AsyncIterator[ApiClient]:
        """A client of this cluster, once the API actor answers and ``node`` is Ready."""
        nc, api = await self.client()
        try:
            await self.wait_api(api)

            async def node_ready() -> bool:
                try:
                    obj = await api.get("Node", node)
                except Exception:
                    return False
                return any(c["type"] == "Ready" and c["status"] == "True"
                           for c in obj["status"].get("conditions", []))

            await self.eventually(node_ready, timeout=90, what=f"node {node} Ready")
            yield api
        finally:
            await nc.close()

    async def eventually(self, probe: Callable[[], Awaitable[T]], *, timeout: float = 30, interval: float = 0.2,
                         what: str = "condition") -> T:
        """Until ``probe()`` returns something truthy; on time-out fail with the components' log tails."""
        deadline = time.monotonic() + timeout
        while True:
            value = await probe()
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout}s waiting for {what}; exited components: "
                                     f"{self.exited()}\n{self.tails()}")
            await asyncio.sleep(interval)


PODMAN_MARKS = [
    pytest.mark.slow, pytest.mark.podman,
    pytest.mark.skipif(shutil.which("podman") is None,
                       reason="podman is not installed (apt-get install podman runc busybox-static)"),
    pytest.mark.skipif(shutil.which("busybox") is None,
                       reason="busybox is not installed: needed to build the local test image (busybox-static)"),
]
"""The marks of a module running pods on Podman: slow, and skipped where Podman or busybox is missing."""


def start_podman_node(cluster: ProcessCluster, node: str, pod_cidr: str, kubelet_state: Path) -> tuple[str, ...]:
    """Start nats-server, the API actor, the scheduler, the controller manager and a Podman kubelet for
    ``node`` (back-off 1 to 4 s, lease and status every 2 s); the kubelet's arguments, to start it again."""
    cluster.start_nats()
    cluster.start("api", "actors.api")
    cluster.start("scheduler", "actors.scheduler")
    cluster.start("controllers", "actors.controllers")
    kubelet_args = ("--node-name", node, "--pod-cidr", pod_cidr, "--state-dir", str(kubelet_state),
                    "--backoff-base", "1", "--backoff-max", "4", "--lease-interval", "2", "--status-interval", "2")
    cluster.start("kubelet", "agents.kubelet", *kubelet_args)
    return kubelet_args


def podman_env(kubelet_state: Path) -> dict[str, str]:
    """Environment for the ``podman`` CLI with the configuration the kubelet detected for this host."""
    conf = kubelet_state / "podman" / "containers.conf"
    env = dict(os.environ)
    if conf.exists():
        env["CONTAINERS_CONF"] = str(conf)
    return env


def remove_podman_objects(node: str, env: dict[str, str]) -> list[str]:
    """Remove every Podman pod and container labelled with ``node``; returns what was removed."""
    label = f"label=io.shoal.node={node}"
    removed: list[str] = []
    pods = subprocess.run(["podman", "pod", "ls", "-q", "--filter", label], capture_output=True, text=True,
                          env=env, check=False).stdout.split()
    if pods:
        subprocess.run(["podman", "pod", "rm", "-f", "-t", "0", *pods], capture_output=True, env=env, check=False)
        removed += pods
    containers = subprocess.run(["podman", "ps", "-aq", "--filter", label], capture_output=True, text=True,
                                env=env, check=False).stdout.split()
    if containers:
        subprocess.run(["podman", "rm", "-f", "-t", "0", *containers], capture_output=True, env=env, check=False)
        removed += containers
    return removed
