"""A Shoal cluster across network-namespace "VMs": a 3-server NATS cluster (JetStream R3, TLS, one user
per component), API actors, controller managers and fake-runtime kubelets, each a real process started
with ``ip netns exec``. Used by the multi-VM tests; everything it starts it also stops."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import os
import signal
import ssl
import subprocess
import sys
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nats
import structlog
from nats.aio.client import Client

from runtime.cluster_config import CLIENT_PORT, MONITOR_PORT, TlsFiles, client_urls, render_server
from runtime.nats_security import cluster_users, new_secrets, render_authorization
from runtime.nats_server import find_binary
from tests.multivm.netns import Network

REPO = Path(__file__).resolve().parents[2]
NODES = ("node-1", "node-2", "node-3")
PERMISSION_NODES = ("perm-a", "perm-b")
PODMAN_NODE = "podman-1"
"""A kubelet on VM 1 running real Podman containers (its own Podman service, inside the VM's namespace)."""


def podman_available() -> bool:
    import shutil

    return shutil.which("podman") is not None and shutil.which("busybox") is not None


def module_available(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        return False


@dataclass
class Proc:
    name: str
    vm: int
    argv: list[str]
    env: dict[str, str]
    log: Path
    popen: subprocess.Popen[bytes] | None = None

    def start(self, net: Network) -> None:
        with open(self.log, "ab") as out:
            self.popen = subprocess.Popen(net.exec_args(self.vm, *self.argv), env=self.env, cwd=REPO,
                                          stdout=out, stderr=subprocess.STDOUT, start_new_session=True)

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.alive():
            assert self.popen is not None
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.popen.pid, sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(10)
        if self.alive():
            assert self.popen is not None
            self.popen.kill()
            self.popen.wait(5)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


@dataclass
class Cluster:
    net: Network
    root: Path
    secrets: dict[str, Any]
    tls_dir: Path
    nats: dict[int, Proc] = field(default_factory=dict)
    procs: list[Proc] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    store_limit_mb: int = 0
    """When set, each NATS server's JetStream store is a tmpfs of this size (mounted before the server
    starts, unmounted by ``stop``), so that a fault can fill it (``tests.chaos.faults.DiskFull``)."""
    podman: Any = None
    """The Podman service of the real-container node: it runs in the root namespace (``ip netns exec``
    remounts /sys, where Podman finds the cgroups); the kubelet in VM 1 reaches it by its unix socket."""

    @property
    def servers(self) -> list[str]:
        return client_urls([self.net.address(i) for i in (1, 2, 3)], tls=False)

    def password(self, user: str) -> str:
        return str(self.secrets["passwords"][user])

    def env(self, user: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SHOAL_")}
        env.update(SHOAL_SERVER=",".join(self.servers), SHOAL_USER=user, SHOAL_PASSWORD=self.password(user),
                   SHOAL_TLS_CA=str(self.tls_dir / "ca.pem"), SHOAL_LOG_LEVEL="info", PYTHONUNBUFFERED="1")
        return env

    # -- NATS -----------------------------------------------------------------------------------
    def nats_config(self, i: int) -> Path:
        users = cluster_users(self.secrets["passwords"], self.secrets["nodes"])
        text = render_server(
            name=f"shoal-{i}", peers=[self.net.address(j) for j in (1, 2, 3)], state_dir=self.root / f"nats-{i}",
            listen_host=self.net.address(i), monitor=f"{self.net.address(i)}:{MONITOR_PORT}",
            tls=TlsFiles.in_dir(self.tls_dir, f"shoal-{i}"), authorization=render_authorization(users),
            route_password=self.password("route"))
        path = self.root / f"nats-{i}.conf"
        path.write_text(text)
        return path

    def store_dir(self, i: int) -> Path:
        return self.root / f"nats-{i}" / "jetstream"

    def _mount_store(self, i: int) -> None:
        store = self.store_dir(i)
        store.mkdir(parents=True, exist_ok=True)
        if not os.path.ismount(store):
            subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={self.store_limit_mb}m,mode=0700", "tmpfs",
                            str(store)], check=True, capture_output=True, timeout=20)

    def start_nats(self, i: int) -> Proc:
        if self.store_limit_mb:
            self._mount_store(i)
        proc = Proc(f"nats-{i}", i, [find_binary(), "-c", str(self.root / f"nats-{i}.conf")], dict(os.environ),
                    self.root / f"nats-{i}.log")
        proc.start(self.net)
        self.nats[i] = proc
        return proc

    def nats_healthy(self, i: int) -> bool:
        url = f"http://{self.net.address(i)}:{MONITOR_PORT}/healthz"
        try:
            with urllib.request.urlopen(url, timeout=1) as resp:  # the client namespace: no proxy, no world
                return bool(resp.status == 200)
        except OSError:
            return False

    def wait_nats(self, which: Sequence[int] = (1, 2, 3), timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while not all(self.nats_healthy(i) for i in which):
            for i in which:
                if not self.nats[i].alive():
                    raise RuntimeError(f"nats-{i} exited:\n{self.nats[i].log_text()[-3000:]}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"NATS servers {list(which)} not healthy within {timeout}s")
            time.sleep(0.2)

    # -- actors ---------------------------------------------------------------------------------
    def start_actor(self, name: str, vm: int, user: str, module: str, *args: str) -> Proc:
        proc = Proc(name, vm, [sys.executable, "-m", module, *args], self.env(user), self.root / f"{name}.log")
        proc.start(self.net)
        self.procs.append(proc)
        return proc

    def wait_logged(self, proc: Proc, text: str, timeout: float = 40.0) -> None:
        deadline = time.monotonic() + timeout
        while text not in proc.log_text():
            if not proc.alive():
                raise RuntimeError(f"{proc.name} exited:\n{proc.log_text()[-3000:]}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{proc.name} did not log {text!r} within {timeout}s:\n{proc.log_text()[-3000:]}")
            time.sleep(0.1)

    async def connect(self, user: str = "admin", **options: Any) -> Client:
        context = ssl.create_default_context(cafile=str(self.tls_dir / "ca.pem"))

        async def on_error(exc: Exception) -> None:  # one line, not nats-py's traceback per reconnect
            structlog.get_logger("multivm").warning("nats client error", user=user, error=repr(exc))

        defaults: dict[str, Any] = {"servers": self.servers, "user": user, "password": self.password(user),
                                    "tls": context, "connect_timeout": 2, "reconnect_time_wait": 0.2,
                                    "max_reconnect_attempts": -1, "name": f"test/{user}",
                                    # a partitioned server never closes our socket: find out by pings
                                    "ping_interval": 1, "max_outstanding_pings": 2, "error_cb": on_error}
        return await nats.connect(**{**defaults, **options})

    def stop(self) -> None:
        for proc in reversed(self.procs):
            proc.kill(signal.SIGTERM if proc.alive() else signal.SIGKILL)
        for i, proc in self.nats.items():
            proc.kill(signal.SIGTERM)
            if self.store_limit_mb and os.path.ismount(self.store_dir(i)):
                subprocess.run(["umount", "-l", str(self.store_dir(i))], capture_output=True, timeout=20)
        if self.podman is not None:
            asyncio.run(self._remove_podman_pods())
            asyncio.run(self.podman.close())
            self.podman = None

    async def _remove_podman_pods(self) -> None:
        from agents.kubelet.podman_runtime import PodmanRuntime

        runtime = PodmanRuntime(self.podman.socket_url)
        try:
            for sandbox in await runtime.list_sandboxes(PODMAN_NODE):
                await runtime.remove_sandbox(sandbox.id)
        finally:
            await runtime.close()


def build(net: Network, root: Path, store_limit_mb: int = 0) -> Cluster:
    """Certificates, users, three NATS servers; API actors (R3), controller managers, kubelets.
    ``store_limit_mb``: each server's JetStream store on a tmpfs of that size (see ``Cluster``)."""
    tls_dir = root / "tls"
    specs = [f"shoal-{i}={net.address(i)}" for i in (1, 2, 3)]
    subprocess.run([str(REPO / "deploy" / "make-certs.sh"), str(tls_dir), *specs], check=True,
                   capture_output=True, timeout=60)
    secrets = new_secrets([*NODES, *PERMISSION_NODES, PODMAN_NODE])
    cluster = Cluster(net, root, secrets, tls_dir, store_limit_mb=store_limit_mb)
    try:
        _start_all(cluster)
    except BaseException:
        cluster.stop()
        raise
    return cluster


def _start_all(cluster: Cluster) -> None:
    net, root = cluster.net, cluster.root
    started = time.monotonic()
    for i in (1, 2, 3):
        cluster.nats_config(i)
        cluster.start_nats(i)
    cluster.wait_nats()
    asyncio.run(_wait_jetstream(cluster))
    cluster.timings["nats_cluster_ready_s"] = round(time.monotonic() - started, 2)
    # one after the other: two API actors creating the streams at the same moment can time out in
    # ensure_streams (the systemd units ride that out with Restart=always; see deploy/README.md)
    for i in (1, 2):
        cluster.wait_logged(cluster.start_actor(f"api-{i}", i, "api", "actors.api", "--replicas", "3"),
                            "actor started")
    managers = [cluster.start_actor(f"controller-manager-{i}", i, "controller-manager", "actors.controllers",
                                    "--node-monitor-grace-period", "6", "--pod-eviction-timeout", "300")
                for i in (1, 2)]
    if module_available("agents.kubelet"):
        for i, node in enumerate(NODES, start=1):
            cluster.start_actor(f"kubelet-{node}", i, f"kubelet-{node}", "agents.kubelet", "--node-name", node,
                                "--runtime", "fake", "--address", net.address(i), "--lease-interval", "1",
                                "--status-interval", "1", "--state-dir", str(root / f"kubelet-{node}"))
    if module_available("agents.kubelet") and podman_available():
        from agents.kubelet.images import ensure_local_images
        from agents.kubelet.podman_service import start_podman_service

        cluster.podman = asyncio.run(start_podman_service(state_dir=root / "podman"))
        ensure_local_images(cluster.podman.env)
        cluster.start_actor(f"kubelet-{PODMAN_NODE}", 1, f"kubelet-{PODMAN_NODE}", "agents.kubelet", "--node-name",
                            PODMAN_NODE, "--runtime", "podman", "--podman-socket", cluster.podman.socket_url,
                            "--address", net.address(1), "--pod-cidr", "127.96.1.0/24",
                            "--state-dir", str(root / f"kubelet-{PODMAN_NODE}"))
    for proc in managers:
        cluster.wait_logged(proc, "actor started")
    cluster.timings["control_plane_ready_s"] = round(time.monotonic() - started, 2)


async def _wait_jetstream(cluster: Cluster, timeout: float = 30.0) -> None:
    nc = await cluster.connect()
    try:
        js = nc.jetstream(timeout=2)
        deadline = time.monotonic() + timeout
        while True:
            try:
                await js.account_info()
                return
            except Exception:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.3)
    finally:
        await nc.close()


__all__ = ["CLIENT_PORT", "NODES", "PERMISSION_NODES", "Cluster", "Proc", "build", "module_available"]
